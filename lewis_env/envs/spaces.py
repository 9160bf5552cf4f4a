"""Observation/action space builders and the text sanitiser that keeps observations inside them."""

from __future__ import annotations

import string
import unicodedata

import numpy as np
from gymnasium import spaces

#: Every printable ASCII character (letters, digits, punctuation, space, tab, newline ...).
TEXT_CHARSET: str = string.printable
TEXT_MAX_LENGTH = 4096
_CHARSET = frozenset(TEXT_CHARSET)


def text_space(max_length: int = TEXT_MAX_LENGTH) -> spaces.Text:
    """A Text space over printable ASCII (gymnasium's default charset has no spaces or punctuation)."""
    return spaces.Text(max_length=max_length, min_length=0, charset=TEXT_CHARSET)


def image_space(size: int) -> spaces.Box:
    """One RGB image: ``Box(0, 255, (S, S, 3), uint8)``."""
    return spaces.Box(0, 255, (size, size, 3), np.uint8)


def images_space(n: int, size: int) -> spaces.Box:
    """``n`` stacked RGB images: ``Box(0, 255, (n, S, S, 3), uint8)``."""
    return spaces.Box(0, 255, (n, size, size, 3), np.uint8)


def sanitize_text(text: str, max_length: int = TEXT_MAX_LENGTH) -> str:
    """Fold a string into the printable-ASCII charset (accents dropped, others -> '?') and cap its length."""
    if all(ch in _CHARSET for ch in text):
        return text[:max_length]
    folded = unicodedata.normalize("NFKD", text)
    out = "".join(ch if ch in _CHARSET else ("" if unicodedata.combining(ch) else "?") for ch in folded)
    return out[:max_length]


__all__ = ["TEXT_CHARSET", "TEXT_MAX_LENGTH", "image_space", "images_space", "sanitize_text", "text_space"]
