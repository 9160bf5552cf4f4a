"""README "Your own photos": every command, in order, on a tree of REAL photographs in each arrangement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import lewis_env  # noqa: F401  (registers the env ids)
from lewis_env.data.registry import clear_memo
from tests.photos import LAYOUTS, photo_tree

pytest.importorskip("skimage")
pytest.importorskip("transformers")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_readme_own_photos_steps(layout, tmp_path, capsys, monkeypatch):
    from leaderboard.cli import board_main, eval_main
    from lewis_env.data.cli import main as data_main

    monkeypatch.delenv("LEWIS_CLIP_PRETRAINED", raising=False)
    root = photo_tree(tmp_path / "photos", layout)
    clear_memo()
    # stats
    assert data_main(["stats", f"folder:{root}", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["concepts"] == 9 and stats["categories"] == 1
    # negatives (no weights: random other concepts, recorded in the file)
    assert data_main(["negatives", f"folder:{root}", "--k", "3", "--out", str(tmp_path / "negatives.json")]) == 0
    assert json.loads((tmp_path / "negatives.json").read_text())["method"] == "random"
    # describe (the tiny random-weight Qwen2-VL stands in for a real checkpoint)
    assert data_main(["describe", f"folder:{root}", "--agent", "qwen-vl", "agent.model=tiny",
                      "agent.max_new_tokens=6", "--out", str(root / "descriptions.json"), "--image-size", "64",
                      "--no-progress"]) == 0
    clear_memo()
    # envs: every task that shows descriptions now makes with defaults
    env = gym.make("lewis_env/Identification-v0", dataset=f"folder:{root}")
    obs, info = env.reset(seed=0)
    assert info["target_concept"] in obs["database"] or "A." in obs["database"]
    # eval: random at chance on a suite built from the folder; rule refused (no attributes)
    store = tmp_path / "r.sqlite"
    common = [f"data=folder:{root}", f"store={store}", "progress=false", "n_resamples=50", "samples=none",
              "board=false", "auto.seeds=[0]", "auto.image_size=64"]
    assert eval_main(["agent=random", *common]) == 0
    out = capsys.readouterr().out
    assert "recognition=" in out and "identification=" in out
    eval_main(["agent=rule", *common])
    said = capsys.readouterr()
    assert "ground-truth attributes" in said.out + said.err  # refused, saying why
    # board: the folder's suite has its own section
    assert board_main(["--store", str(store), "--out", str(tmp_path / "board")]) == 0
    md = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "folder-photos" in md and "random" in md


@pytest.mark.slow
def test_readme_train_a_speaker_on_photos_with_the_clip_listener(tmp_path):
    root = photo_tree(tmp_path / "photos", "split_above")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "agents.grpo.cli", "train=speaker_tiny_cpu", f"train.env.kwargs.dataset=folder:{root}",
           "train.env.kwargs.listener=clip",
           "++train.env.kwargs.listener_kwargs={model_name: ViT-S-32, allow_random_init: true}",
           "train.env.kwargs.image_size=64", "train.max_steps=2", "train.warm_start.steps=0", "train.num_generations=4",
           "train.per_device_train_batch_size=8", "train.eval_max_episodes=8", f"train.output_dir={out}",
           "train.wandb.mode=disabled"]
    res = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and "accuracy" in metrics["before"] and "accuracy" in metrics["after"]
