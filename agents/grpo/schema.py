"""The typed training config: Hydra structured-config dataclasses, registered with Hydra's ConfigStore.

``conf/lewis_train.yaml`` starts from the ``lewis_train_schema`` node stored here, so every ``conf/train/*.yaml``
(and every ``train.<key>=<value>`` override) is merged into ``TrainConfig`` and type-checked by OmegaConf at
compose time: a misspelled key or a value of the wrong type fails before anything heavy is imported.

Fields marked ``grpo(...)`` are passed verbatim to ``trl.GRPOConfig`` under the same name; their help is TRL's
own (``field_help``), so nothing is documented twice. Any other GRPOConfig field goes through ``grpo_extra``.
This module imports neither torch nor trl.
"""

# ruff: noqa: RUF009  (doc/node/grpo return dataclasses.field(...): a field spec, not a shared default value)
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

ROLES: tuple[str, ...] = ("speaker", "listener", "selfplay")
SCHEMA_NAME = "lewis_train_schema"


def grpo(default: Any) -> Any:
    """A TrainConfig field copied verbatim into ``trl.GRPOConfig`` (its help is GRPOConfig's)."""
    return field(default=default, metadata={"grpo": True})


def doc(default: Any, help: str) -> Any:
    """A field with a default and a one-line help text (mutable defaults are copied per instance)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def node(cls: type, help: str, optional: bool = False) -> Any:
    """A nested config field (``None`` by default when ``optional``)."""
    if optional:
        return field(default=None, metadata={"help": help})
    return field(default_factory=cls, metadata={"help": help})


@dataclass
class EnvConfig:
    """The gymnasium env a run trains in."""

    id: str = doc("", "gymnasium id, e.g. lewis_env/LewisSpeaker-v0 (required)")
    kwargs: dict[str, Any] = doc({}, "keyword arguments for gym.make (dataset, k, listener, rewards, ...)")


@dataclass
class WarmStartConfig:
    """Warm starts of a random-weight model (agents.grpo.warmstart): vocabulary, and grounding for listeners."""

    words: list[str] = doc([], "single-token words the first completion token is fitted to, uniformly")
    steps: int = doc(60, "optimizer steps")
    learning_rate: float = doc(3e-3, "Adam learning rate")
    max_prompts: int = doc(256, "training prompts sampled from")
    grounding: str | None = doc(None, "listener grounding warm start, run before the vocabulary one: the attribute "
                                      "(e.g. color) the model learns to name in training images and read in "
                                      "descriptions, in prompts of their own (no yes/no, no match label); null = none")
    grounding_steps: int = doc(150, "optimizer steps of the grounding warm start")
    grounding_learning_rate: float = doc(1e-3, "Adam learning rate of the grounding warm start")


@dataclass
class WandbConfig:
    """Weights & Biases logging."""

    mode: str = doc("offline", "offline | online | disabled (disabled when wandb is not installed)")
    project: str = doc("GRPO_Lewis_Qwen_2VL", "wandb project name")


@dataclass
class ListenerServiceConfig:
    """The self-play listener hosted in lewis-serve and reloaded after every phase that changed it."""

    url: str | None = doc(None, "lewis-serve URL hosting the listener (lewis-serve --listener qwen --model "
                                "<train.model> --reload-root <output_dir> --token ...); the speaker is then "
                                "scored through listener=http; null = in-process")
    token_env: str = doc("LEWIS_SERVE_TOKEN", "environment variable holding the service's token (never the token)")
    reload_timeout: float = doc(600.0, "seconds one weight reload may take")
    retry_budget: float = doc(300.0, "seconds a scoring call keeps retrying an unreachable service")


@dataclass
class SelfPlayConfig:
    """Speaker-listener self-play in alternating phases (agents.grpo.selfplay); used when role=selfplay."""

    phases: int = doc(8, "number of phases (speaker and listener phases count one each)")
    speaker_steps: int = doc(50, "GRPO steps per speaker phase")
    listener_steps: int = doc(50, "GRPO steps per listener phase")
    first: str = doc("speaker", "which side trains in phase 0: speaker | listener")
    shared_model: bool = doc(False, "one set of weights plays both roles (updated from both roles' rewards)")
    listener_model: str | None = doc(None, "the listener's starting weights; null = train.model")
    listener_env: EnvConfig = node(EnvConfig, "listener-side env (its descriptions come live from the speaker)")
    listener_warm_start: WarmStartConfig | None = node(WarmStartConfig, "warm start of the listener model", True)
    listener_learning_rate: float | None = doc(None, "listener learning rate; null = train.learning_rate")
    listener_num_generations: int | None = doc(None, "GRPO generations per listener prompt (the batch size stays "
                                                     "train.per_device_train_batch_size); null = train.num_generations")
    listener_select_every: int = doc(0, "every N listener steps, pair accuracy on validation episodes (split off "
                                        "the training episodes, never trained on by the listener); the phase "
                                        "ends on the best weights seen (early stopping); 0 = off")
    listener_val_episodes: int = doc(48, "validation episodes for listener_select_every")
    reference_listener: str | None = doc(None, "frozen listener that also scores the speaker (rule, ...); "
                                               "null = none")
    reference_weight: float = doc(0.0, "share of the speaker reward paid by the reference listener (0..1)")
    crossplay_listener: str = doc("rule", "frozen listener the speaker is cross-played with at every phase")
    contrastive: bool = doc(False, "listener reward over hard positives/negatives (other views of the target "
                                   "concept vs look-alike concepts) instead of plain accuracy")
    listener_service: ListenerServiceConfig = node(ListenerServiceConfig, "host the listener in lewis-serve, "
                                                                          "updated between phases")


@dataclass
class RolloutConfig:
    """How rollouts are generated (agents.grpo.generation): TRL GRPOConfig generation knobs."""

    backend: str = doc("transformers", "transformers | vllm (TRL use_vllm; needs the vllm extra)")
    fast: bool = doc(False, "transformers: static cache (reused) + compiled decode on CUDA + pad-safe GQA SDPA + "
                            "LoRA merged (README Performance)")
    compile: bool = doc(True, "fast: compile the static-cache decode step with CUDA graphs (CUDA only)")
    gqa_attention: bool = doc(True, "fast: grouped-query SDPA at decode (no KV-head copies)")
    reuse_cache: bool = doc(True, "fast: keep one static cache per batch size and reset it between rollouts, "
                                  "so the decode step's CUDA graphs keep their memory addresses")
    merge_lora: bool = doc(True, "fast: merge LoRA into the base weights for each rollout (restored after)")
    cache_implementation: str | None = doc(None, "GRPOConfig.cache_implementation; `fast` sets static")
    pad_to_multiple_of: int | None = doc(None, "GRPOConfig.pad_to_multiple_of; `fast` sets 64")
    generation_batch_size: int | None = doc(None, "GRPOConfig.generation_batch_size; null = TRL's default")
    vllm_mode: str = doc("colocate", "colocate | server")
    vllm_server_base_url: str | None = doc(None, "server mode: e.g. http://127.0.0.1:8000 (trl vllm-serve)")
    vllm_gpu_memory_utilization: float = doc(0.3, "GPU memory share vLLM takes in colocate mode")


@dataclass
class TrainConfig:
    """One GRPO run (``train=<name>`` picks a conf/train/*.yaml built on this)."""

    role: str = doc("speaker", "speaker | listener | selfplay")
    model: str = doc("tiny", "local path or cached hub id; `tiny` = the offline tiny random Qwen2-VL")
    model_short: str | None = doc(None, "output-dir name part; derived from `model` when null")
    dataset_name: str = doc("synthetic", "dataset part of the output-dir name")
    torch_dtype: str = doc("float32", "float32 | bfloat16 | float16")
    attn_implementation: str | None = doc(None, "eager | sdpa | flash_attention_2; null = transformers' choice")
    min_pixels: int | None = doc(None, "processor min_pixels per image")
    max_pixels: int | None = doc(None, "processor max_pixels per image")
    env: EnvConfig = node(EnvConfig, "the env (usually from conf/env/<name>.yaml)")
    prompt_opts: dict[str, Any] = doc({}, "extra kwargs for agents.qwen.prompts.build_messages (listener: "
                                          "answer_style letter|index, description_first)")
    listener_format: str = doc("choice", "listener answers: choice (one prompt with all K candidates, answer "
                                         "a letter or number) | pairs (yes/no per candidate; choice = argmax "
                                         "P(yes), as the qwen listener scores)")
    reward_terms: list[str] = doc([], "reward terms trained on; [] = every term of the env's reward spec")
    reward_weights: dict[str, float] = doc({}, "weight per term, overriding the env's reward spec")
    holdout_frac: float = doc(0.25, "share of episodes kept out of training for before/after accuracy")
    eval_max_episodes: int = doc(64, "held-out episodes evaluated (greedy)")
    eval_every: int = doc(0, "also measure held-out accuracy every N steps (0 = before/after only): "
                                "metrics.json curve and reward_curve.png")
    eval_batch_size: int = doc(16, "batch size of the held-out evaluation")
    print_every: int = doc(10, "print a progress line every N steps (0 = never)")
    warm_start: WarmStartConfig | None = node(WarmStartConfig, "vocabulary warm start; null = none", True)
    selfplay: SelfPlayConfig = node(SelfPlayConfig, "self-play settings (read when role=selfplay)")

    # --- passed to trl.GRPOConfig under the same name (help: trl.GRPOConfig) ---
    num_generations: int = grpo(16)
    beta: float = grpo(0.0)
    loss_type: str = grpo("dapo")
    scale_rewards: str = grpo("group")
    temperature: float = grpo(1.0)
    max_completion_length: int = grpo(1)
    learning_rate: float = grpo(5e-4)
    lr_scheduler_type: str = grpo("constant")
    warmup_steps: int = grpo(0)
    num_train_epochs: float = grpo(1.0)
    max_steps: int = grpo(1000)
    per_device_train_batch_size: int = grpo(64)
    gradient_accumulation_steps: int = grpo(1)
    logging_steps: int = grpo(1)
    save_steps: int = grpo(100)
    save_total_limit: int | None = grpo(2)
    bf16: bool = grpo(False)
    gradient_checkpointing: bool = grpo(False)
    seed: int = grpo(0)
    grpo_extra: dict[str, Any] = doc({}, "any other trl.GRPOConfig field, by name")
    generation: RolloutConfig = node(RolloutConfig, "rollout generation (backend, fast path, vLLM)")

    # --- LoRA (peft.LoraConfig) ---
    use_peft: bool = doc(False, "train a LoRA adapter instead of the full model")
    lora_r: int = doc(64, "LoRA rank")
    lora_alpha: int = doc(128, "LoRA alpha")
    lora_dropout: float = doc(0.0, "LoRA dropout")
    lora_target_modules: Any = doc("all-linear", "peft target_modules: all-linear or a list of module names")

    # --- infrastructure ---
    deepspeed: str | None = doc(None, "DeepSpeed JSON (relative names resolve against conf/deepspeed/)")
    wandb: WandbConfig = node(WandbConfig, "wandb logging")
    output_root: str = doc("outputs", "parent of the derived output dir")
    output_dir: str | None = doc(None, "run folder; null = {output_root}/{model_short}_GRPO_{game}_{dataset}_"
                                       "seed_{seed}_{r..|full}")
    resume_from_checkpoint: str = doc("false", "auto (latest complete checkpoint) | false | <checkpoint path>")
    overwrite_output_dir: bool = doc(False, "start over in a non-empty output dir")


@dataclass
class RootConfig:
    """The primary ``lewis-train`` config: one ``train`` node."""

    train: TrainConfig = node(TrainConfig, "the run")


def grpo_field_names(cls: type = TrainConfig) -> list[str]:
    """TrainConfig fields copied verbatim into trl.GRPOConfig."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("grpo")]


def field_help(cls: type = TrainConfig) -> dict[str, tuple[str, Any, str]]:
    """``name -> (type, default, help)`` for every field; GRPO fields take their help from trl.GRPOConfig."""
    trl_help: dict[str, str] = {}
    if any(f.metadata.get("grpo") for f in dataclasses.fields(cls)):
        from trl import GRPOConfig

        trl_help = {f.name: str(f.metadata.get("help", "")) for f in dataclasses.fields(GRPOConfig)}
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = MISSING
        text = trl_help.get(f.name, "") if f.metadata.get("grpo") else str(f.metadata.get("help", ""))
        out[f.name] = (str(f.type), default, text)
    return out


def register() -> None:
    """Store the schema in Hydra's ConfigStore (idempotent); conf/lewis_train.yaml lists it first."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=RootConfig)


__all__ = ["ROLES", "SCHEMA_NAME", "EnvConfig", "ListenerServiceConfig", "RootConfig", "SelfPlayConfig", "TrainConfig",
           "WandbConfig", "WarmStartConfig", "field_help", "grpo_field_names", "register"]
