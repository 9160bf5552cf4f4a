"""#10 items 6 and 11: a finished episode cannot be stepped again; env sizes are bounded with clear errors."""

from __future__ import annotations

import gymnasium as gym
import pytest

import lewis_env  # noqa: F401  (registers the env ids)
from lewis_env.envs.base import MAX_IMAGE_SIZE, MAX_K

TINY = {"kind": "synthetic", "num_concepts": 8, "images_per_concept": 3, "num_reference": 1, "image_size": 32,
        "seed": 0}
ENV_IDS = ["lewis_env/LewisListener-v0", "lewis_env/LewisSpeaker-v0", "lewis_env/Recognition-v0",
           "lewis_env/VQA-v0", "lewis_env/Identification-v0"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_after_the_episode_ended_raises_until_reset(env_id):
    env = gym.make(env_id, dataset=TINY, split="all", k=3, image_size=32, num_episodes=4)
    _, info = env.reset(options={"episode_id": 0})
    _, _, terminated, _, _ = env.step("A")
    assert terminated
    for again in ("B", "C", "A"):  # trying every candidate must not pay again
        with pytest.raises(RuntimeError, match=r"episode 0 has ended.*reset\(\)"):
            env.step(again)
    env.reset(options={"episode_id": 0})
    env.step("B")  # a fresh reset allows one step again
    env.close()


def test_listener_cannot_collect_the_reward_by_trying_every_candidate():
    env = gym.make("lewis_env/LewisListener-v0", dataset=TINY, split="all", k=3, image_size=32, num_episodes=4)
    _, info = env.reset(options={"episode_id": 1})
    wrong = "ABC"[(info["target_index"] + 1) % 3]
    _, reward, *_ = env.step(wrong)
    assert reward == 0.0
    with pytest.raises(RuntimeError):
        env.step("ABC"[info["target_index"]])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_image_size_is_bounded_before_anything_is_allocated(env_id):
    with pytest.raises(ValueError, match=rf"image_size must be an int in \[8, {MAX_IMAGE_SIZE}\], got 60000"):
        gym.make(env_id, dataset=TINY, split="all", image_size=60000)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_k_is_bounded_on_every_env(env_id):
    with pytest.raises(ValueError, match=rf"k must be an int in \[2, {MAX_K}\], got 1000"):
        gym.make(env_id, dataset=TINY, split="all", k=1000)


@pytest.mark.parametrize(("env_id", "kw", "name"), [
    ("lewis_env/Recognition-v0", {"num_reference_shown": 500}, "num_reference_shown"),
    ("lewis_env/VQA-v0", {"num_reference_shown": 500}, "num_reference_shown"),
    ("lewis_env/Recognition-v0", {"num_negatives": 10**6}, "num_negatives"),
    ("lewis_env/LewisListener-v0", {"num_episodes": 10**12}, "num_episodes"),
])
def test_other_sizes_are_bounded(env_id, kw, name):
    with pytest.raises(ValueError, match=rf"{name} must be an int in \[1, \d+\]"):
        gym.make(env_id, dataset=TINY, split="all", k=3, image_size=32, **kw)
