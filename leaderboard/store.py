"""A durable SQLite results store: one row per (agent, config hash, suite version, task, seed), upserted.

Writes happen in one transaction each (``with conn:``), the database runs in WAL mode with a busy
timeout so several evaluation processes can write at once, and re-running an evaluation replaces its
rows (UNIQUE key + ``ON CONFLICT DO UPDATE``) instead of duplicating them. Seed ``-1`` holds the
mean over seeds with its seed-stratified bootstrap CI.

Each finished (task, seed) is written at once, together with its episode records (table ``episodes``,
zlib-compressed JSON), in one transaction: a killed evaluation keeps every seed it finished, and a
rerun of the same agent config on the same suite hash reads them back instead of recomputing
(lm-eval's ``--use_cache`` habit). Each row also carries the agent's flags (oracle, random_init,
display_name, ...), the task's chance level, and the env's data record (dataset, split, the negatives
method used, description/question sources, the listener judging a speaker and its flags).
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STORE = "./lewis_results.sqlite"
#: The seed value of the row that holds the mean over seeds.
MEAN_SEED = -1

_COLUMNS = ("agent", "agent_config", "agent_config_hash", "suite", "suite_version", "episodes_hash", "task",
            "role", "seed", "primary_metric", "metrics", "ci", "n_episodes", "dataset_fingerprint", "versions",
            "git_commit", "created_at", "agent_flags", "chance", "data_record")
_KEY = ("agent", "agent_config_hash", "suite", "suite_version", "task", "seed")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    agent_config TEXT NOT NULL,
    agent_config_hash TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    episodes_hash TEXT,
    task TEXT NOT NULL,
    role TEXT NOT NULL,
    seed INTEGER NOT NULL,
    primary_metric TEXT NOT NULL,
    metrics TEXT NOT NULL,
    ci TEXT NOT NULL,
    n_episodes INTEGER NOT NULL,
    dataset_fingerprint TEXT,
    versions TEXT NOT NULL,
    git_commit TEXT,
    created_at TEXT NOT NULL,
    agent_flags TEXT NOT NULL DEFAULT '{{}}',
    chance REAL,
    data_record TEXT NOT NULL DEFAULT '{{}}',
    UNIQUE ({", ".join(_KEY)})
);
CREATE INDEX IF NOT EXISTS results_suite ON results (suite, suite_version);
CREATE TABLE IF NOT EXISTS episodes (
    agent TEXT NOT NULL,
    agent_config_hash TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    task TEXT NOT NULL,
    seed INTEGER NOT NULL,
    run_key TEXT NOT NULL,
    records BLOB NOT NULL,
    UNIQUE ({", ".join(_KEY)})
);
CREATE TABLE IF NOT EXISTS suites (
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    episodes_hash TEXT,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (suite, suite_version)
);
"""
#: Columns added after the first release: (name, SQL type) added to older stores on open.
_ADDED_COLUMNS = (("agent_flags", "TEXT NOT NULL DEFAULT '{}'"), ("chance", "REAL"),
                  ("data_record", "TEXT NOT NULL DEFAULT '{}'"))


@dataclass
class ResultRow:
    """One stored result: metrics (+CI) of one agent config on one task of one suite version, one seed."""

    agent: str
    agent_config: dict[str, Any]
    agent_config_hash: str
    suite: str
    suite_version: str
    task: str
    role: str
    seed: int
    primary_metric: str
    metrics: dict[str, float]
    ci: dict[str, list[float]]
    n_episodes: int
    episodes_hash: str | None = None
    dataset_fingerprint: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    created_at: str = ""
    agent_flags: dict[str, Any] = field(default_factory=dict)
    chance: float | None = None
    data_record: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (NaN becomes None)."""
        return _denan(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResultRow:
        """Build from a dict as written by ``to_dict`` (unknown keys are an error)."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown result field(s): {sorted(unknown)}")
        return cls(**{k: d[k] for k in d})

    @property
    def score(self) -> float:
        """The primary metric's value (NaN if absent)."""
        v = self.metrics.get(self.primary_metric)
        return float("nan") if v is None else float(v)


def _denan(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _denan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_denan(v) for v in obj]
    return obj


def _renan(obj: Any) -> Any:
    if obj is None:
        return float("nan")
    if isinstance(obj, dict):
        return {k: _renan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renan(v) for v in obj]
    return obj


class ResultStore:
    """SQLite-backed store of ResultRows (WAL, busy timeout, transactional upserts)."""

    def __init__(self, path: str | Path = DEFAULT_STORE, timeout: float = 60.0) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.isolation_level = "DEFERRED"  # ``with conn:`` now commits/rolls back one transaction
        for stmt in filter(str.strip, _SCHEMA.split(";")):  # DDL runs in autocommit; IF NOT EXISTS is idempotent
            self._conn.execute(stmt)
        self._migrate()

    def _migrate(self) -> None:
        """Add columns newer than the store's file (two processes may race: a duplicate column is fine)."""
        have = {r[1] for r in self._conn.execute("PRAGMA table_info(results)").fetchall()}
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                try:
                    self._conn.execute(f"ALTER TABLE results ADD COLUMN {name} {decl}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):
                        raise

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> ResultStore:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------------
    def upsert(self, rows: Iterable[ResultRow]) -> int:
        """Insert rows, replacing any with the same (agent, config hash, suite, version, task, seed); one transaction."""
        rows = list(rows)
        if not rows:
            return 0
        cols = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS if c not in _KEY)
        sql = (f"INSERT INTO results ({cols}) VALUES ({marks}) "
               f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}")
        values = [self._encode(r) for r in rows]
        with self._conn:  # BEGIN ... COMMIT, or ROLLBACK on any error: never a half-written batch
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(sql, values)
        return len(rows)

    def put_seed(self, row: ResultRow, records: Sequence[Mapping[str, Any]], run_key: str) -> None:
        """Store one finished (task, seed): its result row and its episode records, in one transaction."""
        if row.seed == MEAN_SEED:
            raise ValueError("put_seed takes a per-seed row, not the mean-over-seeds row")
        blob = zlib.compress(json.dumps(list(records), sort_keys=True).encode())
        key = tuple(getattr(row, k) for k in _KEY)
        cols = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS if c not in _KEY)
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(f"INSERT INTO results ({cols}) VALUES ({marks}) "
                               f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}", self._encode(row))
            self._conn.execute(f"INSERT INTO episodes ({', '.join(_KEY)}, run_key, records) VALUES (?,?,?,?,?,?,?,?) "
                               f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET run_key=excluded.run_key, "
                               "records=excluded.records", (*key, run_key, blob))

    def seed_records(self, agent: str, agent_config_hash: str, suite: str, suite_version: str, task: str,
                     seed: int, run_key: str) -> tuple[list[dict[str, Any]], float | None] | None:
        """(episode records, {chance, data_record}) stored for this (task, seed) by a run with the same ``run_key``,
        else None."""
        got = self._conn.execute(
            "SELECT e.records, r.chance, r.data_record FROM episodes e JOIN results r USING (agent, agent_config_hash, suite, suite_version, "
            "task, seed) WHERE agent=? AND agent_config_hash=? AND suite=? AND suite_version=? AND task=? AND seed=? "
            "AND run_key=?", (agent, agent_config_hash, suite, suite_version, task, int(seed), run_key)).fetchone()
        if got is None:
            return None
        return json.loads(zlib.decompress(got[0])), {"chance": got[1], "data_record": json.loads(got[2] or "{}")}

    def put_suite(self, definition: Mapping[str, Any], created_at: str) -> None:
        """Record a suite's definition (its YAML dict, incl. skipped tasks and reasons) next to its results."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO suites (suite, suite_version, episodes_hash, definition, created_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (suite, suite_version) DO UPDATE SET episodes_hash=excluded.episodes_hash, "
                "definition=excluded.definition, created_at=excluded.created_at",
                (str(definition["name"]), str(definition["version"]), definition.get("episodes_hash"),
                 json.dumps(definition, sort_keys=True, default=str), created_at))

    def suite_definition(self, suite: str, suite_version: str) -> dict[str, Any] | None:
        """The recorded definition of a suite version (None when none was recorded)."""
        got = self._conn.execute("SELECT definition FROM suites WHERE suite=? AND suite_version=?",
                                 (suite, suite_version)).fetchone()
        return None if got is None else json.loads(got[0])

    @staticmethod
    def _encode(r: ResultRow) -> tuple[Any, ...]:
        if not r.created_at:
            raise ValueError(f"result row for {r.agent}/{r.task}/seed {r.seed} has no created_at timestamp")
        d = r.to_dict()
        out = []
        for c in _COLUMNS:
            v = d[c]
            out.append(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
        return tuple(out)

    # -- reading --------------------------------------------------------------------------------
    def rows(self, suite: str | None = None, suite_version: str | None = None, agent: str | None = None,
             seeds: str = "all") -> list[ResultRow]:
        """Stored rows, optionally filtered; ``seeds="mean"`` keeps only mean-over-seed rows, ``"per_seed"`` the others."""
        where, args = [], []
        for col, val in (("suite", suite), ("suite_version", suite_version), ("agent", agent)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if seeds == "mean":
            where.append(f"seed = {MEAN_SEED}")
        elif seeds == "per_seed":
            where.append(f"seed != {MEAN_SEED}")
        elif seeds != "all":
            raise ValueError(f"seeds must be 'all', 'mean' or 'per_seed', got {seeds!r}")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY agent, agent_config_hash, suite, suite_version, task, seed"
        out = []
        for rec in self._conn.execute(sql, args).fetchall():
            d = dict(zip(_COLUMNS, rec))
            for c in ("agent_config", "metrics", "ci", "versions", "agent_flags", "data_record"):
                d[c] = json.loads(d[c]) if d[c] is not None else {}
            d["metrics"] = _renan(d["metrics"])
            d["ci"] = _renan(d["ci"])
            out.append(ResultRow(**d))
        return out

    def count(self) -> int:
        """Number of stored rows."""
        return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def suites(self) -> list[tuple[str, str]]:
        """(suite, version) pairs that have results."""
        return [tuple(r) for r in self._conn.execute(
            "SELECT DISTINCT suite, suite_version FROM results ORDER BY suite, suite_version").fetchall()]


def open_store(path: str | Path | None = None) -> ResultStore:
    """Open (creating if needed) the store at ``path`` (default ``./lewis_results.sqlite``)."""
    return ResultStore(path or DEFAULT_STORE)


def rows_by_key(rows: Sequence[ResultRow]) -> dict[tuple[Any, ...], ResultRow]:
    """Rows keyed by their unique key tuple."""
    return {tuple(getattr(r, k) for k in _KEY): r for r in rows}
