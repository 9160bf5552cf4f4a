"""One entry point from a dataset spec ("synthetic", "yollava:/data/yollava", a dict, ...) to a ConceptDataset.

Loaders are registered by kind and imported lazily, so ``load_dataset("synthetic")`` never imports the
``datasets`` library. Identical specs are memoised in-process so vectorised envs share one dataset.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lewis_env.data.types import ConceptDataset
from lewis_env.registry import Registry

Loader = Callable[..., ConceptDataset]

#: Every dataset kind -> its loader (built-ins lazily as "module:function"; plugins via entry points).
DATASETS: Registry[Loader] = Registry("dataset kind", "lewis_bench.datasets")
for _kind, _target in {
    "synthetic": "lewis_env.data.synthetic:make_synthetic",
    "folder": "lewis_env.data.loaders.folder:load_folder",
    "yollava": "lewis_env.data.loaders.yollava:load_yollava",
    "myvlm": "lewis_env.data.loaders.myvlm:load_myvlm",
    "perva": "lewis_env.data.loaders.perva:load_perva",
    "hf": "lewis_env.data.hf:load_hf_dir",
}.items():
    DATASETS.register(_kind, _target)
#: kinds whose loader takes no root (everything else needs ``kind:<root>``).
_ROOTLESS = {"synthetic"}

_MEMO: dict[str, ConceptDataset] = {}
_LOCK = threading.Lock()


def register_dataset(kind: str) -> Callable[[Loader], Loader]:
    """Decorator: make ``load_dataset("<kind>:<root>")`` call ``fn(root, **kwargs)``."""
    if not kind or ":" in kind:
        raise ValueError(f"dataset kind must be a non-empty name without ':', got {kind!r}")
    return DATASETS.register(kind)


def list_datasets() -> list[str]:
    """The dataset kinds a spec may name."""
    return DATASETS.names()


def _resolve(kind: str) -> Loader:
    return DATASETS.get(kind)


def parse_spec(spec: str | Mapping[str, Any], **kwargs: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Split a spec into (kind, root or None, loader kwargs); explicit kwargs override dict entries."""
    if isinstance(spec, Mapping):
        d = dict(spec)
        if "kind" not in d:
            raise ValueError(f"a dataset spec dict needs a 'kind' key (one of {list_datasets()}), got {sorted(d)}")
        kind = str(d.pop("kind"))
        root = d.pop("root", None)
        if ":" in kind and root is None:  # {"kind": "folder:/x"} is accepted too
            kind, root = kind.split(":", 1)
        return kind, (str(root) if root is not None else None), {**d, **kwargs}
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"dataset spec must be a str, dict or ConceptDataset, got {type(spec).__name__}")
    spec = str(spec)
    kind, sep, root = spec.partition(":")
    if not sep and kind not in DATASETS and Path(spec).is_dir():
        raise ValueError(f"dataset spec {spec!r} is a folder; say which layout it has, e.g. 'folder:{spec}'")
    return kind, (root if sep else None), dict(kwargs)


def _memo_key(kind: str, root: str | None, kwargs: dict[str, Any]) -> str:
    if root is not None:
        root = str(Path(root).expanduser().resolve())
    from lewis_env.paths import cache_dir

    cache = str(cache_dir())  # the default cache dir is part of what was loaded
    return json.dumps([kind, root, kwargs, cache], sort_keys=True, default=repr)


def load_dataset(spec: str | Mapping[str, Any] | ConceptDataset = "synthetic", *, memo: bool = True,
                 **kwargs: Any) -> ConceptDataset:
    """Load a dataset from a spec: "synthetic", "folder:<root>", "yollava:<root>", "myvlm:<root>",
    "perva:<root>", "hf:<saved_dir>", a dict {"kind", "root", ...} or a ConceptDataset (passed through).

    Identical specs return the same object within a process (``memo=False`` forces a reload).
    """
    if isinstance(spec, ConceptDataset):
        if kwargs:
            raise ValueError(f"kwargs {sorted(kwargs)} cannot apply to an already loaded dataset")
        return spec
    kind, root, kw = parse_spec(spec, **kwargs)
    loader = _resolve(kind)
    if kind in _ROOTLESS:
        if root:
            raise ValueError(f"dataset kind {kind!r} takes no root, got {spec!r}")
    elif not root:
        raise ValueError(f"dataset kind {kind!r} needs a root: '{kind}:<path>' or {{'kind': {kind!r}, 'root': ...}}")
    key = _memo_key(kind, root, kw)
    if memo:
        with _LOCK:
            hit = _MEMO.get(key)
        if hit is not None:
            return hit
    ds = loader(**kw) if root is None else loader(root, **kw)
    if memo:
        with _LOCK:
            _MEMO[key] = ds
    return ds


def clear_memo() -> None:
    """Forget memoised datasets (after files on disk changed)."""
    with _LOCK:
        _MEMO.clear()


__all__ = ["DATASETS", "clear_memo", "list_datasets", "load_dataset", "parse_spec", "register_dataset"]
