"""Reference agents registered under stable names: random, rule, clip, ppo (``qwen-vl`` lives in ``agents``).

Importing this package registers them lazily (``"module:object"`` strings: nothing is imported until an agent
is built, so no torch); an installed copy also declares them in the ``lewis_bench.agents`` entry-point
group of pyproject.toml, so ``agents.make("rule")`` finds them without importing ``baselines`` first.
"""

from __future__ import annotations

from typing import Any

from agents.registry import AGENTS

#: name -> where the agent class lives (the same strings as the pyproject entry points).
BASELINES: dict[str, str] = {
    "random": "baselines.random_agent:RandomAgent",
    "rule": "baselines.rule:RuleAgent",
    "clip": "baselines.clip_agent:ClipAgent",
    "ppo": "baselines.ppo:PPOAgent",
}
for _name, _target in BASELINES.items():
    AGENTS.register(_name, _target)

_EXPORTS = {"RandomAgent": "random", "RuleAgent": "rule", "ClipAgent": "clip", "PPOAgent": "ppo"}


def __getattr__(attr: str) -> Any:
    """``baselines.RuleAgent`` etc., imported on first access."""
    if attr in _EXPORTS:
        return AGENTS.get(_EXPORTS[attr])
    raise AttributeError(f"module 'baselines' has no attribute {attr!r}")


__all__ = ["BASELINES", "ClipAgent", "PPOAgent", "RandomAgent", "RuleAgent"]
