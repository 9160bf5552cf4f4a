"""Scores from a chat completion: class probabilities from ``top_logprobs``, else from the parsed answer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from agents.qwen.scoring import NO_VARIANTS, YES_VARIANTS


def first_token_logprobs(choice: Any) -> dict[str, float] | None:
    """``{token text: logprob}`` of the first answer token's ``top_logprobs`` (None when the server sent none)."""
    lp = getattr(choice, "logprobs", None)
    content = getattr(lp, "content", None) if lp is not None else None
    if not content:
        return None
    first = content[0]
    out = {str(t.token): float(t.logprob) for t in (first.top_logprobs or [])}
    out.setdefault(str(first.token), float(first.logprob))
    return out


def _class_logprob(top: Mapping[str, float], variants: Sequence[str]) -> float | None:
    vals = [top[v] for v in dict.fromkeys(variants) if v in top]
    if not vals:
        return None
    m = max(vals)
    return m + math.log(sum(math.exp(v - m) for v in vals))


def class_probabilities(top: Mapping[str, float], classes: Sequence[Sequence[str]]) -> list[float] | None:
    """Softmax over classes, each the log-sum-exp of its token spellings found in ``top`` (as the in-process
    Qwen scorer folds its answer-token variants). A class absent from ``top`` is bounded by the smallest
    listed logprob; None when no class is present at all."""
    lps = [_class_logprob(top, c) for c in classes]
    if all(v is None for v in lps):
        return None
    floor = min(top.values())
    vals = [floor if v is None else v for v in lps]
    m = max(vals)
    ex = [math.exp(v - m) for v in vals]
    z = sum(ex)
    return [e / z for e in ex]


def yes_probability(top: Mapping[str, float]) -> float | None:
    """P(Yes) from the first answer token's top logprobs, with the Qwen scorer's yes/no spellings."""
    probs = class_probabilities(top, [YES_VARIANTS, NO_VARIANTS])
    return None if probs is None else probs[0]


def letter_probabilities(top: Mapping[str, float], letters: Sequence[str]) -> list[float] | None:
    """Probability of each option letter (spelled ``A`` or `` A``), from the first token's top logprobs."""
    return class_probabilities(top, [(l, " " + l) for l in letters])
