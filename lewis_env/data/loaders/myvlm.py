"""MyVLM (ECCV 2024) layout: ``root/<concept>/*.jpg`` with ``captions.json`` (and optional VQA JSON).

Captions become the concept's descriptions; a seeded per-concept split picks ``num_reference`` references.
``captions.json`` may map image file -> caption (or list of captions), or be a list of captions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lewis_env.data.loaders.common import DatasetLayoutError, assemble, read_json, require_dir
from lewis_env.data.loaders.folder import scan_concepts
from lewis_env.data.loaders.vqa import attach_vqa
from lewis_env.data.published import check_published
from lewis_env.data.types import ConceptDataset

VQA_FILE = "myvlm-visual-qa.json"


def parse_captions(data: Any, path: Path) -> list[str]:
    """Captions from the shapes MyVLM-style files take, de-duplicated in file order."""
    caps: list[str] = []
    if isinstance(data, str):
        caps = [data]
    elif isinstance(data, list):
        for x in data:
            if isinstance(x, str):
                caps.append(x)
            elif isinstance(x, dict) and ("caption" in x or "text" in x):
                caps.append(str(x.get("caption", x.get("text"))))
            else:
                raise DatasetLayoutError(f"{path}: cannot read caption entry {str(x)[:80]}")
    elif isinstance(data, dict):
        for _, v in sorted(data.items()):
            caps.extend(parse_captions(v, path))
    else:
        raise DatasetLayoutError(f"{path}: captions must be a string, list or object, got {type(data).__name__}")
    return list(dict.fromkeys(c.strip() for c in caps if c.strip()))


def load_myvlm(root: str | Path, num_reference: int = 5, seed: int = 0, vqa_file: str | Path | None = None,
               category: dict[str, str] | None = None, name: str = "myvlm", published: bool = False
               ) -> ConceptDataset:
    """A ConceptDataset from the MyVLM release (see module doc)."""
    root = require_dir(root)
    raws = scan_concepts(root, category)
    for raw in raws:
        cap_path = raw.folder / "captions.json"
        if cap_path.is_file():
            raw.descriptions = parse_captions(read_json(cap_path), cap_path)
    ds = assemble(name, root, raws, num_reference, seed, {"loader": "myvlm"})
    if published:  # refuse a copy that is not the release (names what differs)
        check_published(ds, "myvlm")
    return attach_vqa(ds, root, vqa_file, VQA_FILE, "MyVLM")


__all__ = ["load_myvlm", "parse_captions"]
