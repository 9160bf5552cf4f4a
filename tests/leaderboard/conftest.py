"""Shared fixtures: a tiny hash-pinned synthetic suite (16 concepts, 32 px, few episodes) for quick evaluations."""

from __future__ import annotations

from typing import Any

import pytest

TINY_DATASET = {"kind": "synthetic", "num_concepts": 16, "images_per_concept": 4, "num_reference": 2,
                "image_size": 32, "seed": 0}


def tiny_suite_dict(num_episodes: int = 16, seeds: list[int] | None = None, **over: Any) -> dict[str, Any]:
    """A suite dict over the tiny world with every task (speaker judged by the rule listener)."""
    d = {"name": "tiny", "version": "v0", "dataset": dict(TINY_DATASET), "split": "all", "k": 4,
         "image_size": 32, "action_mode": "text", "seeds": seeds or [0, 1],
         "tasks": {"speaker": {"num_episodes": num_episodes, "kwargs": {"listener": "rule"}},
                   "listener": {"num_episodes": num_episodes},
                   "recognition": {"num_episodes": num_episodes},
                   "vqa": {"num_episodes": num_episodes},
                   "identification": {"num_episodes": num_episodes}}}
    d.update(over)
    return d


@pytest.fixture(scope="session")
def tiny_suite():
    """The tiny suite with its episodes hash recorded (computed once per session)."""
    from leaderboard.suites import compute_episodes_hash, load_suite

    suite = load_suite(tiny_suite_dict(), verify=False)
    suite.episodes_hash = compute_episodes_hash(suite)
    return suite
