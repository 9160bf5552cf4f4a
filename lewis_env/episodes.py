"""Seeded, replayable episodes: episode ``i`` is a pure function of (dataset, config, seed, i).

Every sampler draws episode ``i`` from ``np.random.default_rng([seed, i])``. Targets cycle through every
(concept, query image) pair in a seeded order, so the first ``P`` episodes cover each pair once.
Episodes are built lazily and cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lewis_env.data.types import Concept, ConceptDataset, ImageRef


@dataclass(frozen=True)
class Episode:
    """One single-step episode of any task (``role`` is the task id); fields a task does not use stay empty."""

    episode_id: int
    role: str
    target_concept: str
    category: str
    candidates: tuple[ImageRef, ...] = ()
    candidate_ids: tuple[str, ...] = ()
    target_index: int = 0
    question: str = ""
    reference: tuple[ImageRef, ...] = ()
    query: ImageRef | None = None
    positive: bool | None = None
    options: tuple[str, ...] = ()
    question_type: str = ""

    @property
    def image(self) -> ImageRef | None:
        """The image a VQA question is about (alias of ``query``)."""
        return self.query

    @property
    def answer(self) -> str:
        """The correct answer as its task writes it: an option letter, or yes/no (``TaskSpec.answer_text``)."""
        from lewis_env.tasks import get_task

        return get_task(self.role).answer_text(self.target_index)


def target_pairs(ds: ConceptDataset) -> list[tuple[str, int]]:
    """Every (concept id, query image index); concepts without query images use reference images."""
    pairs = []
    for c in ds.concepts:
        n = len(c.query) or len(c.reference)
        pairs.extend((c.concept_id, j) for j in range(n))
    if not pairs:
        raise ValueError(f"dataset {ds.name!r} has no images to build episodes from")
    return pairs


def query_images(c: Concept) -> list[ImageRef]:
    """Images a task tests on: the query images, or the reference ones when there are none."""
    return c.query or c.reference


def reference_images(c: Concept) -> list[ImageRef]:
    """Images that show a concept to the agent: the reference images, or the query ones when there are none."""
    return c.reference or c.query


class PairSchedule:
    """Maps episode ids to (concept, query image) pairs in a seeded order that covers every pair."""

    def __init__(self, ds: ConceptDataset, seed: int) -> None:
        self.pairs = target_pairs(ds)
        self.order = np.random.default_rng([int(seed), 0x5EED]).permutation(len(self.pairs))

    def __len__(self) -> int:
        return len(self.pairs)

    def pair(self, i: int) -> tuple[str, int]:
        """The (concept id, query index) of episode ``i`` (cycling after every pair was used)."""
        return self.pairs[int(self.order[i % len(self.pairs)])]


def episode_rng(seed: int, i: int) -> np.random.Generator:
    """The generator episode ``i`` is drawn from."""
    return np.random.default_rng([int(seed), int(i)])


def pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    """One item chosen by ``rng``."""
    return items[int(rng.integers(len(items)))]


__all__ = ["Episode", "PairSchedule", "episode_rng", "pick", "query_images", "reference_images", "target_pairs"]
