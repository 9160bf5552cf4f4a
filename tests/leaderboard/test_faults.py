"""Fault tests in real processes: two concurrent lewis-eval runs on one store, and a SIGKILLed eval resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from leaderboard.evaluate import evaluate, write_samples
from leaderboard.store import MEAN_SEED, ResultStore

ROOT = Path(__file__).resolve().parents[2]


def _suite_file(tmp_path: Path, tiny_suite, **over) -> Path:
    d = tiny_suite.to_dict()
    d.update(over)
    p = tmp_path / "tiny-v0.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


RUNNER = """
import sys
from tests.leaderboard.slow_agent import ensure_registered
ensure_registered()
from leaderboard.cli import eval_main
raise SystemExit(eval_main(sys.argv[1:]))
"""


def _launch(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUNNER, *args], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sample_files_use_unique_temp_names(tmp_path):
    """Another writer holding the old fixed temp name (<file>.tmp) no longer breaks this one."""
    target = tmp_path / "speaker_seed2.jsonl"
    (tmp_path / "speaker_seed2.jsonl.tmp").mkdir()  # what a concurrent run's fixed temp file would occupy
    write_samples(target, [{"a": 1}, {"a": 2}])
    assert [json.loads(x) for x in target.read_text().splitlines()] == [{"a": 1}, {"a": 2}]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and p.is_file()]


@pytest.mark.slow
def test_two_concurrent_evals_of_one_agent_on_one_store_both_succeed(tiny_suite, tmp_path):
    suite = _suite_file(tmp_path, tiny_suite)
    args = ["agent=slow-random", "agent.delay=0.0", f"suite={suite}", f"store={tmp_path / 'r.sqlite'}",
            f"samples={tmp_path / 'samples'}", "n_resamples=50", "progress=false", "board=false", "resume=false"]
    procs = [_launch(args, tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    with ResultStore(tmp_path / "r.sqlite") as st:
        rows = st.rows(agent="slow-random")
    # 5 tasks x (2 seeds + mean): one row per key, never duplicated or half-written
    assert len(rows) == 15
    files = sorted((tmp_path / "samples").rglob("*.jsonl"))
    assert len(files) == 10 and all(f.read_text().count("\n") == 16 for f in files)
    assert not [f for f in (tmp_path / "samples").rglob("*.tmp")]


@pytest.mark.slow
def test_killed_eval_resumes_keeping_done_seeds(tiny_suite, tmp_path):
    from tests.leaderboard.slow_agent import ensure_registered

    name = ensure_registered()
    suite = _suite_file(tmp_path, tiny_suite)
    store = tmp_path / "r.sqlite"
    args = [f"agent={name}", "agent.delay=0.15", f"suite={suite}", f"store={store}", "samples=none",
            "n_resamples=50", "progress=false", "board=false", "batch_size=4"]
    proc = _launch(args, tmp_path)
    done: list[tuple] = []
    deadline = time.time() + 90
    while time.time() < deadline and len(done) < 3:
        time.sleep(0.2)
        if store.exists():
            try:
                with sqlite3.connect(store) as con:
                    done = con.execute("SELECT task, seed, created_at FROM results WHERE seed != -1").fetchall()
            except sqlite3.OperationalError:
                done = []
    assert len(done) >= 3, "the eval never stored a finished (task, seed)"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with ResultStore(store) as st:
        kept = {(r.task, r.seed): r for r in st.rows(agent=name) if r.seed != MEAN_SEED}
    assert 3 <= len(kept) < 10  # killed mid-run: some seeds done, not all
    assert con_integrity(store) == "ok"

    res = evaluate(name, suite, agent_kwargs={"delay": 0.15}, store=store, n_resamples=50, progress=False,
                   batch_size=4)
    assert set(res.reused) == set(kept)  # every finished seed is read back, none played again
    assert set(res.computed) == {(t, s) for t in tiny_suite.tasks for s in (0, 1)} - set(kept)
    with ResultStore(store) as st:
        after = {(r.task, r.seed): r for r in st.rows(agent=name)}
    assert len(after) == 15
    for key, r in kept.items():
        assert after[key].created_at == r.created_at and after[key].metrics == r.metrics
    # the resumed result equals an uninterrupted run's
    fresh = evaluate(name, suite, agent_kwargs={"delay": 0.0}, store=None, n_resamples=50, progress=False,
                     batch_size=4)
    for t in tiny_suite.tasks:
        assert res.summaries[t]["mean"]["metrics"] == fresh.summaries[t]["mean"]["metrics"]
        assert res.summaries[t]["mean"]["ci"] == fresh.summaries[t]["mean"]["ci"]


def con_integrity(path: Path) -> str:
    with sqlite3.connect(path) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0]


def test_rerun_with_other_episode_cap_or_resume_false_recomputes(tiny_suite, tmp_path):
    store = tmp_path / "r.sqlite"
    kw = {"store": store, "n_resamples": 20, "progress": False, "tasks": ["listener"], "seeds": [0]}
    first = evaluate("random", tiny_suite, max_episodes=8, **kw)
    assert first.computed == [("listener", 0)] and not first.reused
    again = evaluate("random", tiny_suite, max_episodes=8, **kw)
    assert again.reused == [("listener", 0)] and not again.computed
    assert again.summaries["listener"]["mean"] == first.summaries["listener"]["mean"]
    other_cap = evaluate("random", tiny_suite, max_episodes=4, **kw)
    assert other_cap.computed == [("listener", 0)]
    forced = evaluate("random", tiny_suite, max_episodes=4, resume=False, **kw)
    assert forced.computed == [("listener", 0)] and not forced.reused
    other_cfg = evaluate("random", tiny_suite, agent_kwargs={"seed": 5}, max_episodes=4, **kw)
    assert other_cfg.computed == [("listener", 0)]


def test_old_store_without_new_columns_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:  # the first release's table, without agent_flags / chance
        con.execute("CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL, agent_config "
                    "TEXT NOT NULL, agent_config_hash TEXT NOT NULL, suite TEXT NOT NULL, suite_version TEXT NOT NULL, "
                    "episodes_hash TEXT, task TEXT NOT NULL, role TEXT NOT NULL, seed INTEGER NOT NULL, primary_metric "
                    "TEXT NOT NULL, metrics TEXT NOT NULL, ci TEXT NOT NULL, n_episodes INTEGER NOT NULL, "
                    "dataset_fingerprint TEXT, versions TEXT NOT NULL, git_commit TEXT, created_at TEXT NOT NULL, "
                    "UNIQUE (agent, agent_config_hash, suite, suite_version, task, seed))")
        con.execute("INSERT INTO results (agent, agent_config, agent_config_hash, suite, suite_version, task, role, "
                    "seed, primary_metric, metrics, ci, n_episodes, versions, created_at) VALUES ('random', '{}', "
                    "'abcdef012345', 'synthetic', 'v0', 'listener', 'listener', -1, 'accuracy', "
                    "'{\"accuracy\": 0.25}', '{}', 10, '{}', 'x')")
    with ResultStore(path) as st:
        (row,) = st.rows()
    assert row.agent_flags == {} and row.chance is None and row.data_record == {}
    assert row.metrics == {"accuracy": 0.25}

