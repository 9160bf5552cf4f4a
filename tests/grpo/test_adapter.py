"""Env -> TRL adapter: dataset columns and prompt structure, episode splits, completion text."""

from __future__ import annotations

import pytest
from PIL import Image

from agents.grpo.adapter import (
    build_dataset,
    completion_text,
    episode_prompt,
    split_episodes,
)


def test_dataset_columns_prompts_and_images(colour_env):
    ds = build_dataset(colour_env, [3, 5, 7])
    assert set(ds.column_names) == {"prompt", "images", "episode_id"}
    assert ds["episode_id"] == [3, 5, 7]
    row = ds[1]
    prompt = row["prompt"]
    assert prompt[-1]["role"] == "user"
    kinds = [part["type"] for part in prompt[-1]["content"]]
    assert kinds.count("image") == len(row["images"]) == 1
    assert kinds[-1] == "text" and "colour" in prompt[-1]["content"][-1]["text"]
    img = row["images"][0]
    assert isinstance(img, Image.Image) and img.size == (56, 56)
    # the image is the episode's own observation (episode 5's target colour), not a placeholder
    obs, _ = colour_env.reset(options={"episode_id": 5})
    assert img.convert("RGB").getpixel((10, 10)) == tuple(int(v) for v in obs["image"][10, 10])


def test_dataset_defaults_to_every_episode(colour_env):
    ds = build_dataset(colour_env)
    assert len(ds) == colour_env.num_episodes
    with pytest.raises(ValueError, match="no episode ids"):
        build_dataset(colour_env, [])


def test_episode_prompt_replays_episode(colour_env):
    a = episode_prompt(colour_env, 9)
    b = episode_prompt(colour_env, 9)
    assert a["episode_id"] == 9 and a["prompt"] == b["prompt"]
    assert list(a["images"][0].getdata()) == list(b["images"][0].getdata())


def test_split_episodes_is_seeded_disjoint_and_complete():
    train, held = split_episodes(40, 0.25, seed=3)
    assert len(held) == 10 and len(train) == 30
    assert set(train).isdisjoint(held) and set(train) | set(held) == set(range(40))
    assert split_episodes(40, 0.25, seed=3) == (train, held)
    assert split_episodes(40, 0.25, seed=4) != (train, held)
    assert split_episodes(5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(ValueError, match="holdout_frac"):
        split_episodes(10, 1.0, seed=0)
    with pytest.raises(ValueError, match="no episodes"):
        split_episodes(0, 0.1, seed=0)


def test_completion_text_accepts_strings_and_conversations():
    assert completion_text("red") == "red"
    assert completion_text([{"role": "assistant", "content": "the red one"}]) == "the red one"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "blue"}]}]) == "blue"
    with pytest.raises(TypeError, match="completion"):
        completion_text(3)


def test_reward_spec_is_read_from_the_env_without_scoring(colour_env):
    from agents.grpo.adapter import env_reward_spec, resolve_reward_terms

    spec = env_reward_spec(colour_env)
    assert spec == {"accuracy": 1.0, "length": 1.0}
    assert colour_env.listener.batch_calls == 0  # no probe completion was scored (a real listener call)
    assert resolve_reward_terms(spec) == (["accuracy", "length"], [1.0, 1.0])
    assert resolve_reward_terms(spec, ["accuracy"]) == (["accuracy"], [1.0])
    assert resolve_reward_terms(spec, None, {"length": 0.0}) == (["accuracy", "length"], [1.0, 0.0])
    with pytest.raises(ValueError, match="does not report"):
        resolve_reward_terms(spec, ["accuracy", "fluency"])
    with pytest.raises(ValueError, match="not among the trained terms"):
        resolve_reward_terms(spec, ["accuracy"], {"length": 2.0})
    del colour_env.reward_spec
    with pytest.raises(ValueError, match="reward_spec"):
        env_reward_spec(colour_env)
