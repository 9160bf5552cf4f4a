"""The lewis-data command line."""

from __future__ import annotations

import json

import pytest

from lewis_env.data.cli import main, parse_sets
from lewis_env.data.negatives import load_negatives

SETS = ["--set", "num_concepts=8", "--set", "images_per_concept=2", "--set", "image_size=16"]


def test_parse_sets_types():
    assert parse_sets(["a=16", "b=true", 'v=["color"]', "s=hello"]) == {"a": 16, "b": True, "v": ["color"],
                                                                       "s": "hello"}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_sets(["novalue"])


def test_stats_negatives_export(tmp_path, capsys):
    assert main(["stats", "synthetic", *SETS, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["concepts"], stats["categories"], stats["images"]) == (8, 2, 16) and len(stats["fingerprint"]) == 16
    out = tmp_path / "neg.json"
    assert main(["negatives", "synthetic", *SETS, "--k", "2", "--out", str(out)]) == 0
    table = load_negatives(out)
    assert table.k == 2 and len(table) == 8 and table.fingerprint == stats["fingerprint"]
    assert main(["export-hf", "synthetic", *SETS, str(tmp_path / "hf")]) == 0
    capsys.readouterr()
    assert main(["stats", f"hf:{tmp_path / 'hf'}", "--json", "--set", f"cache_dir={tmp_path / 'c'}"]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == stats["fingerprint"]


def test_bad_spec_exits_with_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stats", f"folder:{tmp_path / 'missing'}"])
    assert exc.value.code == 2 and "missing" in capsys.readouterr().err
