"""Listener scoring benchmark: naive G×K forwards vs the shared image prefix, on a random-init Qwen2-VL.

    python benchmarks/gpu_listener_bench.py --size 2b          # Qwen2-VL-2B dims, bf16, CUDA
    python benchmarks/gpu_listener_bench.py --size tiny --device cpu --dtype float32

Needs only torch, transformers and this repo (no network, no weights): the model has random weights at
Qwen2-VL-2B dimensions and the offline tiny tokenizer. Prints, per method, median seconds per call (G
descriptions × K candidates), pairs per second and peak GPU memory, plus the max |P_shared - P_naive|.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

DESCRIPTIONS = [
    "A red mug.",
    "The large blue striped ball with a star mark on its side.",
    "A small round green hat with white dots and a heart mark near the brim, sitting on the left.",
    "<coarse>A plant</coarse><detailed>A tall purple plant in a checkered pot with a ring mark.</detailed>",
    "Tall brown bottle.",
    "A wide yellow book with a cross on the cover, plain otherwise, and fairly small compared with the rest.",
    "An orange lamp.",
    "A black clock with pink stripes and a round face.",
]


def main(argv: list[str] | None = None) -> int:
    """Time both scoring paths and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["tiny", "2b"], default="2b")
    ap.add_argument("--g", type=int, default=8, help="descriptions (GRPO group size)")
    ap.add_argument("--k", type=int, default=4, help="candidate images")
    ap.add_argument("--image-size", type=int, default=448, help="candidate image side in pixels")
    ap.add_argument("--batch-size", type=int, default=8, help="rows per forward in both paths")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "flash_attention_2"])
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from agents.qwen.scoring import YesNoScorer
    from agents.tiny import random_qwen2vl

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("CUDA is not available; pass --device cpu (and --size tiny)")
    dtype = getattr(torch, args.dtype)
    pixels = args.image_size * args.image_size
    t0 = time.perf_counter()
    model, processor = random_qwen2vl(args.size, dtype=dtype, device=args.device, min_pixels=pixels, max_pixels=pixels,
                                      attn_implementation=args.attn)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: Qwen2-VL random init, size={args.size}, {n_params / 1e9:.2f} B params, {args.dtype}, "
          f"{args.device}, attn={args.attn}, built in {time.perf_counter() - t0:.1f} s")
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (args.k, args.image_size, args.image_size, 3), dtype=np.uint8))
    descs = [DESCRIPTIONS[i % len(DESCRIPTIONS)] + ("" if i < len(DESCRIPTIONS) else f" ({i})") for i in range(args.g)]
    grid = processor.image_processor(images=[images[0]], return_tensors="pt")["image_grid_thw"][0]
    print(f"G={args.g} descriptions x K={args.k} candidates, image {args.image_size}px -> "
          f"{int(grid.prod()) // 4} image tokens, batch_size={args.batch_size}")

    cuda = args.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    results = {}
    for method in ("naive", "shared"):
        scorer = YesNoScorer(model, processor, method=method, batch_size=args.batch_size, object_name="object")
        scorer.yes_probabilities(descs, images)  # warm-up
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() if cuda else 0
        times = []
        for _ in range(args.repeats):
            sync()
            t = time.perf_counter()
            probs = scorer.yes_probabilities(descs, images)
            sync()
            times.append(time.perf_counter() - t)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else float("nan")
        med = statistics.median(times)
        results[method] = probs
        print(f"{method:>6}: {med:.4f} s/call (min {min(times):.4f}), {args.g * args.k / med:.1f} pairs/s, "
              f"peak extra GPU memory {peak:.0f} MiB")
        results[method + "_s"] = med
    diff = float(np.abs(results["naive"] - results["shared"]).max())
    print(f"speedup shared vs naive: {results['naive_s'] / results['shared_s']:.2f}x")
    print(f"max |P_shared - P_naive| = {diff:.2e}  (P range {results['naive'].min():.3f}..{results['naive'].max():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
