"""GRPO through TRL teaches the tiny random Qwen2-VL listener: its HELD-OUT accuracy rises from chance.

The shipped `listener_tiny_cpu` config (grounding + yes/no warm starts, pair format, balanced rows, colour game,
K=4), fewer steps. The grounding warm start never shows the pair prompt, a distractor or a match label, so the
listener starts at chance on held-out episodes; the rise is GRPO's.
"""

from __future__ import annotations

import json

import pytest

from tests.grpo.conftest import run_shipped_demo

STEPS = 200


@pytest.mark.slow
def test_tiny_listener_heldout_accuracy_rises_from_chance(tmp_path):
    out = tmp_path / "listener"
    result = run_shipped_demo("listener_tiny_cpu", out, f"train.max_steps={STEPS}", "train.eval_every=100")
    assert result.global_step == STEPS
    before, after = result.metrics["before"], result.metrics["after"]
    print(f"held-out accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f} (n={after['num_episodes']})")
    assert before["num_episodes"] == after["num_episodes"] >= 40
    assert before["accuracy"] <= 0.35, "the warm starts alone must not solve the task (chance is 0.25)"
    assert after["accuracy"] >= before["accuracy"] + 0.25 and after["accuracy"] >= 0.5
    metrics = json.loads((out / "metrics.json").read_text())
    assert [p["step"] for p in metrics["curve"]] == [100, 200] and metrics["curve"][-1]["accuracy"] == after["accuracy"]
    assert metrics["before"]["answer_format"] == "pairs (argmax P(yes))"
    # both answers are in use at the end (argmax P(yes) needs P(yes) to vary, not a constant answer)
    rows = [json.loads(line) for line in (out / "lewis_rollouts.jsonl").read_text().splitlines()]
    last = [r["completion"].strip() for r in rows if r["step"] > STEPS - 20]
    assert min(last.count("yes"), last.count("no")) >= 0.2 * len(last)
    assert (out / "reward_curve.png").stat().st_size > 0
