"""End-to-end evaluation on a tiny suite: reproducibility, rule above random, random at chance, skips, store."""

from __future__ import annotations

import json

import pytest

from agents.registry import BaseAgent
from leaderboard.evaluate import evaluate
from leaderboard.metrics import primary_metric
from leaderboard.store import MEAN_SEED, ResultStore
from leaderboard.suites import SuiteError, compute_episodes_hash, load_suite
from tests.leaderboard.conftest import tiny_suite_dict


def test_same_evaluation_twice_is_identical(tiny_suite, tmp_path):
    a = evaluate("random", tiny_suite, samples_dir=tmp_path / "a", n_resamples=200, progress=False)
    b = evaluate("random", tiny_suite, samples_dir=tmp_path / "b", n_resamples=200, progress=False)
    assert set(a.summaries) == set(tiny_suite.tasks)
    for t in a.summaries:
        assert a.summaries[t]["per_seed"] == b.summaries[t]["per_seed"]
        assert a.summaries[t]["mean"] == b.summaries[t]["mean"]
    for fa, fb in zip(sorted(a.sample_files), sorted(b.sample_files)):
        assert fa.name == fb.name and fa.read_text() == fb.read_text()
    recs = [json.loads(x) for x in a.sample_files[0].read_text().splitlines()]
    assert len(recs) == 16 and {"episode_id", "action", "correct", "reward", "seed"} <= set(recs[0])


def test_rule_beats_random_and_random_is_at_chance(tiny_suite, tmp_path):
    store = tmp_path / "r.sqlite"
    rule = evaluate("rule", tiny_suite, store=store, n_resamples=200, progress=False)
    rnd = evaluate("random", tiny_suite, store=store, n_resamples=200, progress=False)
    for t in ("speaker", "listener", "identification"):
        assert rule.score(t) >= 0.9, (t, rule.summaries[t]["mean"])
        assert 0.0 <= rnd.score(t) <= 0.55, (t, rnd.summaries[t]["mean"])  # chance = 1/K = 0.25
        assert rule.score(t) > rnd.score(t)
    assert rule.score("recognition") >= 0.9  # weighted accuracy
    assert 0.2 <= rnd.score("recognition") <= 0.8  # chance = 0.5
    assert rule.score("vqa") > rnd.score("vqa")
    for res in (rule, rnd):
        for t, s in res.summaries.items():
            lo, hi = s["mean"]["ci"][primary_metric(s["role"])]
            assert lo <= res.score(t) <= hi
    with ResultStore(store) as st:
        n = st.count()
        assert n == 2 * 5 * (2 + 1)  # agents x tasks x (seeds + mean row)
        evaluate("rule", tiny_suite, store=st, n_resamples=200, progress=False)
        assert st.count() == n  # re-running replaces
        means = st.rows(agent="rule", seeds="mean")
        assert {r.task for r in means} == set(tiny_suite.tasks) and all(r.seed == MEAN_SEED for r in means)
        assert means[0].dataset_fingerprint and means[0].versions.get("lewis-bench")


class ListenerOnly(BaseAgent):
    name = "listener-only"
    roles = frozenset({"listener"})

    def act(self, observation, info=None):
        return "A"


def test_tasks_outside_the_agents_roles_are_skipped(tiny_suite):
    res = evaluate(ListenerOnly(), tiny_suite, n_resamples=100, progress=False, seeds=[0])
    assert list(res.summaries) == ["listener"]
    assert set(res.skipped) == {"speaker", "recognition", "vqa", "identification"}
    assert "does not play role" in res.skipped["vqa"]


def test_suite_hash_mismatch_asks_for_a_version_bump(tiny_suite):
    changed = tiny_suite_dict(k=3)
    changed["episodes_hash"] = tiny_suite.episodes_hash
    with pytest.raises(SuiteError, match="bump the suite version"):
        load_suite(changed)
    same = tiny_suite_dict(episodes_hash=tiny_suite.episodes_hash)
    assert load_suite(same).episodes_hash == tiny_suite.episodes_hash
    # the hash is a function of the episodes: a different seed list changes it
    assert compute_episodes_hash(load_suite(tiny_suite_dict(seeds=[5]), verify=False)) != tiny_suite.episodes_hash


def test_bad_suites_are_rejected_clearly():
    with pytest.raises(SuiteError, match="unknown role"):
        load_suite(tiny_suite_dict(tasks={"dance": {}}), verify=False)
    with pytest.raises(SuiteError, match="num_episodes"):
        load_suite(tiny_suite_dict(tasks={"listener": {"num_episodes": 0}}), verify=False)
    with pytest.raises(SuiteError, match="unknown suite"):
        load_suite("no-such-suite-v9")
    d = tiny_suite_dict()
    del d["dataset"]
    with pytest.raises(SuiteError, match="dataset"):
        load_suite(d, verify=False)
