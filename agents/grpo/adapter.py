"""Env -> TRL: a prompt dataset built from env episodes, and one reward function per reward term.

All term functions of one batch share a cache keyed on the batch's (episode_ids, completions), so the
env's ``score_batch`` (and therefore the listener) is called ONCE per reward batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

RewardFunc = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a plain string or conversational ``[{"role": "assistant", ...}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = []
        for msg in completion:
            content = msg.get("content", "") if isinstance(msg, dict) else msg
            if isinstance(content, list):
                parts.extend(str(c.get("text") or "") for c in content if isinstance(c, dict))
            else:
                parts.append(str(content or ""))
        return "".join(parts)
    raise TypeError(f"completion must be a string or a list of messages, got {type(completion).__name__}")


def _pil(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.asarray(array, dtype=np.uint8))


def episode_prompt(env: Any, episode_id: int, prompt_opts: dict[str, Any] | None = None) -> dict[str, Any]:
    """One dataset row: the conversational prompt and PIL images of episode ``episode_id``."""
    from agents.qwen.prompts import build_messages

    obs, _info = env.reset(options={"episode_id": int(episode_id)})
    role = env.unwrapped.role
    messages, images = build_messages(role, obs, **(prompt_opts or {}))
    images = [img if hasattr(img, "size") and not isinstance(img, np.ndarray) else _pil(img) for img in images]
    return {"prompt": messages, "images": images, "episode_id": int(episode_id)}


def split_episodes(num_episodes: int, holdout_frac: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded partition of episode ids into (train, held_out); held_out gets ``round(frac*n)`` ids."""
    if num_episodes <= 0:
        raise ValueError(f"env has no episodes (num_episodes={num_episodes})")
    if not 0.0 <= holdout_frac < 1.0:
        raise ValueError(f"holdout_frac must be in [0, 1), got {holdout_frac}")
    perm = np.random.default_rng(seed).permutation(num_episodes)
    n_hold = round(holdout_frac * num_episodes)
    if holdout_frac > 0 and n_hold == 0:
        n_hold = 1
    if n_hold >= num_episodes:
        raise ValueError(f"holdout_frac={holdout_frac} leaves no training episodes out of {num_episodes}")
    return sorted(int(i) for i in perm[n_hold:]), sorted(int(i) for i in perm[:n_hold])


def build_dataset(env: Any, episode_ids: Sequence[int] | None = None, prompt_opts: dict[str, Any] | None = None) -> Any:
    """A ``datasets.Dataset`` with ``prompt`` (conversational), ``images`` (PIL list) and ``episode_id``."""
    ids = list(range(env.unwrapped.num_episodes)) if episode_ids is None else [int(i) for i in episode_ids]
    if not ids:
        raise ValueError("build_dataset got no episode ids")
    return rows_to_dataset([episode_prompt(env, i, prompt_opts) for i in ids])


def rows_to_dataset(rows: Sequence[dict[str, Any]]) -> Any:
    """``episode_prompt`` rows -> a ``datasets.Dataset`` whose ``images`` column is a list of Image features."""
    from datasets import Dataset, Image, List

    if not rows:
        raise ValueError("rows_to_dataset got no rows")
    keys = ["prompt", "images", "episode_id"] + [k for k in ("candidate",) if k in rows[0]]
    data = {k: [r[k] for r in rows] for k in keys}
    ds = Dataset.from_dict(data)  # PIL lists are inferred as List(Image())
    if ds.features["images"] != List(Image()):
        ds = ds.cast_column("images", List(Image()))
    return ds


class BatchScorer:
    """Scores (episode_ids, completions) through ``env.unwrapped.score_batch`` with a one-entry batch cache."""

    def __init__(self, env: Any, on_scored: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.env = env
        self.on_scored = on_scored
        self.calls = 0
        self._key: tuple | None = None
        self._value: tuple[np.ndarray, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    def score(self, episode_ids: Sequence[int], completions: Sequence[Any], **context: Any) -> tuple[np.ndarray, list[dict]]:
        """(rewards, infos) for the batch; reuses the last result when the batch is identical."""
        if len(episode_ids) != len(completions):
            raise ValueError(f"got {len(episode_ids)} episode ids but {len(completions)} completions")
        texts = [completion_text(c) for c in completions]
        key = (tuple(int(i) for i in episode_ids), tuple(texts))
        with self._lock:
            if self._key == key and self._value is not None:
                return self._value
            rewards, infos = self.env.unwrapped.score_batch(list(key[0]), texts)
            self.calls += 1
            self._key, self._value = key, (np.asarray(rewards, dtype=np.float32), list(infos))
            if self.on_scored is not None:
                self.on_scored({"episode_ids": key[0], "completions": texts, "rewards": self._value[0],
                                "infos": self._value[1], **context})
            return self._value


def env_reward_spec(env: Any) -> dict[str, float]:
    """The env's reward spec: ``{term: weight}`` in the order ``info["reward_terms"]`` reports the terms.

    Read from ``env.unwrapped.reward_spec`` (docs/CONTRACTS.md); nothing is scored to find it.
    """
    spec = getattr(env.unwrapped, "reward_spec", None)
    if spec is None:
        raise ValueError(f"env {type(env.unwrapped).__name__} exposes no reward_spec ({{term: weight}}); add it "
                         f"(docs/CONTRACTS.md) or name the terms with train.reward_terms and train.reward_weights")
    spec = dict(spec)
    if not spec:
        raise ValueError(f"env {type(env.unwrapped).__name__} has an empty reward_spec")
    return {str(t): float(w) for t, w in spec.items()}


def resolve_reward_terms(spec: Mapping[str, float] | None, terms: Sequence[str] | None = None,
                         weights: Mapping[str, float] | None = None) -> tuple[list[str], list[float]]:
    """(terms, TRL weights): the env's spec, narrowed to ``terms`` and re-weighted by ``weights`` when given.

    Envs report UNWEIGHTED term values in ``info["reward_terms"]``, so TRL applies these weights and its summed
    reward equals the env's reward unless the train config overrides a weight.
    """
    spec = dict(spec or {})
    names = list(terms) if terms else list(spec)
    if not names:
        raise ValueError("no reward terms: the env exposes no reward_spec and train.reward_terms is empty")
    if spec:
        unknown = [t for t in names if t not in spec]
        if unknown:
            raise ValueError(f"train.reward_terms names {unknown}, which the env does not report; "
                             f"its reward spec: {spec}")
    over = dict(weights or {})
    unknown = sorted(set(over) - set(names))
    if unknown:
        raise ValueError(f"train.reward_weights names {unknown}, not among the trained terms {names}")
    return names, [float(over.get(t, spec.get(t, 1.0))) for t in names]


def make_reward_funcs(scorer: BatchScorer, terms: Sequence[str]) -> list[RewardFunc]:
    """One TRL reward function per term (named ``<term>`` so TRL logs ``rewards/<term>/mean``)."""
    if not terms:
        raise ValueError("make_reward_funcs needs at least one reward term")
    funcs: list[RewardFunc] = []
    for term in terms:

        def fn(prompts: Any = None, completions: Sequence[Any] = (), episode_id: Sequence[int] = (),
               trainer_state: Any = None, _term: str = term, **kw: Any) -> list[float]:
            if not episode_id:
                raise ValueError("reward function needs the dataset's episode_id column (remove_unused_columns=False)")
            step = int(getattr(trainer_state, "global_step", 0)) + 1 if trainer_state is not None else 0
            extra = {"candidate": kw["candidate"]} if "candidate" in kw else {}  # pair-format rows
            _rewards, infos = scorer.score(episode_id, completions, step=step, **extra)
            return [float(info.get("reward_terms", {}).get(_term, 0.0)) for info in infos]

        fn.__name__ = term
        fn.__qualname__ = term
        funcs.append(fn)
    return funcs
