"""Versioned evaluation suites (conf/suite/*.yaml) and the episodes hash that pins each version.

A suite names a dataset spec, the tasks (env id, episode count or explicit ids, extra env kwargs), K,
image size, action mode and seeds. Its ``episodes_hash`` covers the dataset fingerprint, every env's
config and every episode's content (target, candidates, question); loading a suite whose episodes no
longer hash to the recorded value fails, so a suite version changes whenever its episodes would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lewis_env.tasks import TASKS, get_task, list_tasks

DEFAULT_SUITE = "synthetic-v0"


class SuiteError(ValueError):
    """A suite file that is malformed or whose episodes no longer match its recorded hash."""


def conf_dir() -> Path:
    """The config folder (``lewis_env.paths.conf_dir``: ``$LEWIS_BENCH_CONF`` or the packaged ``conf/``)."""
    from lewis_env.paths import conf_dir as _conf_dir

    return _conf_dir()


@dataclass
class TaskSpec:
    """One task of a suite: which env, which episodes, extra env kwargs."""

    name: str
    role: str
    env_id: str
    num_episodes: int | None = None
    episode_ids: list[int] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    """A versioned, hash-pinned set of tasks over one dataset."""

    name: str
    version: str
    dataset: Any
    tasks: dict[str, TaskSpec]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    k: int = 4
    image_size: int = 64
    split: str = "test"
    action_mode: str = "text"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    episodes_hash: str | None = None
    description: str = ""
    path: Path | None = None
    skipped_tasks: dict[str, str] = field(default_factory=dict)  # tasks left out of a built suite -> why

    @property
    def full_name(self) -> str:
        """``<name>-<version>``, the id users type."""
        return f"{self.name}-{self.version}"

    def env_config(self, task: str, seed: int) -> dict[str, Any]:
        """Keyword arguments ``gym.make`` gets for this task and seed."""
        spec = self.task(task)
        cfg: dict[str, Any] = {"dataset": self.dataset, "split": self.split, "k": self.k,
                               "image_size": self.image_size, "action_mode": self.action_mode, "seed": int(seed)}
        cfg.update(self.env_kwargs)
        if spec.num_episodes is not None:
            cfg["num_episodes"] = spec.num_episodes
        cfg.update(spec.kwargs)
        return cfg

    def task(self, name: str) -> TaskSpec:
        """The task spec named ``name`` (clear error listing the suite's tasks otherwise)."""
        try:
            return self.tasks[name]
        except KeyError:
            raise SuiteError(f"suite {self.full_name} has no task {name!r}; tasks: {sorted(self.tasks)}") from None

    def make_env(self, task: str, seed: int, **overrides: Any) -> Any:
        """``gym.make`` the task's env for ``seed`` (importing lewis_env.envs registers the ids)."""
        import gymnasium as gym

        import lewis_env.envs  # noqa: F401  (registers the env ids)

        spec = self.task(task)
        return gym.make(spec.env_id, **{**self.env_config(task, seed), **overrides})

    def episode_ids(self, task: str, env: Any) -> list[int]:
        """The task's episode ids: explicit ids when listed, else every episode of the env."""
        spec = self.task(task)
        n = int(env.unwrapped.num_episodes)
        if spec.episode_ids is not None:
            bad = [i for i in spec.episode_ids if not 0 <= int(i) < n]
            if bad:
                raise SuiteError(f"suite {self.full_name} task {task}: episode ids {bad[:5]} out of range [0, {n})")
            return [int(i) for i in spec.episode_ids]
        return list(range(n))

    def dataset_fingerprint(self) -> str:
        """Fingerprint of the suite's dataset (all splits)."""
        from lewis_env.data.registry import load_dataset

        return load_dataset(self.dataset).fingerprint()

    def to_dict(self) -> dict[str, Any]:
        """The YAML-shaped dict of this suite."""
        tasks = {}
        for name, t in self.tasks.items():
            d: dict[str, Any] = {"env": t.env_id}
            if t.role != name:
                d["role"] = t.role
            if t.num_episodes is not None:
                d["num_episodes"] = t.num_episodes
            if t.episode_ids is not None:
                d["episode_ids"] = t.episode_ids
            if t.kwargs:
                d["kwargs"] = t.kwargs
            tasks[name] = d
        return {"name": self.name, "version": self.version, "description": self.description,
                "dataset": self.dataset, "split": self.split, "k": self.k, "image_size": self.image_size,
                "action_mode": self.action_mode, "seeds": self.seeds, "env_kwargs": self.env_kwargs,
                "tasks": tasks, "episodes_hash": self.episodes_hash,
                **({"skipped_tasks": dict(self.skipped_tasks)} if self.skipped_tasks else {})}


def _canon(obj: Any) -> Any:
    """A JSON-able, machine-independent view of episode content (absolute paths -> concept/file ids)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "image_id") and hasattr(obj, "concept_id"):  # ImageRef
            return obj.image_id
        return {f.name: _canon(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _canon(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canon(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()[:16] + str(obj.shape)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path) or (isinstance(obj, str) and os.path.isabs(obj) and os.sep in obj):
        return "/".join(Path(obj).parts[-2:])
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def compute_episodes_hash(suite: Suite, progress: bool = False) -> str:
    """sha256 over dataset fingerprint, env configs and every episode of every task and seed."""
    h = hashlib.sha256()
    h.update(suite.dataset_fingerprint().encode())
    items = [(t, s) for t in sorted(suite.tasks) for s in suite.seeds]
    for task, seed in items:
        env = suite.make_env(task, seed)
        try:
            h.update(json.dumps({"task": task, "env": suite.task(task).env_id,
                                 "config": _canon(suite.env_config(task, seed))}, sort_keys=True).encode())
            for i in suite.episode_ids(task, env):
                h.update(json.dumps([i, _canon(env.unwrapped.episode(i))], sort_keys=True).encode())
        finally:
            env.close()
    return h.hexdigest()[:16]


def _parse_suite(data: Mapping[str, Any], path: Path | None) -> Suite:
    where = str(path) if path else "suite dict"
    if not isinstance(data, Mapping):
        raise SuiteError(f"{where}: a suite must be a mapping, got {type(data).__name__}")
    for key in ("name", "version", "dataset", "tasks"):
        if key not in data:
            raise SuiteError(f"{where}: missing required key {key!r}")
    known = {"name", "version", "description", "dataset", "split", "k", "image_size", "action_mode", "seeds",
             "env_kwargs", "tasks", "episodes_hash", "skipped_tasks"}
    unknown = set(data) - known
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    if not isinstance(data["tasks"], Mapping) or not data["tasks"]:
        raise SuiteError(f"{where}: 'tasks' must be a non-empty mapping of task name -> spec")
    tasks = {}
    for name, spec in data["tasks"].items():
        spec = dict(spec or {})
        role = spec.pop("role", name)
        if role not in TASKS:
            raise SuiteError(f"{where}: task {name!r} has unknown role {role!r}; roles: {list_tasks()}")
        env_id = spec.pop("env", get_task(role).env_id)
        n = spec.pop("num_episodes", None)
        ids = spec.pop("episode_ids", None)
        kwargs = dict(spec.pop("kwargs", {}) or {})
        if spec:
            raise SuiteError(f"{where}: task {name!r} has unknown key(s) {sorted(spec)}; "
                             "known: env, role, num_episodes, episode_ids, kwargs")
        if n is not None and (not isinstance(n, int) or n < 1):
            raise SuiteError(f"{where}: task {name!r} num_episodes must be a positive int, got {n!r}")
        tasks[str(name)] = TaskSpec(str(name), role, env_id, n, list(ids) if ids is not None else None, kwargs)
    seeds = data.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SuiteError(f"{where}: 'seeds' must be a non-empty list of ints, got {seeds!r}")
    return Suite(name=str(data["name"]), version=str(data["version"]), dataset=data["dataset"], tasks=tasks,
                 seeds=list(seeds), k=int(data.get("k", 4)), image_size=int(data.get("image_size", 64)),
                 split=str(data.get("split", "test")), action_mode=str(data.get("action_mode", "text")),
                 env_kwargs=dict(data.get("env_kwargs") or {}), episodes_hash=data.get("episodes_hash"),
                 description=str(data.get("description", "")), path=path,
                 skipped_tasks={str(k): str(v) for k, v in (data.get("skipped_tasks") or {}).items()})


def suite_path(name: str | os.PathLike) -> Path:
    """Resolve a suite name (``synthetic-v0``) or a YAML path to a file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise SuiteError(f"suite file {p} does not exist")
        return p
    cand = conf_dir() / "suite" / f"{name}.yaml"
    if cand.exists():
        return cand
    raise SuiteError(f"unknown suite {str(name)!r}; available: {', '.join(list_suites()) or '(none)'}")


def list_suites() -> list[str]:
    """Names of the suites shipped in ``conf/suite/``."""
    d = conf_dir() / "suite"
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_suite(name: str | os.PathLike | Mapping[str, Any] | Suite = DEFAULT_SUITE, verify: bool = True) -> Suite:
    """Load a suite by name, path or dict; with ``verify`` its episodes must hash to the recorded value."""
    if isinstance(name, Suite):
        suite = name
    elif isinstance(name, Mapping):
        suite = _parse_suite(name, None)
    else:
        path = suite_path(name)
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SuiteError(f"suite file {path} is not valid YAML: {exc}") from None
        suite = _parse_suite(data, path)
    if verify:
        verify_suite(suite)
    return suite


_VERIFIED: dict[str, str] = {}


def verify_suite(suite: Suite) -> str:
    """Recompute the episodes hash (memoised per process); raise SuiteError telling to bump the version on a mismatch."""
    key = json.dumps({k: v for k, v in suite.to_dict().items() if k != "episodes_hash"}, sort_keys=True, default=str)
    actual = _VERIFIED.get(key) or compute_episodes_hash(suite)
    _VERIFIED[key] = actual
    if suite.episodes_hash is None:
        raise SuiteError(f"suite {suite.full_name} has no recorded episodes_hash; record episodes_hash: {actual} "
                         f"(python -m leaderboard.suites {suite.path or suite.full_name} --write)")
    if actual != suite.episodes_hash:
        raise SuiteError(
            f"suite {suite.full_name}: its episodes changed (recorded episodes_hash {suite.episodes_hash}, computed "
            f"{actual}). Results would not be comparable: bump the suite version (copy it to "
            f"{suite.name}-v<N+1>.yaml and record the new hash with `python -m leaderboard.suites <that file> "
            f"--write`) instead of editing this one.")
    return actual


def write_suite(suite: Suite, path: str | os.PathLike) -> Path:
    """Write ``suite`` as YAML with its freshly computed episodes hash."""
    suite.episodes_hash = compute_episodes_hash(suite)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(suite.to_dict(), sort_keys=False))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m leaderboard.suites SUITE [--write]``: print (or record) a suite's episodes hash."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m leaderboard.suites", description=main.__doc__)
    ap.add_argument("suite", help="suite name or YAML path")
    ap.add_argument("--write", action="store_true", help="record the computed hash into the YAML file")
    args = ap.parse_args(argv)
    suite = load_suite(args.suite, verify=False)
    actual = compute_episodes_hash(suite)
    print(f"{suite.full_name}: recorded {suite.episodes_hash}, computed {actual}")
    if args.write:
        path = suite.path or suite_path(args.suite)
        text = path.read_text()
        line = f"episodes_hash: {actual}"
        new, n = re.subn(r"(?m)^episodes_hash:.*$", line, text)  # keep the file's comments and layout
        path.write_text(new if n else text.rstrip("\n") + "\n" + line + "\n")
        print(f"wrote {path}")
    return 0 if actual == suite.episodes_hash or args.write else 1


if __name__ == "__main__":
    raise SystemExit(main())
