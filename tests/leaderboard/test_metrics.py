"""Metrics against hand-computed cases; bootstrap CI sanity (contains the mean, narrows with n, seeded)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leaderboard.metrics import (
    accuracy,
    bootstrap_ci,
    mean_ci,
    primary_metric,
    recognition_accuracies,
    summarize,
    task_metrics,
)


def test_accuracy_hand_computed():
    assert accuracy([True, False, True, True]) == 0.75
    assert math.isnan(accuracy([]))


def test_recognition_hand_computed():
    # positives: 3, of which 2 correct -> 2/3; negatives: 2, of which 0 correct -> 0
    correct = [True, True, False, False, False]
    positive = [True, True, True, False, False]
    m = recognition_accuracies(correct, positive)
    assert m["positive_accuracy"] == pytest.approx(2 / 3)
    assert m["negative_accuracy"] == 0.0
    assert m["weighted_accuracy"] == pytest.approx(1 / 3)
    assert m["accuracy"] == pytest.approx(2 / 5)


def test_always_yes_recogniser_weighted_is_half():
    positive = [True] * 10 + [False] * 30
    correct = positive  # saying "yes" is right exactly on positives
    m = recognition_accuracies(correct, positive)
    assert m["accuracy"] == 0.25 and m["weighted_accuracy"] == 0.5


def test_task_metrics_from_records_and_parse_errors():
    recs = [{"correct": True, "parse_error": None}, {"correct": False, "parse_error": "no letter"},
            {"correct": False, "parse_error": None}, {"correct": True, "parse_error": ""}]
    m = task_metrics("listener", recs)
    assert m["accuracy"] == 0.5 and m["parse_error_rate"] == 0.25
    with pytest.raises(KeyError, match="positive"):
        task_metrics("recognition", [{"correct": True}])
    with pytest.raises(KeyError, match="correct"):
        task_metrics("vqa", [{"parsed": "A"}])
    with pytest.raises(ValueError, match="unknown role"):
        primary_metric("juggling")


def test_bootstrap_contains_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = rng.random(40) < 0.6
    large = rng.random(4000) < 0.6
    lo_s, hi_s = mean_ci(small, n_resamples=500, seed=0)
    lo_l, hi_l = mean_ci(large, n_resamples=500, seed=0)
    assert lo_s <= small.mean() <= hi_s
    assert lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3  # width ~ 1/sqrt(n): 10x more data -> ~3x+ narrower


def test_bootstrap_seeded_determinism():
    x = np.random.default_rng(0).random(100) < 0.3
    assert mean_ci(x, seed=7) == mean_ci(x, seed=7)
    assert mean_ci(x, seed=7) != mean_ci(x, seed=8)


def test_bootstrap_constant_data_has_zero_width_and_rejects_bad_args():
    assert mean_ci(np.ones(20)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci({"x": np.ones(3)}, lambda c: 1.0, confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci({"x": np.ones(3)}, lambda c: 1.0, n_resamples=0)


def test_summarize_means_over_seeds_and_stratified_ci():
    per_seed = {0: [{"correct": c} for c in [1, 1, 1, 1]], 1: [{"correct": c} for c in [0, 0, 1, 1]]}
    s = summarize("listener", per_seed, n_resamples=300, seed=0)
    assert s["per_seed"][0]["metrics"]["accuracy"] == 1.0
    assert s["per_seed"][1]["metrics"]["accuracy"] == 0.5
    assert s["mean"]["metrics"]["accuracy"] == 0.75
    lo, hi = s["mean"]["ci"]["accuracy"]
    assert lo <= 0.75 <= hi <= 1.0 and lo >= 0.5  # seed 0 is always 1.0, seed 1 in [0, 1]
    assert s["mean"]["n"] == 8 and s["mean"]["seeds"] == [0, 1]


def test_summarize_recognition_reports_pos_neg_weighted():
    recs = [{"correct": True, "positive": True}, {"correct": False, "positive": True},
            {"correct": True, "positive": False}, {"correct": True, "positive": False}]
    s = summarize("recognition", {0: recs}, n_resamples=200)
    m = s["mean"]["metrics"]
    assert m["positive_accuracy"] == 0.5 and m["negative_accuracy"] == 1.0 and m["weighted_accuracy"] == 0.75
    assert set(s["mean"]["ci"]) >= {"positive_accuracy", "negative_accuracy", "weighted_accuracy"}
