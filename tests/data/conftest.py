"""Fixtures for the data tests: a tiny synthetic world and builders of small on-disk dataset trees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lewis_env.data.synthetic import make_synthetic
from lewis_env.data.types import ConceptDataset

TINY = {"num_concepts": 16, "images_per_concept": 4, "num_reference": 2, "image_size": 32}


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> ConceptDataset:
    """16 concepts x 4 images at 32 px in a private cache folder."""
    return make_synthetic(**TINY, cache_dir=tmp_path_factory.mktemp("tiny_world"))


def write_png(path: Path, seed: int, size: int = 12) -> Path:
    """A small random RGB PNG (distinct pixels per seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def png() -> Callable[..., Path]:
    """``png(path, seed)`` writes a tiny PNG."""
    return write_png


@pytest.fixture
def concept_tree(tmp_path: Path) -> Callable[..., Path]:
    """``concept_tree({"mug": 6, "cat": 3}, sub="")`` builds ``root/<sub>/<concept>/<i>.png``."""

    def build(counts: dict[str, int], sub: str = "", root: Path | None = None, suffix: str = ".png") -> Path:
        root = root or tmp_path / "ds"
        for ci, (concept, n) in enumerate(sorted(counts.items())):
            for i in range(n):
                write_png(root / sub / concept / f"{i}{suffix}", seed=1000 * ci + i + 7 * len(sub))
        return root

    return build
