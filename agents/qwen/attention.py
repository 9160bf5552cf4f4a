"""Grouped-query-aware SDPA attention, registered through transformers' ``AttentionInterface``.

transformers' stock ``sdpa`` passes ``enable_gqa=True`` only when there is no attention mask; a static KV
cache always has one, so every decode step first copies the 2 KV heads of Qwen2-VL-2B sixfold (28 layers,
~14 ms a step at batch 128 on an H100). This function keeps the grouped KV heads and hands the mask to
SDPA with ``enable_gqa=True`` for single-token decode steps (cuDNN attention runs it on Hopper); prefill and
other shapes go through the stock function unchanged.
"""

from __future__ import annotations

from typing import Any

#: Name under which the function (and its mask builder, the stock SDPA one) is registered.
GQA_ATTENTION = "sdpa_gqa"


def gqa_sdpa_attention_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                               dropout: float = 0.0, scaling: float | None = None, is_causal: bool | None = None,
                               **kwargs: Any) -> tuple[Any, None]:
    """SDPA over (B, H, q, D) queries and (B, H_kv, k, D) keys/values; grouped heads stay grouped at decode."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    if groups == 1 or query.shape[2] != 1 or kwargs.get("position_bias") is not None or \
            kwargs.get("output_attentions", False) or key.shape[-1] != value.shape[-1]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    if attention_mask is not None and attention_mask.dim() == 4:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                           dropout_p=dropout, scale=scaling, is_causal=False,
                                                           enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def register_gqa_attention() -> str:
    """Register the function (idempotent) with the stock SDPA mask builder; returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(GQA_ATTENTION, gqa_sdpa_attention_forward)
    AttentionMaskInterface.register(GQA_ATTENTION, sdpa_mask)
    return GQA_ATTENTION


def use_gqa_attention(model: Any) -> bool:
    """Switch the language model of ``model`` (not its vision tower) to grouped-query SDPA; True if switched.

    Only models on SDPA are switched (eager and flash-attention keep what they have: flash already groups).
    """
    config = getattr(model, "config", None)
    text = getattr(config, "text_config", None) or config
    if getattr(text, "_attn_implementation", None) not in ("sdpa", GQA_ATTENTION):
        return False
    register_gqa_attention()
    target = {"text_config": GQA_ATTENTION} if getattr(config, "text_config", None) is not None else GQA_ATTENTION
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(target)
    return getattr(text, "_attn_implementation", None) == GQA_ATTENTION
