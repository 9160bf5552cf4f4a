"""``lewis-data describe``: the tiny Qwen2-VL over real photos, batched, resumable after a kill (#17 item 4)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

import lewis_env.envs  # noqa: F401
from lewis_env.data.registry import clear_memo
from lewis_env.descriptions import DB_FORMAT, load_database
from tests.photos import photo_tree

pytest.importorskip("skimage")
pytest.importorskip("transformers")
REPO = Path(__file__).resolve().parents[2]
AGENT_ARGS = ["agent.model=tiny", "agent.max_new_tokens=8", "agent.batch_size=2"]


def _cmd(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lewis_env.data.cli", "describe", f"folder:{root}", "--agent", "qwen-vl",
            *AGENT_ARGS, "--out", str(out), "--batch-size", "2", "--images", "0", "--image-size", "64", *extra]


@pytest.mark.slow
def test_describe_writes_the_database_the_envs_read_and_resumes_after_a_kill(tmp_path):
    root = photo_tree(tmp_path / "photos", "split_above", concepts=["cat", "coffee", "rocket", "astronaut",
                                                                     "clock"])
    out = root / "descriptions.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # a first run, killed once a few batches are safely on disk
    proc = subprocess.Popen(_cmd(root, out, "--no-progress"), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    part = out.with_name(out.name + ".partial.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if part.exists() and len(part.read_text().splitlines()) >= 5:  # header + 2 batches of 2
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    lines = part.read_text().splitlines()
    before = {json.loads(x)["image_id"]: json.loads(x)["text"] for x in lines[1:] if x.strip().endswith("}")}
    assert 4 <= len(before) < 15
    # the same command again continues: only the rest is described, the finished part is kept verbatim
    res = subprocess.run(_cmd(root, out), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "describe photos" in res.stderr and f"{len(before)}/15" in res.stderr  # tqdm resumed at the kill
    db = json.loads(out.read_text())
    assert db["format"] == DB_FORMAT and not part.exists()
    assert db["meta"]["agent"] == "qwen-vl" and db["meta"]["agent_flags"]["random_init"] is True
    assert sorted(db["concept_dict"]) == ["astronaut", "cat", "clock", "coffee", "rocket"]
    texts = {Path(p).parent.name + "/" + Path(p).name: t for c in db["concept_dict"].values()
             for p, t in zip(c["images"], c["descriptions"])}
    assert len(texts) == 15
    for image_id, text in before.items():
        from lewis_env.parsing import extract_description

        assert texts[image_id] == (extract_description(text) or text)
    # the envs that show descriptions now make with defaults and read the database
    clear_memo()
    assert set(load_database(out)) >= set(db["concept_dict"])
    ident = gym.make("lewis_env/Identification-v0", dataset=f"folder:{root}", k=4)
    obs, info = ident.reset(seed=0)
    from lewis_env.envs.spaces import sanitize_text

    first = db["concept_dict"][info["candidate_ids"][0]]["info"]
    assert sanitize_text(first)[:20] in obs["database"]  # the env shows the database's text (made printable)


def test_describe_refuses_a_partial_run_with_other_settings(tmp_path):
    from agents.describe import describe_dataset
    from baselines.random_agent import RandomAgent
    from lewis_env.data.cli import main
    from lewis_env.data.loaders.folder import load_folder

    root = photo_tree(tmp_path / "p", "flat", concepts=["cat", "coffee"], n_train=2, n_test=1)
    out = tmp_path / "db.json"
    (tmp_path / "db.json.partial.jsonl").write_text(json.dumps({"header": {"agent": "other"}}) + "\n")
    with pytest.raises(ValueError, match="other settings.*--restart"):
        describe_dataset(load_folder(root), RandomAgent(), out, agent_name="random", progress=False)
    path = describe_dataset(load_folder(root), RandomAgent(), out, agent_name="random", progress=False, restart=True)
    assert sorted(json.loads(path.read_text())["concept_dict"]) == ["cat", "coffee"]
    with pytest.raises(SystemExit) as exc:  # agent options must say agent.KEY=VALUE
        main(["describe", f"folder:{root}", "--agent", "qwen-vl", "seed=1", "--out", str(out)])
    assert exc.value.code == 2
