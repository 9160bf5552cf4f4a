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


def test_select_best_keeps_the_best_validated_weights_and_puts_them_back():
    """Early stopping: the weights scored best (step 0 counts) are restored at the end; frozen ones untouched."""
    import torch

    from agents.grpo.callbacks import SelectBestCallback

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[1].weight.requires_grad_(False)
    scores = iter([0.3, 0.7, 0.5, 0.4])  # steps 0, 2, 4, 6: best at step 2

    cb = SelectBestCallback(lambda m: next(scores), every=2)
    state = SimpleNamespace(global_step=0)
    cb.on_train_begin(None, state, None, model=model)
    kept = None
    for step in range(1, 7):
        with torch.no_grad():
            model[0].weight.add_(1.0)
        state.global_step = step
        cb.on_step_end(None, state, None, model=model)
        if step == 2:
            kept = model[0].weight.detach().clone()
    frozen = model[1].weight.detach().clone()
    cb.on_train_end(None, state, None, model=model)
    assert cb.best_step == 2 and cb.best == 0.7
    assert [c["step"] for c in cb.curve] == [0, 2, 4, 6]
    assert torch.equal(model[0].weight, kept) and torch.equal(model[1].weight, frozen)
