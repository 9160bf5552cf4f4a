"""Run a registered agent over every task and seed of a suite; metrics, bootstrap CIs, JSONL samples, store rows."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leaderboard.metrics import primary_metric, summarize
from leaderboard.store import MEAN_SEED, ResultRow, ResultStore
from leaderboard.suites import Suite, load_suite

log = logging.getLogger(__name__)

#: Step-info keys copied into each per-episode sample record (when present and JSON-able).
SAMPLE_KEYS = ("episode_id", "role", "target_concept", "category", "candidate_ids", "target_index", "positive",
               "query_concept", "answer", "answer_index", "question_type", "parsed", "parse_error", "correct",
               "reward_terms", "description", "listener_choice", "listener_scores")


@dataclass
class EvalResult:
    """What one evaluation produced: per-task summaries, skipped tasks, store rows and sample files."""

    agent: str
    agent_config: dict[str, Any]
    agent_config_hash: str
    suite: str
    suite_version: str
    episodes_hash: str | None
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> metrics.summarize output
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why
    rows: list[ResultRow] = field(default_factory=list)
    sample_files: list[Path] = field(default_factory=list)

    def metrics(self, task: str) -> dict[str, float]:
        """Mean-over-seeds metrics of one task."""
        return self.summaries[task]["mean"]["metrics"]

    def score(self, task: str) -> float:
        """Mean-over-seeds primary metric of one task."""
        return self.metrics(task)[primary_metric(self.summaries[task]["role"])]


def config_hash(agent: str, config: Mapping[str, Any]) -> str:
    """Stable short hash of an agent name + its keyword arguments (what distinguishes two entries)."""
    blob = json.dumps({"agent": agent, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def package_versions() -> dict[str, str]:
    """Versions of the packages scores depend on (lewis-bench, torch, transformers, ... when installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("lewis-bench", "gymnasium", "numpy", "torch", "transformers", "open_clip_torch", "peft"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    """The repository's HEAD commit when the package runs from a git checkout, else None."""
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[1],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


def _action_repr(a: Any) -> Any:
    return _jsonable(a)


def _make_agent(agent: str | Any, agent_kwargs: Mapping[str, Any] | None) -> tuple[Any, str, dict[str, Any]]:
    if isinstance(agent, str):
        from agents.registry import make

        kwargs = dict(agent_kwargs or {})
        return make(agent, **kwargs), agent, kwargs
    name = getattr(agent, "name", type(agent).__name__)
    cfg = dict(agent_kwargs or getattr(agent, "config", {}) or {})
    return agent, name, cfg


def run_task(agent: Any, suite: Suite, task: str, seed: int, batch_size: int = 16,
             max_episodes: int | None = None, pbar: Any = None,
             env_kwargs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Play every episode of one task/seed in batches (reset -> act_batch -> score_batch); return sample records.

    ``env_kwargs`` override the suite's env config (cross-play swaps in a speaker's description database).
    """
    env = suite.make_env(task, seed, **dict(env_kwargs or {}))
    try:
        base = env.unwrapped
        agent.bind(env)
        ids = suite.episode_ids(task, env)
        if max_episodes is not None:
            ids = ids[:max_episodes]
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            obs_list, infos = [], []
            for i in chunk:
                obs, info = env.reset(options={"episode_id": i})
                obs_list.append(obs)
                infos.append(info)
            actions = agent.act_batch(obs_list, infos)
            if len(actions) != len(chunk):
                raise RuntimeError(f"agent {getattr(agent, 'name', agent)!r} returned {len(actions)} actions for "
                                   f"{len(chunk)} observations")
            rewards, step_infos = base.score_batch(list(chunk), list(actions))
            for i, a, r, si in zip(chunk, actions, rewards, step_infos):
                rec = {"task": task, "seed": int(seed), "episode_id": int(i), "action": _action_repr(a),
                       "reward": float(r)}
                rec.update({k: _jsonable(si[k]) for k in SAMPLE_KEYS if k in si and k != "episode_id"})
                records.append(rec)
            if pbar is not None:
                pbar.update(len(chunk))
        return records
    finally:
        env.close()


def evaluate(agent: str | Any, suite: str | Suite = "synthetic-v0", agent_kwargs: Mapping[str, Any] | None = None,
             seeds: Sequence[int] | None = None, tasks: Sequence[str] | None = None, batch_size: int = 16,
             store: ResultStore | str | Path | None = None, samples_dir: str | Path | None = None,
             n_resamples: int = 1000, ci_seed: int = 0, max_episodes: int | None = None, progress: bool = True,
             verify: bool = True) -> EvalResult:
    """Evaluate ``agent`` (a registered name + kwargs, or an agent object) on ``suite``.

    Every task whose role the agent plays is run for every seed; tasks it cannot play are skipped with
    a note. Metrics are computed from step infos, with seeded bootstrap CIs over episodes, and averaged
    over seeds. Rows go to ``store`` (upserted; seed -1 = mean over seeds) and per-episode records to
    ``samples_dir/<agent>-<hash>/<suite>/<task>_seed<seed>.jsonl``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite, verify=verify)
    if isinstance(suite, Suite) and verify:
        from leaderboard.suites import verify_suite

        verify_suite(suite_obj)
    agent_obj, name, cfg = _make_agent(agent, agent_kwargs)
    h = config_hash(name, cfg)
    result = EvalResult(name, cfg, h, suite_obj.name, suite_obj.version, suite_obj.episodes_hash)
    seeds = list(seeds) if seeds is not None else list(suite_obj.seeds)
    task_names = list(tasks) if tasks is not None else list(suite_obj.tasks)
    roles = frozenset(getattr(agent_obj, "roles", ()))
    runnable = []
    for t in task_names:
        role = suite_obj.task(t).role
        if role not in roles:
            result.skipped[t] = f"agent {name!r} does not play role {role!r} (plays {sorted(roles)})"
            log.warning("skipping task %s: %s", t, result.skipped[t])
        else:
            runnable.append(t)

    pbar = None
    if progress:
        from tqdm.auto import tqdm

        sizes = [len(suite_obj.task(t).episode_ids or []) or suite_obj.task(t).num_episodes for t in runnable]
        total = None if any(n is None for n in sizes) else sum(
            min(n, max_episodes) if max_episodes else n for n in sizes) * len(seeds)
        pbar = tqdm(desc=f"{name} on {suite_obj.full_name}", unit="ep", total=total)
    versions = package_versions()
    commit = git_commit()
    fingerprint = suite_obj.dataset_fingerprint()
    out_dir = Path(samples_dir) / f"{name}-{h}" / suite_obj.full_name if samples_dir is not None else None
    try:
        for t in runnable:
            role = suite_obj.task(t).role
            per_seed: dict[int, list[dict[str, Any]]] = {}
            for s in seeds:
                if pbar is not None:
                    pbar.set_postfix_str(f"{t} seed {s}")
                recs = run_task(agent_obj, suite_obj, t, s, batch_size=batch_size, max_episodes=max_episodes,
                                pbar=pbar)
                per_seed[s] = recs
                if out_dir is not None:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    path = out_dir / f"{t}_seed{s}.jsonl"
                    tmp = path.with_suffix(".jsonl.tmp")
                    with tmp.open("w") as fh:
                        for r in recs:
                            fh.write(json.dumps(r, sort_keys=True) + "\n")
                    tmp.replace(path)
                    result.sample_files.append(path)
            summary = summarize(role, per_seed, n_resamples=n_resamples, seed=ci_seed)
            summary["role"] = role
            if role == "speaker":  # lang_* metrics of the descriptions (leaderboard/language.py)
                from leaderboard.language import add_language_metrics
                from lewis_env.data.registry import load_dataset

                add_language_metrics(summary, per_seed, load_dataset(suite_obj.dataset))
            result.summaries[t] = summary
            now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            common: dict[str, Any] = {
                "agent": name, "agent_config": _jsonable(cfg), "agent_config_hash": h, "suite": suite_obj.name,
                "suite_version": suite_obj.version, "episodes_hash": suite_obj.episodes_hash, "task": t, "role": role,
                "primary_metric": primary_metric(role), "dataset_fingerprint": fingerprint, "versions": versions,
                "git_commit": commit, "created_at": now}
            for s, ps in summary["per_seed"].items():
                result.rows.append(ResultRow(seed=int(s), metrics=ps["metrics"], ci=ps["ci"], n_episodes=ps["n"],
                                             **common))
            m = summary["mean"]
            result.rows.append(ResultRow(seed=MEAN_SEED, metrics=m["metrics"], ci=m["ci"], n_episodes=m["n"],
                                         **common))
    finally:
        if pbar is not None:
            pbar.close()
    if store is not None:
        if isinstance(store, ResultStore):
            store.upsert(result.rows)
        else:
            with ResultStore(store) as st:
                st.upsert(result.rows)
    return result
