"""Reward-shaping terms for GRPO on random/small models, registered with lewis_env.rewards.

A random tiny model almost never emits a colour word, so the accuracy reward alone is too sparse to learn
from in minutes. ``names_colour`` pays a little for naming any colour at all; accuracy then decides which.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lewis_env.data.synthetic import ATTRIBUTE_VALUES
from lewis_env.rewards import register_reward

_WORD = re.compile(r"[a-z]+")
COLOUR_WORDS = frozenset(ATTRIBUTE_VALUES["color"])
ATTRIBUTE_WORDS = frozenset(v for values in ATTRIBUTE_VALUES.values() for v in values if v != "none")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(str(text).lower()))


@register_reward("names_colour")
def names_colour(completion: str, info: Mapping[str, Any]) -> float:
    """1.0 when the completion names exactly one colour word of the synthetic vocabulary, else 0.0."""
    return 1.0 if len(_words(completion) & COLOUR_WORDS) == 1 else 0.0


@register_reward("names_attribute")
def names_attribute(completion: str, info: Mapping[str, Any]) -> float:
    """1.0 when the completion names at least one intrinsic attribute value, else 0.0."""
    return 1.0 if _words(completion) & ATTRIBUTE_WORDS else 0.0
