"""The ppo baseline: features over every role, seeded + resumable training, the agent on suite envs, learning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import gymnasium as gym
import torch

from baselines.ppo import PPOAgent
from baselines.ppo_train import load_policy, train_env_kwargs, train_ppo
from tests.baselines.conftest import ENV_IDS, TINY_DATASET, play

#: A few-second PPO: 2 envs x 16 steps per rollout, one rollout per chunk.
TINY_PPO = {"n_envs": 2, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "rollouts_per_chunk": 1,
            "train_episodes": 200, "dim": 8, "channels": [4, 8, 8]}
ENV_KW = {"dataset": dict(TINY_DATASET), "k": 4, "image_size": 32, "seed": 0}


def _params(run: Path) -> dict[str, torch.Tensor]:
    model, _ = load_policy(run)
    return {k: v.clone() for k, v in model.policy.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("role", ["listener", "recognition", "identification", "speaker"])
def test_training_runs_and_saves_config(role: str, tmp_path: Path) -> None:
    kw = train_env_kwargs({**ENV_KW, **({"listener": "rule"} if role == "speaker" else {})})
    run = train_ppo(ENV_IDS[role], kw, tmp_path / role, 32, seed=0, eval_episodes=8, progress=False, **TINY_PPO)
    cfg = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert cfg["env_kwargs"]["split"] == "train" and cfg["ppo"]["n_envs"] == 2
    assert cfg["codec"]["vocabulary"][:2] == ["<pad>", "<unk>"]
    assert metrics["timesteps"] == 32 and 0.0 <= metrics["heldout_accuracy_after"] <= 1.0
    assert metrics["wall_s"] > 0 and metrics["cpu_s"] > 0
    model, _ = load_policy(run)
    env = gym.make(ENV_IDS[role], **train_env_kwargs(kw, "test"))
    obs, _ = env.reset(seed=0)
    act, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(act, dtype=env.action_space.dtype).reshape(env.action_space.shape))


def test_same_seed_same_weights_and_resume_equals_uninterrupted(tmp_path: Path) -> None:
    kw = train_env_kwargs(ENV_KW)
    full = train_ppo(ENV_IDS["listener"], kw, tmp_path / "a", 64, seed=3, eval_episodes=4, progress=False,
                     **TINY_PPO)
    again = train_ppo(ENV_IDS["listener"], kw, tmp_path / "b", 64, seed=3, eval_episodes=4, progress=False,
                      **TINY_PPO)
    assert _same(_params(full), _params(again))
    # a run that stopped after its first chunk: drop what the second chunk wrote, resume
    (again / "model.zip").unlink()
    ck = sorted((again / "checkpoints").glob("chunk_*.zip"))
    assert [p.name for p in ck] == ["chunk_00001.zip", "chunk_00002.zip"]
    ck[-1].unlink()
    resumed = train_ppo(ENV_IDS["listener"], kw, again, 64, seed=3, eval_episodes=4, progress=False, **TINY_PPO)
    assert json.loads((resumed / "metrics.json").read_text())["resumed_from_chunk"] == 1
    assert _same(_params(full), _params(resumed))
    other = train_ppo(ENV_IDS["listener"], kw, tmp_path / "c", 64, seed=4, eval_episodes=4, progress=False,
                      **TINY_PPO)
    assert not _same(_params(full), _params(other))


def test_other_config_in_run_dir_is_refused(tmp_path: Path) -> None:
    kw = train_env_kwargs(ENV_KW)
    train_ppo(ENV_IDS["listener"], kw, tmp_path, 32, seed=0, eval_episodes=4, progress=False, **TINY_PPO)
    with pytest.raises(FileExistsError, match="different run"):
        train_ppo(ENV_IDS["listener"], kw, tmp_path, 32, seed=1, eval_episodes=4, progress=False, **TINY_PPO)


@pytest.mark.slow
def test_killed_training_resumes_from_last_complete_checkpoint(tmp_path: Path) -> None:
    """SIGKILL a CLI run once its first checkpoint exists; the resumed run ends where an uninterrupted one does."""
    settings = {**TINY_PPO, "n_steps": 64, "batch_size": 128}
    args = [sys.executable, "-m", "baselines.ppo_train", "--role", "listener", "--env-kwargs", json.dumps(ENV_KW),
            "--timesteps", "256", "--seed", "0", "--eval-episodes", "4", "--out", str(tmp_path / "killed"),
            "--set", *[f"{k}={json.dumps(v)}" for k, v in settings.items()]]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "killed" / "checkpoints" / "chunk_00001.zip"
    deadline = time.time() + 50
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists() and not (tmp_path / "killed" / "model.zip").exists()
    kw = train_env_kwargs(ENV_KW)
    resumed = train_ppo(ENV_IDS["listener"], kw, tmp_path / "killed", 256, seed=0, eval_episodes=4,
                        eval_kwargs=train_env_kwargs(ENV_KW, "test"), progress=False, **settings)
    assert json.loads((resumed / "metrics.json").read_text())["resumed_from_chunk"] >= 1
    full = train_ppo(ENV_IDS["listener"], kw, tmp_path / "full", 256, seed=0, eval_episodes=4,
                     eval_kwargs=train_env_kwargs(ENV_KW, "test"), progress=False, **settings)
    assert _same(_params(full), _params(resumed))


def test_agent_trains_on_train_split_then_plays_heldout_text_env(tmp_path: Path) -> None:
    env = gym.make(ENV_IDS["listener"], **ENV_KW, split="test", num_episodes=12)
    agent = PPOAgent(timesteps=32, run_root=str(tmp_path), progress=False, **TINY_PPO)
    infos = play(agent, env)
    assert len(infos) == 12 and all(i["parse_error"] is None for i in infos)  # letters the env parses
    run = agent.run_dir
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["env_kwargs"]["split"] == "train" and "num_episodes" not in cfg["env_kwargs"]
    stamp = (run / "model.zip").stat().st_mtime_ns
    again = PPOAgent(timesteps=32, run_root=str(tmp_path), progress=False, **TINY_PPO)
    again.bind(env)  # cached: same config -> same run folder, no retraining
    assert again.run_dir == run and (run / "model.zip").stat().st_mtime_ns == stamp
    # index mode and a saved policy folder work too
    idx = gym.make(ENV_IDS["listener"], **ENV_KW, split="test", action_mode="index", num_episodes=4)
    (tmp_path / "saved").mkdir()
    os.symlink(run, tmp_path / "saved" / "listener")
    infos = play(PPOAgent(policy=str(tmp_path / "saved")), idx)
    assert all(i["parse_error"] is None for i in infos)


def test_agent_refuses_other_layout_and_missing_policy(tmp_path: Path) -> None:
    env = gym.make(ENV_IDS["listener"], **ENV_KW, split="test", num_episodes=4)
    agent = PPOAgent(timesteps=32, run_root=str(tmp_path), progress=False, **TINY_PPO)
    agent.bind(env)
    (tmp_path / "saved").mkdir()
    os.symlink(agent.run_dir, tmp_path / "saved" / "listener")
    k3 = gym.make(ENV_IDS["listener"], **{**ENV_KW, "k": 3}, split="test", num_episodes=4)
    with pytest.raises(ValueError, match="action space"):
        PPOAgent(policy=str(tmp_path / "saved")).bind(k3)
    with pytest.raises(FileNotFoundError, match="no finished PPO run"):
        PPOAgent(policy=str(tmp_path / "nothing")).bind(env)
    with pytest.raises(FileNotFoundError, match="train=false"):
        PPOAgent(timesteps=64, run_root=str(tmp_path), train=False, **TINY_PPO).bind(env)
    with pytest.raises(ValueError, match="unknown PPO setting"):
        PPOAgent(n_env=3)


def test_speaker_agent_says_template_descriptions(tmp_path: Path) -> None:
    env = gym.make(ENV_IDS["speaker"], **ENV_KW, split="test", listener="rule", num_episodes=6)
    infos = play(PPOAgent(timesteps=32, run_root=str(tmp_path), progress=False, **TINY_PPO), env)
    assert all(i["parse_error"] is None and i["reward_terms"]["format"] == 1.0 for i in infos)


@pytest.mark.slow
def test_listener_policy_learns_the_colour_game(tmp_path: Path) -> None:
    """Held-out (unseen concepts) accuracy of the colour-game listener rises well above where it started."""
    world = {"kind": "synthetic", "num_concepts": 40, "num_categories": 4, "images_per_concept": 20, "image_size": 32,
             "seed": 0, "vary": ["color"], "scene": "plain"}
    kw = {"dataset": world, "k": 4, "image_size": 32}
    run = train_ppo(ENV_IDS["listener"], train_env_kwargs(kw), tmp_path, 3072, seed=0, eval_episodes=80,
                    eval_kwargs=train_env_kwargs(kw, "test"), progress=False, learning_rate=2e-3,
                    rollouts_per_chunk=2)
    m = json.loads((run / "metrics.json").read_text())
    assert m["heldout_accuracy_after"] >= m["heldout_accuracy_before"] + 0.15, m
