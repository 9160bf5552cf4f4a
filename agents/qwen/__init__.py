"""Qwen-VL agents on transformers. ``agents.registry`` registers ``qwen-vl`` lazily as ``make_qwen_vl``."""

from __future__ import annotations

from typing import Any

__all__ = ["make_qwen_vl"]


def make_qwen_vl(**kwargs: Any) -> Any:
    """Build a ``QwenVLAgent`` (imported lazily so the registry stays torch-free); see its docstring for kwargs.

    ``model`` defaults to ``"tiny"``, the offline tiny Qwen2-VL (random weights), so a zero-shot baseline
    runs anywhere; pass a checkpoint path or hub id for a real model.
    """
    from agents.qwen.agent import QwenVLAgent

    return QwenVLAgent(**kwargs)
