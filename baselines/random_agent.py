"""The ``random`` baseline: uniform answers (chance level), random vocabulary words as a speaker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.registry import BaseAgent
from baselines._obs import stable_seed
from lewis_env.tasks import get_task

#: Words a random speaker draws from when the bound dataset has no attribute vocabulary.
FALLBACK_WORDS = ("thing", "object", "item", "red", "blue", "small", "large", "round", "striped", "plain")


class RandomAgent(BaseAgent):
    """Uniform random choices seeded per (seed, role, env seed, episode), so batching and order do not matter.

    Text mode: a random letter / yes-no / 3-6 vocabulary words; index mode: a uniform valid index (the
    speaker samples its MultiDiscrete action space).
    """

    name = "random"

    def __init__(self, seed: int = 0, min_words: int = 3, max_words: int = 6) -> None:
        super().__init__()
        if not 1 <= int(min_words) <= int(max_words):
            raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
        self.seed = int(seed)
        self.min_words, self.max_words = int(min_words), int(max_words)
        self.config = {"seed": self.seed, "min_words": self.min_words, "max_words": self.max_words}
        self._vocab: list[str] = list(FALLBACK_WORDS)
        self._env_seed: Any = 0
        self._calls = 0

    def bind(self, env: Any) -> None:
        """Attach to ``env``; the speaker vocabulary is the dataset's attribute values and categories."""
        super().bind(env)
        ds = getattr(self.env, "dataset", None)
        vocab: list[str] = []
        if ds is not None:
            for vals in ds.attribute_values().values():
                vocab.extend(vals)
            vocab.extend(sorted(ds.categories()))
        self._vocab = sorted(set(vocab)) or list(FALLBACK_WORDS)
        self._env_seed = 0
        for attr in ("seed_value", "seed", "_seed"):  # the env's episode seed, so each suite seed differs
            val = getattr(self.env, attr, None)
            if isinstance(val, (int, np.integer)) and not isinstance(val, bool):
                self._env_seed = int(val)
                break
        self._calls = 0

    def _rng(self, info: dict[str, Any] | None) -> np.random.Generator:
        ep = info.get("episode_id") if info else None
        if ep is None:  # no episode id: fall back to a call counter (still deterministic per bind)
            ep = f"call{self._calls}"
        self._calls += 1
        return np.random.default_rng(stable_seed(self.seed, self.role, self._env_seed, ep))

    def act(self, observation: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
        """A uniformly random answer (index mode: a sample of the action space)."""
        if self.role is None:
            raise RuntimeError("RandomAgent.act called before bind(env)")
        rng = self._rng(info)
        spec = get_task(self.role)
        n = spec.num_choices(observation)  # None: a free-text task (the speaker)
        if n is not None:  # the episode's own choices (a VQA question may offer fewer than Discrete(n) allows)
            i = int(rng.integers(n))
            return i if self.action_mode == "index" else spec.answer_text(i)
        if self.action_mode == "index":
            space = self.env.action_space
            space.seed(int(rng.integers(2**31 - 1)))
            return space.sample()
        k = int(rng.integers(self.min_words, self.max_words + 1))
        return " ".join(rng.choice(self._vocab, size=k).tolist())

    def act_batch(self, observations: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]] | None = None) -> list[Any]:
        """One random answer per observation."""
        infos = list(infos) if infos is not None else [None] * len(observations)
        return [self.act(o, i) for o, i in zip(observations, infos)]
