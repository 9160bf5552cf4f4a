"""The ``ppo`` baseline agent: a Stable-Baselines3 PPO policy per role, trained on the suite's train concepts.

``PPOAgent`` (registered as ``ppo``) plays listener, recognition, identification and speaker (whose index
action picks one value per attribute slot, rendered by the template speaker). Bound to a suite env it
trains (``baselines.ppo_train``), or reuses from the cache, a policy on the *train* split of the same env
config, then answers the held-out episodes from the text observations it encodes exactly as
``obs_mode="numeric"`` does; ``policy=DIR`` loads ``DIR/<role>/model.zip`` instead. Importing this module
does not import torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.registry import BaseAgent
from baselines._obs import answer_text
from baselines.ppo_train import (
    MODEL_FILE,
    ROLE_IDS,
    config_key,
    default_run_root,
    load_policy,
    run_config,
    train_env_kwargs,
    train_ppo,
)


class PPOAgent(BaseAgent):
    """A PPO policy per role, trained on the train concepts of the bound env's config (see module doc)."""

    name = "ppo"
    roles = frozenset(ROLE_IDS)

    def __init__(self, policy: str | None = None, timesteps: int | Mapping[str, int] = 20_000, seed: int = 0,
                 train: bool = True, run_root: str | None = None, progress: bool = True, **ppo: Any) -> None:
        super().__init__()
        self.policy, self.seed, self.train, self.progress = policy, int(seed), bool(train), bool(progress)
        self.timesteps = dict(timesteps) if isinstance(timesteps, Mapping) else int(timesteps)
        self.run_root = Path(run_root) if run_root else None
        self.ppo = dict(ppo)
        run_config("x", {}, 1, **self.ppo)  # validate the PPO keys now
        self.config = {"policy": policy, "timesteps": self.timesteps, "seed": self.seed, **self.ppo}
        budget = (policy if policy is not None else
                  f"{self.timesteps} env steps/role" if isinstance(self.timesteps, int) else f"steps {self.timesteps}")
        self.flags["display_name"] = f"ppo (SB3, {budget}, train concepts)"
        self.model: Any = None
        self.run_dir: Path | None = None

    def _timesteps(self, role: str) -> int:
        return int(self.timesteps[role] if isinstance(self.timesteps, dict) else self.timesteps)

    def bind(self, env: Any) -> None:
        """Load or train the policy of this role for the bound env's config; check its observation layout."""
        from lewis_env.numeric import NumericCodec

        super().bind(env)
        base = self.env
        if self.policy is not None:
            self.run_dir = Path(self.policy) / self.role
        else:
            spec = getattr(base, "spec", None)
            if spec is None or not spec.kwargs:
                raise ValueError("the ppo agent trains on the bound env's config; bind a gym.make'd env or pass "
                                 "policy=DIR")
            train_kw = train_env_kwargs(spec.kwargs, "train")
            cfg = run_config(spec.id, train_kw, self._timesteps(self.role), self.seed, **self.ppo)
            root = self.run_root or default_run_root()
            self.run_dir = root / f"{self.role}-{config_key(cfg)}"
            if not (self.run_dir / MODEL_FILE).exists():
                if not self.train:
                    raise FileNotFoundError(f"no trained ppo policy for this config at {self.run_dir} and train=false")
                train_ppo(spec.id, train_kw, self.run_dir, self._timesteps(self.role), seed=self.seed,
                          eval_kwargs=train_env_kwargs(spec.kwargs, "test"), progress=self.progress, **self.ppo)
        self.model, cfg = load_policy(self.run_dir)
        self.codec = NumericCodec.for_env(base, getattr(base, "text_observation_space", base.observation_space))
        if self.codec.describe() != cfg["codec"]:
            raise ValueError(f"the policy in {self.run_dir} was trained on another observation layout or "
                             f"vocabulary than this env's; retrain it for this config")
        if self.model.action_space != (base.action_space if base.action_mode == "index" else
                                       _index_space(base)):
            raise ValueError(f"the policy in {self.run_dir} has action space {self.model.action_space}; this env "
                             f"needs {_index_space(base)}")

    def act(self, observation: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
        """One action (see ``act_batch``)."""
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]] | None = None) -> list[Any]:
        """Deterministic policy actions: indices in index mode, the answer text (or a description) in text mode."""
        if self.model is None:
            raise RuntimeError("PPOAgent.act called before bind(env)")
        infos = list(infos) if infos is not None else [None] * len(observations)
        if getattr(self.env, "obs_mode", "text") == "numeric":
            enc = [dict(o) for o in observations]
        else:
            enc = [self.codec.encode(o) for o in observations]
        acts, _ = self.model.predict({k: np.stack([o[k] for o in enc]) for k in enc[0]}, deterministic=True)
        out: list[Any] = []
        for a, info in zip(acts, infos):
            if self.role == "speaker":
                vec = np.asarray(a, dtype=np.int64)
                if self.action_mode == "index":
                    out.append(vec)
                    continue
                if not info or "episode_id" not in info:
                    raise ValueError("the ppo speaker renders its slot choice for the episode; pass infos")
                text, _err = self.env.render_action(self.env.episode(info["episode_id"]), vec)
                out.append(text if text is not None else "")
            else:
                out.append(int(a) if self.action_mode == "index" else answer_text(self.role, int(a)))
        return out


def _index_space(base: Any) -> Any:
    """The action space the bound env would have in index mode."""
    from gymnasium import spaces

    if base.role == "speaker":
        return spaces.MultiDiscrete([len(base.slot_values[k]) + 1 for k in base.slot_keys])
    return spaces.Discrete(2 if base.role == "recognition" else base.k)


__all__ = ["PPOAgent"]
