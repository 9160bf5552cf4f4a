"""RoleAgent: the part every prompted agent shares: dispatch ``act_batch`` to ``_act_<role>`` of the bound env."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.registry import BaseAgent


class RoleAgent(BaseAgent):
    """An agent with one ``_act_<role>(observations, infos)`` method per role it plays."""

    def _object_name(self, info: Mapping[str, Any] | None) -> str:
        """What the prompts call the object: the episode's category, else "object"."""
        return str((info or {}).get("category") or "object")

    def _answer(self, index: int, letters: str | Sequence[str]) -> Any:
        """An option as the env's action mode wants it: its index, or its letter."""
        return int(index) if self.action_mode == "index" else letters[index]

    def act(self, observation: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
        """One action for one observation of the bound env."""
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any] | None] | None = None) -> list[Any]:
        """Actions for many observations, in order, from the bound role's ``_act_<role>``."""
        if self.role is None:
            raise RuntimeError("call agent.bind(env) before act(); the env tells the agent its role")
        obs = list(observations)
        infs: list[Any] = list(infos) if infos is not None else [None] * len(obs)
        if len(infs) != len(obs):
            raise ValueError(f"act_batch got {len(obs)} observations but {len(infs)} infos")
        if not obs:
            return []
        return getattr(self, f"_act_{self.role}")(obs, infs)
