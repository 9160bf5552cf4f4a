"""A deliberately slow random agent for the fault tests (killed and concurrent evaluations in real processes)."""

from __future__ import annotations

import time
from typing import Any

from agents.registry import list_agents, register
from baselines.random_agent import RandomAgent

NAME = "slow-random"


class SlowRandomAgent(RandomAgent):
    """Uniform random answers, ``delay`` seconds per batch (so a test can kill it mid-run)."""

    name = NAME

    def __init__(self, seed: int = 0, delay: float = 0.05) -> None:
        super().__init__(seed=seed)
        self.delay = delay

    def act_batch(self, observations: Any, infos: Any = None) -> list[Any]:
        time.sleep(self.delay)
        return super().act_batch(observations, infos)


def ensure_registered() -> str:
    """Register the agent once per process; returns its name."""
    if NAME not in list_agents():
        register(NAME)(SlowRandomAgent)
    return NAME
