"""``lewis-train train=<name> [train.key=value ...]``: compose the Hydra config and run GRPO."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        from agents.grpo.config import list_train_configs

        print(__doc__.strip())
        print("train configs:", ", ".join(list_train_configs()))
        print("examples: lewis-train train=speaker_tiny_cpu train.max_steps=50")
        print("          lewis-train train=speaker_qwen25vl_7b train.resume_from_checkpoint=auto")
        return 0
    bad = [a for a in args if "=" not in a]
    if bad:
        print(f"lewis-train: arguments must be Hydra overrides key=value, got {bad}", file=sys.stderr)
        return 2
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from agents.grpo.config import compose
    from agents.grpo.runner import run

    try:
        cfg = compose(args)
    except (HydraException, OmegaConfBaseException, ValueError, FileNotFoundError) as exc:  # they name the bad key
        print(f"lewis-train: bad config: {exc}", file=sys.stderr)
        return 2
    result = run(cfg)
    m = result.metrics
    before = m.get("before", {}).get("accuracy")
    after = m.get("after", {}).get("accuracy")
    print(f"[lewis-train] done: step {result.global_step}, output {result.output_dir}")
    if after is not None:
        print(f"[lewis-train] held-out listener accuracy: before {before}, after {after} (chance {m.get('chance')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
