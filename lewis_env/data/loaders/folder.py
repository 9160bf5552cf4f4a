"""Generic folder-per-concept datasets, in the three arrangements people keep their photos in:

- ``root/<concept>/*.jpg`` (a seeded per-concept split picks ``num_reference`` references);
- ``root/{train,test}/<concept>/*.jpg`` (a train/test level above the concepts);
- ``root/<concept>/{train,test}/*.jpg`` (a train/test level inside each concept).

With a train/test level, train images are references and test images queries, and
``ConceptDataset.split`` keeps that image split instead of splitting concepts. The category is unknown
(``UNKNOWN_CATEGORY``) unless a ``category`` mapping or ``<concept>/meta.json`` names it: a folder name is
the concept, not its category. A description database written by ``lewis-data describe`` at
``root/descriptions.json`` becomes the concepts' descriptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lewis_env.data.loaders.common import (
    SPLIT_DIRS,
    DatasetLayoutError,
    RawConcept,
    apply_meta,
    assemble,
    list_images,
    list_subdirs,
    read_meta,
    require_dir,
)
from lewis_env.data.types import UNKNOWN_CATEGORY, ConceptDataset

#: Where ``lewis-data describe`` writes by default, and where loaders pick descriptions up.
DESCRIPTIONS_FILE = "descriptions.json"


def has_train_test(root: Path) -> bool:
    """True when ``root`` holds ``train/`` and/or ``test/`` folders (an explicit split level)."""
    return any((root / s).is_dir() for s in SPLIT_DIRS)


def _inner_split(folder: Path) -> bool:
    """True when a concept folder keeps its own ``train/``/``test/`` sub-folders."""
    return has_train_test(folder)


def scan_concepts(root: Path, category: Mapping[str, str] | None = None,
                  ignore: tuple[str, ...] = ()) -> list[RawConcept]:
    """One RawConcept per concept folder, merging ``train/`` (reference) and ``test/`` (query) when present
    above or inside the concept folders."""
    category = dict(category or {})
    raws: dict[str, RawConcept] = {}
    if has_train_test(root):
        for split in SPLIT_DIRS:
            if not (root / split).is_dir():
                continue
            for folder in list_subdirs(root / split, ignore):
                raw = raws.setdefault(folder.name, RawConcept(folder.name, UNKNOWN_CATEGORY, folder, reference=[],
                                                              query=[]))
                (raw.reference if split == "train" else raw.query).extend(list_images(folder))  # type: ignore[union-attr]
                apply_meta(raw, read_meta(folder))
    else:
        for folder in list_subdirs(root, ignore):
            if _inner_split(folder):
                raw = RawConcept(folder.name, UNKNOWN_CATEGORY, folder, reference=[], query=[])
                for split in SPLIT_DIRS:
                    if (folder / split).is_dir():
                        (raw.reference if split == "train" else raw.query).extend(  # type: ignore[union-attr]
                            list_images(folder / split))
                stray = list_images(folder)
                if stray:
                    raise DatasetLayoutError(
                        f"{folder} has train/test sub-folders and also {len(stray)} image(s) beside them "
                        f"(e.g. {stray[0].name}); move them into train/ or test/")
            else:
                raw = RawConcept(folder.name, UNKNOWN_CATEGORY, folder, images=list_images(folder))
            apply_meta(raw, read_meta(folder))
            raws[folder.name] = raw
    for raw in raws.values():
        if raw.concept_id in category:
            raw.category = str(category[raw.concept_id])
    return list(raws.values())


def attach_descriptions(raws: list[RawConcept], root: Path, descriptions_file: str | Path | None) -> None:
    """Descriptions from a ``lewis-data describe`` database (``root/descriptions.json`` by default) for the
    concepts that have none of their own; an explicit file that is missing is an error."""
    from lewis_env.descriptions import load_database

    path = Path(descriptions_file) if descriptions_file is not None else root / DESCRIPTIONS_FILE
    if not path.is_file():
        if descriptions_file is not None:
            raise FileNotFoundError(f"descriptions file {path} does not exist")
        return
    table = load_database(path)
    for raw in raws:
        text = table.get(raw.concept_id)
        if text and not raw.descriptions:
            raw.descriptions = [text]


def load_folder(root: str | Path, num_reference: int = 5, seed: int = 0,
                category: Mapping[str, str] | None = None, name: str | None = None,
                descriptions_file: str | Path | None = None) -> ConceptDataset:
    """A ConceptDataset from a folder-per-concept tree (see module doc)."""
    root = require_dir(root)
    raws = scan_concepts(root, category)
    unknown = sorted(set(category or {}) - {r.concept_id for r in raws})
    if unknown:
        raise ValueError(f"category mapping names concepts not found under {root}: {unknown[:5]}")
    attach_descriptions(raws, root, descriptions_file)
    return assemble(name or root.name, root, raws, num_reference, seed, {"loader": "folder"})


__all__ = ["DESCRIPTIONS_FILE", "attach_descriptions", "has_train_test", "load_folder", "scan_concepts"]
