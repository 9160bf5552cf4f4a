"""obs_mode="numeric": only numeric spaces, stable per config, decodable, and accepted by SB3 and gym vector envs."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from lewis_env.numeric import NumericObservation, Vocabulary, option_texts, tokenize
from tests.envs.conftest import IDS, ROLES, env_kwargs


def numeric_kwargs(**kw):
    return env_kwargs(action_mode="index", obs_mode="numeric", **kw)


def test_tokenize_and_vocabulary_roundtrip() -> None:
    voc = Vocabulary.synthetic()
    assert voc.tokens[:2] == ("<pad>", "<unk>")
    ids, cut = voc.encode("A photo of a RED mug, <mug-3>; zebra!", 12)
    assert ids.dtype == np.int64 and ids.shape == (12,) and not cut
    assert voc.decode(ids) == "a photo of a red mug mug 3 <unk>"
    assert ids[9:].tolist() == [0, 0, 0]
    ids, cut = voc.encode("red " * 20, 5)
    assert cut and voc.decode(ids) == "red red red red red"
    assert tokenize("Answer: B.") == ["answer", "b"]
    assert option_texts("A. <mug-1>: red\nB. blue\n  more") == ["<mug-1>: red", "blue   more"]


@pytest.mark.parametrize("role", ROLES)
def test_numeric_spaces_only_and_obs_inside(role: str) -> None:
    env = gym.make(IDS[role], **numeric_kwargs())
    try:
        space = env.observation_space
        assert isinstance(space, spaces.Dict)
        assert all(isinstance(s, (spaces.Box, spaces.MultiDiscrete)) for s in space.spaces.values()), space
        obs, info = env.reset(seed=3)
        assert space.contains(obs)
        base = env.unwrapped
        # every text field of the text observation is there as ids, and decodes to its words
        text_obs = base._make_obs(base.episode(info["episode_id"]))
        for key, sub in base.text_observation_space.spaces.items():
            if isinstance(sub, spaces.Text):
                assert obs[key].dtype == np.int64
                shape = base.codec.layout[key]
                first_row = obs[key].reshape(-1, shape[-1])[0]
                text = option_texts(text_obs[key])[0] if len(shape) == 2 else text_obs[key]
                expect = [w if w in base.vocabulary.index else "<unk>" for w in tokenize(text)]
                assert base.vocabulary.decode(first_row).split() == expect[: shape[-1]]
            else:
                np.testing.assert_array_equal(obs[key], text_obs[key])
        obs2, _r, term, _trunc, _ = env.step(env.action_space.sample())
        assert term and space.contains(obs2)
    finally:
        env.close()


def test_space_stable_across_splits_and_builds() -> None:
    """A policy trained on the train split reloads on the test split: identical spaces and vocabulary."""
    a = gym.make(IDS["identification"], **numeric_kwargs(split="train"))
    b = gym.make(IDS["identification"], **numeric_kwargs(split="test"))
    assert a.observation_space == b.observation_space
    assert a.unwrapped.codec.describe() == b.unwrapped.codec.describe()
    assert a.unwrapped.codec.layout["database"] == (4, 32)
    obs, _ = a.reset(seed=0)
    rows = obs["database"].reshape(4, 32)
    names = [a.unwrapped.vocabulary.decode(r).split()[:2] for r in rows]
    ep = a.unwrapped.episode(a.unwrapped._current.episode_id)
    assert names == [a.unwrapped.dataset.concept(c).name.strip("<>").split("-") for c in ep.candidate_ids]


def test_wrapper_equals_obs_mode() -> None:
    text = gym.make(IDS["listener"], **env_kwargs(action_mode="index"))
    wrapped = NumericObservation(text)
    direct = gym.make(IDS["listener"], **numeric_kwargs())
    assert wrapped.observation_space == direct.observation_space
    o1, _ = wrapped.reset(options={"episode_id": 5})
    o2, _ = direct.reset(options={"episode_id": 5})
    for k in o1:
        np.testing.assert_array_equal(o1[k], o2[k])
    with pytest.raises(ValueError, match="text-mode"):
        NumericObservation(direct)


def test_bad_obs_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="obs_mode must be one of"):
        gym.make(IDS["listener"], **env_kwargs(obs_mode="pixels"))


@pytest.mark.parametrize("role", ROLES)
def test_sb3_check_env_and_ppo_runs(role: str) -> None:
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    # image_size >= 36: SB3's default CNN for image fields (NatureCNN) needs it
    env = gym.make(IDS[role], **numeric_kwargs(image_size=40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3 advises on image sizes / 4-D stacks; errors still raise
        check_env(env)
    vec = DummyVecEnv([lambda: gym.make(IDS[role], **numeric_kwargs(image_size=40))] * 2)
    model = PPO("MultiInputPolicy", vec, n_steps=4, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(8)
    assert model.num_timesteps >= 8
    act, _ = model.predict(vec.reset(), deterministic=True)
    assert len(act) == 2 and all(env.action_space.contains(np.asarray(a, dtype=env.action_space.dtype))
                                 for a in act)
    vec.close()
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_ppo_through_subproc_vec_env(role: str) -> None:
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    # the "module:id" form imports lewis_env in the worker processes, which registers the ids; SB3's
    # make_vec_env asks for render_mode="rgb_array" unless told otherwise, and our envs do not render
    kw = {**numeric_kwargs(image_size=40), "render_mode": None}
    vec = make_vec_env(f"lewis_env:{IDS[role]}", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, env_kwargs=kw,
                       vec_env_kwargs={"start_method": "fork"})  # fork: no re-import of torch per worker
    try:
        model = PPO("MultiInputPolicy", vec, n_steps=4, batch_size=8, n_epochs=1, seed=0, device="cpu")
        model.learn(8)
        assert model.num_timesteps >= 8
    finally:
        vec.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gym_make_vec(mode: str) -> None:
    vec = gym.make_vec(IDS["listener"], num_envs=2, vectorization_mode=mode, **numeric_kwargs())
    try:
        obs, _ = vec.reset(seed=0)
        assert vec.single_observation_space["description"] == gym.make(IDS["listener"], **numeric_kwargs()
                                                                       ).observation_space["description"]
        assert obs["candidates"].shape == (2, 4, 32, 32, 3) and obs["description"].shape == (2, 32)
        assert vec.observation_space.contains(obs)
        obs, r, term, _trunc, _info = vec.step(np.array([0, 1]))
        assert term.all() and r.shape == (2,)
    finally:
        vec.close()


@pytest.mark.slow
def test_readme_numeric_snippet_runs() -> None:
    """The README's gym.make(..., obs_mode="numeric") + SB3 PPO snippet runs as printed."""
    pytest.importorskip("stable_baselines3")
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("<!-- numeric-snippet -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(block, "README.md numeric-snippet", "exec"), scope)  # noqa: S102
    assert scope["model"].num_timesteps >= 64
    assert scope["env"].action_space.contains(int(scope["action"]))
