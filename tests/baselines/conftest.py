"""Fixtures for baseline tests: envs of every role over a tiny synthetic world (16 concepts, 32 px)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

TINY_DATASET = {"kind": "synthetic", "num_concepts": 16, "images_per_concept": 4, "num_reference": 2,
                "image_size": 32, "seed": 0}
ENV_IDS = {"speaker": "lewis_env/LewisSpeaker-v0", "listener": "lewis_env/LewisListener-v0",
           "recognition": "lewis_env/Recognition-v0", "vqa": "lewis_env/VQA-v0",
           "identification": "lewis_env/Identification-v0"}


@pytest.fixture
def make_env() -> Callable[..., Any]:
    """``make_env(role, **kwargs)`` -> a gym env over the tiny world (closed after the test)."""
    import gymnasium as gym

    import lewis_env.envs  # noqa: F401

    made = []

    def factory(role: str, **kw: Any) -> Any:
        kwargs = {"dataset": dict(TINY_DATASET), "split": "all", "k": 4, "image_size": 32, "seed": 0,
                  "num_episodes": 12, **kw}
        if role == "speaker":
            kwargs.setdefault("listener", "rule")
        env = gym.make(ENV_IDS[role], **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


def play(agent: Any, env: Any, n: int | None = None) -> list[dict[str, Any]]:
    """Bind, then reset/act_batch/score_batch over the first ``n`` episodes; the step infos."""
    agent.bind(env)
    base = env.unwrapped
    ids = list(range(base.num_episodes if n is None else min(n, base.num_episodes)))
    obs, infos = zip(*(env.reset(options={"episode_id": i}) for i in ids))
    actions = agent.act_batch(list(obs), list(infos))
    _, step_infos = base.score_batch(ids, actions)
    return step_infos
