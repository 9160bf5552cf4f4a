"""Small helpers baselines share: choice counts and answers (from the task specs), words, stable seeds."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any

from lewis_env.parsing import LETTERS
from lewis_env.tasks import get_task, option_lines

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    """Lower-case word set of a text."""
    return set(_WORD.findall(str(text).lower()))


def num_choices(role: str, obs: Mapping[str, Any]) -> int:
    """How many answers an observation of this task offers (its ``TaskSpec.num_choices``)."""
    n = get_task(role).num_choices(obs)
    if n is None:
        raise ValueError(f"task {role!r} has no discrete choices")
    return n


def stable_seed(*parts: Any) -> int:
    """A 32-bit seed from any printable parts, identical across processes (unlike ``hash``)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode()) & 0xFFFFFFFF


def answer_text(role: str, index: int) -> str:
    """The text answer an env of this task parses as choice ``index`` (its ``TaskSpec.answer_text``)."""
    return get_task(role).answer_text(index)


__all__ = ["LETTERS", "answer_text", "num_choices", "option_lines", "stable_seed", "words"]
