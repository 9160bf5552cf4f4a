"""QwenVLAgent on the tiny model in every role, from contract-shaped observations (no env needed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import agents
from agents.listener import QwenListener

S = 56


def _fake_env(role: str, action_mode: str = "text") -> SimpleNamespace:
    env = SimpleNamespace(role=role, action_mode=action_mode)
    env.unwrapped = env
    return env


@pytest.fixture(scope="module")
def agent(tiny_path, tiny_model_and_processor):
    model, proc = tiny_model_and_processor
    return agents.make("qwen-vl", model=model, processor=proc, max_new_tokens=12, batch_size=4)


def _imgs(rng, n):
    return rng.integers(0, 256, (n, S, S, 3), dtype=np.uint8)


def test_make_loads_from_path(tiny_path):
    a = agents.make("qwen-vl", model=str(tiny_path), dtype="float32", device="cpu", max_new_tokens=4)
    assert a.name == "qwen-vl" and a.device.type == "cpu"
    assert next(a.model.parameters()).dtype == torch.float32
    with pytest.raises(RuntimeError, match="bind"):
        a.act({"image": np.zeros((S, S, 3), np.uint8)})
    with pytest.raises(ValueError, match="listener_mode"):
        agents.make("qwen-vl", model=str(tiny_path), listener_mode="vote")
    with pytest.raises(FileNotFoundError):
        agents.make("qwen-vl", model="/no/such/model")


def test_speaker_generates_text_batched(agent, rng):
    agent.bind(_fake_env("speaker"))
    obs = [{"image": im, "instruction": "Describe the mug."} for im in _imgs(rng, 3)]
    out = agent.act_batch(obs)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    assert out[0] == agent.act(obs[0])  # greedy: batch and single agree


def test_listener_score_and_text_modes(agent, rng):
    cands = _imgs(rng, 3)
    obs = {"description": "a red mug", "candidates": cands, "question": "Which?"}
    agent.bind(_fake_env("listener"))
    a = agent.act(obs, {"category": "mug"})
    assert a in ("A", "B", "C")
    scores = agent.score_candidates(["a red mug"], [list(cands)], ["mug"])[0]
    assert a == "ABC"[int(np.argmax(scores))]
    agent.bind(_fake_env("listener", "index"))
    assert agent.act(obs, {"category": "mug"}) == int(np.argmax(scores))
    agent.listener_mode = "text"
    try:
        idx = agent.act_batch([obs, obs])
        assert idx[0] == idx[1] and idx[0] in (0, 1, 2)
    finally:
        agent.listener_mode = "score"


def test_recognition_thresholds_p_yes(agent, rng):
    agent.bind(_fake_env("recognition"))
    obs = {"reference": _imgs(rng, 2), "description": "my mug", "query": _imgs(rng, 1)[0], "question": "Same?"}
    p = float(agent.yes_probability([obs], [None])[0])
    assert 0 < p < 1
    old = agent.threshold
    try:
        agent.threshold = max(p - 0.01, 0.0)
        assert agent.act(obs) == "yes"
        agent.threshold = min(p + 0.01, 1.0)
        assert agent.act(obs) == "no"
        agent.bind(_fake_env("recognition", "index"))
        assert agent.act(obs) == 0
    finally:
        agent.threshold = old


def test_vqa_and_identification_pick_an_offered_letter(agent, rng):
    agent.bind(_fake_env("vqa"))
    obs = {"image": _imgs(rng, 1)[0], "reference": _imgs(rng, 1), "question": "What colour is it?",
           "options": "A. red\nB. blue\nC. green"}
    assert agent.act(obs) in ("A", "B", "C")
    agent.bind(_fake_env("vqa", "index"))
    assert agent.act(obs) in (0, 1, 2)
    agent.bind(_fake_env("identification"))
    obs = {"query": _imgs(rng, 1)[0], "database": "A. <mug-1>: red mug\nB. <mug-2>: blue mug", "question": "Which?"}
    out = agent.act_batch([obs, obs])
    assert out[0] == out[1] and out[0] in ("A", "B")
    with pytest.raises(ValueError, match="lettered"):
        agent.act({**obs, "database": "nothing here"})


def test_qwen_listener_protocol(tiny_path, tmp_path, rng):
    from PIL import Image

    from lewis_env.data.types import ImageRef
    from lewis_env.listeners.base import Listener, make_listener

    refs = []
    for i, im in enumerate(_imgs(rng, 3)):
        p = tmp_path / f"c{i}.png"
        Image.fromarray(im).save(p)
        refs.append(ImageRef(f"mug_{i:02d}", str(p), attributes={"category": "mug"}))
    lst = make_listener("qwen", model=str(tiny_path), dtype="float32", device="cpu")
    assert isinstance(lst, QwenListener) and isinstance(lst, Listener)
    idx, scores = lst.choose("a red mug", refs)
    assert len(scores) == 3 and idx == int(np.argmax(scores))
    batch = lst.choose_batch(["a red mug", "a blue mug"], [refs, refs[::-1]])
    assert batch[0][1] == pytest.approx(scores, abs=1e-6)
    assert batch[1][1][::-1] != pytest.approx(scores, abs=1e-9)  # another description, other scores
    with pytest.raises(ValueError, match="2 descriptions but 1"):
        lst.choose_batch(["a", "b"], [refs])
