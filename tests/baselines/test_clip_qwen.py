"""The clip baseline (a tiny random-init open_clip config, no download) and the qwen-vl baseline wiring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from baselines.clip_agent import ClipAgent, best_threshold
from tests.baselines.conftest import play

TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def tiny_clip_name(tmp_path_factory) -> str:
    """Register a tiny open_clip model config (random init) so tests run in milliseconds per image."""
    open_clip = pytest.importorskip("open_clip")
    d = tmp_path_factory.mktemp("clipcfg")
    (d / "lewis-tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(d / "lewis-tiny-clip.json")
    return "lewis-tiny-clip"


def test_best_threshold_hand_computed():
    sims = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    pos = np.array([False, False, False, True, True, True])
    t = best_threshold(sims, pos)
    assert 0.3 < t < 0.7
    # all-positive labels: a threshold below every value says "yes" to all
    assert best_threshold(np.array([0.5, 0.6]), np.array([True, True])) < 0.5
    with pytest.raises(ValueError, match="equally long"):
        best_threshold(np.array([0.1]), np.array([True, False]))


def test_clip_rejects_bad_config():
    with pytest.raises(ValueError, match="threshold"):
        ClipAgent(threshold=3.0)
    with pytest.raises(ValueError, match="calibration_episodes"):
        ClipAgent(calibration_episodes=1)


@pytest.mark.parametrize("role", ["speaker", "listener", "recognition", "vqa", "identification"])
def test_clip_plays_every_role_with_parseable_answers(make_env, tiny_clip_name, role):
    agent = ClipAgent(model_name=tiny_clip_name, allow_random_init=True, calibration_episodes=8)
    infos = play(agent, make_env(role), n=6)
    assert len(infos) == 6
    assert all(i["parse_error"] is None for i in infos), [i["parse_error"] for i in infos]
    if role == "recognition":
        assert agent._active_threshold is not None and -1.0 <= agent._active_threshold <= 1.0 + 1e-6


def test_clip_fixed_threshold_and_index_mode(make_env, tiny_clip_name):
    always_yes = ClipAgent(model_name=tiny_clip_name, allow_random_init=True, threshold=-1.0)
    infos = play(always_yes, make_env("recognition"), n=8)
    assert all(i["parsed"] in ("yes", 1, True) for i in infos)
    idx_agent = ClipAgent(model_name=tiny_clip_name, allow_random_init=True)
    env = make_env("listener", action_mode="index")
    idx_agent.bind(env)
    obs, info = env.reset(options={"episode_id": 0})
    assert env.action_space.contains(idx_agent.act(obs, info))


def test_qwen_vl_resolves_the_tiny_alias(monkeypatch, tmp_path):
    from agents.qwen.loading import resolve_model_path

    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    import agents.tiny

    monkeypatch.setattr(agents.tiny, "tiny_model_path", lambda: tmp_path / "tiny-model")
    assert resolve_model_path("tiny") == str(tmp_path / "tiny-model")


@pytest.mark.slow
def test_qwen_vl_tiny_zero_shot_plays_the_listener(make_env):
    pytest.importorskip("transformers")
    from agents.registry import make

    agent = make("qwen-vl", model="tiny")
    infos = play(agent, make_env("listener"), n=4)
    assert len(infos) == 4 and all(isinstance(i["correct"], bool) for i in infos)
