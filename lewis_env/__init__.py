"""lewis-bench environments: the Lewis game, recognition, VQA and identification as Gymnasium envs.

Importing this package registers every task's env id (``lewis_env/LewisSpeaker-v0``, ``LewisListener-v0``,
``Recognition-v0``, ``VQA-v0``, ``Identification-v0``), so ``gym.make("lewis_env:lewis_env/LewisSpeaker-v0")``
works without an explicit import. Each task has one ``TaskSpec`` (``lewis_env.tasks``); listeners, reward
terms, dataset kinds and tasks live in ``lewis_env.registry.Registry`` instances (``lewis_env.listeners.LISTENERS``,
``lewis_env.rewards.REWARDS``, ``lewis_env.data.registry.DATASETS``, ``lewis_env.tasks.TASKS``).
"""

__version__ = "0.1.0"

from lewis_env.tasks import BUILTIN_TASKS as _BUILTIN
from lewis_env.tasks import register_task as _register_task

#: env id -> entry point of the built-in tasks (modules are imported only when an env is made)
ENV_IDS: dict[str, str] = {t.env_id: str(t.entry_point) for t in _BUILTIN}


def register_envs() -> None:
    """Register every built-in task's env id with gymnasium (idempotent)."""
    for spec in _BUILTIN:
        _register_task(spec)


register_envs()
