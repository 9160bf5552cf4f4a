"""Qwen-VL agents on transformers. Importing this package registers ``qwen-vl`` without importing torch."""

from __future__ import annotations

from typing import Any

from agents.registry import register

__all__ = ["make_qwen_vl"]


@register("qwen-vl")
def make_qwen_vl(**kwargs: Any) -> Any:
    """Build a ``QwenVLAgent`` (imported lazily so the registry stays torch-free); see its docstring for kwargs."""
    from agents.qwen.agent import QwenVLAgent

    return QwenVLAgent(**kwargs)
