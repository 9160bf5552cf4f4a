"""Session-wide test settings: a private cache dir, and GPU tests skipped cleanly without CUDA."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Keep generated worlds and the tiny model out of the user's home during tests, unless told otherwise.
    if "LEWIS_BENCH_CACHE" not in os.environ:
        import tempfile

        os.environ["LEWIS_BENCH_CACHE"] = tempfile.mkdtemp(prefix="lewis_bench_test_cache_")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # the marker, not any node named "gpu"
            item.add_marker(skip)
