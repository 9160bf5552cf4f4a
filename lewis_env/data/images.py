"""Image files in, RGB uint8 arrays out: one cached loader, and a tolerant scan for bad files."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class BadImageError(ValueError):
    """An image file that cannot be decoded (truncated, corrupt, or not an image)."""


def load_pil(path: str | Path) -> Image.Image:
    """Open and fully decode an image as RGB; raise BadImageError naming the file if it cannot be read."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImageError(f"cannot read image {display_path(path)}: {exc}") from exc


def display_path(path: str | Path) -> str:
    """The path as printable text: bytes that are not UTF-8 (surrogate-escaped by the OS layer) shown as U+FFFD."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def has_utf8_name(path: str | Path) -> bool:
    """True when the path's name is valid UTF-8 (ids, hashes and JSON records need that)."""
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


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
    """True when the file decodes as an image and its name is valid UTF-8."""
    if not has_utf8_name(path):
        return False
    try:
        load_pil(path)
        return True
    except BadImageError:
        return False


def filter_readable(paths: Iterable[str | Path], context: str = "") -> list[Path]:
    """Keep the files that decode (and have UTF-8 names); ONE warning counts and names a few skipped ones."""
    good: list[Path] = []
    bad: list[Path] = []
    for p in paths:
        (good if is_readable_image(p) else bad).append(Path(p))
    if bad:
        names = ", ".join(display_path(b) for b in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        msg = f"skipped {len(bad)} unreadable image file(s){' in ' + context if context else ''}: {names}{more}"
        warnings.warn(msg, stacklevel=2)  # one channel only: a logger as well printed it twice
    return good
