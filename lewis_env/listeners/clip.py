"""The ``clip`` listener: open_clip text-image similarity between the description and each candidate image.

A real listener for real photos (it looks at pixels, not labels) that runs on a CPU: candidate images are
embedded once per path and memoised, a whole GRPO group's descriptions are embedded in one batch. It needs
real weights (``pretrained``: a checkpoint path or a cached open_clip tag, or ``$LEWIS_CLIP_PRETRAINED``);
``allow_random_init=True`` is for tests only and is recorded in ``flags``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lewis_env.data.types import ImageRef
from lewis_env.listeners.base import BaseListener, Choice


class ClipListener(BaseListener):
    """Picks the candidate whose CLIP image embedding is most similar to the description's text embedding."""

    name = "clip"

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | os.PathLike | None = None,
                 device: str = "cpu", batch_size: int = 32, allow_random_init: bool = False,
                 download: bool = False, max_cached_images: int = 50_000) -> None:
        from lewis_env.data.clip_embed import ClipEmbedder

        self.embedder = ClipEmbedder(model_name, pretrained=pretrained, device=device, batch_size=batch_size,
                                     allow_random_init=allow_random_init, download=download)
        self.flags: dict[str, Any] = {"random_init": True} if self.embedder.random_init else {}
        self.max_cached_images = int(max_cached_images)
        self._images: dict[str, np.ndarray] = {}

    def describe(self) -> dict[str, Any]:
        """Model identity for records."""
        return {"listener": "clip", **self.embedder.describe()}

    def _image_embeddings(self, refs: Sequence[ImageRef]) -> np.ndarray:
        from lewis_env.data.images import load_pil

        todo = list(dict.fromkeys(r.path for r in refs if r.path not in self._images))
        if todo:
            if len(self._images) + len(todo) > self.max_cached_images:  # bounded memory in long runs
                self._images.clear()
            for path, emb in zip(todo, self.embedder.embed_pil([load_pil(p) for p in todo])):
                self._images[path] = emb
        return np.stack([self._images[r.path] for r in refs])

    def choose(self, description: str, candidates: Sequence[ImageRef]) -> Choice:
        """The candidate most similar to the description (cosine similarity scores)."""
        return self.choose_batch([description], [candidates])[0]

    def choose_batch(self, descriptions: Sequence[str], candidates: Sequence[Sequence[ImageRef]]) -> list[Choice]:
        """All descriptions embedded in one batch, each distinct candidate image once."""
        if len(descriptions) != len(candidates):
            raise ValueError(f"choose_batch got {len(descriptions)} descriptions but {len(candidates)} candidate lists")
        if not descriptions:
            return []
        if any(not c for c in candidates):
            raise ValueError("ClipListener needs at least one candidate per description")
        texts = self.embedder.embed_texts([str(d) if str(d).strip() else "." for d in descriptions])
        out: list[Choice] = []
        for t, cands in zip(texts, candidates):
            scores = (self._image_embeddings(cands) @ t).astype(float).tolist()
            out.append((int(np.argmax(scores)), scores))
        return out


__all__ = ["ClipListener"]
