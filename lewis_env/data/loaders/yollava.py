"""YoLLaVA (NeurIPS 2024) layout: ``root/train/<concept>/*.png`` (with a ``negative_example/`` sub-folder
that holds other objects, not the concept), ``root/test/<concept>/*.png`` and ``yollava-visual-qa.json``.

Train images become references and test images queries; the VQA file (keyed by test image path, entries
``{question, options: {A, B}, correct_answer}``) becomes ``ConceptDataset.questions``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lewis_env.data.loaders.common import DatasetLayoutError, assemble, require_dir
from lewis_env.data.loaders.folder import scan_concepts
from lewis_env.data.loaders.vqa import load_vqa_file
from lewis_env.data.types import ConceptDataset

VQA_FILE = "yollava-visual-qa.json"


def find_vqa_file(root: Path, name: str) -> Path | None:
    """``name`` in the root or its parent (the repo keeps the JSON next to ``yollava-data/``)."""
    for cand in (root / name, root.parent / name):
        if cand.is_file():
            return cand
    return None


def load_yollava(root: str | Path, num_reference: int = 5, seed: int = 0, vqa_file: str | Path | None = None,
                 category: dict[str, str] | None = None, name: str = "yollava") -> ConceptDataset:
    """A ConceptDataset from the YoLLaVA release (see module doc); ``vqa_file`` overrides the JSON's location."""
    root = require_dir(root)
    if not (root / "train").is_dir() and not (root / "test").is_dir():
        raise DatasetLayoutError(f"{root} has neither train/ nor test/; YoLLaVA expects root/train/<concept>/")
    raws = scan_concepts(root, category, ignore=("negative_example",))
    ds = assemble(name, root, raws, num_reference, seed, {"loader": "yollava"})
    vqa_path = Path(vqa_file) if vqa_file is not None else find_vqa_file(root, VQA_FILE)
    if vqa_file is not None and not vqa_path.is_file():
        raise FileNotFoundError(f"YoLLaVA VQA file {vqa_path} does not exist")
    if vqa_path is not None:
        ds = replace(ds, questions=load_vqa_file(vqa_path, ds), _fingerprint=None)
    return ds


__all__ = ["VQA_FILE", "find_vqa_file", "load_yollava"]
