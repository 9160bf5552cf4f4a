"""``lewis-board --import`` under hostile files: each is ``rejected: <reason>`` and nothing is written."""

from __future__ import annotations

import json
import sys

import pytest

from leaderboard.cli import board_main
from leaderboard.schema import export_results
from leaderboard.store import ResultStore
from tests.leaderboard.test_board_schema import _fill


@pytest.fixture
def valid_doc(tmp_path):
    with ResultStore(tmp_path / "src.sqlite") as st:
        _fill(st)
        export_results(st, tmp_path / "valid.json")
    return json.loads((tmp_path / "valid.json").read_text())


def _reject(tmp_path, capsys, path, *expect):
    store = tmp_path / "target.sqlite"
    assert board_main(["--store", str(store), "--import", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lewis-board: rejected: ") and "Traceback" not in err
    for e in expect:
        assert e in err, err
    assert not store.exists()  # nothing written, not even an empty store
    return err


def test_binary_file(tmp_path, capsys):
    f = tmp_path / "photo.json"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    _reject(tmp_path, capsys, f, "not UTF-8 JSON text")


def test_huge_seed(tmp_path, capsys, valid_doc):
    text = json.dumps(valid_doc).replace('"seed": 0', '"seed": 1e30', 1)
    assert "1e30" in text
    f = tmp_path / "seed.json"
    f.write_text(text)
    _reject(tmp_path, capsys, f, ".seed")


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_nesting(tmp_path, capsys, valid_doc, depth):
    blob = json.dumps(valid_doc)
    nested = "[" * depth + "]" * depth
    f = tmp_path / "deep.json"
    f.write_text(blob.replace('"agent_config": {"k": 1}', f'"agent_config": {{"k": {nested}}}', 1))
    _reject(tmp_path, capsys, f, "nested")


def test_nan_constants(tmp_path, capsys, valid_doc):
    f = tmp_path / "nan.json"
    f.write_text(json.dumps(valid_doc).replace('"accuracy": 1.0', '"accuracy": NaN', 1))
    _reject(tmp_path, capsys, f, "NaN is not standard JSON")


def test_without_jsonschema_names_the_extra(tmp_path, capsys, valid_doc, monkeypatch):
    f = tmp_path / "ok.json"
    f.write_text(json.dumps(valid_doc))
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import jsonschema -> ImportError
    _reject(tmp_path, capsys, f, "jsonschema", "pip install 'lewis-bench[board]'")


def test_directory_and_missing_file(tmp_path, capsys):
    _reject(tmp_path, capsys, tmp_path, "not a regular file")
    _reject(tmp_path, capsys, tmp_path / "nope.json", "does not exist")


def test_valid_file_with_flags_roundtrips(tmp_path, capsys, valid_doc):
    valid_doc["results"][0]["agent_flags"] = {"oracle": True, "display_name": "rule (oracle)"}
    valid_doc["results"][0]["chance"] = 0.25
    f = tmp_path / "flags.json"
    f.write_text(json.dumps(valid_doc))
    store = tmp_path / "t.sqlite"
    assert board_main(["--store", str(store), "--import", str(f)]) == 0
    with ResultStore(store) as st:
        flagged = [r for r in st.rows() if r.agent_flags]
    assert len(flagged) == 1 and flagged[0].agent_flags["oracle"] is True and flagged[0].chance == 0.25
    valid_doc["results"][0]["agent_flags"] = {"oracle": "yes"}
    f.write_text(json.dumps(valid_doc))
    capsys.readouterr()
    (tmp_path / "x").mkdir()
    _reject(tmp_path / "x", capsys, f, "agent_flags.oracle")
