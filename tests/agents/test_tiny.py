"""The tiny Qwen2-VL checkpoint: built offline, loads back like a real one, generates from an image."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from transformers import AutoProcessor, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

from agents.tiny import QWEN_SPECIAL_TOKENS, build_tiny_qwen2vl, tiny_model_path


def test_cached_path_is_reused_and_complete(tiny_path):
    assert tiny_path.name.startswith("tiny-qwen2vl-v")
    for f in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "lewis_tiny.json"):
        assert (tiny_path / f).exists(), f
    mtime = (tiny_path / "model.safetensors").stat().st_mtime
    assert tiny_model_path() == tiny_path
    assert (tiny_path / "model.safetensors").stat().st_mtime == mtime  # not rebuilt


def test_loads_back_with_from_pretrained(tiny_path):
    proc = AutoProcessor.from_pretrained(tiny_path)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_path)
    assert isinstance(proc, Qwen2VLProcessor)
    tok = proc.tokenizer
    cfg = model.config
    for t in QWEN_SPECIAL_TOKENS:
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    # task words are single tokens
    for w in ("Yes", "No", " red", " mug", " striped"):
        assert len(tok.encode(w, add_special_tokens=False)) == 1, w


def test_chat_template_and_processor_produce_mm_inputs(tiny_path, rng):
    proc = AutoProcessor.from_pretrained(tiny_path)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the mug."}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")
    assert "<|vision_start|><|image_pad|><|vision_end|>Describe the mug.<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    img = rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)
    batch = proc(text=[text], images=[img], return_tensors="pt")
    assert "mm_token_type_ids" in batch
    n_img = int((batch["input_ids"] == proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum())
    assert n_img == int(batch["image_grid_thw"].prod()) // 4 == int(batch["mm_token_type_ids"].sum())
    # the pixel budget is small: a 224 px image is shrunk to at most 112*112 pixels
    big = proc(text=[text], images=[rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)], return_tensors="pt")
    assert int(big["image_grid_thw"][0, 1:].prod()) * 14 * 14 <= 112 * 112


def test_generate_with_an_image(tiny_path, rng):
    proc = AutoProcessor.from_pretrained(tiny_path)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_path).eval()
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    batch = proc(text=[text, text], images=[rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)] * 2,
                 return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 6) or out.shape[1] <= batch["input_ids"].shape[1] + 6
    assert out.shape[1] > batch["input_ids"].shape[1]
    assert torch.equal(out[0], out[1])  # identical inputs, greedy -> identical outputs
    assert isinstance(proc.batch_decode(out[:, batch["input_ids"].shape[1]:])[0], str)


def test_build_is_seeded_and_cli_works(tmp_path):
    a = build_tiny_qwen2vl(tmp_path / "a", seed=1)
    b = subprocess.run([sys.executable, "-m", "agents.tiny", str(tmp_path / "b"), "--seed", "1"],
                       capture_output=True, text=True, check=True)
    assert b.stdout.strip().endswith("b")
    assert json.loads((a / "lewis_tiny.json").read_text())["seed"] == 1
    ma = Qwen2VLForConditionalGeneration.from_pretrained(a)
    mb = Qwen2VLForConditionalGeneration.from_pretrained(tmp_path / "b")
    for (na, pa), (_, pb) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert torch.equal(pa, pb), na
    mc = Qwen2VLForConditionalGeneration.from_pretrained(tiny_model_path())  # seed 0
    assert not torch.equal(ma.lm_head.weight, mc.lm_head.weight)


def test_parallel_builders_do_not_clash(tmp_path):
    code = "from agents.tiny import tiny_model_path; print(tiny_model_path())"
    env = {**__import__("os").environ, "LEWIS_BENCH_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] == str(tmp_path / "tiny-qwen2vl-v1")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "tiny-qwen2vl-v1"]
    assert leftovers == []
    Qwen2VLForConditionalGeneration.from_pretrained(outs[0])
