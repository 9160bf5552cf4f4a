"""PerVA (R2P, ICCV 2025) layout: ``root/{train,test}/<category>/<concept>/`` or ``root/<category>/<concept>/``.

The category comes from the folder above the concept; with the train/test level, train images are
references and test images queries, otherwise a seeded per-concept split.
"""

from __future__ import annotations

from pathlib import Path

from lewis_env.data.loaders.common import (
    DatasetLayoutError,
    RawConcept,
    apply_meta,
    assemble,
    list_images,
    list_subdirs,
    read_meta,
    require_dir,
    unique_ids,
)
from lewis_env.data.loaders.folder import attach_descriptions, has_train_test
from lewis_env.data.published import check_published
from lewis_env.data.types import ConceptDataset


def load_perva(root: str | Path, num_reference: int = 5, seed: int = 0, name: str = "perva",
               published: bool = False) -> ConceptDataset:
    """A ConceptDataset from a PerVA-style category/concept tree."""
    root = require_dir(root)
    raws: dict[tuple[str, str], RawConcept] = {}
    explicit = has_train_test(root)
    splits = [s for s in ("train", "test") if (root / s).is_dir()] if explicit else [None]
    for split in splits:
        base = root / split if split else root
        for cat_dir in list_subdirs(base):
            concept_dirs = list_subdirs(cat_dir)
            if not concept_dirs:
                if list_images(cat_dir):
                    raise DatasetLayoutError(
                        f"{cat_dir} holds images directly; PerVA expects <category>/<concept>/ folders "
                        f"(use 'folder:{root}' for a folder-per-concept tree)")
                continue
            for folder in concept_dirs:
                key = (cat_dir.name, folder.name)
                raw = raws.get(key)
                if raw is None:
                    raw = raws[key] = RawConcept(folder.name, cat_dir.name, folder,
                                                 **({"reference": [], "query": []} if explicit else {}))
                imgs = list_images(folder)
                if split is None:
                    raw.images.extend(imgs)
                else:
                    (raw.reference if split == "train" else raw.query).extend(imgs)  # type: ignore[union-attr]
                apply_meta(raw, read_meta(folder))
    out = list(raws.values())
    unique_ids(out)
    attach_descriptions(out, root, None)  # a `lewis-data describe` database at root/descriptions.json
    ds = assemble(name, root, out, num_reference, seed, {"loader": "perva"})
    if published:  # refuse a copy that is not the release (names what differs)
        check_published(ds, "perva")
    return ds


__all__ = ["load_perva"]
