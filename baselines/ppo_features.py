"""The ``ppo`` baseline's SB3 features extractor: a small CNN per image, an embedding bag per text, pair features.

Input is the preprocessed numeric observation (``lewis_env.numeric``) as SB3 hands it over: images as floats
(channel-first ``(B, 3, S, S)`` when SB3 transposed a single image, ``(B, n, S, S, 3)`` for a stack), token
ids one-hot encoded ``(B, n*L*V)``. Every image goes through one shared CNN, every text row (description,
each database entry) through one shared embedding bag (mean of its non-padding word vectors). Every
(text row, image) and (image, image) pair gets a match score (scaled dot product), so a K-way choice sees
K comparable scores. Output: the scores and all vectors, concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

#: Text fields left out by default: the same words in every episode (no information for a policy).
SKIP_FIELDS: tuple[str, ...] = ("question", "instruction")


class ImageEncoder(nn.Module):
    """Three strided convolutions, global average pooling, a linear projection to ``dim``."""

    def __init__(self, dim: int, channels: Sequence[int] = (16, 32, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for j, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 5 if j == 0 else 3, stride=2, padding=2 if j == 0 else 1), nn.ReLU()]
            c_in = c
        self.conv = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.proj = nn.Sequential(nn.Linear(c_in, dim), nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` in [0, 1] -> ``(N, dim)`` (layer-normed, so candidates differ from the first step)."""
        return self.proj(self.conv(x - 0.5))


class LewisFeatures(BaseFeaturesExtractor):
    """Features for any lewis-bench numeric observation (see module doc).

    Layout of the output: first the match scores of every (text row, image) pair, then of every pair of images
    of two different image fields (``score_blocks[(a, b)] = (offset, n_a, n_b)``, row-major), then every text
    and image vector. The policy's action head starts as a read-out of the scores (``baselines.ppo_train``).
    """

    def __init__(self, observation_space: spaces.Dict, layout: Mapping[str, Sequence[int]], dim: int = 32,
                 channels: Sequence[int] = (16, 32, 32), skip_fields: Sequence[str] = SKIP_FIELDS) -> None:
        self.image_keys: list[str] = []
        self.text_keys: list[str] = []
        self.rows: dict[str, int] = {}
        vocab = 0
        for key, sub in observation_space.spaces.items():
            if key in skip_fields:
                continue
            if isinstance(sub, spaces.MultiDiscrete):
                shape = tuple(int(x) for x in layout[key])
                self.text_keys.append(key)
                self.rows[key] = shape[0] if len(shape) == 2 else 1
                vocab = int(sub.nvec.reshape(-1)[0])
            elif isinstance(sub, spaces.Box):
                self.image_keys.append(key)
                self.rows[key] = 1 if len(sub.shape) == 3 else int(sub.shape[0])
            else:
                raise TypeError(f"LewisFeatures cannot read field {key!r} with space {sub}")
        if not self.image_keys and not self.text_keys:
            raise ValueError("LewisFeatures found no image or text field to read")
        pairs = [(t, i) for t in self.text_keys for i in self.image_keys]
        pairs += [(a, b) for j, a in enumerate(self.image_keys) for b in self.image_keys[j + 1:]]
        self.score_blocks: dict[tuple[str, str], tuple[int, int, int]] = {}
        off = 0
        for a, b in pairs:
            self.score_blocks[(a, b)] = (off, self.rows[a], self.rows[b])
            off += self.rows[a] * self.rows[b]
        n_vec = sum(self.rows[k] for k in self.text_keys + self.image_keys)
        super().__init__(observation_space, off + n_vec * dim)
        self.vocab, self.dim = vocab, dim
        self.image = ImageEncoder(dim, channels)
        self.embed = nn.Parameter(torch.randn(max(vocab, 1), dim)) if self.text_keys else None
        self.text_norm = nn.LayerNorm(dim)

    def _images(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """``(B, n, dim)`` from one image field (CHW single image or NHWC stack), pixels 0-255."""
        if x.dim() == 4:  # (B, 3, S, S): SB3 transposed a single image to channel-first
            x = x.unsqueeze(1)
        else:  # (B, n, S, S, 3)
            x = x.permute(0, 1, 4, 2, 3)
        b, n = x.shape[:2]
        return self.image(x.reshape(b * n, *x.shape[2:]) / 255.0).reshape(b, n, self.dim)

    def _texts(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """``(B, rows, dim)``: the mean embedding of each row's non-padding tokens (one-hot input), layer-normed."""
        b = x.shape[0]
        onehot = x.reshape(b, self.rows[key], -1, self.vocab)
        mask = 1.0 - onehot[..., 0]  # id 0 is <pad>
        emb = onehot @ self.embed  # (B, rows, L, dim)
        return self.text_norm((emb * mask.unsqueeze(-1)).sum(2) / mask.sum(2, keepdim=True).clamp(min=1.0))

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Match scores (scaled dot products), then every text and image vector, concatenated."""
        vecs = {k: self._texts(k, observations[k]) for k in self.text_keys}
        vecs.update({k: self._images(k, observations[k]) for k in self.image_keys})
        scale = self.dim ** -0.5
        scores = [(vecs[a] @ vecs[b].transpose(1, 2)).flatten(1) * scale for a, b in self.score_blocks]
        return torch.cat(scores + [vecs[k].flatten(1) for k in self.text_keys + self.image_keys], dim=1)


__all__ = ["SKIP_FIELDS", "ImageEncoder", "LewisFeatures"]
