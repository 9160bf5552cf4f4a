"""Vision input for Qwen-VL through qwen-vl-utils: resize each image to Qwen's patch grid and pixel budget."""

from __future__ import annotations

from typing import Any

from PIL import Image


def pixel_budget(processor: Any) -> tuple[int | None, int | None]:
    """(min_pixels, max_pixels) the processor was loaded with (``size`` in transformers 5, attributes before)."""
    ip = getattr(processor, "image_processor", processor)
    size = getattr(ip, "size", None)

    def get(*names: str) -> int | None:
        for n in names:
            v = getattr(ip, n, None)
            if v is None and size is not None:
                v = size.get(n) if isinstance(size, dict) else getattr(size, n, None)
            if v:
                return int(v)
        return None

    # Qwen2-VL's SizeDict keeps the pixel budget as shortest_edge / longest_edge (min / max pixels)
    return get("min_pixels", "shortest_edge"), get("max_pixels", "longest_edge")


def fit_image(image: Image.Image, processor: Any) -> Image.Image:
    """``qwen_vl_utils.fetch_image`` with the processor's pixel budget: sides become multiples of 28.

    The processor would resize too; going through qwen-vl-utils keeps the exact resizing rules of Qwen's
    reference pipeline (and its aspect-ratio checks) on every path. Without qwen-vl-utils installed the image
    passes through unchanged and the processor's own resizing applies.
    """
    try:
        from qwen_vl_utils import fetch_image
    except ImportError:  # optional dependency (the `train` extra)
        return image
    ip = getattr(processor, "image_processor", processor)
    patch = int(getattr(ip, "patch_size", 14) or 14)
    ele: dict[str, Any] = {"image": image}
    lo, hi = pixel_budget(processor)
    if lo:
        ele["min_pixels"] = lo
    if hi:
        ele["max_pixels"] = hi
    return fetch_image(ele, image_patch_size=patch)
