"""The shipped suites load, and their recorded episodes hash matches what the current code produces."""

from __future__ import annotations

from leaderboard.suites import DEFAULT_SUITE, list_suites, load_suite


def test_default_suite_is_shipped_and_its_episodes_hash_matches():
    assert DEFAULT_SUITE in list_suites()
    suite = load_suite(DEFAULT_SUITE)  # verify=True recomputes the hash; raises when the episodes changed
    assert suite.full_name == DEFAULT_SUITE
    assert set(suite.tasks) == {"speaker", "listener", "recognition", "vqa", "identification"}
    assert suite.seeds == [0, 1, 2] and suite.task("speaker").kwargs.get("listener") == "rule"
    assert suite.episodes_hash and len(suite.episodes_hash) == 16
