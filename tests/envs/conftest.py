"""Fixtures for env tests: a tiny synthetic world (16 concepts, 32 px) and env factories."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

import lewis_env  # noqa: F401  (registers the env ids)

TINY = {"kind": "synthetic", "num_concepts": 16, "images_per_concept": 4, "num_reference": 2, "image_size": 32,
        "seed": 0}
IDS = {"speaker": "lewis_env/LewisSpeaker-v0", "listener": "lewis_env/LewisListener-v0",
       "recognition": "lewis_env/Recognition-v0", "vqa": "lewis_env/VQA-v0",
       "identification": "lewis_env/Identification-v0"}
ROLES = tuple(IDS)


def env_kwargs(**kw: Any) -> dict[str, Any]:
    """Default kwargs for a tiny env, overridden by ``kw``."""
    return {"dataset": dict(TINY), "split": "all", "k": 4, "image_size": 32, "seed": 0, **kw}


@pytest.fixture
def make_env() -> Callable[..., Any]:
    """``make_env(role, **kw)`` -> ``gym.make`` env over the tiny world, closed after the test."""
    import gymnasium as gym

    made: list[Any] = []

    def factory(role: str, **kw: Any) -> Any:
        env = gym.make(IDS[role], **env_kwargs(**kw))
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


class CountingListener:
    """A listener that records how often each method is called (and picks candidate 0)."""

    def __init__(self) -> None:
        self.batch_calls: list[int] = []
        self.single_calls = 0

    def choose(self, description: str, candidates: Sequence[Any]) -> tuple[int, list[float]]:
        self.single_calls += 1
        return 0, [1.0] + [0.0] * (len(candidates) - 1)

    def choose_batch(self, descriptions: Sequence[str], candidates: Sequence[Sequence[Any]]) -> list:
        self.batch_calls.append(len(descriptions))
        return [(0, [1.0] + [0.0] * (len(c) - 1)) for c in candidates]
