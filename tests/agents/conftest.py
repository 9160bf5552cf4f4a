"""Fixtures for the Qwen-VL agent tests: the offline tiny checkpoint, loaded once per session."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_path():
    """Path of the cached tiny Qwen2-VL checkpoint (built once, offline)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from agents.tiny import tiny_model_path

    return tiny_model_path()


@pytest.fixture(scope="session")
def tiny_model_and_processor(tiny_path):
    """(model, processor) of the tiny checkpoint in float32 on CPU."""
    from agents.qwen.loading import load_model_and_processor

    return load_model_and_processor(tiny_path, dtype="float32", device="cpu")


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


@pytest.fixture()
def images_of():
    """A function (rng, n, size=56) -> n random RGB uint8 images, (n, size, size, 3)."""

    def make(rng: np.random.Generator, n: int, size: int = 56) -> np.ndarray:
        return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)

    return make
