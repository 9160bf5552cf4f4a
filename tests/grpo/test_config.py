"""Hydra composition of every conf/train file into a valid GRPOConfig, naming, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.grpo import config as C


def test_all_expected_train_configs_exist():
    assert {"speaker_tiny_cpu", "listener_tiny_cpu", "speaker_qwen2vl_2b", "speaker_qwen25vl_7b"} <= set(
        C.list_train_configs())


@pytest.mark.parametrize("name", C.list_train_configs())
def test_every_train_config_builds_a_grpo_config(name):
    cfg = C.compose([f"train={name}", "train.wandb.mode=disabled"])
    train = cfg.train
    args = C.build_grpo_config(train, use_cpu=True, require_deepspeed=False)
    assert args.num_generations == train.num_generations >= 2
    assert (args.beta, args.loss_type, args.scale_rewards) == (0.0, "dapo", "group")
    assert args.max_completion_length == train.max_completion_length
    assert args.learning_rate == pytest.approx(train.learning_rate)
    assert args.remove_unused_columns is False  # the episode_id column must reach the reward functions
    assert train.env.id.startswith("lewis_env/")
    assert args.output_dir == str(C.output_dir(train))
    if train.use_peft:
        lora = C.lora_config(train)
        assert (lora.r, lora.lora_alpha) == (train.lora_r, train.lora_alpha)
    else:
        assert C.lora_config(train) is None
    if train.deepspeed:
        assert json.loads(Path(C.deepspeed_path(train.deepspeed)).read_text())["zero_optimization"]["stage"] in (2, 3)


def test_reference_7b_settings():
    train = C.compose(["train=speaker_qwen25vl_7b"]).train
    assert (train.lora_r, train.lora_alpha, train.lora_dropout) == (64, 128, 0.001)
    assert train.num_generations == 4 and train.max_pixels == 401408 and train.num_train_epochs == 4
    assert train.per_device_train_batch_size * train.gradient_accumulation_steps == 32
    assert train.learning_rate == pytest.approx(5e-7) and train.deepspeed == "zero3.json"
    assert C.output_dir(train).name == "Qwen2.5-VL-7B_GRPO_lewis_YoLLaVA_seed_23_r64_a128"


def test_overrides_apply_and_name_the_output_dir():
    train = C.compose(["train=speaker_tiny_cpu", "train.max_steps=7", "train.seed=5", "train.use_peft=true",
                       "train.lora_r=8", "train.lora_alpha=16", "train.output_root=/tmp/x"]).train
    assert train.max_steps == 7
    assert str(C.output_dir(train)) == "/tmp/x/tiny-qwen2vl_GRPO_lewis_synthetic-colour_seed_5_r8_a16"


@pytest.mark.parametrize("name", ["zero2", "zero3", "zero2_offload", "zero3_offload"])
def test_deepspeed_jsons_use_auto_values(name):
    cfg = json.loads(Path(C.deepspeed_path(f"{name}.json")).read_text())
    assert cfg["train_micro_batch_size_per_gpu"] == "auto" and cfg["gradient_accumulation_steps"] == "auto"
    assert cfg["bf16"]["enabled"] == "auto"
    assert ("offload_optimizer" in cfg["zero_optimization"]) == name.endswith("offload")


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="role"):
        C.compose(["train=speaker_tiny_cpu", "train.role=referee"])
    with pytest.raises(ValueError, match="num_generations"):
        C.compose(["train=speaker_tiny_cpu", "train.num_generations=1"])
    with pytest.raises(Exception, match="nope"):
        C.compose(["train=nope"])
    with pytest.raises(FileNotFoundError, match="missing.json"):
        C.deepspeed_path("missing.json")
    train = C.compose(["train=speaker_tiny_cpu", "train.reward_weights=[1.0]"]).train
    with pytest.raises(ValueError, match="reward_terms"):
        C.build_grpo_config(train)


def test_reward_weights_follow_terms():
    train = C.compose(["train=speaker_tiny_cpu", "train.reward_terms=[accuracy,format]",
                       "train.reward_weights={format: 0.5}", "train.wandb.mode=disabled"]).train
    assert C.build_grpo_config(train).reward_weights == [1.0, 0.5]


def test_conf_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("LEWIS_BENCH_CONF", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="LEWIS_BENCH_CONF"):
        C.conf_dir()


def test_cli_help_and_bad_arguments(capsys):
    from agents.grpo.cli import main

    assert main(["--help"]) == 0
    assert "speaker_tiny_cpu" in capsys.readouterr().out
    assert main(["speaker_tiny_cpu"]) == 2  # not a key=value override
    assert "key=value" in capsys.readouterr().err
    assert main(["train=does_not_exist"]) == 2
    assert "bad config" in capsys.readouterr().err
