"""Cross-play: 3 speakers x 2 listeners on synthetic-v0, stored in the store's crossplay table, drawn as a heatmap."""

from __future__ import annotations

import numpy as np
import pytest

from leaderboard.crossplay import Player, crossplay, crossplay_markdown, load_matrices, parse_player, plot_heatmap


def test_crossplay_matrix_stored_and_drawn(tmp_path):
    store = tmp_path / "r.sqlite"
    speakers = [Player("rule"), Player("rule", {"speaker_words": ["color"]}), Player("random")]
    listeners = [Player("rule"), Player("random")]
    m = crossplay(speakers, listeners, "synthetic-v0", seeds=[0], max_episodes=24, store=store, progress=False)
    assert m.accuracy.shape == (3, 2) and not np.isnan(m.accuracy).any()
    full, colour_only, rnd = m.accuracy[:, 0]
    assert full == pytest.approx(1.0)  # template descriptions + attribute listener
    assert full > colour_only > rnd  # fewer attributes said -> more ties among look-alikes
    assert m.accuracy[0, 1] < 0.6  # a chance listener ignores even perfect descriptions
    again = load_matrices(store)["synthetic-v0"]
    assert sorted(again.speakers) == sorted(m.speakers) and again.listeners == m.listeners
    row = again.speakers.index(m.speakers[0])
    assert again.accuracy[row] == pytest.approx(m.accuracy[0])
    # a re-run replaces its rows instead of adding to them
    crossplay(speakers[:1], listeners[:1], "synthetic-v0", seeds=[0], max_episodes=24, store=store, progress=False)
    assert load_matrices(store)["synthetic-v0"].n.max() == 24
    png = plot_heatmap(again, tmp_path / "h.png")
    assert png.stat().st_size > 5000
    assert "| speaker \\ listener |" in crossplay_markdown(again)


def test_player_specs():
    assert parse_player('qwen-vl={"model": "runs/x"}') == Player("qwen-vl", {"model": "runs/x"})
    with pytest.raises(ValueError, match="not JSON"):
        parse_player("rule={bad")


def test_labels_use_display_name_and_mark_oracles():
    class Flagged:
        flags = {"display_name": "qwen-vl (tiny, random weights)"}

    class Oracle:
        flags = {"oracle": True}

    p = Player("qwen-vl", {"model": "tiny"})
    assert p.label_for(Flagged()) == f"qwen-vl (tiny, random weights) [{p.config_hash[:6]}]"
    assert p.label_for(Oracle()) == p.label + " (oracle)"
    assert p.label_for(object()) == p.label
