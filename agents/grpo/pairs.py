"""Listener training in the pair format: one yes/no question per (description, candidate image).

The listener's choice among K candidates is the candidate with the highest P(yes): exactly how the ``qwen``
listener (``agents.listener.QwenListener``) scores candidates inside the speaker env, so a listener trained
here plugs into that env and into the leaderboard unchanged. Each training episode gives two balanced rows,
its target and one hard-negative candidate, so answering always "yes" (or always "no") earns 0.5 and noise
cannot farm the reward. Held-out accuracy is the K-way accuracy of argmax P(yes), judged by the env.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.grpo.adapter import BatchScorer, completion_text
from lewis_env.parsing import LETTERS, parse_yes_no

PAIR_TERM = "pair_accuracy"
#: The pair task's reward spec: one term, the yes/no answer is right for this (description, candidate).
PAIR_SPEC: dict[str, float] = {PAIR_TERM: 1.0}


def _pil(array: Any) -> Any:
    from PIL import Image

    return Image.fromarray(np.asarray(array, dtype=np.uint8))


def episode_pairs(env: Any, episode_id: int) -> tuple[str, list[Any], int, str]:
    """(description, candidate PIL images, target index, object name) of one listener episode."""
    obs, info = env.reset(options={"episode_id": int(episode_id)})
    return (str(obs["description"]), [_pil(c) for c in obs["candidates"]], int(info["target_index"]),
            str(info.get("category") or "object"))


def other_view(env: Any, episode_id: int, rng: np.random.Generator) -> Any | None:
    """A hard positive: another image of the episode's target concept (not the candidate shown), or None."""
    from lewis_env.episodes import query_images

    ep = env.unwrapped.episode(int(episode_id))
    concept = env.unwrapped.dataset.concept(ep.target_concept)
    pool = [r for r in query_images(concept) if r.path != ep.query.path]
    if not pool:
        return None
    return _pil(env.unwrapped.load_image(pool[int(rng.integers(len(pool)))]))


def pair_rows(env: Any, episode_ids: Sequence[int], seed: int, describe: Callable[[int], str] | None = None,
              contrastive: bool = False) -> list[dict[str, Any]]:
    """Balanced yes/no rows per episode, each a pair prompt with one image.

    Default: the target and one seeded distractor. ``contrastive``: hard positives (the target and another view
    of the target concept, candidate index K) against as many hard negatives (look-alike concepts).
    ``describe(episode_id)`` replaces the env's description (self-play: the current speaker's words).
    """
    from agents.qwen.prompts import listener_pair_messages

    rng = np.random.default_rng(seed)
    rows = []
    for i in episode_ids:
        description, images, target, name = episode_pairs(env, i)
        if describe is not None:
            description = describe(int(i))
        others = [j for j in range(len(images)) if j != target]
        picks: list[tuple[int, Any]] = [(target, images[target])]
        extra = other_view(env, i, rng) if contrastive else None
        if extra is not None:
            picks.append((len(images), extra))
        for j in rng.choice(others, size=min(len(picks), len(others)), replace=False):
            picks.append((int(j), images[int(j)]))
        for j, image in picks:
            rows.append({"prompt": listener_pair_messages(description, object_name=name), "images": [image],
                         "episode_id": int(i), "candidate": int(j), "description": description})
    return rows


def contrastive_reward(completion: str, info: Any) -> float:
    """Speaker-side contrastive term: listener P(yes) of the target view minus the mean over hard negatives."""
    scores, target = info.get("listener_scores"), info.get("target_index")
    if not scores or target is None or len(scores) < 2:
        return 0.0
    negatives = [s for j, s in enumerate(scores) if j != int(target)]
    return float(scores[int(target)] - sum(negatives) / len(negatives))


class PairScorer(BatchScorer):
    """Rewards yes/no completions: right when "yes" is said of the target and "no" of a distractor."""

    def score(self, episode_ids: Sequence[int], completions: Sequence[Any], candidate: Sequence[int] = (),
              **context: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """(rewards, infos) for a batch of (episode, candidate, completion)."""
        if len(candidate) != len(episode_ids) or len(completions) != len(episode_ids):
            raise ValueError("pair rewards need episode_id, candidate and a completion per row")
        texts = [completion_text(c) for c in completions]
        key = (tuple(int(i) for i in episode_ids), tuple(int(j) for j in candidate), tuple(texts))
        with self._lock:
            if self._key == key and self._value is not None:
                return self._value
            rewards, infos = [], []
            for i, j, text in zip(key[0], key[1], texts):
                ep = self.env.unwrapped.episode(i)
                target = int(ep.target_index)
                positive = j == target or j >= len(ep.candidates)  # index K = another view of the target
                yes, err = parse_yes_no(text)
                correct = yes is not None and bool(yes) == positive
                rewards.append(1.0 if correct else 0.0)
                infos.append({"episode_id": i, "candidate": j, "is_target": positive, "answer": yes,
                              "parse_error": err, "correct": correct, "reward_terms": {PAIR_TERM: rewards[-1]}})
            self.calls += 1
            self._key, self._value = key, (np.asarray(rewards, dtype=np.float32), infos)
            if self.on_scored is not None:
                self.on_scored({"episode_ids": key[0], "completions": texts, "rewards": self._value[0],
                                "infos": infos, **context})
            return self._value


def pair_choices(model: Any, processor: Any, env: Any, episode_ids: Sequence[int],
                 descriptions: Sequence[str] | None = None, batch_size: int = 16) -> list[tuple[int, list[float]]]:
    """(argmax P(yes), P(yes) per candidate) for each episode, with the shared-prefix scorer."""
    from agents.qwen.scoring import YesNoScorer

    scorer = YesNoScorer(model, processor, method="shared", batch_size=batch_size)
    descs, cands, names = [], [], []
    for n, i in enumerate(episode_ids):
        description, images, _target, name = episode_pairs(env, i)
        descs.append(descriptions[n] if descriptions is not None else description)
        cands.append(images)
        names.append(name)
    was_training = model.training
    model.eval()
    try:
        import torch

        with torch.no_grad():
            scores = scorer.score_candidates(descs, cands, names)
    finally:
        model.train(was_training)
    return [(int(np.argmax(s)), [float(x) for x in s]) for s in scores]


def pair_heldout_accuracy(model: Any, processor: Any, env: Any, episode_ids: Sequence[int],
                          batch_size: int = 16) -> dict[str, Any]:
    """K-way held-out accuracy of argmax P(yes); the env judges the chosen letters."""
    ids = [int(i) for i in episode_ids]
    if not ids:
        raise ValueError("pair_heldout_accuracy needs at least one episode id")
    choices = pair_choices(model, processor, env, ids, batch_size=batch_size)
    letters = [LETTERS[c] for c, _ in choices]
    rewards, infos = env.unwrapped.score_batch(ids, letters)
    correct = [bool(info.get("correct", False)) for info in infos]
    return {
        "accuracy": sum(correct) / len(correct), "mean_reward": float(np.mean(rewards)), "num_episodes": len(ids),
        "answer_format": "pairs (argmax P(yes))",
        "examples": [{"episode_id": i, "choice": c, "scores": [round(x, 3) for x in s], "correct": ok}
                     for i, (c, s), ok in list(zip(ids, choices, correct))[:8]],
    }


__all__ = ["PAIR_SPEC", "PAIR_TERM", "PairScorer", "contrastive_reward", "episode_pairs", "other_view",
           "pair_choices", "pair_heldout_accuracy", "pair_rows"]
