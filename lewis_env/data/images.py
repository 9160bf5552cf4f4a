"""Image files in, RGB uint8 arrays out: one cached loader, and a tolerant scan for bad files."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class BadImageError(ValueError):
    """An image file that cannot be decoded (truncated, corrupt, or not an image)."""


def load_pil(path: str | Path) -> Image.Image:
    """Open and fully decode an image as RGB; raise BadImageError naming the file if it cannot be read."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise BadImageError(f"cannot read image {path}: {exc}") from exc


@lru_cache(maxsize=8192)
def _load_rgb_cached(path: str, size: int | None) -> np.ndarray:
    im = load_pil(path)
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    arr.setflags(write=False)
    return arr


def load_rgb(path: str | Path, size: int | None = None) -> np.ndarray:
    """The image at ``path`` as a read-only (H, W, 3) uint8 array, resized to size×size if given; cached."""
    return _load_rgb_cached(str(path), size)


def is_readable_image(path: str | Path) -> bool:
    """True when the file decodes as an image."""
    try:
        load_pil(path)
        return True
    except BadImageError:
        return False


def filter_readable(paths: Iterable[str | Path], context: str = "") -> list[Path]:
    """Keep the files that decode; warn once, counting and naming a few of the ones skipped."""
    good: list[Path] = []
    bad: list[Path] = []
    for p in paths:
        (good if is_readable_image(p) else bad).append(Path(p))
    if bad:
        names = ", ".join(str(b) for b in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        msg = f"skipped {len(bad)} unreadable image file(s){' in ' + context if context else ''}: {names}{more}"
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
    return good
