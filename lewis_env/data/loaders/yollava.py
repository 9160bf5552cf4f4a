"""YoLLaVA (NeurIPS 2024) layout: ``root/train/<concept>/*.png`` (with a ``negative_example/`` sub-folder
that holds other objects, not the concept), ``root/test/<concept>/*.png`` and ``yollava-visual-qa.json``.

Train images become references and test images queries; the VQA file (keyed by test image path, entries
``{question, options: {A, B}, correct_answer}``) becomes ``ConceptDataset.questions``.
"""

from __future__ import annotations

from pathlib import Path

from lewis_env.data.loaders.common import DatasetLayoutError, assemble, require_dir
from lewis_env.data.loaders.folder import attach_descriptions, scan_concepts
from lewis_env.data.loaders.vqa import attach_vqa, find_vqa_file
from lewis_env.data.published import check_published
from lewis_env.data.types import ConceptDataset

VQA_FILE = "yollava-visual-qa.json"


def load_yollava(root: str | Path, num_reference: int = 5, seed: int = 0, vqa_file: str | Path | None = None,
                 category: dict[str, str] | None = None, name: str = "yollava", published: bool = False
                 ) -> ConceptDataset:
    """A ConceptDataset from the YoLLaVA release (see module doc); ``vqa_file`` overrides the JSON's location."""
    root = require_dir(root)
    if not (root / "train").is_dir() and not (root / "test").is_dir():
        raise DatasetLayoutError(f"{root} has neither train/ nor test/; YoLLaVA expects root/train/<concept>/")
    raws = scan_concepts(root, category, ignore=("negative_example",))
    attach_descriptions(raws, root, None)  # a `lewis-data describe` database at root/descriptions.json
    ds = assemble(name, root, raws, num_reference, seed, {"loader": "yollava"})
    if published:  # refuse a copy that is not the release (names what differs)
        check_published(ds, "yollava")
    return attach_vqa(ds, root, vqa_file, VQA_FILE, "YoLLaVA")


__all__ = ["VQA_FILE", "find_vqa_file", "load_yollava"]
