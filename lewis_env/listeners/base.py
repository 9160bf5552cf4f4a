"""The Listener protocol: given a description and K candidate images, pick one and say how sure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from lewis_env.data.types import ImageRef
from lewis_env.registry import Registry

#: (chosen candidate index, one score per candidate; higher = more likely the target)
Choice = tuple[int, list[float]]


@runtime_checkable
class Listener(Protocol):
    """Anything that picks the described candidate. Speaker envs receive one from outside."""

    def choose(self, description: str, candidates: Sequence[ImageRef]) -> Choice:
        """Pick the candidate the description refers to."""
        ...

    def choose_batch(self, descriptions: Sequence[str], candidates: Sequence[Sequence[ImageRef]]) -> list[Choice]:
        """Many (description, candidates) pairs in one call; one Choice per pair, in order."""
        ...


class BaseListener:
    """Convenience base: implement ``choose``; ``choose_batch`` loops over it."""

    name = "base"

    def choose(self, description: str, candidates: Sequence[ImageRef]) -> Choice:
        raise NotImplementedError

    def choose_batch(self, descriptions: Sequence[str], candidates: Sequence[Sequence[ImageRef]]) -> list[Choice]:
        if len(descriptions) != len(candidates):
            raise ValueError(f"choose_batch got {len(descriptions)} descriptions but {len(candidates)} candidate lists")
        return [self.choose(d, c) for d, c in zip(descriptions, candidates)]


ENTRY_POINT_GROUP = "lewis_bench.listeners"
#: Every listener: built-ins lazily (imported on first use), ``qwen`` and others through the entry points.
LISTENERS: Registry[Callable[..., Listener]] = Registry("listener", ENTRY_POINT_GROUP, import_paths=True)
LISTENERS.register("rule", "lewis_env.listeners.rule:RuleListener")
LISTENERS.register("random", "lewis_env.listeners.rule:RandomListener")
LISTENERS.register("http", "lewis_env.listeners.http:HTTPListener")
LISTENERS.register("clip", "lewis_env.listeners.clip:ClipListener")


def register_listener(name: str) -> Callable[[Callable[..., Listener]], Callable[..., Listener]]:
    """Decorator: make a listener class or factory available to ``make_listener(name)``."""
    return LISTENERS.register(name)


def list_listeners() -> list[str]:
    """Names ``make_listener`` accepts: built-ins plus the ``lewis_bench.listeners`` entry points."""
    return LISTENERS.names()


def make_listener(spec: str | Listener | None, **kwargs: Any) -> Listener:
    """A listener from a name (``"rule"``, ``"http"``, an entry-point name), a ``"module:factory"`` import
    path (called with ``kwargs``), or pass an object through."""
    if spec is None:
        spec = "rule"
    if isinstance(spec, str):
        return LISTENERS.get(spec)(**kwargs)
    if not (hasattr(spec, "choose") and hasattr(spec, "choose_batch")):
        raise TypeError(f"listener must be a name or have choose/choose_batch, got {type(spec).__name__}")
    return spec
