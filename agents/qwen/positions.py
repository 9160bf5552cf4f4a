"""Qwen2-VL M-RoPE position ids computed directly for a prompt with one fixed-size image.

``get_rope_index`` walks every row of the batch in Python; the listener's prompts are all the same text
around one image of a known grid, so the (3, L) positions are one small computation shared by every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def single_image_positions(input_ids: Sequence[int], image_token_id: int, grid_thw: Sequence[int],
                           merge_size: int) -> tuple[Any, int]:
    """(3, L) positions (temporal, height, width) of one prompt row holding exactly one image, and the next position.

    Text before the image counts 0..s-1 on all three axes; the image's t×h×w merged tokens get
    (s + t, s + row, s + col); text after continues from the largest position so far + 1.
    """
    import torch

    ids = torch.as_tensor(list(input_ids), dtype=torch.long)
    where = (ids == int(image_token_id)).nonzero().flatten()
    t, h, w = (int(x) for x in grid_thw)
    gh, gw = h // merge_size, w // merge_size
    n = t * gh * gw
    if len(where) != n or (n and int(where[-1] - where[0]) + 1 != n):
        raise ValueError(f"expected one contiguous block of {n} image tokens (grid {t}x{h}x{w}, merge {merge_size}), "
                         f"found {len(where)}")
    s = int(where[0]) if n else len(ids)
    before = torch.arange(s).expand(3, -1)
    tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(gh), torch.arange(gw), indexing="ij")
    vision = torch.stack([tt, hh, ww]).reshape(3, -1) + s
    start = int(vision.max()) + 1 if n else s
    after = torch.arange(len(ids) - s - n).expand(3, -1) + start
    pos = torch.cat([before, vision, after], dim=1)
    return pos, int(pos.max()) + 1
