"""A memory-bounded LRU of per-image listener prefixes (KV cache), keyed by content and model identity.

A frozen listener in GRPO scores the same candidate images step after step. The scoring prompt up to the
description ("<image> Does the description match the mug in the image? Description:") depends only on the
image, the object name and the model, so its KV cache is computed once and reused: a hit skips image
preprocessing, the vision tower and the prefix forward. Keys are ``(model fingerprint, prefix text,
image key)``; the fingerprint changes when the weights do (parameter version counters), so a listener
that trains never reads stale entries. Entries live on the model's device; the total is bounded in bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PrefixEntry:
    """One image's prefix: ``kv`` (layers, 2, kv_heads, prefix_len, head_dim) and the next M-RoPE position."""

    kv: Any
    next_pos: int

    @property
    def nbytes(self) -> int:
        return int(self.kv.numel() * self.kv.element_size())


class PrefixCache:
    """LRU over ``PrefixEntry`` values bounded by ``max_bytes``; counts hits, misses and evictions."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[Hashable, PrefixEntry] = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable) -> PrefixEntry | None:
        """The entry (marked most recently used) or None; counts a hit or a miss."""
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: Hashable, entry: PrefixEntry) -> bool:
        """Insert, evicting least recently used entries to stay within ``max_bytes``; False if it can't fit."""
        size = entry.nbytes
        if size > self.max_bytes:
            return False
        old = self._data.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        while self._data and self.nbytes + size > self.max_bytes:
            _, gone = self._data.popitem(last=False)
            self.nbytes -= gone.nbytes
            self.evictions += 1
        self._data[key] = entry
        self.nbytes += size
        return True

    def clear(self) -> None:
        self._data.clear()
        self.nbytes = 0

    def stats(self) -> dict[str, int | float]:
        """Hits, misses, evictions, entries and bytes held (for benches and logs)."""
        total = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions, "entries": len(self._data),
                "bytes": self.nbytes, "max_bytes": self.max_bytes, "hit_rate": self.hits / total if total else 0.0}


def default_cache_bytes(device: Any) -> int:
    """Default bound: 10% of the GPU's memory on CUDA (at most 8 GiB), 256 MiB elsewhere."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        total = torch.cuda.get_device_properties(dev).total_memory
        return int(min(total // 10, 8 * 2**30))
    return 256 * 2**20


def _digest(data: bytes, extra: str) -> str:
    try:
        import xxhash

        return xxhash.xxh3_128_hexdigest(data + extra.encode())
    except ImportError:
        return hashlib.blake2b(data + extra.encode(), digest_size=16).hexdigest()


def image_key(image: Any) -> str:
    """A content key: file path + size + mtime for paths and ImageRefs, a 128-bit pixel hash otherwise."""
    path = getattr(image, "path", None) if hasattr(image, "concept_id") else None
    if path is None and (isinstance(image, str) or hasattr(image, "__fspath__")):
        path = image
    if path is not None:
        try:
            st = os.stat(path)
            return f"path:{os.fspath(path)}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            return f"path:{os.fspath(path)}"
    if hasattr(image, "tobytes") and hasattr(image, "mode") and hasattr(image, "size"):  # PIL
        return "px:" + _digest(image.tobytes(), f"{image.mode}{image.size}")
    arr = np.ascontiguousarray(np.asarray(image))
    return "px:" + _digest(arr.tobytes(), f"{arr.dtype}{arr.shape}")


def model_fingerprint(model: Any) -> tuple[Any, ...]:
    """Identity of the weights now: object id, name, dtype, device and the sum of parameter version counters.

    In-place updates (optimizer steps, LoRA merges) bump ``Tensor._version``, so the fingerprint moves
    whenever the weights do and cached prefixes of the old weights are never read.
    """
    params = list(model.parameters())
    version = sum(int(p._version) for p in params)
    first = params[0]
    return (id(model), str(getattr(model, "name_or_path", "")), str(first.dtype), str(first.device), len(params),
            version)
