"""The Agent protocol and the registry that the leaderboard and the GRPO runner look agents up in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

#: The roles an agent can play; an env's ``unwrapped.role`` is one of these.
ROLES: tuple[str, ...] = ("speaker", "listener", "recognition", "vqa", "identification")
ENTRY_POINT_GROUP = "lewis_bench.agents"


@runtime_checkable
class Agent(Protocol):
    """Anything that acts in our envs. ``bind(env)`` tells it the role (and lets oracles see ground truth)."""

    name: str
    roles: frozenset[str]

    def bind(self, env: Any) -> None:
        """Attach to an env before acting: the role is ``env.unwrapped.role``."""
        ...

    def act(self, observation: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
        """One action for one observation (text by default; an int/array in index mode)."""
        ...

    def act_batch(self, observations: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]] | None = None) -> list[Any]:
        """Actions for many observations of the bound env, in order."""
        ...


class BaseAgent:
    """Convenience base: ``bind`` records env and role; ``act_batch`` loops over ``act``."""

    name = "base"
    roles: frozenset[str] = frozenset(ROLES)

    def __init__(self) -> None:
        self.env: Any = None
        self.role: str | None = None
        self.action_mode: str = "text"

    def bind(self, env: Any) -> None:
        base = getattr(env, "unwrapped", env)
        role = getattr(base, "role", None)
        if role not in self.roles:
            raise ValueError(f"agent {self.name!r} cannot play role {role!r}; it plays {sorted(self.roles)}")
        self.env, self.role = base, role
        self.action_mode = getattr(base, "action_mode", "text")

    def act(self, observation: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def act_batch(self, observations: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]] | None = None) -> list[Any]:
        infos = list(infos) if infos is not None else [None] * len(observations)
        return [self.act(o, i) for o, i in zip(observations, infos)]


_AGENTS: dict[str, Callable[..., Agent]] = {}


def register(name: str) -> Callable[[Callable[..., Agent]], Callable[..., Agent]]:
    """Decorator: register an agent class or factory under ``name``."""

    def deco(factory: Callable[..., Agent]) -> Callable[..., Agent]:
        if name in _AGENTS and _AGENTS[name] is not factory:
            raise ValueError(f"agent name {name!r} is already registered to {_AGENTS[name]!r}")
        _AGENTS[name] = factory
        return factory

    return deco


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load_builtins() -> None:
    """Import the packages whose modules register built-in agents (baselines register on import)."""
    import importlib

    for mod in ("agents.qwen", "baselines"):
        try:
            importlib.import_module(mod)
        except ImportError as exc:  # an optional extra is missing: its agents are simply absent
            if exc.name and exc.name.split(".")[0] in ("agents", "baselines"):
                raise


def list_agents() -> list[str]:
    """Every registered agent name: built-ins plus ``lewis_bench.agents`` entry points."""
    _load_builtins()
    return sorted(set(_AGENTS) | set(_entry_points()))


def make(name: str, **kwargs: Any) -> Agent:
    """Build the agent registered as ``name``; an unknown name lists the known ones."""
    _load_builtins()
    if name in _AGENTS:
        return _AGENTS[name](**kwargs)
    eps = _entry_points()
    if name in eps:
        obj = eps[name].load()
        if name not in _AGENTS:
            _AGENTS[name] = obj
        return _AGENTS[name](**kwargs)
    raise KeyError(f"unknown agent {name!r}; known agents: {', '.join(list_agents())}")
