"""The shared machinery of every lewis-bench env: data, splits, negatives, replayable episodes, scoring.

Subclasses set ``role``, build ``Episode`` objects (``_make_episode``), observations (``_make_obs``) and
spaces; the base class handles ``reset``/``step``, action type checks, text/index parsing, the per-episode
caches and ``score_batch``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from lewis_env.data.types import ConceptDataset, ImageRef
from lewis_env.episodes import Episode, PairSchedule, episode_rng
from lewis_env.tasks import TaskSpec

SPLITS = ("test", "train", "all")
ACTION_MODES = ("text", "index")
#: Upper bounds of env sizes (an observation holds up to MAX_K images of MAX_IMAGE_SIZE² RGB pixels).
MAX_K = 26  # answers are letters A-Z
MAX_IMAGE_SIZE = 2048
MAX_IMAGES_SHOWN = 16  # reference images per observation
MAX_EPISODES = 10_000_000
_NEG_MEMO: dict[tuple[str, int, str], dict[str, list[str]]] = {}
_NEG_LOCK = threading.Lock()


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]``; a ValueError naming the setting and its bounds otherwise."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo
            or (hi is not None and value > hi)):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an int {bounds}, got {value!r}")
    return int(value)


def resolve_negatives(ds: ConceptDataset, n: int, spec: Any = "auto") -> dict[str, list[str]]:
    """``{concept: n hard negatives}`` within ``ds`` from a method name, a JSON path or a table (memoised)."""
    if n < 1:
        return {c: [] for c in ds.concept_ids}
    if n > len(ds) - 1:
        raise ValueError(f"{n} negatives per episode need at least {n + 1} concepts; {split_hint(ds, n + 1)}")
    from lewis_env.data.negatives import METHODS

    if isinstance(spec, str) and spec in METHODS:
        key = (ds.fingerprint(), n, spec)
        with _NEG_LOCK:
            hit = _NEG_MEMO.get(key)
        if hit is None:
            from lewis_env.data.negatives import hard_negatives

            hit = hard_negatives(ds, k=n, method=spec)
            with _NEG_LOCK:
                _NEG_MEMO[key] = hit
        return hit
    if isinstance(spec, Mapping):
        table = {str(k): [str(x) for x in v] for k, v in spec.items()}
    else:
        from lewis_env.data.negatives import load_negatives

        table = dict(load_negatives(spec))
    out = {}
    for c in ds.concept_ids:
        negs = [x for x in table.get(c, []) if x in ds and x != c]
        if len(negs) < n:
            raise ValueError(f"negatives table gives concept {c!r} only {len(negs)} negatives inside this split, "
                             f"need {n}")
        out[c] = negs[:n]
    return out


def split_hint(ds: ConceptDataset, need: int) -> str:
    """What to change when ``ds`` (a split) has fewer than ``need`` concepts."""
    where = f"dataset {ds.name!r} has {len(ds)} concept(s)"
    if ds.config.get("subset_of"):
        return (f"{where} after the concept split (65% of concepts to train by default): lower k to "
                f"{max(len(ds), 2)} or less, use split='all', change concept_frac, or give the tree its own "
                f"train/ and test/ image folders (then every concept is on both sides)")
    return f"{where}: lower k to {max(len(ds), 2)} or less, or add concepts"


class LewisEnv(gym.Env):
    """Base class: single-step episodes over a concept dataset, replayable by episode id.

    Common kwargs: ``dataset`` (any ``load_dataset`` spec or a ConceptDataset), ``split`` ("test" | "train" |
    "all"; concept-level split with ``concept_frac`` and ``data_seed``), ``k`` candidates, ``image_size``,
    ``action_mode`` ("text" | "index"), ``seed`` (the episode seed), ``num_episodes`` (default: one per
    (concept, query image)), ``negatives`` ("auto" | "attributes" | "clip" | JSON path | table), ``obs_mode``
    ("text" | "numeric": texts as token ids, see ``lewis_env.numeric``).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    #: The task this env plays (``lewis_env.tasks``): spaces, answer parsing, choices, metrics come from it.
    task: ClassVar[TaskSpec | None] = None
    role = "base"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that names its ``task`` gets ``role = task.id``."""
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("task") is not None:
            cls.role = cls.task.id

    def __init__(self, dataset: Any = "synthetic", split: str = "test", k: int = 4, image_size: int = 224,
                 action_mode: str = "text", seed: int = 0, num_episodes: int | None = None, data_seed: int = 23,
                 concept_frac: float = 0.65, negatives: Any = "auto",
                 render_mode: str | None = None, obs_mode: str = "text") -> None:
        from lewis_env.data.registry import load_dataset
        from lewis_env.numeric import OBS_MODES

        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if render_mode is not None:
            raise ValueError(f"lewis-bench envs do not render; render_mode must be None, got {render_mode!r}")
        self.k = _check_int("k", k, 2, MAX_K)
        self.image_size = _check_int("image_size", image_size, 8, MAX_IMAGE_SIZE)
        self.seed_value = _check_int("seed", seed, 0)
        self.action_mode = action_mode
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        self.obs_mode = obs_mode
        self.codec: Any = None  # a lewis_env.numeric.NumericCodec when obs_mode == "numeric"
        self.render_mode = None
        full = load_dataset(dataset) if not isinstance(dataset, ConceptDataset) else dataset
        self.full_dataset = full  # both splits: vocabularies that must not depend on the split come from here
        if split == "all":
            self.dataset = full
        else:
            train, test = full.split(concept_frac=concept_frac, seed=data_seed)
            self.dataset = train if split == "train" else test
        if len(self.dataset) == 0:
            raise ValueError(f"split {split!r} of dataset {full.name!r} has no concepts; {split_hint(self.dataset, 1)}")
        self.split = split
        self.negatives_spec = negatives
        self.schedule = PairSchedule(self.dataset, self.seed_value)
        self._setup()
        n = self._default_num_episodes() if num_episodes is None else _check_int("num_episodes", num_episodes, 1, MAX_EPISODES)
        self.num_episodes = n
        self._episodes: dict[int, Episode] = {}
        self._current: Episode | None = None
        self._ended = False  # the current episode was stepped (single-step: it terminated)

    # -- observation mode ----------------------------------------------------------------------
    @property
    def observation_space(self) -> gym.spaces.Space:  # type: ignore[override]
        """The text space, or its numeric form (``lewis_env.numeric``) when ``obs_mode="numeric"``."""
        return self._observation_space

    @observation_space.setter
    def observation_space(self, space: gym.spaces.Space) -> None:
        self.text_observation_space = space
        if getattr(self, "obs_mode", "text") == "numeric":
            from lewis_env.numeric import NumericCodec

            self.codec = NumericCodec.for_env(self, space)
            space = self.codec.space
        self._observation_space = space

    @property
    def vocabulary(self) -> Any:
        """The token vocabulary of numeric observations (``lewis_env.numeric.Vocabulary``), None in text mode."""
        return None if self.codec is None else self.codec.vocabulary

    def _build_spaces(self) -> None:
        """Observation and action spaces from the task spec (call once the sizes they read are set)."""
        self.observation_space = self.task.observation_space(self)
        self.action_space = self.task.action_space(self)

    # -- to be provided by subclasses -----------------------------------------------------------
    def _setup(self) -> None:
        """Task-specific preparation once the dataset split is known (before episodes are counted)."""

    def _default_num_episodes(self) -> int:
        return len(self.schedule)

    def _make_episode(self, i: int, rng: np.random.Generator) -> Episode:
        raise NotImplementedError

    def _make_obs(self, ep: Episode) -> dict[str, Any]:
        raise NotImplementedError

    def _num_choices(self, ep: Episode) -> int:
        return self.k

    def _task_info(self, ep: Episode) -> dict[str, Any]:
        return {}

    # -- episodes ------------------------------------------------------------------------------
    def episode(self, i: int) -> Episode:
        """Episode ``i`` (built once, then cached): a pure function of dataset, config, seed and ``i``."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"episode id must be an int, got {type(i).__name__}")
        i = int(i)
        if not 0 <= i < self.num_episodes:
            raise ValueError(f"episode id {i} out of range [0, {self.num_episodes})")
        ep = self._episodes.get(i)
        if ep is None:
            ep = self._episodes[i] = self._make_episode(i, episode_rng(self.seed_value, i))
        return ep

    def load_image(self, ref: ImageRef) -> np.ndarray:
        """A fresh, writable copy of one image at the env's size (decoding is LRU-cached by the loader)."""
        return np.array(ref.load(self.image_size))

    def load_images(self, refs: Sequence[ImageRef]) -> np.ndarray:
        """Fresh stacked images ``(n, S, S, 3)`` (decoding is LRU-cached by the loader)."""
        return np.stack([ref.load(self.image_size) for ref in refs])

    def observation(self, i: int) -> dict[str, Any]:
        """The observation of episode ``i``: new arrays every call (callers may keep or modify them)."""
        obs = self._make_obs(self.episode(i))
        return obs if self.codec is None else self.codec.encode(obs)

    def info(self, ep: Episode) -> dict[str, Any]:
        """The reset info of an episode: ids, target, candidates and the task's own keys."""
        info = {"episode_id": ep.episode_id, "role": self.role, "target_concept": ep.target_concept,
                "category": ep.category, "candidate_ids": list(ep.candidate_ids),
                "candidate_paths": [c.path for c in ep.candidates], "target_index": ep.target_index}
        info.update(self._task_info(ep))
        return info

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start episode ``options["episode_id"]`` (exact replay) or one drawn from the seeded sampler."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"episode_id"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; supported: ['episode_id']")
        if options.get("episode_id") is not None:
            i = options["episode_id"]
        else:
            i = int(self.np_random.integers(self.num_episodes))
        ep = self.episode(i)
        self._current, self._ended = ep, False
        return self.observation(ep.episode_id), self.info(ep)

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Score the action for the current episode; always terminates (single-step episodes)."""
        if self._current is None:
            raise RuntimeError("call reset() before step()")
        if self._ended:  # else an agent could collect the reward by trying every answer
            raise RuntimeError(f"episode {self._current.episode_id} has ended (episodes are single-step); "
                               f"call reset() before step()")
        ep = self._current
        self.check_action(action)
        rewards, infos = self._score([ep], [action])
        self._ended = True
        return self.observation(ep.episode_id), rewards[0], True, False, infos[0]

    def score_batch(self, episode_ids: Sequence[int], actions: Sequence[Any]) -> tuple[np.ndarray, list[dict]]:
        """Rewards (float32) and step infos for many (episode, action) pairs at once."""
        ids, acts = list(episode_ids), list(actions)
        if len(ids) != len(acts):
            raise ValueError(f"score_batch got {len(ids)} episode ids but {len(acts)} actions")
        eps = [self.episode(i) for i in ids]
        for a in acts:
            self.check_action(a)
        rewards, infos = self._score(eps, acts)
        return np.asarray(rewards, dtype=np.float32), infos

    # -- actions -------------------------------------------------------------------------------
    def check_action(self, action: Any) -> None:
        """Raise TypeError when the action is not of the action space's type."""
        if self.action_mode == "text":
            if not isinstance(action, str):
                raise TypeError(f"{self.role} env in text mode expects a str action, got {type(action).__name__}")
            return
        if isinstance(action, np.ndarray) and action.size == 1 and np.issubdtype(action.dtype, np.integer):
            return
        if isinstance(action, bool) or not isinstance(action, (int, np.integer)):
            raise TypeError(f"{self.role} env in index mode expects an int action ({self.action_space}), "
                            f"got {type(action).__name__}")

    def parse(self, ep: Episode, action: Any) -> tuple[int | None, str | None]:
        """(choice index, None) or (None, reason) for one action of this episode."""
        n = self._num_choices(ep)
        if self.action_mode == "index":
            i = int(np.asarray(action).reshape(-1)[0])
            if not 0 <= i < n:
                return None, f"index {i} out of range [0, {n}) for this episode"
            return i, None
        return self.task.parse_answer(action, n, list(ep.options) or None)

    def _score(self, eps: Sequence[Episode], actions: Sequence[Any]) -> tuple[list[float], list[dict]]:
        """(python-float rewards, step infos) for already type-checked actions."""
        rewards = [0.0] * len(eps)
        infos = []
        for j, (ep, a) in enumerate(zip(eps, actions)):
            parsed, err = self.parse(ep, a)
            correct = parsed is not None and parsed == ep.target_index
            rewards[j] = 1.0 if correct else 0.0
            info = self.info(ep)
            info.update(parsed=self._parsed_repr(parsed), parse_error=err, correct=bool(correct),
                        reward_terms={"accuracy": float(rewards[j])})
            infos.append(info)
        return rewards, infos

    @property
    def reward_spec(self) -> dict[str, float]:
        """``{term: weight}``: the terms ``info["reward_terms"]`` reports, in order, with their reward weights."""
        return {"accuracy": 1.0}

    def _parsed_repr(self, parsed: int | None) -> Any:
        return parsed

    def data_record(self) -> dict[str, Any]:
        """What this env's episodes were built from, for result records: dataset name and fingerprint, split
        and how it was made, the negatives method actually used, and the task's description/question/listener
        sources where it has them."""
        from lewis_env.data.negatives import METHODS, auto_method

        spec = self.negatives_spec
        if isinstance(spec, str) and spec in METHODS:
            negatives = auto_method(self.dataset) if spec == "auto" else spec
        else:
            negatives = "table" if isinstance(spec, Mapping) else f"file:{spec}"
        rec: dict[str, Any] = {"dataset": self.dataset.name, "fingerprint": self.dataset.fingerprint(),
                               "split": self.split, "split_kind": self.dataset.split_kind, "negatives": negatives}
        for key, attr in (("descriptions", "descriptions"), ("question_source", "question_source_used")):
            val = getattr(self, attr, None)
            if val is not None:
                rec[key] = getattr(val, "spec", val) if not isinstance(val, str) else val
        listener = getattr(self, "listener", None)
        if listener is not None:
            rec["listener"] = getattr(listener, "name", type(listener).__name__)
            rec["listener_flags"] = dict(getattr(listener, "flags", {}) or {})
        return rec

    def close(self) -> None:
        """Drop the per-episode cache."""
        self._episodes.clear()
        super().close()


__all__ = ["ACTION_MODES", "MAX_EPISODES", "MAX_IMAGES_SHOWN", "MAX_IMAGE_SIZE", "MAX_K", "SPLITS", "LewisEnv", "resolve_negatives"]
