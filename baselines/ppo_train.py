"""Training for the ``ppo`` baseline: Stable-Baselines3 PPO on numeric observations, seeded and resumable.

``train_ppo`` trains one role on ``obs_mode="numeric", action_mode="index"`` envs (``DummyVecEnv``), in
chunks of whole rollouts: before chunk ``c`` the envs and torch are re-seeded from ``(seed, c)`` and a
checkpoint is written atomically after it, so a run killed at any point resumes from its last complete
chunk and ends with the same weights as an uninterrupted run. The run folder holds ``config.json`` (env id
and kwargs, PPO and network settings, the observation vocabulary and layout), ``checkpoints/``, the final
``model.zip`` and ``metrics.json`` (held-out accuracy before/after, wall and CPU time).

    python -m baselines.ppo_train --suite synthetic-v0 --role listener --timesteps 20000 --out runs/ppo
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROLE_IDS: dict[str, str] = {"listener": "lewis_env/LewisListener-v0", "recognition": "lewis_env/Recognition-v0",
                            "identification": "lewis_env/Identification-v0", "speaker": "lewis_env/LewisSpeaker-v0"}
#: PPO and network settings (a run's config; any key can be overridden).
DEFAULTS: dict[str, Any] = {"n_envs": 8, "n_steps": 64, "batch_size": 128, "n_epochs": 8, "learning_rate": 1e-3,
                            "ent_coef": 0.01, "gamma": 0.0, "gae_lambda": 1.0, "clip_range": 0.2, "dim": 32,
                            "head_gain": 1.0, "channels": [16, 32, 32], "pi": [], "vf": [64], "rollouts_per_chunk": 4,
                            "threads": 1, "train_episodes": 20_000}
MODEL_FILE = "model.zip"


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def train_env_kwargs(env_kwargs: Mapping[str, Any], split: str = "train") -> dict[str, Any]:
    """The numeric, index-action version of an env config on ``split``: every episode, the default episode seed.

    The suite's episode seed and episode count are dropped, so one policy serves every seed of a task.
    """
    kw = {k: v for k, v in dict(env_kwargs).items() if k not in ("num_episodes", "render_mode", "seed")}
    return {**kw, "split": split, "action_mode": "index", "obs_mode": "numeric"}


def _make_vec(env_id: str, env_kwargs: Mapping[str, Any], n: int) -> Any:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import lewis_env  # noqa: F401  (registers the env ids)

    return DummyVecEnv([lambda: gym.make(env_id, **dict(env_kwargs)) for _ in range(n)])


def run_config(env_id: str, env_kwargs: Mapping[str, Any], total_timesteps: int, seed: int = 0,
               **overrides: Any) -> dict[str, Any]:
    """The full JSON-able config of a training run (what ``config.json`` holds and the cache key hashes)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown PPO setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    ppo = {**DEFAULTS, **overrides}
    rollout = int(ppo["n_envs"]) * int(ppo["n_steps"])
    if rollout % int(ppo["batch_size"]):
        raise ValueError(f"batch_size {ppo['batch_size']} must divide n_envs * n_steps = {rollout}")
    return {"env_id": env_id, "env_kwargs": json.loads(json.dumps(dict(env_kwargs), default=str)),
            "total_timesteps": int(total_timesteps), "seed": int(seed), "ppo": ppo}


def config_key(cfg: Mapping[str, Any]) -> str:
    """Short stable hash of a run config."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def _seed_all(seed: int) -> None:
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(seed)


def _build_model(cfg: Mapping[str, Any], vec: Any) -> Any:
    from stable_baselines3 import PPO

    from baselines.ppo_features import LewisFeatures

    ppo = cfg["ppo"]
    codec = vec.envs[0].unwrapped.codec
    policy_kwargs = {"features_extractor_class": LewisFeatures, "normalize_images": False,
                     "features_extractor_kwargs": {"layout": {k: list(v) for k, v in codec.layout.items()},
                                                   "dim": int(ppo["dim"]), "channels": list(ppo["channels"])},
                     "net_arch": {"pi": list(ppo["pi"]), "vf": list(ppo["vf"])}}
    model = PPO("MultiInputPolicy", vec, n_steps=int(ppo["n_steps"]), batch_size=int(ppo["batch_size"]),
               n_epochs=int(ppo["n_epochs"]), learning_rate=float(ppo["learning_rate"]), ent_coef=float(ppo["ent_coef"]),
               gamma=float(ppo["gamma"]), gae_lambda=float(ppo["gae_lambda"]), clip_range=float(ppo["clip_range"]),
               policy_kwargs=policy_kwargs, seed=int(cfg["seed"]), device="cpu", verbose=0)
    _init_choice_head(model, vec.envs[0].unwrapped.role, float(ppo["head_gain"]))
    return model


#: Per role, the score blocks whose entries are the evidence for an action: (text or image field, image field).
CHOICE_SCORES: dict[str, tuple[tuple[str, str], ...]] = {
    "listener": (("description", "candidates"),), "identification": (("database", "query"),),
    "recognition": (("description", "query"), ("query", "reference"))}


def _init_choice_head(model: Any, role: str, gain: float) -> None:
    """Start the action head as a read-out of the match scores: logit of choice i = gain * score_i.

    Listener / identification: K scores, one per candidate / database entry; recognition: the logit of
    "yes" starts as description-query plus query-reference similarity. The head stays fully trainable.
    """
    import torch

    blocks = getattr(model.policy.features_extractor, "score_blocks", {})
    keys = [k for k in CHOICE_SCORES.get(role, ()) if k in blocks]
    if not keys or gain == 0:
        return
    net = model.policy.action_net
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        for key in keys:
            off, n_a, n_b = blocks[key]
            if role == "recognition":
                net.weight[1, off] = gain
            else:
                for i in range(n_a * n_b):
                    net.weight[i, off + i] = gain


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    ck = out / "checkpoints"
    found = []
    for p in ck.glob("chunk_*.zip") if ck.is_dir() else []:
        try:
            found.append((int(p.stem.split("_")[1]), p))
        except ValueError:
            continue
    return sorted(found)


def _atomic_save(model: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def heldout_accuracy(model: Any, env_id: str, env_kwargs: Mapping[str, Any], n_episodes: int | None = None,
                     batch: int = 64) -> float:
    """Fraction of correct episodes (``info["correct"]``) of the deterministic policy on ``env_kwargs``'s split."""
    import gymnasium as gym

    env = gym.make(env_id, **dict(env_kwargs))
    try:
        base = env.unwrapped
        ids = list(range(base.num_episodes if n_episodes is None else min(n_episodes, base.num_episodes)))
        correct = 0
        for s in range(0, len(ids), batch):
            chunk = ids[s:s + batch]
            obs = [base.observation(i) for i in chunk]
            acts, _ = model.predict({k: np.stack([o[k] for o in obs]) for k in obs[0]}, deterministic=True)
            _, infos = base.score_batch(chunk, [np.asarray(a) if base.role == "speaker" else int(a) for a in acts])
            correct += sum(bool(i["correct"]) for i in infos)
        return correct / max(len(ids), 1)
    finally:
        env.close()


def train_ppo(env_id: str, env_kwargs: Mapping[str, Any], out_dir: str | Path, total_timesteps: int,
              seed: int = 0, eval_kwargs: Mapping[str, Any] | None = None, eval_episodes: int | None = 200,
              eval_every: int = 0, progress: bool = True, overwrite: bool = False, **overrides: Any) -> Path:
    """Train (or resume) one PPO policy on ``env_kwargs`` (made numeric/index); return the run folder.

    ``eval_kwargs`` (default: the same config on ``split="test"``) is scored before and after training, and
    every ``eval_every`` chunks when > 0 (``metrics.json`` ``curve``: timesteps, wall and CPU seconds, held-out
    accuracy). A folder holding another config is refused unless ``overwrite``; a finished run is reused.
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    train_kw = {**dict(env_kwargs), "action_mode": "index", "obs_mode": "numeric"}
    cfg = run_config(env_id, train_kw, total_timesteps, seed, **overrides)
    out = Path(out_dir)
    cfg_path = out / "config.json"
    if out.exists() and any(out.iterdir()):
        old = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        old_run = {k: v for k, v in (old or {}).items() if k in cfg}
        if old_run != cfg:
            if not overwrite:
                raise FileExistsError(f"{out} holds a different run (config.json differs or is missing); pass "
                                      f"overwrite=True (--overwrite) or another output folder")
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MODEL_FILE).exists() and (out / "metrics.json").exists():
        return out
    ppo = cfg["ppo"]
    torch.set_num_threads(int(ppo["threads"]))
    rollout = int(ppo["n_envs"]) * int(ppo["n_steps"])
    chunk_steps = rollout * int(ppo["rollouts_per_chunk"])
    n_chunks = max(1, -(-int(total_timesteps) // chunk_steps))
    # more episodes than one per (concept, image): fresh negatives' images and shuffles on every pass
    vec_kw = {**cfg["env_kwargs"], **({"num_episodes": int(ppo["train_episodes"])} if ppo["train_episodes"] else {})}
    vec = _make_vec(env_id, vec_kw, int(ppo["n_envs"]))
    eval_kw = dict(eval_kwargs) if eval_kwargs is not None else {**cfg["env_kwargs"], "split": "test"}
    cfg_full = {**cfg, "codec": vec.envs[0].unwrapped.codec.describe(), "eval_kwargs": eval_kw}
    _write_json(cfg_path, cfg_full)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    done = _checkpoints(out)
    start = 0
    metrics: dict[str, Any] = {}
    if (out / "metrics.json").exists():
        metrics = json.loads((out / "metrics.json").read_text())
    if done:
        start, path = done[-1]
        model = PPO.load(path, env=vec, device="cpu")
        metrics["resumed_from_chunk"] = start
    else:
        _seed_all(int(seed))
        model = _build_model(cfg, vec)
        metrics["heldout_accuracy_before"] = heldout_accuracy(model, env_id, eval_kw, eval_episodes)
        _write_json(out / "metrics.json", metrics)

    class _Bar(BaseCallback):
        def __init__(self, bar: Any) -> None:
            super().__init__()
            self.bar, self.rewards = bar, []

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            self.rewards.extend(float(r) for r in self.locals["rewards"])
            return True

    curve = list(metrics.get("train_reward", []))
    with tqdm(total=n_chunks * chunk_steps, initial=start * chunk_steps, desc=f"ppo {cfg['env_id'].split('/')[-1]}",
              unit="step", disable=not progress) as bar:
        for c in range(start, n_chunks):
            _seed_all(int(seed) * 100_003 + c)
            vec.seed(int(seed) * 100_003 + c)
            model._last_obs = None  # every chunk starts from a fresh seeded reset (resume == uninterrupted)
            cb = _Bar(bar)
            model.learn(chunk_steps, reset_num_timesteps=False, callback=cb, progress_bar=False)
            curve.append(float(np.mean(cb.rewards)) if cb.rewards else 0.0)
            bar.set_postfix_str(f"reward {curve[-1]:.2f}")
            _atomic_save(model, out / "checkpoints" / f"chunk_{c + 1:05d}.zip")
            if eval_every > 0 and (c + 1) % eval_every == 0 and c + 1 < n_chunks:
                metrics.setdefault("curve", []).append({
                    "timesteps": int(model.num_timesteps), "wall_s": round(time.perf_counter() - t0, 1),
                    "cpu_s": round(_cpu_seconds() - c0, 1),
                    "heldout_accuracy": heldout_accuracy(model, env_id, eval_kw, eval_episodes)})
            _write_json(out / "metrics.json", {**metrics, "train_reward": curve, "chunks_done": c + 1})
            for old_c, p in _checkpoints(out)[:-2]:  # keep the last two complete checkpoints
                p.unlink(missing_ok=True)
    vec.close()
    metrics.update(train_reward=curve, chunks_done=n_chunks, timesteps=int(model.num_timesteps),
                   heldout_accuracy_after=heldout_accuracy(model, env_id, eval_kw, eval_episodes),
                   eval_episodes=eval_episodes, wall_s=round(time.perf_counter() - t0, 1),
                   cpu_s=round(_cpu_seconds() - c0, 1))
    if eval_every > 0:
        metrics.setdefault("curve", []).append({k: metrics[k] for k in ("timesteps", "wall_s", "cpu_s")}
                                               | {"heldout_accuracy": metrics["heldout_accuracy_after"]})
    _atomic_save(model, out / MODEL_FILE)
    _write_json(out / "metrics.json", metrics)
    return out


def load_policy(run_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """(SB3 PPO model, config) of a finished run folder; a missing model is a clear error."""
    from stable_baselines3 import PPO

    run = Path(run_dir)
    if not (run / MODEL_FILE).exists() or not (run / "config.json").exists():
        raise FileNotFoundError(f"{run} has no finished PPO run ({MODEL_FILE} + config.json); train one with "
                                f"`python -m baselines.ppo_train` or let the ppo agent train it (train=true)")
    return PPO.load(run / MODEL_FILE, device="cpu"), json.loads((run / "config.json").read_text())


def default_run_root() -> Path:
    """Where the agent caches trained policies: ``$LEWIS_BENCH_CACHE/ppo`` (or ``~/.cache/lewis_bench/ppo``)."""
    from lewis_env.data.synthetic import default_cache_dir

    return Path(default_cache_dir()) / "ppo"


def _suite_env(suite: str, role: str) -> tuple[str, dict[str, Any]]:
    from leaderboard.suites import load_suite

    s = load_suite(suite, verify=False)
    for task in s.tasks:
        if s.task(task).role == role:
            return s.task(task).env_id, s.env_config(task, 0)
    raise ValueError(f"suite {suite!r} has no {role} task")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: train one role's policy on a suite's (or an explicit env config's) train split."""
    p = argparse.ArgumentParser(prog="python -m baselines.ppo_train", description=__doc__.split("\n\n")[0])
    p.add_argument("--role", choices=sorted(ROLE_IDS), default="listener")
    p.add_argument("--suite", default=None, help="train on this suite's env config (train split)")
    p.add_argument("--env-kwargs", default=None, help="JSON env kwargs instead of a suite (split is set to train)")
    p.add_argument("--timesteps", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--eval-episodes", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=0, help="also score held-out every N chunks")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help=f"PPO settings {sorted(DEFAULTS)}")
    a = p.parse_args(argv)
    if (a.suite is None) == (a.env_kwargs is None):
        p.error("give exactly one of --suite and --env-kwargs")
    if a.suite:
        env_id, kw = _suite_env(a.suite, a.role)
    else:
        env_id, kw = ROLE_IDS[a.role], json.loads(a.env_kwargs)
    over = {}
    for item in a.set:
        k, _, v = item.partition("=")
        over[k] = json.loads(v)
    out = train_ppo(env_id, train_env_kwargs(kw, "train"), a.out, a.timesteps, seed=a.seed,
                    eval_kwargs=train_env_kwargs(kw, "test"), eval_episodes=a.eval_episodes, eval_every=a.eval_every,
                    overwrite=a.overwrite,
                    **over)
    m = json.loads((out / "metrics.json").read_text())
    print(json.dumps({k: m.get(k) for k in ("heldout_accuracy_before", "heldout_accuracy_after", "timesteps",
                                            "wall_s", "cpu_s", "eval_episodes", "curve")}))
    return 0




__all__ = ["DEFAULTS", "MODEL_FILE", "ROLE_IDS", "config_key", "default_run_root", "heldout_accuracy", "load_policy", "run_config",
           "train_env_kwargs", "train_ppo"]


if __name__ == "__main__":
    raise SystemExit(main())
