"""Done-when of issue #11 item 1: a sixth task from a test module alone (one env class + one task spec), made
with ``gym.make``, evaluated through the leaderboard and shown on the board, without touching the package."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from lewis_env.envs.game import LewisGameEnv
from lewis_env.episodes import Episode
from lewis_env.tasks import TASKS, ChoiceTask, get_task, list_tasks, register_task

#: Re-identification: which of K candidate photos shows the same object as the reference photo?
REID = ChoiceTask(
    id="reid", env_id="lewis_test/ReId-v0", title="Re-identification", choices_in_obs="candidates",
    doc="See a reference photo of an object; pick the candidate photo showing the same object. Metric: accuracy.",
    observation={"reference": "image", "candidates": "images:k", "question": "text"})


class ReIdEnv(LewisGameEnv):
    """The Lewis game's episodes (target + hard negatives), shown as a reference photo instead of words."""

    task = REID

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._build_spaces()

    def _question(self) -> str:
        return f"Which of the {self.k} images shows the same object as the reference? Answer with its letter."

    def _make_obs(self, ep: Episode) -> dict[str, Any]:
        return {"reference": self.load_image(ep.reference[0]), "candidates": self.load_images(ep.candidates),
                "question": ep.question}


TINY = {"kind": "synthetic", "num_concepts": 16, "images_per_concept": 4, "num_reference": 2, "image_size": 32,
        "seed": 0}


@pytest.fixture
def reid_task():
    spec = register_task(REID, entry_point=ReIdEnv)
    yield spec
    TASKS.unregister(REID.id)
    gym.registry.pop(REID.env_id, None)


def test_a_sixth_task_is_one_env_class_plus_one_spec(reid_task, tmp_path):
    assert reid_task == REID and "reid" in list_tasks() and list_tasks()[-1] == "reid"
    env = gym.make("lewis_test/ReId-v0", dataset=TINY, split="all", k=3, image_size=32, num_episodes=12)
    obs, info = env.reset(options={"episode_id": 0})
    assert env.observation_space.contains(obs) and obs["candidates"].shape == (3, 32, 32, 3)
    assert info["role"] == "reid" and env.unwrapped.role == "reid"
    answer = get_task("reid").answer_text(info["target_index"])
    _, reward, terminated, _, step_info = env.step(answer)
    assert reward == 1.0 and terminated and step_info["correct"] and step_info["parse_error"] is None
    env.reset(options={"episode_id": 0})
    _, reward, _, _, step_info = env.step("Z")
    assert reward == 0.0 and "out of range" in step_info["parse_error"]
    index_env = gym.make("lewis_test/ReId-v0", dataset=TINY, split="all", k=3, image_size=32, action_mode="index")
    assert index_env.action_space == gym.spaces.Discrete(3)

    from leaderboard.board import build_entries, to_markdown, write_board
    from leaderboard.evaluate import evaluate
    from leaderboard.store import ResultStore
    from leaderboard.suites import compute_episodes_hash, load_suite

    suite = load_suite({"name": "toy", "version": "v0", "dataset": TINY, "split": "all", "k": 3, "image_size": 32,
                        "seeds": [0, 1], "tasks": {"reid": {"num_episodes": 30}, "listener": {"num_episodes": 30}}},
                       verify=False)
    assert suite.task("reid").env_id == "lewis_test/ReId-v0"
    suite.episodes_hash = compute_episodes_hash(suite)
    store = ResultStore(tmp_path / "results.sqlite")
    res = evaluate("random", suite, store=store, n_resamples=50, progress=False)
    assert set(res.summaries) == {"reid", "listener"}
    assert res.summaries["reid"]["mean"]["n"] == 60
    assert 0.0 < res.score("reid") < 0.8  # a uniform guesser over 3 choices
    rule = evaluate("rule", suite, store=store, n_resamples=50, progress=False)
    assert "reid" in rule.skipped and rule.score("listener") > 0.9  # the oracle only plays the built-in tasks
    entries = build_entries(store.rows())
    md = to_markdown(entries)
    header = next(line for line in md.splitlines() if "listener" in line and "reid" in line)
    assert header.index("listener") < header.index("reid")  # new tasks follow the built-ins
    files = write_board(store.rows(), tmp_path / "board")
    assert all(p.exists() for p in files.values())
    board_md = files["md"].read_text()
    assert "reid" in board_md and "random" in board_md
    assert get_task("reid").chance(env.unwrapped, [0, 1]) == pytest.approx(1 / 3)
    assert entries[0].chance.get("reid") == pytest.approx(1 / 3)
    store.close()


def test_the_built_in_specs_drive_the_envs():
    from lewis_env.tasks.builtin import BUILTIN_TASKS

    for spec in BUILTIN_TASKS:
        env = gym.make(spec.env_id, dataset=TINY, split="all", k=3, image_size=32, num_episodes=4)
        base = env.unwrapped
        assert base.task is spec and base.role == spec.id
        obs, info = env.reset(options={"episode_id": 1})
        assert set(obs) >= set(spec.observation), spec.id
        if spec.answer_format == "description":
            continue
        n = spec.num_choices(obs)
        assert n == base._num_choices(base.episode(1))
        _, reward, *_ = env.step(spec.answer_text(info["target_index"]))
        assert reward == 1.0, spec.id
        assert spec.primary_metric in spec.metrics({c: np.array([True, False]) for c in spec.columns})


def test_registering_a_different_spec_under_a_taken_id_raises():
    from lewis_env.registry import RegistryError

    clash = ChoiceTask(id="listener", env_id="lewis_test/Other-v0", title="x", doc="x", observation={},
                       entry_point="x:y")
    with pytest.raises(RegistryError, match="task name 'listener'"):
        register_task(clash)
    with pytest.raises(KeyError, match="Did you mean 'listener'"):
        get_task("listner")
