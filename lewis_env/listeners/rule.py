"""Rule listeners: an attribute-word matcher ("rule") and a deterministic chance listener ("random").

The rule listener scores each candidate by how many of its concept's ground-truth values (the five
attribute values and the category, read from ``ImageRef.attributes``) occur as whole words in the
lower-cased description; a ``none`` value also matches "no <key>" / "without <key>". Ties are broken by a
hash of (description, candidate image ids): an oracle description picks the target, an empty one is at
chance, and replays are identical. It reads ground truth, so it refuses data without attributes
(``check_dataset``, and ``choose`` on candidates without attributes): on real photos use a listener that
sees the images (``clip``, ``qwen``, ``http``).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from lewis_env.data.types import CONCEPT_ATTRIBUTE_KEYS, ConceptDataset, ImageRef
from lewis_env.listeners.base import BaseListener, Choice

_WORD = re.compile(r"[a-z0-9]+")
#: What to use instead of the rule listener on data without ground-truth attributes.
IMAGE_LISTENERS_HINT = ("use a listener that sees the images: listener='clip' (open_clip; "
                        "listener_kwargs={'pretrained': <weights>}), 'qwen' (listener_kwargs={'model': <path>}) "
                        "or 'http' (listener_kwargs={'url': <lewis-serve URL>})")


class NoAttributesError(ValueError):
    """The rule listener was given data without the ground-truth attributes it reads."""


def _tiebreak(description: str, candidates: Sequence[ImageRef], salt: str = "") -> int:
    ids = "\x1f".join(c.image_id for c in candidates)
    return zlib.crc32(f"{salt}\x1e{description}\x1e{ids}".encode())


class RuleListener(BaseListener):
    """Counts candidate attribute values named in the description; deterministic hash tie-break."""

    name = "rule"
    #: it reads ground-truth attributes: an oracle wherever it is used
    flags = {"oracle": True}

    def __init__(self, keys: Sequence[str] = (*CONCEPT_ATTRIBUTE_KEYS, "category")) -> None:
        self.keys = tuple(keys)
        # keyed by the attributes themselves, not the image id: a long-running service sees many datasets
        # whose image ids may collide, and a cache by id would answer with another image's attributes
        self._phrases: dict[tuple, tuple[tuple[str, ...], ...]] = {}

    def _candidate_phrases(self, ref: ImageRef) -> tuple[tuple[str, ...], ...]:
        key = tuple(sorted((k, str(v)) for k, v in (ref.attributes or {}).items() if k in self.keys))
        got = self._phrases.get(key)
        if got is None:
            out = []
            for k in self.keys:
                v = ref.attributes.get(k) if ref.attributes else None
                if not v:
                    continue
                v = " ".join(_WORD.findall(str(v).lower()))
                if not v:
                    continue
                alts = (v,) if v != "none" else ("none", f"no {k}", f"without {k}", f"without a {k}")
                out.append(tuple(f" {a} " for a in alts))
            if len(self._phrases) > 65536:  # bounded memory in a long-lived process
                self._phrases.clear()
            got = self._phrases[key] = tuple(out)
        return got

    def check_dataset(self, dataset: ConceptDataset) -> None:
        """Refuse a dataset whose images carry no ground-truth attributes (the listener would be a coin flip)."""
        missing = [c.concept_id for c in dataset.concepts
                   if not any(r.attributes for r in c.images) and not c.attributes]
        if missing:
            raise NoAttributesError(
                f"the rule listener reads ground-truth attributes, and dataset {dataset.name!r} has none for "
                f"{len(missing)} of {len(dataset)} concepts (e.g. {missing[0]!r}); {IMAGE_LISTENERS_HINT}")

    def scores(self, description: str, candidates: Sequence[ImageRef]) -> list[float]:
        """One score per candidate: how many of its values the description names."""
        if candidates and not any(c.attributes for c in candidates):
            raise NoAttributesError(f"the rule listener got candidates without ground-truth attributes "
                                    f"({candidates[0].image_id}, ...); {IMAGE_LISTENERS_HINT}")
        text = f" {' '.join(_WORD.findall(str(description).lower()))} "
        return [float(sum(any(a in text for a in alts) for alts in self._candidate_phrases(c)))
                for c in candidates]

    def choose(self, description: str, candidates: Sequence[ImageRef]) -> Choice:
        """Best-scoring candidate, ties broken by a stable hash."""
        if not candidates:
            raise ValueError("RuleListener.choose needs at least one candidate")
        s = self.scores(description, candidates)
        best = max(s)
        ties = [i for i, v in enumerate(s) if v == best]
        return ties[_tiebreak(str(description), candidates) % len(ties)], s


class RandomListener(BaseListener):
    """Chance listener: uniform scores seeded by (seed, description, candidate ids), so replays agree."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def choose(self, description: str, candidates: Sequence[ImageRef]) -> Choice:
        """A reproducible uniformly random pick."""
        if not candidates:
            raise ValueError("RandomListener.choose needs at least one candidate")
        rng = np.random.default_rng([self.seed, _tiebreak(str(description), candidates, "random")])
        s = rng.random(len(candidates)).tolist()
        return int(np.argmax(s)), s


__all__ = ["IMAGE_LISTENERS_HINT", "NoAttributesError", "RandomListener", "RuleListener"]
