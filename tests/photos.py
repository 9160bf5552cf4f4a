"""Trees of REAL photographs for tests: scikit-image's bundled photos, a few crops of each per concept.

Each concept is one photograph (astronaut, cat, coffee, rocket, ...); its images are different crops, flips
and scales of that photo, the way a person's shots of one object differ. ``photo_tree(root, layout)`` writes
the tree in one of the arrangements users keep photos in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: concept folder name -> scikit-image photo loader name (all bundled with the wheel, no download)
PHOTOS: dict[str, str] = {"astronaut": "astronaut", "cat": "chelsea", "coffee": "coffee", "rocket": "rocket",
                          "coins": "coins", "moon": "moon", "clock": "clock", "bricks": "brick",
                          "cameraman": "camera", "grass": "grass", "gravel": "gravel", "page": "page",
                          "stain": "immunohistochemistry", "galaxy": "hubble_deep_field"}
LAYOUTS: tuple[str, ...] = ("flat", "split_above", "split_inside")


def photo(name: str) -> np.ndarray:
    """One bundled scikit-image photograph as RGB uint8."""
    import skimage.data

    arr = np.asarray(getattr(skimage.data, name)())
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return arr[..., :3].astype(np.uint8)


def views(arr: np.ndarray, n: int, seed: int, size: int = 96) -> list[Image.Image]:
    """``n`` different shots of one photo: seeded crops (60-95% of the side), flips, resized to ``size``."""
    rng = np.random.default_rng(seed)
    h, w = arr.shape[:2]
    out = []
    for _ in range(n):
        f = rng.uniform(0.6, 0.95)
        ch, cw = int(h * f), int(w * f)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = arr[y:y + ch, x:x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out.append(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR))
    return out


def photo_tree(root: Path, layout: str = "flat", concepts: list[str] | None = None, n_train: int = 3,
               n_test: int = 2, size: int = 96) -> Path:
    """Write a tree of real photos: ``flat`` = root/<c>/*.jpg, ``split_above`` = root/{train,test}/<c>/,
    ``split_inside`` = root/<c>/{train,test}/. Returns ``root``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    names = concepts or list(PHOTOS)[:9]
    for ci, c in enumerate(names):
        shots = views(photo(PHOTOS[c]), n_train + n_test, seed=ci)
        for i, im in enumerate(shots):
            split = "train" if i < n_train else "test"
            if layout == "flat":
                d = root / c
            elif layout == "split_above":
                d = root / split / c
            else:
                d = root / c / split
            d.mkdir(parents=True, exist_ok=True)
            im.save(d / f"{i}.jpg", quality=90)
    return root
