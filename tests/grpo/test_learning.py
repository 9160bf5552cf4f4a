"""GRPO through TRL actually learns: the tiny Qwen2-VL speaker's reward rises on the colour game (short run)."""

from __future__ import annotations

import json

import pytest

from tests.grpo.conftest import run_shipped_demo

FIRST_LAST = 15  # steps averaged at each end
MARGIN = 0.08


@pytest.mark.slow
def test_tiny_speaker_reward_goes_up(tmp_path):
    out = tmp_path / "learn"
    # the shipped demo config (warm start, colour game, unique_accuracy reward), just fewer steps
    result = run_shipped_demo("speaker_tiny_cpu", out, "train.max_steps=120", "train.eval_max_episodes=8")
    assert result.global_step == 120
    rows = [json.loads(line) for line in (out / "lewis_rollouts.jsonl").read_text().splitlines()]
    by_step: dict[int, list[float]] = {}
    for row in rows:
        by_step.setdefault(row["step"], []).append(row["reward"])
    steps = sorted(by_step)
    assert steps[0] == 1 and steps[-1] == 120

    def mean(sel: list[int]) -> float:
        vals = [r for s in sel for r in by_step[s]]
        return sum(vals) / len(vals)

    first, last = mean(steps[:FIRST_LAST]), mean(steps[-FIRST_LAST:])
    print(f"mean reward first {FIRST_LAST} steps {first:.3f} -> last {FIRST_LAST} steps {last:.3f}")
    assert last > first + MARGIN, f"reward did not go up: {first:.3f} -> {last:.3f}"
    # the completions are the warm-started colour words, not byte noise
    last_words = [row["completion"].strip() for row in rows[-64:]]
    assert sum(w in {"red", "green", "blue", "yellow"} for w in last_words) >= 0.9 * len(last_words)
    assert (out / "reward_curve.png").stat().st_size > 0
    assert {"before", "after"} <= set(result.metrics)
