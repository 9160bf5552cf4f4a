"""``lewis-train train=<name> [train.key=value ...]``: compose the typed Hydra config and run GRPO (or self-play).

Every ordinary mistake (a wrong type, a misspelled key, a missing config, model path or output-dir clash) is
reported in one line naming the key, with exit code 2, before any model loads.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

_CONFIG_NAME_FLAGS = ("--config-name", "-cn")


def _split_config_name(args: list[str]) -> tuple[str | None, list[str]]:
    """Pull ``--config-name=X`` / ``--config-name X`` / ``-cn X`` out of the argument list."""
    name, rest, i = None, [], 0
    while i < len(args):
        arg = args[i]
        flag, eq, value = arg.partition("=")
        if flag in _CONFIG_NAME_FLAGS:
            if not eq:
                if i + 1 >= len(args):
                    raise ValueError(f"{flag} needs a value")
                value, i = args[i + 1], i + 1
            name = value
        else:
            rest.append(arg)
        i += 1
    return name, rest


def print_help() -> None:
    """Usage, the shipped train configs and every train.<key> with its type, default and help."""
    from agents.grpo.config import list_train_configs
    from agents.grpo.schema import field_help

    print(__doc__.strip())
    print("\ntrain configs:", ", ".join(list_train_configs()))
    print("examples: lewis-train train=speaker_tiny_cpu train.max_steps=50")
    print("          lewis-train train=speaker_qwen25vl_7b train.resume_from_checkpoint=auto\n")
    for name, (typ, default, text) in field_help().items():
        first = text.strip().split(". ")[0].replace("\n", " ")
        print(f"  train.{name}: {typ} = {default!r}\n      {first[:160]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print_help()
        return 0
    try:
        config_name, args = _split_config_name(args)
    except ValueError as exc:
        print(f"lewis-train: {exc}", file=sys.stderr)
        return 2
    bad = [a for a in args if "=" not in a]
    if bad:
        print(f"lewis-train: arguments must be Hydra overrides train.<key>=<value>, got {bad}", file=sys.stderr)
        return 2
    from agents.grpo import config as C
    from agents.grpo.resume import IncompleteCheckpointError

    try:
        cfg = C.compose(args, config_name=config_name or C.PRIMARY_CONFIG)
        C.check_model_path(str(cfg.train.model), hub=True)
        C.build_grpo_config(cfg.train, require_deepspeed=True)  # TRL's own checks, still before any model loads
    except (C.ConfigError, FileNotFoundError, ImportError) as exc:
        print(f"lewis-train: bad config: {exc}", file=sys.stderr)
        return 2
    if cfg.train.role == "selfplay":
        from agents.grpo.selfplay import run_selfplay as run
    else:
        from agents.grpo.runner import run
    try:
        result = run(cfg)
    except (FileExistsError, FileNotFoundError, IncompleteCheckpointError, C.ConfigError) as exc:  # output dir, resume
        print(f"lewis-train: {exc}", file=sys.stderr)
        return 2
    m = result.metrics
    before = m.get("before", {}).get("accuracy")
    after = m.get("after", {}).get("accuracy")
    print(f"[lewis-train] done: step {result.global_step}, output {result.output_dir}")
    if after is not None:
        print(f"[lewis-train] held-out accuracy: before {before}, after {after} (chance {m.get('chance')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
