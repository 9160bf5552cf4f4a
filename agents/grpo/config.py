"""Hydra config composition and validation for GRPO runs: conf/train/*.yaml -> GRPOConfig + LoRA config."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Keys every train config must define (the rest have defaults in code).
REQUIRED_KEYS: tuple[str, ...] = ("role", "model", "env", "num_generations", "learning_rate", "seed")
#: train-node keys copied verbatim into trl.GRPOConfig.
GRPO_KEYS: tuple[str, ...] = (
    "num_generations", "beta", "loss_type", "scale_rewards", "temperature", "max_completion_length",
    "learning_rate", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "max_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps",
    "save_total_limit", "bf16", "gradient_checkpointing", "seed",
)
_ROLES = ("speaker", "listener")
PRIMARY_CONFIG = "lewis_train"


def conf_dir() -> Path:
    """The Hydra conf/ folder: $LEWIS_BENCH_CONF, else the repo's conf/ next to the package."""
    env = os.environ.get("LEWIS_BENCH_CONF")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "conf"
    if not (path / f"{PRIMARY_CONFIG}.yaml").is_file():
        raise FileNotFoundError(f"no {PRIMARY_CONFIG}.yaml in conf dir {path} (set LEWIS_BENCH_CONF to the conf/ folder)")
    return path


def list_train_configs() -> list[str]:
    """Names accepted by ``train=<name>``."""
    return sorted(p.stem for p in (conf_dir() / "train").glob("*.yaml"))


def compose(overrides: Sequence[str] = ()) -> Any:
    """Compose the primary training config with Hydra overrides (e.g. ``["train=speaker_tiny_cpu"]``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name=PRIMARY_CONFIG, overrides=list(overrides))
    validate(cfg.train)
    return cfg


def to_container(node: Any) -> Any:
    """OmegaConf node -> plain dicts/lists (interpolations resolved); other values pass through."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def validate(train: Any) -> None:
    """Raise ValueError naming the first bad field of a composed ``train`` node."""
    missing = [k for k in REQUIRED_KEYS if k not in train or train[k] is None]
    if missing:
        raise ValueError(f"train config is missing required keys: {', '.join(missing)}")
    if train.role not in _ROLES:
        raise ValueError(f"train.role must be one of {_ROLES}, got {train.role!r}")
    if "id" not in train.env:
        raise ValueError("train.env.id is required (a gymnasium id such as lewis_env/LewisSpeaker-v0)")
    if int(train.num_generations) < 2:
        raise ValueError(f"train.num_generations must be >= 2 for GRPO group advantages, got {train.num_generations}")
    frac = float(train.get("holdout_frac", 0.0))
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"train.holdout_frac must be in [0, 1), got {frac}")
    resume = train.get("resume_from_checkpoint", False)
    if not (resume in (False, None, "auto", "false") or isinstance(resume, str)):
        raise ValueError(f"train.resume_from_checkpoint must be auto, false or a checkpoint path, got {resume!r}")
    if train.get("use_peft") and int(train.get("lora_r", 0)) <= 0:
        raise ValueError(f"train.lora_r must be > 0 when use_peft is true, got {train.get('lora_r')}")


def model_short_name(model: str) -> str:
    """``Qwen/Qwen2.5-VL-7B-Instruct`` -> ``Qwen2.5-VL-7B``; ``tiny`` -> ``tiny-qwen2vl``."""
    if model == "tiny":
        return "tiny-qwen2vl"
    name = Path(str(model).rstrip("/")).name
    return re.sub(r"-Instruct$", "", name) or "model"


def output_dir(train: Any) -> Path:
    """The run folder, named like the reference script: ``{model}_GRPO_lewis_{dataset}_seed_{seed}_r{r}_a{a}``."""
    if train.get("output_dir"):
        return Path(str(train.output_dir))
    short = train.get("model_short") or model_short_name(str(train.model))
    suffix = f"r{train.lora_r}_a{train.lora_alpha}" if train.get("use_peft") else "full"
    dataset = train.get("dataset_name") or "synthetic"
    return Path(str(train.get("output_root", "outputs"))) / f"{short}_GRPO_lewis_{dataset}_seed_{train.seed}_{suffix}"


def resolve_model_path(model: str) -> str:
    """``tiny`` -> the cached tiny Qwen2-VL folder; anything else unchanged."""
    if model == "tiny":
        from agents.tiny import tiny_model_path

        return str(tiny_model_path())
    return str(model)


def deepspeed_path(value: str | None) -> str | None:
    """A DeepSpeed JSON path; bare names resolve against conf/deepspeed/. Missing file -> FileNotFoundError."""
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute() and not path.exists():
        path = conf_dir() / "deepspeed" / value
    if not path.is_file():
        raise FileNotFoundError(f"deepspeed config {value!r} not found (looked at {path})")
    return str(path)


def wandb_report_to(train: Any) -> list[str]:
    """``["wandb"]`` when wandb is installed and not disabled (sets WANDB_MODE/PROJECT), else ``[]``."""
    wb = train.get("wandb") or {}
    mode = str(wb.get("mode", "offline"))
    if mode == "disabled" or os.environ.get("WANDB_MODE") == "disabled":
        return []
    try:
        import wandb  # noqa: F401
    except ImportError:
        return []
    os.environ.setdefault("WANDB_MODE", mode)
    if wb.get("project"):
        os.environ.setdefault("WANDB_PROJECT", str(wb.project))
    return ["wandb"]


def build_grpo_config(train: Any, out_dir: Path | str | None = None, require_deepspeed: bool = True,
                      **overrides: Any) -> Any:
    """A ``trl.GRPOConfig`` from a composed ``train`` node (raises on invalid combinations).

    ``require_deepspeed=False`` drops a configured DeepSpeed JSON (after checking it parses) when the
    deepspeed package is absent, so configs can be validated on machines without it.
    """
    import dataclasses
    import importlib.util

    from trl import GRPOConfig

    validate(train)
    kwargs: dict[str, Any] = {k: to_container(train[k]) for k in GRPO_KEYS if k in train and train[k] is not None}
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    if "gradient_checkpointing" in kwargs and "activation_checkpointing" in fields:
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
    ds = deepspeed_path(train.get("deepspeed"))
    if ds is not None:
        json.loads(Path(ds).read_text())  # a broken JSON fails here, naming the file in the traceback
        if importlib.util.find_spec("deepspeed") is None:
            if require_deepspeed:
                raise ImportError(f"train.deepspeed={train.deepspeed!r} needs deepspeed: pip install 'lewis-bench[deepspeed]'")
            ds = None
    if "dataloader_pin_memory" in fields:  # pinning only helps (and only works quietly) with an accelerator
        import torch

        kwargs["dataloader_pin_memory"] = bool(torch.cuda.is_available())
    kwargs.update(to_container(train.get("grpo_extra") or {}))
    out = Path(out_dir) if out_dir is not None else output_dir(train)
    kwargs.update(
        output_dir=str(out),
        deepspeed=ds,
        report_to=wandb_report_to(train),
        run_name=out.name,
        remove_unused_columns=False,
        reward_weights=_reward_weights(train),
        log_completions=False,
        disable_tqdm=False,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def _reward_weights(train: Any) -> list[float] | None:
    weights = to_container(train.get("reward_weights"))
    terms = to_container(train.get("reward_terms"))
    if weights is None:
        return None
    if not terms:
        raise ValueError("train.reward_weights needs train.reward_terms (the order the weights apply to)")
    if isinstance(weights, dict):
        unknown = set(weights) - set(terms)
        if unknown:
            raise ValueError(f"train.reward_weights names terms not in reward_terms: {sorted(unknown)}")
        return [float(weights.get(t, 1.0)) for t in terms]
    if len(weights) != len(terms):
        raise ValueError(f"train.reward_weights has {len(weights)} entries but reward_terms has {len(terms)}")
    return [float(w) for w in weights]


def lora_config(train: Any) -> Any:
    """A peft ``LoraConfig`` when ``use_peft`` is set, else None."""
    if not train.get("use_peft"):
        return None
    from peft import LoraConfig

    targets = to_container(train.get("lora_target_modules", "all-linear"))
    return LoraConfig(
        r=int(train.lora_r), lora_alpha=int(train.lora_alpha), lora_dropout=float(train.lora_dropout),
        target_modules=targets, task_type="CAUSAL_LM",
    )

