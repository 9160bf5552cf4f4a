"""Vision input goes through qwen-vl-utils with the processor's own pixel budget."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.mark.parametrize(("size", "budget"), [((224, 224), None), ((50, 64), None), ((640, 320), (3136, 50176))])
def test_fit_image_lands_on_the_patch_grid_within_the_budget(tiny_path, size, budget):
    from agents.qwen.loading import load_processor
    from agents.qwen.vision import fit_image, pixel_budget

    proc = load_processor(tiny_path, *(budget or (None, None)))
    lo, hi = pixel_budget(proc)
    assert lo and hi and (budget is None or (lo, hi) == budget)
    out = fit_image(Image.new("RGB", size, (200, 10, 10)), proc)
    w, h = out.size
    assert w % 28 == 0 and h % 28 == 0
    assert lo <= w * h <= hi
    assert abs(w / h - size[0] / size[1]) < 0.35  # aspect ratio kept (up to grid rounding)
    # the processor takes the fitted image as is: its grid is exactly the fitted size in patches
    grid = proc.image_processor(images=[out], return_tensors="pt")["image_grid_thw"][0].tolist()
    assert grid[1:] == [h // 14, w // 14]
