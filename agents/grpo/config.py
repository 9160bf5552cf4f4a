"""Hydra composition and validation of training configs (schema: agents/grpo/schema.py) -> GRPOConfig + LoRA."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.grpo import schema
from agents.grpo.schema import (
    ROLES,
    EnvConfig,
    RolloutConfig,
    SelfPlayConfig,
    TrainConfig,
    WandbConfig,
    WarmStartConfig,
)
from lewis_env.registry import close_matches

PRIMARY_CONFIG = "lewis_train"


class ConfigError(ValueError):
    """A training config that cannot run: the message names the key and, for a typo, the near name."""


def conf_dir() -> Path:
    """The Hydra conf/ folder (``lewis_env.paths.conf_dir``), checked to hold the training config."""
    from lewis_env.paths import conf_dir as _conf_dir

    try:
        path = _conf_dir()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (set LEWIS_BENCH_CONF to the conf/ folder)") from None
    if not (path / f"{PRIMARY_CONFIG}.yaml").is_file():
        raise FileNotFoundError(f"no {PRIMARY_CONFIG}.yaml in conf dir {path} (set LEWIS_BENCH_CONF to the conf/ folder)")
    return path


def list_train_configs() -> list[str]:
    """Names accepted by ``train=<name>``."""
    return sorted(p.stem for p in (conf_dir() / "train").glob("*.yaml"))


def _near(name: str, known: Sequence[str]) -> str:
    close = close_matches(name, known)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fields_of(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _dataclass_of(f: dataclasses.Field) -> type | None:
    """The config dataclass a (possibly optional) field holds, or None."""
    for cls in (EnvConfig, WandbConfig, WarmStartConfig, SelfPlayConfig, RolloutConfig):
        if cls.__name__ in str(f.type):
            return cls
    return None


def unknown_keys(node: Any, cls: type = TrainConfig, prefix: str = "train") -> list[str]:
    """Dotted keys of ``node`` that ``cls`` does not declare (``+train.key=`` can smuggle them in); with hints."""
    fields = _fields_of(cls)
    out = []
    for key in list(node.keys()) if node is not None else []:
        if key not in fields:
            out.append(f"{prefix}.{key}{_near(str(key), list(fields))}")
            continue
        sub = _dataclass_of(fields[key])
        value = node[key]
        if sub is not None and value is not None and hasattr(value, "keys"):
            out += unknown_keys(value, sub, f"{prefix}.{key}")
    return out


def _explain(exc: Exception, overrides: Sequence[str]) -> str:
    """One readable line for a Hydra/OmegaConf composition error: the key, what was wrong, the near name."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    cause = exc.__cause__ or exc
    full_key = getattr(cause, "full_key", None) or ""
    msg = str(cause).split("\n")[0]
    if isinstance(cause, ValidationError) and full_key:
        return f"{full_key}: {msg}"
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and full_key:
        parent, _, leaf = full_key.rpartition(".")
        known: list[str] = []
        if parent == "train":
            known = list(_fields_of(TrainConfig))
        elif parent.startswith("train.") and parent.count(".") == 1:
            f = _fields_of(TrainConfig).get(parent.split(".")[1])
            sub = _dataclass_of(f) if f is not None else None
            known = list(_fields_of(sub)) if sub is not None else []
        if not known and parent.startswith("train."):  # a free-form dict (env.kwargs, prompt_opts, ...)
            return (f"{parent} has no key {leaf!r}; add one with +{full_key}=<value> "
                    f"(Hydra needs the + to add a key to an existing dict)")
        return f"unknown key {full_key}{_near(leaf, known)}"
    if isinstance(cause, (AssertionError, AttributeError)) or "NoneType" in msg:
        bad = [o for o in overrides if "." in o.split("=")[0]]
        return f"cannot set a key under a null section ({', '.join(bad)}); set the whole section, e.g. train.x={{...}}"
    return str(exc).strip()


def compose(overrides: Sequence[str] = (), config_name: str = PRIMARY_CONFIG) -> Any:
    """Compose and validate a training config (e.g. ``["train=speaker_tiny_cpu"]``); torch-free and fast.

    Every error an ordinary mistake can cause (a wrong type, a misspelled or unknown key, a missing config or
    model path) is a ``ConfigError`` naming the key, raised before any model or dataset is touched.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    schema.register()
    root = conf_dir()
    if not (root / f"{config_name}.yaml").is_file():
        names = sorted(p.stem for p in root.glob("*.yaml"))
        raise ConfigError(f"--config-name={config_name}: no {config_name}.yaml in {root}; available: {', '.join(names)}")
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(root), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    except MissingConfigException as exc:
        raise ConfigError(str(exc).split("Config search path")[0].strip()) from None
    except (HydraException, OmegaConfBaseException, AssertionError, AttributeError) as exc:
        raise ConfigError(_explain(exc, overrides)) from None
    if "train" not in cfg:
        raise ConfigError(f"config {config_name!r} has no train node")
    bad = unknown_keys(cfg.train)
    if bad:
        raise ConfigError(f"unknown key(s): {', '.join(bad)}")
    validate(cfg.train)
    return cfg


def to_container(node: Any) -> Any:
    """OmegaConf node -> plain dicts/lists (interpolations resolved); other values pass through."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def check_model_path(model: str, key: str = "train.model", hub: bool = False) -> None:
    """ConfigError when ``model`` is a local path that does not exist (``hub``: or an uncached hub id offline)."""
    if model == "tiny":
        return
    path = Path(os.path.expanduser(model))
    looks_local = model.startswith(("/", ".", "~")) or path.exists() or model.count("/") != 1
    if looks_local:
        if not path.is_dir():
            raise ConfigError(f"{key}={model!r}: no such model folder (give a local checkpoint folder, a hub id "
                              f"such as Qwen/Qwen2-VL-2B-Instruct, or `tiny`)")
        if not (path / "config.json").is_file():
            raise ConfigError(f"{key}={model!r}: the folder has no config.json (not a transformers checkpoint)")
        return
    if hub and os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "TRUE", "yes"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise ConfigError(f"{key}={model!r}: not in the Hugging Face cache and HF_HUB_OFFLINE is set")


def validate(train: Any) -> None:
    """Raise ConfigError naming the first bad field of a composed ``train`` node (types are OmegaConf's job)."""
    if not train.env.id:
        raise ConfigError("train.env.id is required (a gymnasium id such as lewis_env/LewisSpeaker-v0)")
    if train.role not in ROLES:
        raise ConfigError(f"train.role must be one of {ROLES}, got {train.role!r}")
    if int(train.num_generations) < 2:
        raise ConfigError(f"train.num_generations must be >= 2 for GRPO group advantages, got {train.num_generations}")
    for key in ("max_completion_length", "per_device_train_batch_size", "gradient_accumulation_steps",
                "eval_batch_size"):
        if int(train[key]) < 1:
            raise ConfigError(f"train.{key} must be >= 1, got {train[key]}")
    if float(train.learning_rate) <= 0:
        raise ConfigError(f"train.learning_rate must be > 0, got {train.learning_rate}")
    if not 0.0 <= float(train.holdout_frac) < 1.0:
        raise ConfigError(f"train.holdout_frac must be in [0, 1), got {train.holdout_frac}")
    if train.use_peft and int(train.lora_r) <= 0:
        raise ConfigError(f"train.lora_r must be > 0 when use_peft is true, got {train.lora_r}")
    if train.listener_format not in ("choice", "pairs"):
        raise ConfigError(f"train.listener_format must be choice or pairs, got {train.listener_format!r}")
    if train.torch_dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"train.torch_dtype must be float32, bfloat16 or float16, got {train.torch_dtype!r}")
    if train.wandb.mode not in ("offline", "online", "disabled"):
        raise ConfigError(f"train.wandb.mode must be offline, online or disabled, got {train.wandb.mode!r}")
    weights = to_container(train.reward_weights)
    terms = to_container(train.reward_terms)
    if terms and weights:
        extra = sorted(set(weights) - set(terms))
        if extra:
            raise ConfigError(f"train.reward_weights names terms not in train.reward_terms: {extra}")
    if train.role == "selfplay":
        sp = train.selfplay
        if sp.first not in ("speaker", "listener"):
            raise ConfigError(f"train.selfplay.first must be speaker or listener, got {sp.first!r}")
        for key in ("phases", "speaker_steps", "listener_steps"):
            if int(sp[key]) < 1:
                raise ConfigError(f"train.selfplay.{key} must be >= 1, got {sp[key]}")
        if int(sp.listener_select_every) < 0 or int(sp.listener_val_episodes) < 1:
            raise ConfigError("train.selfplay.listener_select_every must be >= 0 and listener_val_episodes >= 1")
        if not 0.0 <= float(sp.reference_weight) <= 1.0:
            raise ConfigError(f"train.selfplay.reference_weight must be in [0, 1], got {sp.reference_weight}")
        if float(sp.reference_weight) > 0 and not sp.reference_listener:
            raise ConfigError("train.selfplay.reference_weight > 0 needs train.selfplay.reference_listener")
        if sp.listener_model:
            check_model_path(str(sp.listener_model), "train.selfplay.listener_model")
    warm = [k for k, node in (("train.warm_start", train.warm_start),
                              ("train.selfplay.listener_warm_start",
                               train.selfplay.listener_warm_start if train.role == "selfplay" else None))
            if node is not None and (node.words or getattr(node, "grounding", None))]
    if train.use_peft and warm:  # the run folder would hold an adapter for weights that are saved nowhere
        raise ConfigError(f"{warm[0]} changes the base weights, which a LoRA run (train.use_peft=true) does not "
                          f"save: its adapter would later load onto the untouched base. Set {warm[0]}=null or "
                          "train.use_peft=false")
    check_model_path(str(train.model))
    check_listener_checkpoint(train)


def check_listener_checkpoint(train: Any) -> None:
    """``listener=qwen`` in the env kwargs: its ``model``/``adapter`` (a trained listener) must load, else a
    ConfigError naming the key, before anything heavy runs (the env would otherwise fail mid-setup)."""
    kwargs = to_container(train.env.get("kwargs") or {})
    if kwargs.get("listener") != "qwen":
        return
    lk = kwargs.get("listener_kwargs") or {}
    from agents.qwen.loading import CheckpointError, check_adapter, resolve_checkpoint

    key = "train.env.kwargs.listener_kwargs"
    try:
        if lk.get("adapter") is not None:
            check_adapter(str(lk["adapter"]))
        if str(lk.get("model", "tiny")) != "tiny":  # `tiny` is built on first use, not checked here
            resolve_checkpoint(str(lk["model"]), lk.get("adapter"))
    except (CheckpointError, FileNotFoundError) as exc:
        raise ConfigError(f"{key}: {exc}") from None


def model_short_name(model: str) -> str:
    """``Qwen/Qwen2.5-VL-7B-Instruct`` -> ``Qwen2.5-VL-7B``; ``tiny`` -> ``tiny-qwen2vl``."""
    from agents.tiny import TINY_ALIAS, TINY_NAME

    if model == TINY_ALIAS:
        return TINY_NAME
    name = Path(str(model).rstrip("/")).name
    return re.sub(r"-Instruct$", "", name) or "model"


#: The game part of the derived output-dir name per role (the speaker keeps the reference project's name).
GAME_NAMES = {"speaker": "lewis", "listener": "lewis-listener", "selfplay": "lewis-selfplay"}


def output_dir(train: Any) -> Path:
    """The run folder, named like the reference script: ``{model}_GRPO_{game}_{dataset}_seed_{seed}_r{r}_a{a}``.

    ``game`` is ``lewis`` for speakers and ``lewis-listener`` / ``lewis-selfplay`` otherwise, so the demos of
    different roles never share a default folder.
    """
    if train.output_dir:
        return Path(str(train.output_dir))
    short = train.model_short or model_short_name(str(train.model))
    suffix = f"r{train.lora_r}_a{train.lora_alpha}" if train.use_peft else "full"
    game = GAME_NAMES.get(str(train.role), f"lewis-{train.role}")
    return Path(str(train.output_root)) / f"{short}_GRPO_{game}_{train.dataset_name}_seed_{train.seed}_{suffix}"


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
    wb = train.wandb
    mode = str(wb.mode)
    if mode == "disabled" or os.environ.get("WANDB_MODE") == "disabled":
        return []
    try:
        import wandb  # noqa: F401
    except ImportError:
        return []
    os.environ.setdefault("WANDB_MODE", mode)
    if wb.project:
        os.environ.setdefault("WANDB_PROJECT", str(wb.project))
    return ["wandb"]


def build_grpo_config(train: Any, out_dir: Path | str | None = None, require_deepspeed: bool = True,
                      reward_weights: Sequence[float] | None = None, require_vllm: bool = True,
                      **overrides: Any) -> Any:
    """A ``trl.GRPOConfig`` from a composed ``train`` node: the ``grpo(...)`` fields of the schema verbatim,
    ``grpo_extra`` on top (each key checked against GRPOConfig's fields), and the run's own plumbing.

    ``require_deepspeed=False`` drops a configured DeepSpeed JSON (after checking it parses) when the
    deepspeed package is absent, so configs can be validated on machines without it; ``require_vllm=False``
    likewise builds a ``generation.backend=vllm`` config without vLLM installed. ``train.generation`` sets
    GRPOConfig's rollout knobs (agents.grpo.generation); ``grpo_extra`` still wins over them.
    """
    import importlib.util

    from agents.grpo.generation import grpo_generation_kwargs

    from trl import GRPOConfig

    validate(train)
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    kwargs: dict[str, Any] = {k: to_container(train[k]) for k in schema.grpo_field_names() if train[k] is not None}
    extra = to_container(train.grpo_extra) or {}
    for key in extra:
        if key not in fields:
            raise ConfigError(f"train.grpo_extra.{key} is not a trl.GRPOConfig field{_near(key, sorted(fields))}")
    if "gradient_checkpointing" in kwargs and "activation_checkpointing" in fields:
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
    ds = deepspeed_path(train.deepspeed)
    if ds is not None:
        json.loads(Path(ds).read_text())  # a broken JSON fails here, naming the file in the traceback
        if importlib.util.find_spec("deepspeed") is None:
            if require_deepspeed:
                raise ImportError(f"train.deepspeed={train.deepspeed!r} needs deepspeed: pip install 'lewis-bench[deepspeed]'")
            ds = None
    if "dataloader_pin_memory" in fields:  # pinning only helps (and only works quietly) with an accelerator
        import torch

        kwargs["dataloader_pin_memory"] = bool(torch.cuda.is_available())
    kwargs.update(grpo_generation_kwargs(train, require_vllm=require_vllm))
    kwargs.update(extra)
    out = Path(out_dir) if out_dir is not None else output_dir(train)
    kwargs.update(
        output_dir=str(out),
        deepspeed=ds,
        report_to=wandb_report_to(train),
        run_name=out.name,
        remove_unused_columns=False,
        reward_weights=list(reward_weights) if reward_weights is not None else None,
        log_completions=False,
        disable_tqdm=False,
    )
    kwargs.update(overrides)
    try:
        return GRPOConfig(**kwargs)
    except ValueError as exc:  # TRL's own consistency checks (e.g. batch size vs num_generations)
        raise ConfigError(f"train: {exc}") from None


def lora_config(train: Any) -> Any:
    """A peft ``LoraConfig`` when ``use_peft`` is set, else None."""
    if not train.use_peft:
        return None
    from peft import LoraConfig

    targets = to_container(train.lora_target_modules)
    return LoraConfig(
        r=int(train.lora_r), lora_alpha=int(train.lora_alpha), lora_dropout=float(train.lora_dropout),
        target_modules=targets, task_type="CAUSAL_LM",
    )

