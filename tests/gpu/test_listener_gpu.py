"""GPU: shared-prefix listener scoring equals naive scoring at Qwen2-VL-2B size in bf16 (random weights)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

DESCRIPTIONS = [
    "A red mug.",
    "The large blue striped ball with a star mark on its side.",
    "x",
    "A small round green hat with white dots and a heart mark near the brim, sitting on the left of the table.",
    "<coarse>A plant</coarse><detailed>A tall purple plant in a checkered pot.</detailed>",
]


@pytest.fixture(scope="module")
def model_2b():
    torch = pytest.importorskip("torch")
    from agents.tiny import random_qwen2vl

    model, proc = random_qwen2vl("2b", dtype=torch.bfloat16, device="cuda", min_pixels=224 * 224,
                                 max_pixels=224 * 224)
    yield model, proc
    del model
    torch.cuda.empty_cache()


def test_shared_prefix_matches_naive_bf16_2b(model_2b):
    from agents.qwen.scoring import yes_probabilities

    model, proc = model_2b
    assert sum(p.numel() for p in model.parameters()) > 1.5e9
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (4, 224, 224, 3), dtype=np.uint8))
    naive = yes_probabilities(model, proc, DESCRIPTIONS, images, method="naive", batch_size=4)
    shared = yes_probabilities(model, proc, DESCRIPTIONS, images, method="shared", batch_size=4)
    assert naive.shape == shared.shape == (len(DESCRIPTIONS), 4)
    assert np.isfinite(naive).all() and np.isfinite(shared).all()
    diff = float(np.abs(naive - shared).max())
    print(f"max |shared - naive| (bf16, 2B dims) = {diff:.3e}")
    assert diff <= 2e-2


def test_qwen_listener_on_cuda_picks_argmax(model_2b):
    from agents.qwen.agent import QwenVLAgent
    from agents.qwen.scoring import YesNoScorer

    model, proc = model_2b
    agent = QwenVLAgent(model=model, processor=proc)
    assert agent.device.type == "cuda"
    rng = np.random.default_rng(1)
    cands = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    env = type("E", (), {"role": "listener", "action_mode": "index"})()
    agent.bind(env)
    choice = agent.act({"description": "a red mug", "candidates": cands, "question": "?"}, {"category": "mug"})
    scores = YesNoScorer(model, proc, method="naive").score_candidates(["a red mug"], [list(cands)], ["mug"])[0]
    assert choice == int(np.argmax(scores)) or abs(max(scores) - sorted(scores)[-2]) < 2e-2
