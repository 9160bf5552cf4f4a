"""Load a Qwen-VL model and its processor from a local path or hub id, with an optional LoRA adapter."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


def resolve_model_path(model: str | Path) -> str:
    """``"tiny"`` (``agents.tiny.TINY_ALIAS``) -> the cached offline tiny checkpoint; anything else is a path or
    hub id, returned as str (FileNotFoundError when it is neither)."""
    from agents.tiny import TINY_ALIAS, tiny_model_path

    if str(model) == TINY_ALIAS:
        return str(tiny_model_path())
    path = str(model)
    if not Path(path).expanduser().exists() and (path.count("/") != 1 or path.startswith((".", "/", "~"))):
        raise FileNotFoundError(f"model {path!r} is neither an existing folder nor a hub id (owner/name)")
    return path


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; other values pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return str(device)


def resolve_dtype(dtype: str | Any, device: str) -> Any:
    """A torch dtype: ``"auto"`` is bfloat16 on CUDA (when supported) and float32 on CPU."""
    import torch

    if not isinstance(dtype, str):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} or a torch.dtype, got {dtype!r}")
    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def resolve_attn(attn_implementation: str, device: str) -> str:
    """The attention backend: flash_attention_2 only when requested, on CUDA, with flash_attn installed."""
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ValueError(f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {attn_implementation!r}")
    if attn_implementation == "flash_attention_2":
        if importlib.util.find_spec("flash_attn") is None or not device.startswith("cuda"):
            log.warning("flash_attention_2 requested but flash_attn/CUDA is unavailable; using sdpa")
            return "sdpa"
    return attn_implementation


def load_processor(model: str | Path, min_pixels: int | None = None, max_pixels: int | None = None) -> Any:
    """``AutoProcessor.from_pretrained`` with the image budget overridden when given; left padding for batching."""
    from transformers import AutoProcessor

    kwargs: dict[str, Any] = {}
    if min_pixels is not None:
        kwargs["min_pixels"] = int(min_pixels)
    if max_pixels is not None:
        kwargs["max_pixels"] = int(max_pixels)
    if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) must be <= max_pixels ({max_pixels})")
    processor = AutoProcessor.from_pretrained(resolve_model_path(model), **kwargs)
    processor.tokenizer.padding_side = "left"
    return processor


def load_model(model: str | Path, adapter: str | Path | None = None, dtype: str | Any = "auto",
               device: str = "auto", attn_implementation: str = "sdpa", merge_adapter: bool = True) -> Any:
    """A Qwen-VL ``*ForConditionalGeneration`` in eval mode on ``device``, with a peft LoRA adapter if given."""
    from transformers import AutoModelForImageTextToText

    path = resolve_model_path(model)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    attn = resolve_attn(attn_implementation, dev)
    kwargs: dict[str, Any] = {"device_map": {"": dev}} if dev.startswith("cuda") else {}  # load straight onto the GPU
    net = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype, attn_implementation=attn, **kwargs)
    if adapter is not None:
        from peft import PeftModel

        a = str(adapter)
        if not Path(a).expanduser().exists() and (a.count("/") != 1 or a.startswith((".", "/", "~"))):
            raise FileNotFoundError(f"LoRA adapter {a!r} is neither an existing folder nor a hub id (owner/name)")
        net = PeftModel.from_pretrained(net, str(adapter))
        if merge_adapter:
            net = net.merge_and_unload()
    return net.to(dev).eval()


def load_model_and_processor(model: str | Path, adapter: str | Path | None = None, dtype: str | Any = "auto",
                             device: str = "auto", attn_implementation: str = "sdpa",
                             min_pixels: int | None = None, max_pixels: int | None = None,
                             merge_adapter: bool = True) -> tuple[Any, Any]:
    """``(model, processor)`` from one path or hub id (see ``load_model`` and ``load_processor``)."""
    processor = load_processor(model, min_pixels=min_pixels, max_pixels=max_pixels)
    net = load_model(model, adapter=adapter, dtype=dtype, device=device, attn_implementation=attn_implementation,
                     merge_adapter=merge_adapter)
    return net, processor
