"""Task specs: one ``TaskSpec`` per task, in one registry (``TASKS``, entry-point group ``lewis_bench.tasks``).

A new task is one env class plus one spec::

    SPEC = ChoiceTask(id="odd-one-out", env_id="mypkg/OddOneOut-v0", title=..., doc=..., observation={...})

    class OddOneOutEnv(LewisEnv):
        task = SPEC
        ...

    register_task(SPEC, entry_point=OddOneOutEnv)   # also registers the gymnasium id

Envs read their spaces, answer parsing and choice counts from ``env.task``; agents count choices and write
answers through ``get_task(role)``; the leaderboard reads env ids, metrics, primary metric, chance level and
display order from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from lewis_env.registry import Registry
from lewis_env.tasks.builtin import BUILTIN_TASKS
from lewis_env.tasks.spec import ChoiceTask, DescriptionTask, TaskSpec, YesNoTask, option_lines

#: task id -> TaskSpec
TASKS: Registry[TaskSpec] = Registry("task", "lewis_bench.tasks")


def register_task(spec: TaskSpec, entry_point: str | Callable[..., Any] | None = None) -> TaskSpec:
    """Register ``spec`` (and its gymnasium id, made by ``entry_point`` or ``spec.entry_point``); returns the spec.

    Registering an equal spec again is a no-op; a different spec under a taken id raises RegistryError.
    """
    import gymnasium as gym

    if not isinstance(spec, TaskSpec):
        raise TypeError(f"register_task needs a TaskSpec, got {type(spec).__name__}")
    if entry_point is not None:
        spec = dataclasses.replace(spec, entry_point=entry_point)
    if spec.entry_point is None:
        raise ValueError(f"task {spec.id!r} needs an entry_point (the env class or 'module:Class')")
    current = TASKS.get(spec.id) if spec.id in TASKS else None
    if current != spec:
        TASKS.register(spec.id, spec)
    if spec.env_id not in gym.registry:
        gym.register(id=spec.env_id, entry_point=spec.entry_point, disable_env_checker=False)
    return spec


def get_task(task_id: str) -> TaskSpec:
    """The spec of ``task_id`` (an unknown id lists the known ones)."""
    return TASKS.get(task_id)


def list_tasks() -> list[str]:
    """Every task id, in display order (built-ins first)."""
    return sorted(TASKS.names(), key=lambda t: (TASKS.get(t).order, t))


def task_of_env_id(env_id: str) -> TaskSpec:
    """The spec whose gymnasium id is ``env_id`` (ValueError naming the known ids otherwise)."""
    for t in TASKS.names():
        spec = TASKS.get(t)
        if spec.env_id == env_id:
            return spec
    raise ValueError(f"no task plays env {env_id!r}; known: {sorted(TASKS.get(t).env_id for t in TASKS.names())}")


for _spec in BUILTIN_TASKS:
    TASKS.register(_spec.id, _spec)

__all__ = ["BUILTIN_TASKS", "TASKS", "ChoiceTask", "DescriptionTask", "TaskSpec", "YesNoTask", "get_task", "list_tasks",
           "option_lines", "register_task", "task_of_env_id"]
