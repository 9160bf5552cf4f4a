"""Listener scoring speed on the tiny model (CPU): naive G×K forwards vs the shared image prefix."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

G, K = 8, 4
DESCRIPTIONS = [f"A {c} {p} mug with a {m} mark." for c, p, m in
                zip(["red", "blue", "green", "pink", "black", "white", "brown", "orange"],
                    ["plain", "striped", "dotted", "checkered"] * 2, ["star", "heart", "cross", "ring"] * 2)]


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    from agents.qwen.loading import load_model_and_processor
    from agents.tiny import tiny_model_path

    return load_model_and_processor(tiny_model_path(), dtype="float32", device="cpu")


@pytest.mark.parametrize("method", ["naive", "shared"])
def test_listener_scoring_speed(benchmark, tiny, method):
    from agents.qwen.scoring import YesNoScorer

    model, proc = tiny
    images = list(np.random.default_rng(0).integers(0, 256, (K, 56, 56, 3), dtype=np.uint8))
    scorer = YesNoScorer(model, proc, method=method, batch_size=8)
    probs = benchmark(scorer.yes_probabilities, DESCRIPTIONS[:G], images)
    assert probs.shape == (G, K)
    import time

    t = time.perf_counter()
    for _ in range(3):
        scorer.yes_probabilities(DESCRIPTIONS[:G], images)
    per_call = (time.perf_counter() - t) / 3
    print(f"\n[scoring {method}] tiny Qwen2-VL CPU, G={G} x K={K}: {per_call * 1e3:.1f} ms/call, "
          f"{G * K / per_call:.0f} pairs/s")
