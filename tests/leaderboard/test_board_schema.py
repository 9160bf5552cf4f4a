"""The board (Markdown/HTML/PNG), JSON export/import, and rejection of malformed submissions."""

from __future__ import annotations

import json

import pytest

from leaderboard.board import build_entries, to_markdown, write_board
from leaderboard.cli import board_main
from leaderboard.schema import (
    SubmissionError,
    export_results,
    import_results,
    load_submission,
    validate_submission,
)
from leaderboard.store import MEAN_SEED, ResultStore
from tests.leaderboard.test_store import make_row


def _fill(st: ResultStore) -> None:
    rows = []
    for agent, acc, h in (("rule", 1.0, "aaaaaaaaaaaa"), ("random", 0.25, "bbbbbbbbbbbb")):
        for task in ("listener", "vqa"):
            for seed in (0, 1, MEAN_SEED):
                rows.append(make_row(agent=agent, task=task, seed=seed, acc=acc, cfg_hash=h))
    st.upsert(rows)


def test_ranking_markdown_html_png(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as st:
        _fill(st)
        rows = st.rows()
    entries = build_entries(rows)
    assert [e.agent for e in entries] == ["rule", "random"]
    assert entries[0].mean == 1.0 and entries[1].mean == 0.25
    md = to_markdown(entries)
    lines = md.splitlines()
    assert "listener" in lines[0] and "vqa" in lines[0] and "mean" in lines[0]
    assert lines[2].startswith("| 1 | rule") and "100.0" in lines[2]
    assert lines[3].startswith("| 2 | random") and "25.0 [15.0, 35.0]" in lines[3]
    paths = write_board(rows, tmp_path / "out")
    assert paths["chart_synthetic-v0"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text()
    assert "<table>" in html and "rule" in html and "chart_synthetic-v0.png" in html


def test_export_import_roundtrip(tmp_path):
    src, dst, f = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "results.json"
    with ResultStore(src) as st:
        _fill(st)
        n = export_results(st, f)
        original = sorted((r.agent, r.task, r.seed, r.metrics["accuracy"]) for r in st.rows())
    assert n == 12
    load_submission(f)  # valid
    with ResultStore(dst) as st:
        assert import_results(st, f) == 12
        assert import_results(st, f) == 12  # importing twice replaces, never duplicates
        assert st.count() == 12
        assert sorted((r.agent, r.task, r.seed, r.metrics["accuracy"]) for r in st.rows()) == original


def _valid_doc(tmp_path):
    with ResultStore(tmp_path / "v.sqlite") as st:
        _fill(st)
        export_results(st, tmp_path / "v.json")
    return json.loads((tmp_path / "v.json").read_text())


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["results"][0].pop("metrics"), "$.results[0].metrics"),
    (lambda d: d["results"][1].__setitem__("seed", "zero"), "$.results[1].seed"),
    (lambda d: d["results"][0]["metrics"].__setitem__("accuracy", 1.7), "$.results[0].metrics.accuracy"),
    (lambda d: d["results"][2].__setitem__("role", "juggler"), "$.results[2].role"),
    (lambda d: d["results"][0].__setitem__("surprise", 1), "$.results[0].surprise"),
    (lambda d: d.__setitem__("schema_version", 99), "$.schema_version"),
    (lambda d: d["results"][0].__setitem__("primary_metric", "f1"), "$.results[0].primary_metric"),
    (lambda d: d["results"][0]["ci"].__setitem__("accuracy", [0.9, 0.1]), "$.results[0].ci.accuracy"),
])
def test_bad_submission_rejected_naming_field(tmp_path, mutate, field):
    doc = _valid_doc(tmp_path)
    validate_submission(doc)
    mutate(doc)
    with pytest.raises(SubmissionError) as ei:
        validate_submission(doc)
    assert field in str(ei.value)


def test_board_cli_import_rejects_and_exports(tmp_path, capsys):
    doc = _valid_doc(tmp_path)
    doc["results"][0]["n_episodes"] = -3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    store = tmp_path / "s.sqlite"
    assert board_main(["--store", str(store), "--import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "$.results[0].n_episodes" in err
    with ResultStore(store) as st:
        assert st.count() == 0  # nothing of a rejected file is written
    (tmp_path / "notjson.json").write_text("{oops")
    assert board_main(["--store", str(store), "--import", str(tmp_path / "notjson.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    good = tmp_path / "v.json"
    assert board_main(["--store", str(store), "--import", str(good), "--out", str(tmp_path / "o"),
                       "--export", str(tmp_path / "e.json"), "--suite", "synthetic-v0"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | rule" in out and "exported 12" in out
    assert (tmp_path / "o" / "chart_synthetic-v0.png").exists()
