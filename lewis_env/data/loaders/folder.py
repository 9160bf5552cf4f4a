"""Generic folder-per-concept datasets: ``root/<concept>/*`` or ``root/{train,test}/<concept>/*``.

The category is the concept name unless a ``category`` mapping or ``<concept>/meta.json`` says otherwise.
With a train/test level, train images are references and test images queries; without one, a seeded
per-concept split picks ``num_reference`` references.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lewis_env.data.loaders.common import (
    RawConcept,
    apply_meta,
    assemble,
    list_images,
    list_subdirs,
    read_meta,
    require_dir,
)
from lewis_env.data.types import ConceptDataset


def has_train_test(root: Path) -> bool:
    """True when ``root`` holds ``train/`` and/or ``test/`` folders (an explicit split level)."""
    return (root / "train").is_dir() or (root / "test").is_dir()


def scan_concepts(root: Path, category: Mapping[str, str] | None = None,
                  ignore: tuple[str, ...] = ()) -> list[RawConcept]:
    """One RawConcept per concept folder, merging ``train/`` (reference) and ``test/`` (query) when present."""
    category = dict(category or {})
    raws: dict[str, RawConcept] = {}
    if has_train_test(root):
        for split in ("train", "test"):
            if not (root / split).is_dir():
                continue
            for folder in list_subdirs(root / split, ignore):
                raw = raws.setdefault(folder.name, RawConcept(folder.name, folder.name, folder, reference=[],
                                                              query=[]))
                (raw.reference if split == "train" else raw.query).extend(list_images(folder))  # type: ignore[union-attr]
                apply_meta(raw, read_meta(folder))
    else:
        for folder in list_subdirs(root, ignore):
            raw = RawConcept(folder.name, folder.name, folder, images=list_images(folder))
            apply_meta(raw, read_meta(folder))
            raws[folder.name] = raw
    for raw in raws.values():
        if raw.concept_id in category:
            raw.category = str(category[raw.concept_id])
    return list(raws.values())


def load_folder(root: str | Path, num_reference: int = 5, seed: int = 0,
                category: Mapping[str, str] | None = None, name: str | None = None) -> ConceptDataset:
    """A ConceptDataset from a folder-per-concept tree (see module doc)."""
    root = require_dir(root)
    raws = scan_concepts(root, category)
    unknown = sorted(set(category or {}) - {r.concept_id for r in raws})
    if unknown:
        raise ValueError(f"category mapping names concepts not found under {root}: {unknown[:5]}")
    return assemble(name or root.name, root, raws, num_reference, seed, {"loader": "folder"})


__all__ = ["has_train_test", "load_folder", "scan_concepts"]
