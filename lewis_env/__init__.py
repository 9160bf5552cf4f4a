"""lewis-bench environments: the Lewis game, recognition, VQA and identification as Gymnasium envs.

Importing this package registers ``lewis_env/LewisSpeaker-v0``, ``LewisListener-v0``, ``Recognition-v0``,
``VQA-v0`` and ``Identification-v0`` (so ``gym.make("lewis_env:lewis_env/LewisSpeaker-v0")`` works without
an explicit import). Listeners, reward terms and dataset kinds live in ``lewis_env.registry.Registry``
instances (``lewis_env.listeners.LISTENERS``, ``lewis_env.rewards.REWARDS``, ``lewis_env.data.registry.DATASETS``).
"""

__version__ = "0.1.0"

import gymnasium as _gym

#: env id -> entry point (modules are imported only when an env is made)
ENV_IDS: dict[str, str] = {
    "lewis_env/LewisSpeaker-v0": "lewis_env.envs.speaker:LewisSpeakerEnv",
    "lewis_env/LewisListener-v0": "lewis_env.envs.listener:LewisListenerEnv",
    "lewis_env/Recognition-v0": "lewis_env.envs.recognition:RecognitionEnv",
    "lewis_env/VQA-v0": "lewis_env.envs.vqa:VQAEnv",
    "lewis_env/Identification-v0": "lewis_env.envs.identification:IdentificationEnv",
}


def register_envs() -> None:
    """Register every env id with gymnasium (idempotent)."""
    for env_id, entry in ENV_IDS.items():
        if env_id not in _gym.registry:
            _gym.register(id=env_id, entry_point=entry, disable_env_checker=False)


register_envs()
