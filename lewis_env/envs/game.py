"""The Lewis-game episode both game envs share: target query image + hard negatives, shuffled."""

from __future__ import annotations

import numpy as np

from lewis_env.envs.base import LewisEnv, resolve_negatives
from lewis_env.episodes import Episode, pick, query_images, reference_images


class LewisGameEnv(LewisEnv):
    """Builds K-candidate episodes: one QUERY image of the target, one of each of K-1 hard negatives."""

    def _setup(self) -> None:
        """Resolve the hard-negative table up front, so a too-small split fails at construction."""
        self._negs = resolve_negatives(self.dataset, self.k - 1, self.negatives_spec)

    def _game_negatives(self) -> dict[str, list[str]]:
        return self._negs

    def _make_episode(self, i: int, rng: np.random.Generator) -> Episode:
        cid, j = self.schedule.pair(i)
        c = self.dataset.concept(cid)
        target_img = query_images(c)[j]
        negs = self._game_negatives()[cid][: self.k - 1]
        cands = [target_img] + [pick(rng, query_images(self.dataset.concept(n))) for n in negs]
        perm = rng.permutation(len(cands))
        shuffled = tuple(cands[p] for p in perm)
        ref = pick(rng, [r for r in reference_images(c) if r.path != target_img.path] or reference_images(c))
        return Episode(episode_id=i, role=self.role, target_concept=cid, category=c.category, candidates=shuffled,
                       candidate_ids=tuple(x.concept_id for x in shuffled),
                       target_index=int(np.flatnonzero(perm == 0)[0]), question=self._question(), reference=(ref,),
                       query=target_img)

    def _question(self) -> str:
        return ""
