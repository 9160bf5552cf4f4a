"""Speaker reward terms, a registry for custom ones, and the two presets of the reference code.

A term is ``fn(completion: str, info: dict) -> float``; ``info`` is the step info (``correct``,
``target_concept``, ``avoid_texts`` ...). The total reward is ``sum(weight * term)``; ``info["reward_terms"]``
holds the unweighted term values.

Presets (both name their terms ``accuracy``, ``format``, ``length`` so ``reward_weights`` apply to either):
- ``readme``: accuracy 1/0; format 1/0 when ``<thinking>``, ``<coarse>``, ``<detailed>`` are all present and
  closed; length +0.1 when ``<detailed>`` is exactly one sentence.
- ``code``: accuracy 1/0; format 0.34 + 0.33 + 0.33 per closed tag; length -0.2 when ``<detailed>`` is more
  than one sentence or under 20 words, plus -0.1 when ``<coarse>`` is not 6-8 words.
The optional ``overlap`` term (``extra_rewards=["overlap"]``) is -(max ROUGE-2 F1 against the concept's
state/location texts in ``info["avoid_texts"]``), 0 when there are none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from lewis_env.parsing import count_sentences, count_words, extract_description, tag_content, words
from lewis_env.registry import Registry

RewardFn = Callable[[str, Mapping[str, Any]], float]
#: Every reward term; ``"module:function"`` names are imported on first use.
REWARDS: Registry[RewardFn] = Registry("reward term", "lewis_bench.rewards", import_paths=True)
SPEAKER_TAGS: tuple[str, ...] = ("thinking", "coarse", "detailed")


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: make ``fn(completion, info) -> float`` usable as a reward term called ``name``."""
    return REWARDS.register(name)


def get_reward(name: str) -> RewardFn:
    """The registered reward term ``name``, or ``"package.module:function"`` (imported and registered).

    Raises KeyError listing the known terms otherwise (terms defined in other packages, e.g.
    ``agents.grpo.shaping``, are registered when their module is imported).
    """
    fn = REWARDS.get(name)
    if not callable(fn):
        raise TypeError(f"reward term {name!r} is not callable")
    return fn


def list_rewards() -> list[str]:
    """Names of every registered reward term."""
    return REWARDS.names()


@register_reward("accuracy")
def accuracy_reward(completion: str, info: Mapping[str, Any]) -> float:
    """1.0 when the listener (or the parser) judged the answer correct, else 0.0."""
    return 1.0 if info.get("correct") else 0.0


def _top_ties(info: Mapping[str, Any]) -> tuple[list[int], int] | None:
    """(indices sharing the listener's top score, target index), or None without scores or a target."""
    scores = info.get("listener_scores")
    target = info.get("target_index")
    if not scores or target is None:
        return None
    best = max(scores)
    return [i for i, v in enumerate(scores) if v == best], int(target)


@register_reward("expected_accuracy")
def expected_accuracy_reward(completion: str, info: Mapping[str, Any]) -> float:
    """Chance the listener picks the target if ties among its top scores were broken uniformly at random.

    Equals ``accuracy`` whenever the listener's best score is unique; with ties (e.g. a description that names
    nothing, or a colour no candidate has) it is ``1/len(ties)`` for a tied target instead of a 0/1 coin flip,
    a lower-variance reward for policy-gradient training. 0.0 without listener scores (unparseable action).
    """
    top = _top_ties(info)
    if top is None:
        return 0.0
    ties, target = top
    return 1.0 / len(ties) if target in ties else 0.0


@register_reward("unique_accuracy")
def unique_accuracy_reward(completion: str, info: Mapping[str, Any]) -> float:
    """1.0 only when the listener's top score is unique and on the target: the description singles it out.

    Unlike ``accuracy`` and ``expected_accuracy``, a description the listener cannot decide on (ties, e.g. one
    naming nothing) earns 0, so an uninformative answer is never a safe bet for a policy-gradient learner.
    """
    top = _top_ties(info)
    return 1.0 if top is not None and top[0] == [top[1]] else 0.0


@register_reward("format_tags")
def format_tags_reward(completion: str, info: Mapping[str, Any]) -> float:
    """README format: 1.0 when all three speaker tags are present and closed."""
    return 1.0 if all(tag_content(completion, t) is not None for t in SPEAKER_TAGS) else 0.0


@register_reward("format_partial")
def format_partial_reward(completion: str, info: Mapping[str, Any]) -> float:
    """Code format: 0.34 for ``<thinking>``, 0.33 each for ``<coarse>`` and ``<detailed>`` (closed tags)."""
    return sum(w for t, w in zip(SPEAKER_TAGS, (0.34, 0.33, 0.33)) if tag_content(completion, t) is not None)


@register_reward("length_one_sentence")
def length_one_sentence_reward(completion: str, info: Mapping[str, Any]) -> float:
    """README length: 0.1 when ``<detailed>`` holds exactly one sentence."""
    detailed = tag_content(completion, "detailed")
    return 0.1 if detailed is not None and count_sentences(detailed) == 1 else 0.0


@register_reward("length_penalty")
def length_penalty_reward(completion: str, info: Mapping[str, Any]) -> float:
    """Code length: -0.2 if ``<detailed>`` is not one sentence of >= 20 words; -0.1 if ``<coarse>`` not 6-8 words."""
    detailed = tag_content(completion, "detailed") or ""
    coarse = tag_content(completion, "coarse") or ""
    penalty = 0.0
    if count_sentences(detailed) > 1 or count_words(detailed) < 20:
        penalty -= 0.2
    if not 6 <= count_words(coarse) <= 8:
        penalty -= 0.1
    return round(penalty, 10)


def rouge2_f1(candidate: str, reference: str) -> float:
    """ROUGE-2 F1 (bigram overlap) between two texts, on lower-case word tokens."""
    def bigrams(t: str) -> dict[tuple[str, str], int]:
        w = words(t)
        out: dict[tuple[str, str], int] = {}
        for b in pairwise(w):
            out[b] = out.get(b, 0) + 1
        return out

    c, r = bigrams(candidate), bigrams(reference)
    if not c or not r:
        return 0.0
    overlap = sum(min(n, r.get(b, 0)) for b, n in c.items())
    if overlap == 0:
        return 0.0
    p, rec = overlap / sum(c.values()), overlap / sum(r.values())
    return 2 * p * rec / (p + rec)


@register_reward("overlap")
def overlap_reward(completion: str, info: Mapping[str, Any]) -> float:
    """-(max ROUGE-2 F1 of the description against ``info["avoid_texts"]``); 0 when there are none."""
    avoid = [t for t in info.get("avoid_texts") or () if t]
    if not avoid:
        return 0.0
    desc = extract_description(completion)
    return -max(rouge2_f1(desc, t) for t in avoid)


#: preset -> term name -> (registered reward, default weight)
PRESETS: dict[str, dict[str, tuple[str, float]]] = {
    "readme": {"accuracy": ("accuracy", 1.0), "format": ("format_tags", 1.0),
               "length": ("length_one_sentence", 1.0)},
    "code": {"accuracy": ("accuracy", 1.0), "format": ("format_partial", 1.0), "length": ("length_penalty", 1.0)},
}


class SpeakerReward:
    """A weighted sum of reward terms built from a preset, weight overrides and extra registered terms."""

    def __init__(self, preset: str = "readme", weights: Mapping[str, float] | None = None,
                 extra: Sequence[str] | None = None) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown reward_preset {preset!r}; known: {sorted(PRESETS)}")
        self.preset = preset
        self.terms: dict[str, RewardFn] = {t: get_reward(fn) for t, (fn, _) in PRESETS[preset].items()}
        self.weights: dict[str, float] = {t: w for t, (_, w) in PRESETS[preset].items()}
        for name in extra or ():
            self.terms[name] = get_reward(name)
            self.weights.setdefault(name, 1.0)
        for name, w in (weights or {}).items():
            if name not in self.terms:
                raise ValueError(f"reward_weights names unknown term {name!r}; terms: {sorted(self.terms)} "
                                 f"(add registered terms with extra_rewards)")
            if not isinstance(w, (int, float)):
                raise TypeError(f"reward weight for {name!r} must be a number, got {w!r}")
            self.weights[name] = float(w)

    def spec(self) -> dict[str, float]:
        """``{term: weight}`` in the order the terms are reported."""
        return {name: float(self.weights[name]) for name in self.terms}

    def __call__(self, completion: str, info: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        """(total reward, unweighted term values) for one completion."""
        terms = {name: float(fn(completion, info)) for name, fn in self.terms.items()}
        total = sum(self.weights[n] * v for n, v in terms.items())
        return float(total), terms


__all__ = ["PRESETS", "REWARDS", "SPEAKER_TAGS", "SpeakerReward", "get_reward", "list_rewards", "register_reward",
           "rouge2_f1"]
