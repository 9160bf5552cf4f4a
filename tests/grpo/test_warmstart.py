"""Vocabulary warm start: the model ends up speaking the game's words, with no image -> word information."""

from __future__ import annotations

import pytest

from tests.grpo.conftest import ColourSpeakerEnv

COLOURS = ["red", "green", "blue", "yellow"]


@pytest.fixture(scope="module")
def tiny():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from agents.qwen.loading import load_model_and_processor
    from agents.tiny import tiny_model_path

    return load_model_and_processor(tiny_model_path(), dtype="float32", device="cpu")


def _first_token_probs(model, processor, rows, ids):
    import torch
    from trl.data_utils import prepare_multimodal_messages

    tok = processor.tokenizer
    tok.padding_side = "left"
    texts = [processor.apply_chat_template(prepare_multimodal_messages(r["prompt"], images=r["images"]),
                                           tokenize=False, add_generation_prompt=True) for r in rows]
    inputs = processor(text=texts, images=[r["images"] for r in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        return torch.softmax(model(**inputs).logits[:, -1], -1)[:, ids]


def test_warm_start_makes_the_words_likely_and_uniform(tiny):
    from agents.grpo.adapter import episode_prompt
    from agents.grpo.warmstart import vocabulary_warm_start, word_token_ids

    model, processor = tiny
    env = ColourSpeakerEnv(num_episodes=8)
    rows = [episode_prompt(env, i) for i in range(8)]
    ids = word_token_ids(processor.tokenizer, COLOURS)
    before = _first_token_probs(model, processor, rows, ids).sum(-1).mean().item()
    stats = vocabulary_warm_start(model, processor, rows, COLOURS, steps=40, learning_rate=5e-3, batch_size=8)
    probs = _first_token_probs(model, processor, rows, ids)
    assert before < 0.2 and stats["word_mass"] > 0.9 and probs.sum(-1).min().item() > 0.9
    # uniform over the words for every image: no word is favoured for any prompt (no image -> word signal)
    per_word = probs / probs.sum(-1, keepdim=True)
    assert (per_word - 1 / len(COLOURS)).abs().max().item() < 0.1
    assert processor.tokenizer.padding_side == "left"  # restored to what it was (the helper above set left)


def test_word_token_ids_rejects_multi_token_and_duplicate_words(tiny):
    from agents.grpo.warmstart import word_token_ids

    _, processor = tiny
    with pytest.raises(ValueError, match="tokens in this tokenizer"):
        word_token_ids(processor.tokenizer, ["red", "ultramarineish"])
    with pytest.raises(ValueError, match="duplicate"):
        word_token_ids(processor.tokenizer, ["red", " red"])
