"""The Listener protocol: given a description and K candidate images, pick one and say how sure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from lewis_env.data.types import ImageRef
from lewis_env.imports import import_object

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


_LISTENERS: dict[str, Callable[..., Listener]] = {}
ENTRY_POINT_GROUP = "lewis_bench.listeners"


def register_listener(name: str) -> Callable[[Callable[..., Listener]], Callable[..., Listener]]:
    """Decorator: make a listener class or factory available to ``make_listener(name)``."""

    def deco(factory: Callable[..., Listener]) -> Callable[..., Listener]:
        _LISTENERS[name] = factory
        return factory

    return deco


def _entry_point_listeners() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_listeners() -> list[str]:
    """Names ``make_listener`` accepts: built-ins plus the ``lewis_bench.listeners`` entry points."""
    return sorted(set(_LISTENERS) | set(_entry_point_listeners()))


def make_listener(spec: str | Listener | None, **kwargs: Any) -> Listener:
    """A listener from a name (``"rule"``, ``"http"``, an entry-point name), a ``"module:factory"`` import
    path (called with ``kwargs``), or pass an object through."""
    if spec is None:
        spec = "rule"
    if isinstance(spec, str) and ":" in spec:
        spec = import_object(spec, "listener")(**kwargs)
    if not isinstance(spec, str):
        if not (hasattr(spec, "choose") and hasattr(spec, "choose_batch")):
            raise TypeError(f"listener must be a name or have choose/choose_batch, got {type(spec).__name__}")
        return spec
    if spec in _LISTENERS:
        return _LISTENERS[spec](**kwargs)
    eps = _entry_point_listeners()
    if spec in eps:
        return eps[spec].load()(**kwargs)
    raise KeyError(f"unknown listener {spec!r}; known: {', '.join(list_listeners())}")
