"""A suite built from a dataset spec (``lewis-eval data=folder:ROOT``): every task the data supports.

Each task's env is built on the data with the suite's kwargs (descriptions, negatives, the judging
listener ...): the env decides, so a user's description database or negatives table counts. A task whose
env refuses (no descriptions, no attributes for the rule listener, too few concepts for K ...) is skipped
with the env's refusal, which says what to do, plus the lewis-eval spelling of the fix. The suite's
episodes hash is computed and recorded, so a rerun is recognised (and resumed) and its numbers repeat.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leaderboard.suites import Suite, SuiteError, TaskSpec, compute_episodes_hash
from lewis_env.tasks import get_task, list_tasks


def suite_name(spec: str | Mapping[str, Any]) -> str:
    """A readable suite name for a dataset spec: ``folder:/x/my_photos`` -> ``folder-my_photos``."""
    from lewis_env.data.registry import parse_spec

    kind, root, _ = parse_spec(spec)
    base = Path(str(root).rstrip("/")).name if root else ""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{kind}-{base}" if base else kind).strip("_-")


def env_parameters(env_id: str) -> set[str]:
    """Keyword arguments the env class registered as ``env_id`` takes (its __init__ and its bases')."""
    import gymnasium as gym

    import lewis_env.envs  # noqa: F401  (registers the env ids)

    entry = gym.spec(env_id).entry_point
    cls = entry if callable(entry) else gym.envs.registration.load_env_creator(entry)
    names: set[str] = set()
    for klass in getattr(cls, "__mro__", (cls,)):
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= set(inspect.signature(init).parameters) - {"self", "args", "kwargs"}
    return names


def probe_task(suite: Suite, task: str) -> str | None:
    """None when the task's env builds on the suite's data and has episodes, else the reason it cannot."""
    try:
        env = suite.make_env(task, suite.seeds[0])
    except Exception as exc:  # noqa: BLE001  (any refusal of the env is the reason the task is skipped)
        return f"{type(exc).__name__}: {exc}"
    try:
        n = int(env.unwrapped.num_episodes)
        if n < 1:
            return "no episodes"
        env.unwrapped.episode(0)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    finally:
        env.close()
    return None


def _cli_hint(why: str, auto: Mapping[str, Any]) -> str:
    """The lewis-eval spelling of the env-level fix a refusal suggests ('' when there is none)."""
    hints = []
    if "descriptions" in why and not auto.get("descriptions"):
        hints.append("auto.descriptions=DB.json (make one with `lewis-data describe`)")
    if "listener=" in why or "rule listener" in why:
        hints.append("auto.speaker_listener=clip|qwen|http with auto.speaker_listener_kwargs.<key>=<value>")
    if "split" in why and auto.get("split", "test") != "all":
        hints.append("auto.split=all")
    if re.search(r"\blower k\b|\bk=", why):
        hints.append("auto.k=<smaller>")
    return f" [lewis-eval: {'; '.join(hints)}]" if hints else ""


def build_data_suite(spec: str | Mapping[str, Any], auto: Mapping[str, Any]) -> tuple[Suite, dict[str, str]]:
    """(suite over every task ``spec`` supports, with its episodes hash; {skipped task: reason})."""
    from lewis_env.data.registry import load_dataset

    load_dataset(spec)  # a missing root or an empty tree fails here, naming the path
    tasks = {}
    for role in list_tasks():
        env_id = get_task(role).env_id
        kwargs: dict[str, Any] = {}
        if "listener" in env_parameters(env_id):  # a task judged by a listener (the speaker)
            kwargs["listener"] = auto.get("speaker_listener", "rule")
            if auto.get("speaker_listener_kwargs"):
                kwargs["listener_kwargs"] = dict(auto["speaker_listener_kwargs"])
        tasks[role] = TaskSpec(role, role, env_id, auto.get("num_episodes"), None, kwargs)
    name = suite_name(spec)
    suite = Suite(name=name, version="auto", dataset=spec if isinstance(spec, str) else dict(spec), tasks=tasks,
                  seeds=list(auto.get("seeds", [0, 1, 2])), k=int(auto.get("k", 4)),
                  image_size=int(auto.get("image_size", 448)), split=str(auto.get("split", "test")),
                  action_mode=str(auto.get("action_mode", "text")))
    for key in ("descriptions", "negatives"):  # given to every env that takes them
        if auto.get(key):
            for spec_ in suite.tasks.values():
                if key in env_parameters(spec_.env_id):
                    spec_.kwargs[key] = str(auto[key])
    skipped: dict[str, str] = {}
    for t in list(tasks):
        why = probe_task(suite, t)  # the env with this suite's kwargs (descriptions, negatives ...) decides
        if why is not None:
            skipped[t] = why + _cli_hint(why, auto)
            del suite.tasks[t]
    if not suite.tasks:
        reasons = "; ".join(f"{t}: {w}" for t, w in skipped.items())
        raise SuiteError(f"dataset {spec!r} supports none of the tasks ({reasons})")
    suite.skipped_tasks = dict(skipped)
    suite.episodes_hash = compute_episodes_hash(suite)
    suite.version = f"auto-{suite.episodes_hash[:8]}"
    suite.description = f"built by `lewis-eval data={spec}` (split {suite.split}, K={suite.k}, {suite.image_size} px)"
    return suite, skipped
