"""Trainer callbacks: progress bar with mean reward, rollouts JSONL, reward-curve PNG (rank 0 writes)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import ProgressCallback, TrainerCallback

ROLLOUTS_FILE = "lewis_rollouts.jsonl"
CURVE_FILE = "reward_curve.png"


def process_index() -> int:
    """This process's rank under torchrun/accelerate (0 when not distributed)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)


class RewardProgressCallback(ProgressCallback):
    """transformers' tqdm bar, with the current mean reward (and accuracy) as its postfix."""

    def __init__(self, print_every: int = 0) -> None:
        super().__init__()
        self.print_every = print_every
        self.last: dict[str, float] = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        post = {}
        if "reward" in logs:
            post["reward"] = f"{float(logs['reward']):.3f}"
        for key, value in logs.items():
            if key.startswith("rewards/") and key.endswith("/mean"):
                post[key.split("/")[1]] = f"{float(value):.3f}"
        if "loss" in logs:
            post["loss"] = f"{float(logs['loss']):.4g}"
        if post:
            self.last = {k: float(v) for k, v in post.items()}
            self.training_bar.set_postfix(post, refresh=True)
        if "train_runtime" in logs:
            self.training_bar.write(str({k: v for k, v in logs.items() if k != "total_flos"}))
        elif self.print_every and state.global_step % self.print_every == 0:
            self.training_bar.write(f"step {state.global_step}: " + ", ".join(f"{k}={v}" for k, v in post.items()))

class RolloutLogger(TrainerCallback):
    """Appends one JSON row per scored completion to ``lewis_rollouts.jsonl`` (per-rank file off rank 0)."""

    def __init__(self, output_dir: str | Path, terms: Sequence[str]) -> None:
        rank = process_index()
        name = ROLLOUTS_FILE if rank == 0 else f"lewis_rollouts.rank{rank}.jsonl"
        self.path = Path(output_dir) / name
        self.terms = list(terms)
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def on_scored(self, batch: dict[str, Any]) -> None:
        """BatchScorer hook: buffer the batch's rows."""
        rows = []
        for eid, text, reward, info in zip(batch["episode_ids"], batch["completions"], batch["rewards"], batch["infos"]):
            terms = info.get("reward_terms", {})
            row = {"episode_id": int(eid), "step": int(batch.get("step", 0)), "completion": text,
                   "reward": float(reward), "correct": bool(info.get("correct", False))}
            row.update({t: float(terms.get(t, 0.0)) for t in self.terms})
            for key in ("description", "target_concept", "candidate_ids"):  # language metrics need the referent
                if key in info:
                    row[key] = info[key]
            rows.append(row)
        with self._lock:
            self._rows.extend(rows)

    def flush(self) -> None:
        """Append buffered rows to the JSONL file."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.flush()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.flush()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.flush()


def reward_history(log_history: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Series name -> [(step, value)] for ``reward``, every ``rewards/<term>/mean`` and ``heldout_accuracy``
    (``train.eval_every``) in the trainer logs."""
    series: dict[str, list[tuple[int, float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            if key in ("reward", "heldout_accuracy") or (key.startswith("rewards/") and key.endswith("/mean")):
                name = key if "/" not in key else key.split("/")[1]
                series.setdefault(name, []).append((int(step), float(value)))
    return series


def plot_reward_curve(log_history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Save the reward curve(s) as a PNG (matplotlib Agg); None when nothing was logged."""
    series = reward_history(log_history)
    if not series:
        return None
    from lewis_env.figures import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(7, 4))
    for name, points in sorted(series.items(), key=lambda kv: kv[0] != "reward"):
        steps, values = zip(*points)
        if name == "heldout_accuracy":
            ax.plot(steps, values, "o-", color="black", label="held-out accuracy", linewidth=2.0)
        else:
            ax.plot(steps, values, label=name, linewidth=2.0 if name == "reward" else 1.0)
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward" if "heldout_accuracy" not in series else "mean reward / held-out accuracy")
    ax.set_title(title or "GRPO reward")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


class RewardCurveCallback(TrainerCallback):
    """Redraws ``reward_curve.png`` on every save and at the end of training (rank 0 only)."""

    def __init__(self, output_dir: str | Path, title: str = "") -> None:
        self.path = Path(output_dir) / CURVE_FILE
        self.title = title

    def _draw(self, state: Any) -> None:
        if state.is_world_process_zero:
            plot_reward_curve(state.log_history, self.path, self.title)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._draw(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._draw(state)


class SelectBestCallback(TrainerCallback):
    """Early stopping by model selection: ``score(model)`` (validation accuracy) at the start and every ``every``
    steps; the trainable weights of the best score are kept and put back when training ends."""

    def __init__(self, score: Any, every: int) -> None:
        self.score, self.every = score, int(every)
        self.best, self.best_step, self.curve = float("-inf"), 0, []
        self._weights: dict[str, Any] | None = None

    def _check(self, model: Any, step: int) -> None:
        value = float(self.score(model))
        self.curve.append({"step": int(step), "accuracy": round(value, 4)})
        if value > self.best:
            self.best, self.best_step = value, int(step)
            self._weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._check(model, 0)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.every > 0 and state.global_step % self.every == 0:
            self._check(model, state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.curve and self.curve[-1]["step"] != state.global_step:
            self._check(model, state.global_step)
        if self._weights is not None and self.best_step != state.global_step:
            import torch

            with torch.no_grad():
                params = dict(model.named_parameters())
                for name, value in self._weights.items():
                    params[name].copy_(value)
