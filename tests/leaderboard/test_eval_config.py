"""``lewis-eval`` config: Hydra-composed, typed, checked before anything heavy; ordinary mistakes get one clear line."""

from __future__ import annotations

import pytest
import yaml

from leaderboard import cli
from leaderboard.cli import eval_main
from leaderboard.config import ConfigError, compose


def test_compose_types_groups_and_shorthands():
    cfg = compose(["agent=random", "agent.seed=3", "seeds=[0,2]", "progress=false", "data.root=/x", "auto.k=3"])
    assert cfg.agent.name == "random" and cfg.agent.kwargs.seed == 3
    assert list(cfg.seeds) == [0, 2] and cfg.progress is False
    assert cfg.data_overrides.root == "/x" and cfg.auto.k == 3
    qwen = compose(["agent=qwen-vl"])
    assert qwen.agent.kwargs.model == "tiny"  # conf/agent/qwen-vl.yaml defaults come through the group
    assert compose([]).agent is None and compose(["data=folder:/tmp/my photos"]).data == "folder:/tmp/my photos"


@pytest.mark.parametrize("argv, expect", [
    (["sede=1"], "unknown option 'sede' (did you mean 'seeds'?)"),
    (["batch_size=abc"], "bad value for batch_size"),
    (["max_episodes=2.5"], "bad value for max_episodes"),
    (["seeds=[0,a]"], "bad value for seeds"),
    (["batch_size=0"], "batch_size must be >= 1"),
    (["agent=rulee"], "unknown agent 'rulee' (did you mean 'rule'?)"),
    (["agent.seed=1"], "agent.<kw> overrides need agent=<name>"),
    (["rule"], "is not key=value"),
    (["auto.kk=3"], "did you mean 'auto.k'?"),
])
def test_config_mistakes_name_the_key(argv, expect):
    with pytest.raises(ConfigError) as ei:
        compose(argv)
    assert expect in str(ei.value)


@pytest.fixture
def no_eval(monkeypatch):
    """Fail loudly if evaluation (model loading, episodes) starts."""
    def boom(*a, **k):
        raise AssertionError("evaluation started although the config was bad")

    monkeypatch.setattr(cli, "_run_one", boom)


@pytest.mark.parametrize("argv, expect", [
    (["agent=random", "agent.sed=3"], "agent 'random' takes no option agent.sed (did you mean 'seed'?)"),
    (["agent=qwen-vl", "agent.model=/no/such/ckpt"], "agent.model='/no/such/ckpt': no such file or folder"),
    (["agent=random", "suite=nosuch-v9"], "unknown suite 'nosuch-v9'; available: "),
    (["agent=random", "data=folder:/no/such/photos"], "/no/such/photos"),
    (["agent=random", "tasks=[juggling]"], "has no task 'juggling'"),
    (["train.learning_rate=abc"], "unknown option 'train.learning_rate'"),
])
def test_cli_mistakes_stop_before_anything_heavy(argv, expect, no_eval, tmp_path, capsys):
    assert eval_main([*argv, f"store={tmp_path / 'r.sqlite'}", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err
    assert not (tmp_path / "r.sqlite").exists()


def test_suite_without_hash_says_how_to_record_it(tiny_suite, tmp_path, no_eval, capsys):
    d = tiny_suite.to_dict()
    d["episodes_hash"] = None
    f = tmp_path / "nohash-v0.yaml"
    f.write_text(yaml.safe_dump(d))
    assert eval_main(["agent=random", f"suite={f}", f"store={tmp_path / 'r.sqlite'}"]) == 2
    err = capsys.readouterr().err
    assert "no recorded episodes_hash" in err and "python -m leaderboard.suites" in err and "Traceback" not in err


def test_outputs_land_where_asked(tiny_suite, tmp_path, monkeypatch):
    """Samples go beside the store (or to samples=...), board/exports to the paths given; the cwd stays clean."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    suite = tmp_path / "tiny-v0.yaml"
    suite.write_text(yaml.safe_dump(tiny_suite.to_dict(), sort_keys=False))
    store = tmp_path / "results" / "r.sqlite"
    args = ["agent=random", f"suite={suite}", f"store={store}", "seeds=[0]", "tasks=[listener]", "n_resamples=20",
            "progress=false", "board=false"]
    assert eval_main(args) == 0
    assert sorted(p.name for p in (store.parent / "lewis_samples").rglob("*.jsonl")) == ["listener_seed0.jsonl"]
    assert eval_main([*args, f"samples={tmp_path / 'elsewhere'}", "resume=false"]) == 0
    assert list((tmp_path / "elsewhere").rglob("listener_seed0.jsonl"))
    from leaderboard.cli import board_main

    assert board_main(["--store", str(store), "--out", str(tmp_path / "b" / "c"),
                       "--export", str(tmp_path / "x" / "res.json")]) == 0
    assert (tmp_path / "b" / "c" / "leaderboard.html").exists() and (tmp_path / "x" / "res.json").exists()
    assert list(cwd.iterdir()) == []
