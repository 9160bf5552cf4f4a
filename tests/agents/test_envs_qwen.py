"""The tiny Qwen-VL agent end to end in every lewis_env env (CPU): make -> bind -> act -> step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gym = pytest.importorskip("gymnasium")

import agents
import lewis_env  # noqa: F401  (registers the envs)
from lewis_env.data.synthetic import make_synthetic

ENV_KW = dict(image_size=56, k=3, split="all", num_episodes=4)


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic(num_concepts=16, images_per_concept=4, num_reference=2, image_size=56, seed=0,
                          vary=("color",))


@pytest.fixture(scope="module")
def agent(tiny_model_and_processor):
    model, proc = tiny_model_and_processor
    return agents.make("qwen-vl", model=model, processor=proc, max_new_tokens=16, batch_size=4)


def _episode(env_id, agent, dataset, **kw):
    env = gym.make(env_id, dataset=dataset, **{**ENV_KW, **kw})
    agent.bind(env)
    obs, info = env.reset(seed=0, options={"episode_id": 1})
    assert env.observation_space.contains(obs)
    action = agent.act(obs, info)
    _, reward, terminated, truncated, step_info = env.step(action)
    assert terminated and not truncated
    assert isinstance(reward, (float, np.floating))
    return env, obs, info, action, step_info


def test_speaker_episode_with_rule_listener(agent, dataset):
    _, _, info, action, step = _episode("lewis_env/LewisSpeaker-v0", agent, dataset, listener="rule")
    assert isinstance(action, str)
    assert "description" in step and "listener_choice" in step and len(step["listener_scores"]) == 3
    assert step["correct"] == (step["listener_choice"] == info["target_index"])


def test_speaker_episode_with_qwen_listener(agent, dataset, tiny_path):
    *_, step = _episode("lewis_env/LewisSpeaker-v0", agent, dataset, listener="qwen",
                                          listener_kwargs={"model": str(tiny_path), "dtype": "float32",
                                                           "device": "cpu"})
    scores = step["listener_scores"]
    assert len(scores) == 3 and all(0 < s < 1 for s in scores)
    assert step["listener_choice"] == int(np.argmax(scores))


def test_listener_env_text_and_index(agent, dataset):
    _, _, info, action, step = _episode("lewis_env/LewisListener-v0", agent, dataset)
    assert action in ("A", "B", "C")
    assert step["parse_error"] is None and step["correct"] == ("ABC".index(action) == info["target_index"])
    _, _, info, action, step = _episode("lewis_env/LewisListener-v0", agent, dataset, action_mode="index")
    assert action in (0, 1, 2) and step["correct"] == (action == info["target_index"])


def test_listener_env_act_batch_matches_act(agent, dataset):
    env = gym.make("lewis_env/LewisListener-v0", dataset=dataset, **ENV_KW)
    agent.bind(env)
    pairs = [env.reset(seed=0, options={"episode_id": i}) for i in range(3)]
    batch = agent.act_batch([o for o, _ in pairs], [i for _, i in pairs])
    assert batch == [agent.act(o, i) for o, i in pairs]
    rewards, infos = env.unwrapped.score_batch([0, 1, 2], batch)
    assert len(rewards) == 3 and all(inf["parse_error"] is None for inf in infos)


def test_recognition_env(agent, dataset):
    _, _, info, action, step = _episode("lewis_env/Recognition-v0", agent, dataset)
    assert action in ("yes", "no") and step["parse_error"] is None
    assert step["correct"] == ((action == "yes") == info["positive"])


def test_vqa_env(agent, dataset):
    _, _, info, action, step = _episode("lewis_env/VQA-v0", agent, dataset)
    assert step["parse_error"] is None and step["correct"] == (action == info["answer"])


def test_identification_env(agent, dataset):
    _, _, info, action, step = _episode("lewis_env/Identification-v0", agent, dataset, action_mode="index")
    assert isinstance(action, int) and step["correct"] == (action == info["target_index"])
