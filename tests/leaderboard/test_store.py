"""The SQLite store: upsert idempotence, concurrent writers, transactions, round-trips."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from leaderboard.store import MEAN_SEED, ResultRow, ResultStore


def make_row(agent: str = "rule", task: str = "listener", seed: int = 0, acc: float = 0.9,
             cfg_hash: str = "abcdef012345") -> ResultRow:
    return ResultRow(agent=agent, agent_config={"k": 1}, agent_config_hash=cfg_hash, suite="synthetic",
                     suite_version="v0", task=task, role=task if task != "main" else "listener", seed=seed,
                     primary_metric="accuracy", metrics={"accuracy": acc, "parse_error_rate": 0.0},
                     ci={"accuracy": [acc - 0.1, min(acc + 0.1, 1.0)]}, n_episodes=10, episodes_hash="e" * 16,
                     dataset_fingerprint="f" * 16, versions={"lewis-bench": "0.1.0"}, git_commit=None,
                     created_at="2026-01-01T00:00:00+00:00")


def test_roundtrip_and_rerun_replaces(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as st:
        st.upsert([make_row(seed=0), make_row(seed=1), make_row(seed=MEAN_SEED)])
        assert st.count() == 3
        st.upsert([make_row(seed=0, acc=0.5)])  # re-run of the same evaluation: replaced, not duplicated
        assert st.count() == 3
        rows = {r.seed: r for r in st.rows()}
        assert rows[0].metrics["accuracy"] == 0.5 and rows[1].metrics["accuracy"] == 0.9
        assert rows[0].ci["accuracy"] == [0.4, 0.6]
        assert [r.seed for r in st.rows(seeds="mean")] == [MEAN_SEED]
        assert len(st.rows(seeds="per_seed")) == 2
        assert st.suites() == [("synthetic", "v0")]
        # a different config hash is a different entry
        st.upsert([make_row(seed=0, cfg_hash="0123456789ab")])
        assert st.count() == 4
    with ResultStore(path) as st:  # durable across connections
        assert st.count() == 4
        mode = st._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode.lower() == "wal"


def test_failed_batch_writes_nothing(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as st:
        bad = make_row(seed=1)
        bad.created_at = ""
        with pytest.raises(ValueError, match="created_at"):
            st.upsert([make_row(seed=0), bad])
        assert st.count() == 0
        # a constraint failure half-way through rolls the whole transaction back
        broken = make_row(seed=2)
        broken.agent = None  # NOT NULL violated on the second row
        with pytest.raises(sqlite3.IntegrityError):
            st.upsert([make_row(seed=3), broken])
        assert st.count() == 0


def test_nan_metrics_survive(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as st:
        r = make_row()
        r.metrics["negative_accuracy"] = float("nan")
        st.upsert([r])
        got = st.rows()[0]
        assert got.metrics["negative_accuracy"] != got.metrics["negative_accuracy"]  # NaN


def _writer(path: str, worker: int, n: int) -> None:
    st = ResultStore(path, timeout=60)
    for i in range(n):
        # every worker rewrites the shared keys (seed 0..2) and its own keys
        st.upsert([make_row(agent="shared", seed=i % 3, acc=worker / 10),
                   make_row(agent=f"w{worker}", task="listener", seed=i)])
    st.close()


def test_concurrent_writers_are_safe(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ResultStore(path).close()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with ResultStore(path) as st:
        rows = st.rows()
        shared = [r for r in rows if r.agent == "shared"]
        assert len(shared) == 3  # upserted, never duplicated
        assert len(rows) == 3 + 4 * 15
        assert all(r.metrics["accuracy"] in {0.0, 0.1, 0.2, 0.3} for r in shared)
