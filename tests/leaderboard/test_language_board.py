"""Language metrics in speaker results on synthetic-v0: template speaker vs random text, stored and exported."""

from __future__ import annotations

import json

import pytest

from leaderboard.schema import export_results, import_results
from leaderboard.evaluate import evaluate
from leaderboard.board import write_board
from leaderboard.language import language_markdown, plot_language_table
from leaderboard.schema import load_submission
from leaderboard.store import MEAN_SEED, ResultStore
from lewis_env.language.metrics import METRICS


@pytest.fixture(scope="module")
def store_with_speakers(tmp_path_factory):
    path = tmp_path_factory.mktemp("lang") / "results.sqlite"
    for agent in ("rule", "random"):
        evaluate(agent, "synthetic-v0", tasks=["speaker"], seeds=[0, 1], store=path, n_resamples=20,
                 progress=False, verify=False)
    return path


def _mean_metrics(path, agent):
    with ResultStore(path) as st:
        rows = [r for r in st.rows(agent=agent, seeds="mean") if r.task == "speaker"]
    assert len(rows) == 1
    return rows[0].metrics


def test_template_speaker_is_compositional_and_random_is_not(store_with_speakers):
    rule = _mean_metrics(store_with_speakers, "rule")  # rule speaks with lewis_env.speakers.describe
    rnd = _mean_metrics(store_with_speakers, "random")
    assert set(METRICS) - {"lang_topsim_embedding"} <= set(rule)
    assert rule["lang_topsim"] > 0.3 and rule["lang_attribute_coverage"] > 0.8
    assert abs(rnd["lang_topsim"]) < 0.1
    assert rnd["lang_attribute_coverage"] < 0.25  # 3-6 random vocabulary words hit a value by chance
    assert rule["lang_state_rate"] == 0.0 and rule["lang_location_rate"] == 0.0


def test_language_metrics_are_exported_and_reimported(store_with_speakers, tmp_path):
    out = tmp_path / "export.json"
    with ResultStore(store_with_speakers) as st:
        export_results(st, out)
    data = load_submission(out)  # validates: lang_* may be counts / bits / negative correlations
    speaker = [r for r in data["results"] if r["task"] == "speaker" and r["seed"] == MEAN_SEED]
    assert {r["agent"] for r in speaker} == {"rule", "random"}
    assert all("lang_topsim" in r["metrics"] and "lang_vocab_size" in r["metrics"] for r in speaker)
    with ResultStore(tmp_path / "other.sqlite") as st2:
        assert import_results(st2, out) == len(data["results"])
    bad = json.loads(out.read_text())
    bad["results"][0]["metrics"]["accuracy"] = 7.0  # plain metrics are still checked to lie in [0, 1]
    out.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="accuracy"):
        load_submission(out)


def test_language_table_renders(store_with_speakers, tmp_path):
    with ResultStore(store_with_speakers) as st:
        rows = st.rows()
    md = language_markdown(rows)
    assert md.index("rule (") < md.index("random (")  # ordered by topsim
    png = plot_language_table(rows, tmp_path / "t.png")
    assert png.stat().st_size > 5000
    paths = write_board(rows, tmp_path / "board", store_with_speakers)  # the board calls language_sections
    assert "language_table" in paths
    assert "Speaker language" in (tmp_path / "board" / "leaderboard.md").read_text()
    assert "language_table.png" in (tmp_path / "board" / "leaderboard.html").read_text()
