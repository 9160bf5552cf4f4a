"""Hard negatives: for each concept, the most similar other concepts (same category first).

Two similarity measures: ground-truth attributes (number of differing concept attributes, for the
synthetic world and any dataset with attributes) and CLIP (cosine similarity of mean reference-image
embeddings, like the reference data-prep's top-3 retrieval). Tables are saved as JSON with their method,
k and the dataset fingerprint, so a stale table is caught.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lewis_env.data.types import ConceptDataset

METHODS = ("auto", "attributes", "clip")


class NegativeTable(dict):
    """``{concept_id: [negative ids, most similar first]}`` that remembers how it was made."""

    def __init__(self, table: dict[str, list[str]] | None = None, method: str = "", k: int = 0,
                 fingerprint: str = "") -> None:
        super().__init__(table or {})
        self.method = method
        self.k = k
        self.fingerprint = fingerprint


def _tiebreak(seed: int, a: str, b: str) -> int:
    """Deterministic pseudo-random order key for the pair (a, b), independent of dataset order."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{a}:{b}".encode(), digest_size=8).digest(), "big")


def attribute_distance(a: dict[str, str], b: dict[str, str]) -> int:
    """How many attribute keys (of either concept) have different values."""
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


def _check_k(ds: ConceptDataset, k: int) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"k must be a positive int, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if k > len(ds) - 1:
        raise ValueError(f"k={k} negatives need at least {k + 1} concepts; dataset {ds.name!r} has {len(ds)}")


def _rank(ds: ConceptDataset, k: int, score: Any) -> dict[str, list[str]]:
    """Top-k by ``score(a, b)`` (lower is more similar): same category first, other categories only to fill."""
    out: dict[str, list[str]] = {}
    for c in ds.concepts:
        same = [o for o in ds.concepts if o.concept_id != c.concept_id and o.category == c.category]
        other = [o for o in ds.concepts if o.category != c.category]
        ranked = sorted(same, key=lambda o: score(c, o))
        if len(ranked) < k:
            ranked += sorted(other, key=lambda o: score(c, o))[: k - len(ranked)]
        out[c.concept_id] = [o.concept_id for o in ranked[:k]]
    return out


def hard_negatives(ds: ConceptDataset, k: int = 3, method: str = "auto", seed: int = 0,
                   **clip_kwargs: Any) -> NegativeTable:
    """Concept id -> its ``k`` hardest negatives: same category, most similar first; other categories only
    when a category has fewer than k+1 concepts. ``method``: "attributes", "clip" or "auto" (attributes
    when every concept has them, else clip; ``clip_kwargs`` go to ClipEmbedder)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_k(ds, k)
    if method == "auto":
        method = "attributes" if all(c.attributes for c in ds.concepts) else "clip"
    if method == "attributes":
        missing = [c.concept_id for c in ds.concepts if not c.attributes]
        if missing:
            raise ValueError(f"method='attributes' needs concept attributes; missing for {missing[:5]}")
        table = _rank(ds, k, lambda a, b: (attribute_distance(a.attributes, b.attributes),
                                           _tiebreak(seed, a.concept_id, b.concept_id)))
    else:
        from lewis_env.data.clip_embed import ClipEmbedder

        emb = ClipEmbedder(**clip_kwargs).concept_embeddings(ds)
        table = _rank(ds, k, lambda a, b: (-float(emb[a.concept_id] @ emb[b.concept_id]),
                                           _tiebreak(seed, a.concept_id, b.concept_id)))
    return NegativeTable(table, method=method, k=int(k), fingerprint=ds.fingerprint())


def save_negatives(table: dict[str, list[str]], path: str | os.PathLike, *, method: str | None = None,
                   k: int | None = None, fingerprint: str | None = None) -> Path:
    """Write a negatives table as JSON with its method, k and dataset fingerprint (atomic)."""
    path = Path(path)
    payload = {
        "method": method or getattr(table, "method", "") or "unknown",
        "k": int(k if k is not None else getattr(table, "k", 0) or max((len(v) for v in table.values()), default=0)),
        "fingerprint": fingerprint or getattr(table, "fingerprint", ""),
        "negatives": {cid: list(v) for cid, v in table.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def load_negatives(path: str | os.PathLike, dataset: ConceptDataset | None = None) -> NegativeTable:
    """Read a table written by ``save_negatives``; with ``dataset``, refuse one made for other data."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"negatives file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"negatives file {path} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("negatives"), dict):
        raise ValueError(f"negatives file {path} has no 'negatives' mapping")  # noqa: TRY004 (bad file content)
    table = NegativeTable({str(k): [str(x) for x in v] for k, v in payload["negatives"].items()},
                          method=str(payload.get("method", "")), k=int(payload.get("k", 0)),
                          fingerprint=str(payload.get("fingerprint", "")))
    if dataset is not None:
        if table.fingerprint and table.fingerprint != dataset.fingerprint():
            raise ValueError(f"negatives file {path} was made for dataset fingerprint {table.fingerprint}, "
                             f"not {dataset.fingerprint()} ({dataset.name}); recompute it")
        unknown = sorted({x for cid, v in table.items() for x in [cid, *v] if x not in dataset})
        if unknown:
            raise ValueError(f"negatives file {path} names concepts not in {dataset.name!r}: {unknown[:5]}")
    return table


__all__ = ["METHODS", "NegativeTable", "attribute_distance", "hard_negatives", "load_negatives",
           "save_negatives"]
