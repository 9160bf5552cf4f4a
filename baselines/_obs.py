"""Small helpers baselines share: reading option counts from observations, letters, words, stable seeds."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_OPTION_LINE = re.compile(r"^\s*([A-Z])[.)]\s*(.*)$")
_WORD = re.compile(r"[a-z0-9]+")


def option_lines(text: str) -> list[tuple[str, str]]:
    """``"A. foo\\nB. bar"`` -> [("A", "foo"), ("B", "bar")] (lines not starting with a letter are skipped)."""
    out = []
    for line in str(text).splitlines():
        m = _OPTION_LINE.match(line)
        if m:
            out.append((m.group(1), m.group(2).strip()))
    return out


def words(text: str) -> set[str]:
    """Lower-case word set of a text."""
    return set(_WORD.findall(str(text).lower()))


def num_choices(role: str, obs: Mapping[str, Any]) -> int:
    """How many answers an observation of this role offers (K candidates, yes/no, options, database entries)."""
    if role == "listener":
        return int(np.asarray(obs["candidates"]).shape[0])
    if role == "recognition":
        return 2
    if role == "vqa":
        n = len(option_lines(obs.get("options", "")))
        if n == 0:
            raise ValueError(f"vqa observation has no parsable options: {obs.get('options')!r}")
        return n
    if role == "identification":
        n = len(option_lines(obs.get("database", "")))
        if n == 0:
            raise ValueError(f"identification observation has no parsable database entries: {obs.get('database')!r}")
        return n
    raise ValueError(f"role {role!r} has no discrete choices")


def stable_seed(*parts: Any) -> int:
    """A 32-bit seed from any printable parts, identical across processes (unlike ``hash``)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode()) & 0xFFFFFFFF


def answer_text(role: str, index: int) -> str:
    """The text answer an env parses for choice ``index`` (recognition: 1 = yes)."""
    if role == "recognition":
        return "yes" if int(index) == 1 else "no"
    return LETTERS[int(index)]
