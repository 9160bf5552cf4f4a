"""Vocabulary warm start: teach a randomly initialised policy to *speak* a game's words, not which word fits.

A real Qwen-VL checkpoint already names colours; the tiny random model of the CPU demo emits byte noise, so
GRPO would have to discover the words by chance and then collapses onto the first one it finds. As a stand-in
for language pretraining, this fits the model's first completion token on the training prompts to the uniform
distribution over ``words``, the same target for every prompt: the warm start carries no image -> word
information, so whatever mapping the model ends up with is learned by GRPO alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def word_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """The single-token id of ``" " + word`` for each word; a word spanning several tokens is an error."""
    ids = []
    for w in words:
        toks = tokenizer.encode(" " + str(w).strip(), add_special_tokens=False)
        if len(toks) != 1:
            raise ValueError(f"warm-start word {w!r} is {len(toks)} tokens in this tokenizer; use single-token words")
        ids.append(int(toks[0]))
    if len(set(ids)) != len(ids):
        raise ValueError(f"warm-start words map to duplicate tokens: {list(words)}")
    return ids


def vocabulary_warm_start(model: Any, processor: Any, rows: Sequence[dict[str, Any]], words: Sequence[str],
                          steps: int = 60, learning_rate: float = 3e-3, batch_size: int = 16,
                          seed: int = 0) -> dict[str, float]:
    """Train the first completion token towards a uniform choice of ``words`` on ``rows`` (prompt + images).

    Returns the final loss and the probability mass the model puts on ``words`` (averaged over a batch).
    """
    import torch
    from trl.data_utils import prepare_multimodal_messages

    if not words:
        raise ValueError("vocabulary_warm_start needs at least one word")
    if not rows:
        raise ValueError("vocabulary_warm_start needs at least one prompt row")
    tok = getattr(processor, "tokenizer", processor)
    targets = torch.tensor(word_token_ids(tok, words))
    old_side = tok.padding_side
    tok.padding_side = "left"  # the last position is the first completion token's context for every row
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=learning_rate)
    model.train()
    loss_v, mass = float("nan"), 0.0
    try:
        for _ in range(int(steps)):
            batch = [rows[int(i)] for i in rng.integers(len(rows), size=min(batch_size, len(rows)))]
            texts = [processor.apply_chat_template(prepare_multimodal_messages(r["prompt"], images=r["images"]),
                                                   tokenize=False, add_generation_prompt=True) for r in batch]
            images = [r["images"] for r in batch]
            inputs = processor(text=texts, images=images if any(images) else None, return_tensors="pt", padding=True)
            inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}
            logits = model(**inputs).logits[:, -1].float()
            logp = torch.log_softmax(logits, dim=-1)[:, targets.to(device)]
            loss = -logp.mean()  # cross-entropy to the uniform distribution over the words
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_v, mass = float(loss.detach()), float(logp.detach().exp().sum(-1).mean())
    finally:
        tok.padding_side = old_side
    return {"loss": loss_v, "word_mass": mass, "steps": int(steps)}
