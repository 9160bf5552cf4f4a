"""Speaker decode benchmark: plain HF ``generate`` vs the fast path, same model, same prompts, same run.

    python benchmarks/gpu_speaker_bench.py                      # Qwen2-VL-2B dims, bf16, 448 px, CUDA
    python benchmarks/gpu_speaker_bench.py --batches 8 32 128 --new-tokens 128 --json OUT.json

Random weights at Qwen2-VL-2B dimensions (no download). For each batch size: the plain reference
(dynamic cache, ``generate``) and ours (``agents.qwen.generation.fast_generate``: static cache, compiled
decode with CUDA graphs, grouped-query SDPA), each timed on its first call (compile included) and warm.
Decode tok/s = batch x (new tokens - 1) / (end-to-end time - prefill time), with the prefill timed by a
1-token call; end-to-end tok/s counts prefill too. Sampling (temperature 1) with EOS disabled, so every
row makes exactly ``--new-tokens`` tokens. A greedy check compares per-step logits of both paths.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def _prompts(processor: Any, batch: int, image_size: int, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    from agents.qwen.prompts import speaker_messages

    rng = np.random.default_rng(seed)
    images = list(rng.integers(0, 256, (batch, image_size, image_size, 3), dtype=np.uint8))
    texts = [processor.apply_chat_template(speaker_messages({"image": im}, object_name="mug")[0],
                                           add_generation_prompt=True, tokenize=False) for im in images]
    return dict(processor(text=texts, images=images, return_tensors="pt", padding=True, pad_to_multiple_of=64))


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak() -> float:
    import torch

    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0.0


def _timed(fn: Any) -> tuple[float, Any]:
    _sync()
    t = time.perf_counter()
    out = fn()
    _sync()
    return time.perf_counter() - t, out


def greedy_check(plain_model: Any, model: Any, inputs: dict[str, Any], steps: int, fast_cfg: Any) -> dict[str, float]:
    """Per-step log-softmax of plain vs fast greedy decoding, compared until a row's tokens first differ."""
    import torch

    from agents.qwen.generation import fast_generate

    kw = dict(max_new_tokens=steps, do_sample=False, temperature=None, top_p=None, top_k=None, eos_token_id=[],
              output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        plain = plain_model.generate(**inputs, **kw)
    fast = fast_generate(model, inputs, fast_cfg, **kw)
    n = inputs["input_ids"].shape[1]
    a, b = plain.sequences[:, n:], fast.sequences[:, n:]
    same = (a == b).float()
    agree_prefix = same.cumprod(dim=1)  # 1 while every earlier token agreed
    worst = 0.0
    for t, (sa, sb) in enumerate(zip(plain.scores, fast.scores)):
        live = agree_prefix[:, t - 1].bool() if t > 0 else torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
        if live.any():
            la, lb = sa[live].float().log_softmax(-1), sb[live].float().log_softmax(-1)
            top = la.argmax(-1, keepdim=True)  # compare where the mass is: the plain path's top token and the max gap
            worst = max(worst, float((la - lb).abs().gather(-1, top).max()))
    return {"token_agreement": float(same.mean()), "steps_before_first_divergence_mean": float(agree_prefix.sum(1).mean()),
            "max_abs_dlogprob_top_token": worst}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time plain and fast generation per batch size; print a table and return the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["tiny", "2b"], default="2b")
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--image-size", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=2, help="warm calls per path (median reported)")
    ap.add_argument("--greedy-steps", type=int, default=32)
    ap.add_argument("--device", default="cuda", help="cuda; cpu only for a smoke run with --size tiny")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import torch

    from agents.qwen.generation import FastGenerationConfig, fast_generate
    from agents.tiny import random_qwen2vl

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("gpu_speaker_bench needs a CUDA GPU (or --device cpu --size tiny for a smoke run)")
    px = a.image_size ** 2
    dt = torch.bfloat16 if a.device.startswith("cuda") else torch.float32
    model, processor = random_qwen2vl(a.size, dtype=dt, device=a.device, min_pixels=px, max_pixels=px)
    # the reference keeps stock SDPA: a second copy of the same weights (the fast path switches attention)
    plain_model, _ = random_qwen2vl(a.size, dtype=dt, device=a.device, min_pixels=px, max_pixels=px)
    plain_model.load_state_dict(model.state_dict())
    print(f"model: Qwen2-VL random init, size={a.size}, {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B "
          f"params, {dt}, {torch.cuda.get_device_name(0) if a.device.startswith('cuda') else 'cpu'}, "
          f"torch {torch.__version__}, transformers {__import__('transformers').__version__}, "
          f"cudnn_sdp={torch.backends.cuda.cudnn_sdp_enabled()}")
    sample = dict(max_new_tokens=a.new_tokens, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, eos_token_id=[])
    prefill_only = dict(sample, max_new_tokens=1)
    cfg = FastGenerationConfig()
    rows: list[dict[str, Any]] = []
    for batch in a.batches:
        inputs = {k: v.to(a.device) for k, v in _prompts(processor, batch, a.image_size).items()}
        n_prompt = int(inputs["input_ids"].shape[1])
        figs: dict[str, Any] = {"batch": batch, "prompt_tokens": n_prompt, "new_tokens": a.new_tokens}
        paths = {"plain": lambda kw: plain_model.generate(**inputs, **kw),
                 "fast": lambda kw: fast_generate(model, inputs, cfg, **kw)}
        for name, call in paths.items():
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            base = _peak()
            with torch.no_grad():
                first, out = _timed(lambda: call(sample))
                assert out.shape[1] == n_prompt + a.new_tokens, out.shape
                warm = statistics.median(_timed(lambda: call(sample))[0] for _ in range(a.repeats))
                prefill = statistics.median(_timed(lambda: call(prefill_only))[0] for _ in range(2))
            decode_tok = batch * (a.new_tokens - 1)
            figs[name] = {"first_s": first, "warm_s": warm, "prefill_s": prefill,
                          "decode_ms_per_step": 1e3 * (warm - prefill) / (a.new_tokens - 1),
                          "decode_tok_s": decode_tok / max(warm - prefill, 1e-9),
                          "e2e_tok_s_warm": batch * a.new_tokens / warm,
                          "e2e_tok_s_first": batch * a.new_tokens / first,
                          "peak_extra_gib": (_peak() - base) / 2**30}
            print(f"[speaker] batch {batch:4d} {name:>5}: first {first:7.2f} s, warm {warm:6.2f} s, prefill "
                  f"{prefill:5.2f} s, decode {figs[name]['decode_ms_per_step']:6.2f} ms/step = "
                  f"{figs[name]['decode_tok_s']:8.0f} tok/s, e2e {figs[name]['e2e_tok_s_warm']:7.0f} tok/s warm / "
                  f"{figs[name]['e2e_tok_s_first']:7.0f} first, peak +{figs[name]['peak_extra_gib']:.1f} GiB", flush=True)
        figs["decode_speedup"] = figs["fast"]["decode_tok_s"] / figs["plain"]["decode_tok_s"]
        figs["e2e_speedup_warm"] = figs["fast"]["e2e_tok_s_warm"] / figs["plain"]["e2e_tok_s_warm"]
        if a.greedy_steps and batch == a.batches[0]:
            figs["greedy"] = greedy_check(plain_model, model, inputs, a.greedy_steps, cfg)
            print(f"[speaker] greedy check (batch {batch}, {a.greedy_steps} steps): {figs['greedy']}", flush=True)
        rows.append(figs)
    print("\n| batch | plain decode tok/s | ours decode tok/s | ratio | ours e2e warm | ours first call | "
          "plain peak GiB | ours peak GiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['batch']} | {r['plain']['decode_tok_s']:.0f} | {r['fast']['decode_tok_s']:.0f} | "
              f"{r['decode_speedup']:.2f}x | {r['fast']['e2e_tok_s_warm']:.0f} tok/s | {r['fast']['first_s']:.1f} s | "
              f"{r['plain']['peak_extra_gib']:.1f} | {r['fast']['peak_extra_gib']:.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return {"rows": rows}


if __name__ == "__main__":
    main()
