"""The ``qwen-vl`` baseline: a zero-shot QwenVLAgent; ``model="tiny"`` (the default here) is the offline tiny model.

``agents.qwen`` registers ``qwen-vl`` itself; this module only registers it when that package did not
(so there is never a double registration), and ``resolve_model`` maps the ``tiny`` alias to
``agents.tiny.tiny_model_path()``. Nothing here imports torch until an agent is built.
"""

from __future__ import annotations

from typing import Any

from agents.registry import _AGENTS, register

#: Model aliases understood by this baseline.
TINY_ALIASES = ("tiny", "tiny-qwen2vl")


def resolve_model(model: str | None) -> str:
    """``None``/``"tiny"`` -> the locally built tiny Qwen2-VL checkpoint path; anything else unchanged."""
    if model is None or str(model) in TINY_ALIASES:
        from agents.tiny import tiny_model_path

        return str(tiny_model_path())
    return str(model)


def make_qwen_zero_shot(model: str | None = "tiny", **kwargs: Any) -> Any:
    """A zero-shot ``QwenVLAgent`` on ``model`` (a checkpoint path, hub id, or ``tiny``)."""
    from agents.qwen.agent import QwenVLAgent

    return QwenVLAgent(model=resolve_model(model), **kwargs)


try:  # agents.qwen registers "qwen-vl" on import when its module exists
    import agents.qwen  # noqa: F401
except ImportError as exc:  # not written/installed: this baseline provides the registration instead
    if exc.name and not exc.name.startswith("agents.qwen"):
        raise

if "qwen-vl" not in _AGENTS:
    register("qwen-vl")(make_qwen_zero_shot)
