"""Reward-curve plotting from trainer logs and the progress bar's reward postfix."""

from __future__ import annotations

from types import SimpleNamespace

from agents.grpo.callbacks import RewardProgressCallback, plot_reward_curve, reward_history

LOGS = [
    {"step": 1, "reward": 0.2, "rewards/accuracy/mean": 0.2, "loss": 0.1},
    {"step": 2, "reward": 0.5, "rewards/accuracy/mean": 0.4, "rewards/length/mean": 0.1},
    {"train_runtime": 3.0},
]


def test_reward_history_collects_total_and_terms():
    series = reward_history(LOGS)
    assert series["reward"] == [(1, 0.2), (2, 0.5)]
    assert series["accuracy"] == [(1, 0.2), (2, 0.4)]
    assert series["length"] == [(2, 0.1)]


def test_plot_reward_curve_writes_png(tmp_path):
    out = plot_reward_curve(LOGS, tmp_path / "curve.png", title="t")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_reward_curve([{"step": 1, "loss": 0.3}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_progress_bar_shows_mean_reward():
    cb = RewardProgressCallback()
    shown = {}
    cb.training_bar = SimpleNamespace(set_postfix=lambda post, refresh=True: shown.update(post), write=lambda s: None)
    state = SimpleNamespace(is_world_process_zero=True, global_step=2)
    cb.on_log(None, state, None, logs=LOGS[1])
    assert shown["reward"] == "0.500" and shown["accuracy"] == "0.400" and shown["length"] == "0.100"
    assert cb.last["reward"] == 0.5
