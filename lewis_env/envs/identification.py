"""Identification-v0: which concept of a k-entry text database (name + description) is in the query image?"""

from __future__ import annotations

from typing import Any

import numpy as np

from lewis_env.descriptions import DescriptionSource, DescriptionSpec, default_description_spec
from lewis_env.envs.base import LewisEnv, resolve_negatives
from lewis_env.envs.spaces import sanitize_text
from lewis_env.episodes import Episode, query_images, reference_images
from lewis_env.parsing import LETTERS
from lewis_env.tasks.builtin import IDENTIFICATION


class IdentificationEnv(LewisEnv):
    """Candidates = the true concept and its k-1 hard negatives (the top-k retrieval), shuffled."""

    task = IDENTIFICATION

    def __init__(self, *args: Any, descriptions: DescriptionSpec | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.descriptions = DescriptionSource(descriptions or default_description_spec(self.dataset), self.dataset)
        self._build_spaces()

    def _setup(self) -> None:
        """Resolve the retrieval table (k-1 hard negatives per concept) up front."""
        self._negs = resolve_negatives(self.dataset, self.k - 1, self.negatives_spec)

    def _make_episode(self, i: int, rng: np.random.Generator) -> Episode:
        cid, j = self.schedule.pair(i)
        c = self.dataset.concept(cid)
        concepts = [c] + [self.dataset.concept(n) for n in self._negs[cid][: self.k - 1]]
        perm = rng.permutation(len(concepts))
        shuffled = [concepts[p] for p in perm]
        return Episode(episode_id=i, role=self.role, target_concept=cid, category=c.category,
                       candidates=tuple(reference_images(x)[0] for x in shuffled),
                       candidate_ids=tuple(x.concept_id for x in shuffled),
                       target_index=int(np.flatnonzero(perm == 0)[0]),
                       question=(f"Which concept from the database is in the image? Answer with its letter "
                                 f"(A-{LETTERS[self.k - 1]})."),
                       query=query_images(c)[j], options=tuple(x.name for x in shuffled))

    def database_text(self, ep: Episode) -> str:
        """``"A. <name>: description"`` lines, one per candidate concept."""
        return "\n".join(f"{LETTERS[t]}. {self.dataset.concept(cid).name}: "
                         f"{self.descriptions(self.dataset.concept(cid))}" for t, cid in enumerate(ep.candidate_ids))

    def _make_obs(self, ep: Episode) -> dict[str, Any]:
        return {"query": self.load_image(ep.query), "database": sanitize_text(self.database_text(ep)),
                "question": ep.question}

    def _task_info(self, ep: Episode) -> dict[str, Any]:
        return {"query_concept": ep.query.concept_id, "query_path": ep.query.path, "answer": ep.answer,
                "answer_index": ep.target_index}
