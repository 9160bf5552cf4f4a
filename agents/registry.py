"""The Agent protocol and the registry that the leaderboard and the GRPO runner look agents up in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from lewis_env.registry import Registry
from lewis_env.tasks import BUILTIN_TASKS, list_tasks

#: The built-in roles (task ids); an env's ``unwrapped.role`` is its task's id (``lewis_env.tasks``).
ROLES: tuple[str, ...] = tuple(t.id for t in BUILTIN_TASKS)
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
    """Convenience base: ``bind`` records env and role; ``act_batch`` loops over ``act``.

    ``flags`` describe the agent to the leaderboard, which stores them with every result row: ``oracle``
    (reads ground-truth labels), ``random_init`` (random weights), ``display_name`` (shown instead of the bare
    name), plus free details (``score_source``, ``model_reported``, ``usage`` ...). The class default is empty;
    an instance may set its own.
    """

    name = "base"
    flags: ClassVar[dict[str, Any]] = {}

    @property
    def roles(self) -> frozenset[str]:
        """Every registered task (a subclass that plays fewer sets ``roles = frozenset({...})``)."""
        return frozenset(list_tasks())

    def __init__(self) -> None:
        self.flags = dict(type(self).flags)  # per instance, so setting one never leaks into the class
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


#: Every agent: built-ins register lazily here (nothing imported until built); ``baselines`` and third-party
#: packages register through the ``lewis_bench.agents`` entry-point group (or ``AGENTS.register``).
AGENTS: Registry[Callable[..., Agent]] = Registry("agent", ENTRY_POINT_GROUP)
AGENTS.register("qwen-vl", "agents.qwen:make_qwen_vl")
AGENTS.register("openai", "agents.api.agent:OpenAIAgent")


def register(name: str) -> Callable[[Callable[..., Agent]], Callable[..., Agent]]:
    """Decorator: register an agent class or factory under ``name`` (a different object under a taken name raises)."""
    return AGENTS.register(name)


def list_agents() -> list[str]:
    """Every registered agent name: built-ins, ``baselines`` once imported, ``lewis_bench.agents`` entry points."""
    return AGENTS.names()


def make(name: str, **kwargs: Any) -> Agent:
    """Build the agent registered as ``name``; an unknown name lists the known ones and the closest."""
    return AGENTS.get(name)(**kwargs)
