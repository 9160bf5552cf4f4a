"""Recognition-v0: "Is <name> in this image?" given reference image(s), a description and a query image.

``pairing="balanced"`` (default): positives and hard negatives are balanced: even-parity episodes are
positive, odd ones show a query image of one of the concept's top-3 hard negatives (parity flips on each pass
over the pairs). ``pairing="all"``: the published protocol, every query image x every concept (episode
``i`` = image ``i // n`` asked about concept ``i % n``); negatives are then labelled in- or cross-category
(``info["negative_kind"]``) where the data has categories.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lewis_env.descriptions import DescriptionSource, DescriptionSpec, default_description_spec
from lewis_env.envs.base import MAX_IMAGES_SHOWN, MAX_K, LewisEnv, _check_int, resolve_negatives
from lewis_env.envs.spaces import sanitize_text
from lewis_env.episodes import Episode, pick, query_images, reference_images
from lewis_env.tasks.builtin import RECOGNITION


def pick_references(rng: np.random.Generator, refs: list, r: int, avoid: str | None = None) -> tuple:
    """``r`` reference images drawn without replacement (cycled when there are fewer), avoiding one path."""
    pool = [x for x in refs if x.path != avoid] or list(refs)
    order = rng.permutation(len(pool))
    return tuple(pool[int(order[t % len(pool)])] for t in range(r))


class RecognitionEnv(LewisEnv):
    """Binary personalised recognition; action yes/no (index mode: ``Discrete(2)``, 1 = yes)."""

    task = RECOGNITION

    def __init__(self, *args: Any, descriptions: DescriptionSpec | None = None, num_reference_shown: int = 1,
                 num_negatives: int = 3, pairing: str = "balanced", **kwargs: Any) -> None:
        if pairing not in ("balanced", "all"):
            raise ValueError(f"pairing must be 'balanced' or 'all', got {pairing!r}")
        self.pairing = pairing
        super().__init__(*args, **kwargs)
        self.num_reference_shown = _check_int("num_reference_shown", num_reference_shown, 1, MAX_IMAGES_SHOWN)
        self.num_negatives = min(_check_int("num_negatives", num_negatives, 1, MAX_K), len(self.dataset) - 1)
        self._negs = resolve_negatives(self.dataset, self.num_negatives, self.negatives_spec)  # fail/say it now
        self.descriptions = DescriptionSource(descriptions or default_description_spec(self.dataset, allow_none=True),
                                              self.dataset)
        self._build_spaces()

    def _num_choices(self, ep: Episode) -> int:
        return 2

    def _default_num_episodes(self) -> int:
        if self.pairing == "all":
            return len(self.schedule) * len(self.dataset)
        return len(self.schedule)

    def _all_pairs_episode(self, i: int, rng: np.random.Generator) -> Episode:
        """Query image ``i // n`` (every image of every concept, in dataset order) asked about concept ``i % n``."""
        n = len(self.dataset)
        qcid, j = self.schedule.pairs[(i // n) % len(self.schedule)]
        query = query_images(self.dataset.concept(qcid))[j]
        c = self.dataset.concepts[i % n]
        positive = c.concept_id == qcid
        refs = pick_references(rng, reference_images(c), self.num_reference_shown, avoid=query.path)
        return Episode(episode_id=i, role=self.role, target_concept=c.concept_id, category=c.category,
                       candidates=(query,), candidate_ids=(query.concept_id,), target_index=int(positive),
                       question=f"Is {c.name} in this image? Answer yes or no.", reference=refs, query=query,
                       positive=positive, options=("no", "yes"))

    def _make_episode(self, i: int, rng: np.random.Generator) -> Episode:
        if self.pairing == "all":
            return self._all_pairs_episode(i, rng)
        if not hasattr(self, "_negs"):
            self._negs = resolve_negatives(self.dataset, self.num_negatives, self.negatives_spec)
        cid, j = self.schedule.pair(i)
        c = self.dataset.concept(cid)
        positive = (i + i // len(self.schedule)) % 2 == 0
        if positive:
            query = query_images(c)[j]
        else:
            query = pick(rng, query_images(self.dataset.concept(pick(rng, self._negs[cid]))))
        refs = pick_references(rng, reference_images(c), self.num_reference_shown, avoid=query.path)
        return Episode(episode_id=i, role=self.role, target_concept=cid, category=c.category, candidates=(query,),
                       candidate_ids=(query.concept_id,), target_index=int(positive),
                       question=f"Is {c.name} in this image? Answer yes or no.", reference=refs, query=query,
                       positive=positive, options=("no", "yes"))

    def _make_obs(self, ep: Episode) -> dict[str, Any]:
        return {"reference": self.load_images(ep.reference),
                "description": sanitize_text(self.descriptions(self.dataset.concept(ep.target_concept))),
                "query": self.load_image(ep.query), "question": sanitize_text(ep.question)}

    def _task_info(self, ep: Episode) -> dict[str, Any]:
        kind = None
        if not ep.positive and self.dataset.has_categories():
            same = self.dataset.concept(ep.query.concept_id).category == ep.category
            kind = "in_category" if same else "cross_category"
        return {"positive": bool(ep.positive), "query_concept": ep.query.concept_id, "query_path": ep.query.path,
                "reference_paths": [r.path for r in ep.reference], "answer": ep.answer, "negative_kind": kind}

    def _parsed_repr(self, parsed: int | None) -> Any:
        return None if parsed is None else ("yes" if parsed else "no")
