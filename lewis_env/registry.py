"""One registry class for every pluggable kind (agents, listeners, reward terms, dataset loaders).

Shaped after lm-evaluation-harness's ``lm_eval/api/registry.py``:

- entries are objects or lazy ``"module:object"`` strings, imported on first ``get`` (so registering the
  built-ins imports nothing heavy, and a lower layer can name a higher one's object without importing it);
- a Python entry-point group (``lewis_bench.<kind>s``) adds names from installed third-party packages;
- one collision policy: registering a *different* object under a taken name raises ``RegistryError``;
  registering the same object again (or the object a lazy string names) is a no-op;
- an unknown name raises ``UnknownNameError`` listing the known names and the close matches.
"""

from __future__ import annotations

import difflib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, overload

from lewis_env.imports import import_object

#: (group, sys.path) -> {name: entry point}; metadata on a path entry is taken as fixed for the process.
_EP_CACHE: dict[tuple[str, tuple[str, ...]], dict[str, EntryPoint]] = {}

T = TypeVar("T")
#: What a registry stores before first use: the object itself or where to import it from.
Target = Any


def close_matches(name: str, known: Iterable[str], n: int = 1) -> list[str]:
    """The known names closest to a misspelled ``name`` (difflib ratio >= 0.6), best first: for "did you mean"."""
    return difflib.get_close_matches(name, list(known), n=n, cutoff=0.6)


class RegistryError(ValueError):
    """A name registered twice to different objects, or a malformed name."""


class UnknownNameError(KeyError, ValueError):
    """A name no registry entry or entry point provides (a KeyError and a ValueError, for older callers)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def _path_of(obj: Any) -> str | None:
    """``"module:qualname"`` of a class or function (what a lazy string for it would say)."""
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{mod}:{qual}" if mod and qual else None


def _describe(target: Target) -> str:
    if isinstance(target, str):
        return repr(target)
    if isinstance(target, EntryPoint):
        return f"entry point {target.value!r}"
    return _path_of(target) or repr(target)


def _same(a: Target, b: Target) -> bool:
    """Whether two registrations denote the same object (identity, or the same import path)."""
    if a is b:
        return True
    pa = a.value if isinstance(a, EntryPoint) else a if isinstance(a, str) else _path_of(a)
    pb = b.value if isinstance(b, EntryPoint) else b if isinstance(b, str) else _path_of(b)
    return pa is not None and pa == pb


class Registry(Generic[T]):
    """Named objects of one kind, registered eagerly or lazily, plus an entry-point group.

    ``kind`` names the kind in messages ("agent", "listener" ...). With ``import_paths`` a name that is not
    registered but looks like ``"module:object"`` is imported directly (and registered under that string).
    """

    def __init__(self, kind: str, entry_point_group: str | None = None, *, import_paths: bool = False) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.import_paths = import_paths
        self._entries: dict[str, Target] = {}
        self._from_eps: dict[tuple[str, str], Any] = {}  # (name, entry-point value) -> loaded object
        self._lock = threading.RLock()

    # -- registration --------------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, target: T | str) -> T | str: ...

    def register(self, name: str, target: Any = None) -> Any:
        """Register ``target`` (an object or a lazy ``"module:object"`` string) as ``name``; without a target,
        return a decorator. Raises RegistryError when ``name`` already holds a different object."""
        if not isinstance(name, str) or not name.strip():
            raise RegistryError(f"{self.kind} name must be a non-empty str, got {name!r}")
        if target is None:
            def deco(obj: T) -> T:
                self._store(name, obj)
                return obj

            return deco
        if isinstance(target, str) and ":" not in target:
            raise RegistryError(f"lazy {self.kind} target must be 'module:object', got {target!r}")
        self._store(name, target)
        return target

    def _store(self, name: str, target: Target) -> None:
        with self._lock:
            current = self._entries.get(name)
            if current is not None and not _same(current, target):
                raise RegistryError(
                    f"{self.kind} name {name!r} is already registered to {_describe(current)}; refusing to "
                    f"register {_describe(target)} under it (choose another name, or unregister it first)")
            if current is None or isinstance(current, str) or not isinstance(target, str):
                self._entries[name] = target  # an object replaces the lazy string that named it

    def unregister(self, name: str) -> None:
        """Forget a registration (no error when absent); entry points stay visible."""
        with self._lock:
            self._entries.pop(name, None)

    # -- lookup --------------------------------------------------------------------------------
    def _entry_points(self) -> dict[str, EntryPoint]:
        """Installed entry points of the group, scanned once per ``sys.path`` (a scan reads every
        distribution's metadata: far too slow for a lookup inside a bootstrap loop)."""
        if not self.entry_point_group:
            return {}
        key = (self.entry_point_group, tuple(sys.path))
        hit = _EP_CACHE.get(key)
        if hit is None:
            hit = {ep.name: ep for ep in entry_points(group=self.entry_point_group)}
            _EP_CACHE[key] = hit
        return hit

    def names(self) -> list[str]:
        """Every name ``get`` accepts: registrations plus installed entry points, sorted."""
        with self._lock:
            mine = set(self._entries)
        return sorted(mine | set(self._entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._entry_points())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def is_loaded(self, name: str) -> bool:
        """Whether ``name`` is registered and already imported (False for lazy strings and entry points)."""
        target = self._entries.get(name)
        return target is not None and not isinstance(target, (str, EntryPoint))

    def get(self, name: str) -> T:
        """The object registered as ``name``, importing it on first use.

        Raises UnknownNameError (known names and close matches) for an unknown name, RegistryError when an
        installed entry point claims a registered name for a different object, ImportError naming the
        entry when its module cannot be imported.
        """
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__}")
        with self._lock:
            target = self._entries.get(name)
        ep = self._entry_points().get(name)
        if target is not None and ep is not None and not _same(target, ep):
            raise RegistryError(f"{self.kind} {name!r} is registered to {_describe(target)} and also claimed by the "
                                f"installed entry point {ep.value!r} (distribution "
                                f"{getattr(ep.dist, 'name', '?')}); uninstall one of them")
        if target is None and ep is not None:
            key = (name, ep.value)
            if key not in self._from_eps:
                self._from_eps[key] = self._materialise(name, ep)
            return self._from_eps[key]
        if target is None:
            if self.import_paths and ":" in name:
                obj = import_object(name, self.kind)
                self._store(name, obj)
                return obj
            raise self.unknown(name)
        if not isinstance(target, (str, EntryPoint)):
            return target
        obj = self._materialise(name, target)
        with self._lock:
            if self._entries.get(name) is target:
                self._entries[name] = obj
        return obj

    def _materialise(self, name: str, target: str | EntryPoint) -> Any:
        """Import a lazy entry; the error names the registry entry and what failed."""
        where = target if isinstance(target, str) else target.value
        try:
            if isinstance(target, EntryPoint):
                return target.load()
            module, _, attr = target.partition(":")
            import importlib

            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        except ImportError as exc:
            raise ImportError(f"{self.kind} {name!r} is registered as {where!r}, but importing it failed: {exc} "
                              f"(is the extra it needs installed?)", name=exc.name) from exc
        except AttributeError as exc:
            raise ImportError(f"{self.kind} {name!r} is registered as {where!r}, which does not exist: {exc}") from exc

    def unknown(self, name: str) -> UnknownNameError:
        """The error for an unknown ``name``: every known name, the closest ones first."""
        known = self.names()
        close = close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        extra = " (or give 'module:object')" if self.import_paths else ""
        return UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}{extra}")

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, entry_point_group={self.entry_point_group!r}, names={self.names()})"


__all__ = ["Registry", "RegistryError", "UnknownNameError"]
