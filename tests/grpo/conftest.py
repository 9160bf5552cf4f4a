"""GRPO test fixtures: a small contract-following colour-game env with a counting listener, and config helpers."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 20)}
FAKE_ID = "lewis_grpo_test/ColourSpeaker-v0"


class CountingListener:
    """Picks the candidate whose colour word is in the description (hash tie-break); counts batch calls."""

    def __init__(self) -> None:
        self.batch_calls = 0
        self.pairs = 0

    def choose(self, description: str, candidates: Sequence[str]) -> tuple[int, list[float]]:
        words = set(description.lower().replace(".", " ").split())
        scores = [1.0 if c in words else 0.0 for c in candidates]
        best = max(scores)
        tied = [i for i, s in enumerate(scores) if s == best]
        h = int(hashlib.sha1((description + "|".join(candidates)).encode()).hexdigest(), 16)
        return tied[h % len(tied)], scores

    def choose_batch(self, descriptions: Sequence[str], candidates: Sequence[Sequence[str]]) -> list:
        self.batch_calls += 1
        self.pairs += len(descriptions)
        return [self.choose(d, c) for d, c in zip(descriptions, candidates)]


class ColourSpeakerEnv(gym.Env):
    """Speaker env per docs/CONTRACTS.md on a solid-colour world: name the target's colour among K=4."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, num_episodes: int = 32, image_size: int = 56, listener: Any = None, seed: int = 0) -> None:
        self.role, self.action_mode = "speaker", "text"
        self.reward_spec = {"accuracy": 1.0, "length": 1.0}  # reward = accuracy + length (docs/CONTRACTS.md)
        self.num_episodes, self.size = num_episodes, image_size
        self.listener = listener if listener is not None else CountingListener()
        names = list(COLORS)
        rng = np.random.default_rng(seed)
        self._targets = [names[i % 4] for i in range(num_episodes)]
        self._orders = [list(rng.permutation(names)) for _ in range(num_episodes)]
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
            "instruction": spaces.Text(4096, min_length=0, charset=string.printable),
        })
        self.action_space = spaces.Text(256, min_length=0, charset=string.printable)
        self._episode = 0

    def _obs(self, i: int) -> dict[str, Any]:
        img = np.zeros((self.size, self.size, 3), np.uint8)
        img[:] = COLORS[self._targets[i]]
        return {"image": img, "instruction": "Name the colour of the object in one word."}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self._episode = int((options or {}).get("episode_id", 0)) % self.num_episodes
        return self._obs(self._episode), {"episode_id": self._episode, "role": "speaker"}

    def step(self, action: str) -> tuple[dict, float, bool, bool, dict]:
        rewards, infos = self.score_batch([self._episode], [action])
        return self._obs(self._episode), float(rewards[0]), True, False, infos[0]

    def score_batch(self, episode_ids: Sequence[int], actions: Sequence[str]) -> tuple[np.ndarray, list[dict]]:
        cands = [self._orders[i] for i in episode_ids]
        choices = self.listener.choose_batch(list(actions), cands)
        rewards, infos = [], []
        for i, action, cand, (idx, _scores) in zip(episode_ids, actions, cands, choices):
            target = cand.index(self._targets[i])
            acc = 1.0 if idx == target else 0.0
            short = 0.1 if 0 < len(action.split()) <= 3 else 0.0
            rewards.append(acc + short)
            infos.append({"episode_id": i, "role": "speaker", "correct": bool(acc), "target_index": target,
                          "listener_choice": idx, "description": action,
                          "reward_terms": {"accuracy": acc, "length": short}})
        return np.asarray(rewards, np.float32), infos


if FAKE_ID not in gym.registry:
    gym.register(FAKE_ID, entry_point=ColourSpeakerEnv)


@pytest.fixture()
def colour_env() -> ColourSpeakerEnv:
    """A fresh 32-episode colour env with its counting listener."""
    return ColourSpeakerEnv(num_episodes=32)


def tiny_overrides(out_dir: str, **extra: Any) -> list[str]:
    """Hydra overrides for a fast tiny-model run on the fake colour env."""
    base = {
        "train": "speaker_tiny_cpu",
        "train.env.id": FAKE_ID,
        "train.output_dir": out_dir,
        "train.max_steps": 2,
        "train.save_steps": 2,
        "train.num_generations": 2,
        "train.per_device_train_batch_size": 4,
        "train.max_completion_length": 4,
        "train.holdout_frac": 0.25,
        "train.eval_max_episodes": 4,
        "train.wandb.mode": "disabled",
    }
    base.update({k if k == "train" else f"train.{k}": v for k, v in extra.items()})
    from agents.grpo.config import compose

    shipped = compose([f"train={base['train']}"]).train.env.kwargs  # replaced by the fake env's own kwargs
    return ([f"{k}={v}" for k, v in base.items()] + [f"~train.env.kwargs.{k}" for k in shipped]
            + ["+train.env.kwargs.num_episodes=16"])


def run_shipped_demo(config: str, out: Any, *overrides: str) -> Any:
    """Run a shipped demo config (``train=<config>``) into ``out`` with seed 0, no wandb and no checkpoints."""
    import os

    import torch

    from agents.grpo.config import compose
    from agents.grpo.runner import run

    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.manual_seed(0)
    return run(compose([f"train={config}", f"train.output_dir={out}", "train.wandb.mode=disabled",
                        "train.save_steps=1000", "train.seed=0", *overrides]))
