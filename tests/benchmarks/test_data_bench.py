"""Data throughput: synthetic image generation and folder loading, in images per second (printed)."""

from __future__ import annotations

import itertools
import time

import numpy as np
from PIL import Image

from lewis_env.data.loaders import load_folder
from lewis_env.data.synthetic import make_synthetic

_counter = itertools.count()


def test_synthetic_generation_images_per_second(benchmark, tmp_path):
    """1,000 fresh 224 px images (100 concepts x 10) into an empty cache; target < 10 s on one core."""
    n = 1000
    times: list[float] = []

    def run() -> None:
        t0 = time.perf_counter()
        ds = make_synthetic(num_concepts=100, images_per_concept=10, image_size=224,
                            cache_dir=tmp_path / f"run{next(_counter)}")
        times.append(time.perf_counter() - t0)
        assert ds.num_images() == n

    benchmark.pedantic(run, rounds=2, iterations=1)
    best = min(times)
    print(f"\nsynthetic generation: {n} images at 224px in {best:.2f}s = {n / best:.0f} images/s")
    benchmark.extra_info["images_per_s"] = n / best
    assert best < 30  # generous guard; the figure above is what to read


def test_folder_loading_images_per_second(benchmark, tmp_path):
    """Scan + decode-check + split of a 40-concept x 10-image folder of 224 px JPEGs."""
    root = tmp_path / "folder"
    rng = np.random.default_rng(0)
    for c in range(40):
        for i in range(10):
            p = root / f"concept_{c:02d}" / f"{i}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(p, quality=85)
    times: list[float] = []

    def run() -> None:
        t0 = time.perf_counter()
        ds = load_folder(root)
        times.append(time.perf_counter() - t0)
        assert ds.num_images() == 400

    benchmark.pedantic(run, rounds=3, iterations=1)
    best = min(times)
    print(f"\nfolder loading: 400 images in {best:.3f}s = {400 / best:.0f} images/s")
    benchmark.extra_info["images_per_s"] = 400 / best
