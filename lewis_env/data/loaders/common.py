"""Helpers every folder loader shares: listing images, seeded reference/query splits, assembling a dataset."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lewis_env.data.images import IMAGE_SUFFIXES, display_path, filter_readable, has_utf8_name
from lewis_env.data.types import UNKNOWN_CATEGORY, Concept, ConceptDataset, ImageRef, VQAQuestion

#: Folder names that mark a tree's own train/test image split.
SPLIT_DIRS: tuple[str, ...] = ("train", "test")


class DatasetLayoutError(ValueError):
    """A dataset folder that does not have the layout its loader expects (names the path)."""


def require_dir(path: str | Path, what: str = "dataset root") -> Path:
    """The path as a resolved directory, or an error naming it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} {p} does not exist")
    if not p.is_dir():
        raise NotADirectoryError(f"{what} {p} is not a directory")
    return p.resolve()


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by suffix, case-insensitive), sorted by name; hidden skipped."""
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        warnings.warn(f"cannot list {folder}: {exc}", stacklevel=2)
        return []
    return sorted(p for p in entries if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def list_subdirs(folder: Path, ignore: Sequence[str] = ()) -> list[Path]:
    """Sub-folders of ``folder`` sorted by name, without hidden ones and those named in ``ignore``; folders
    whose names are not UTF-8 cannot become concept ids and are skipped with one warning."""
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise DatasetLayoutError(f"cannot list {folder}: {exc}") from exc
    dirs = [p for p in entries if p.is_dir() and not p.name.startswith(".") and p.name not in ignore]
    bad = [p for p in dirs if not has_utf8_name(p.name)]
    if bad:
        warnings.warn(f"skipped {len(bad)} folder(s) with non-UTF-8 names in {display_path(folder)}: "
                      f"{', '.join(display_path(p.name) for p in bad[:3])}", stacklevel=2)
    return sorted(p for p in dirs if has_utf8_name(p.name))


def read_json(path: Path) -> Any:
    """Parse a JSON file; the error names the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetLayoutError(f"{path} is not valid JSON: {exc}") from None


def stable_int(text: str) -> int:
    """A process-independent integer hash of a string (Python's hash() is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")


def split_reference(paths: Sequence[Path], num_reference: int, seed: int, key: str) -> tuple[list[Path], list[Path]]:
    """Seeded per-concept split: ``num_reference`` reference images (leaving at least one query when there
    are two or more images), the rest query; both sorted by name so filesystem order never matters."""
    if num_reference < 0:
        raise ValueError(f"num_reference must be >= 0, got {num_reference}")
    paths = sorted(paths)
    n_ref = min(num_reference, len(paths) - 1) if len(paths) >= 2 else len(paths)
    order = np.random.default_rng([seed, stable_int(key) % (2**32)]).permutation(len(paths))
    ref = sorted(paths[i] for i in order[:n_ref])
    chosen = set(ref)
    return ref, [p for p in paths if p not in chosen]


@dataclass
class RawConcept:
    """What a loader found for one concept before images are checked and split."""

    concept_id: str
    category: str  # UNKNOWN_CATEGORY unless the layout or a meta.json says
    folder: Path
    images: list[Path] = field(default_factory=list)  # unsplit images (seeded split)
    reference: list[Path] | None = None  # explicit split, when the layout has one
    query: list[Path] | None = None
    name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    descriptions: list[str] = field(default_factory=list)


def read_meta(folder: Path) -> dict[str, Any]:
    """``<concept>/meta.json`` (optional): category, name, attributes, descriptions."""
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return {}
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise DatasetLayoutError(f"{meta_path} must hold a JSON object, got {type(meta).__name__}")
    return meta


def apply_meta(raw: RawConcept, meta: Mapping[str, Any]) -> None:
    """Copy meta.json fields onto a raw concept."""
    if "category" in meta:
        raw.category = str(meta["category"])
    if "name" in meta:
        raw.name = str(meta["name"])
    if "attributes" in meta:
        raw.attributes = {str(k): str(v) for k, v in dict(meta["attributes"]).items()}
    if "descriptions" in meta:
        d = meta["descriptions"]
        raw.descriptions = [str(d)] if isinstance(d, str) else [str(x) for x in d]


def unique_ids(raws: list[RawConcept]) -> None:
    """Concept ids that repeat across categories become ``<category>_<id>``."""
    counts: dict[str, int] = {}
    for r in raws:
        counts[r.concept_id] = counts.get(r.concept_id, 0) + 1
    for r in raws:
        if counts[r.concept_id] > 1:
            r.concept_id = f"{r.category}_{r.concept_id}"


def assemble(name: str, root: Path, raws: list[RawConcept], num_reference: int, seed: int,
             config: dict[str, Any], questions: Sequence[VQAQuestion] = ()) -> ConceptDataset:
    """Check every image once (one warning for all unreadable files), split, and build the dataset."""
    if not raws:
        raise DatasetLayoutError(f"no concept folders found under {root}")
    for r in raws:
        if not (r.images or r.reference or r.query):
            raise DatasetLayoutError(f"concept folder {r.folder} has no image files")
    explicit = any(r.reference is not None or r.query is not None for r in raws)
    all_paths = [p for r in raws for p in [*r.images, *(r.reference or []), *(r.query or [])]]
    good = set(filter_readable(all_paths, context=str(root)))
    concepts: list[Concept] = []
    for r in sorted(raws, key=lambda x: x.concept_id):
        if r.reference is not None or r.query is not None:
            ref = [p for p in (r.reference or []) if p in good]
            query = [p for p in (r.query or []) if p in good]
            if not ref and query:  # no train images survived: fall back to a seeded split of the test ones
                ref, query = split_reference(query, num_reference, seed, r.concept_id)
        else:
            ref, query = split_reference([p for p in r.images if p in good], num_reference, seed, r.concept_id)
        if not ref and not query:
            raise DatasetLayoutError(f"concept folder {r.folder} has no readable images")
        concepts.append(Concept(
            concept_id=r.concept_id, category=r.category, name=r.name or f"<{r.concept_id}>",
            attributes=dict(r.attributes), descriptions=list(r.descriptions),
            reference=[ImageRef(r.concept_id, str(p), "reference") for p in ref],
            query=[ImageRef(r.concept_id, str(p), "query") for p in query]))
    if explicit:  # the tree's own train/test images: ConceptDataset.split uses them
        config = {**config, "image_split": "tree"}
    return ConceptDataset(name=name, concepts=concepts, root=root,
                          config={**config, "num_reference": num_reference, "seed": seed},
                          questions=list(questions))


__all__ = ["SPLIT_DIRS", "DatasetLayoutError", "RawConcept", "apply_meta", "assemble", "list_images", "list_subdirs",
           "read_json", "read_meta", "require_dir", "split_reference", "stable_int", "unique_ids"]
