"""``lewis-eval data=folder:ROOT`` on real photographs: a suite of the tasks the data supports, skipped tasks
recorded with their reasons, results stored under the suite's hash, identical on a rerun, its own board section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from leaderboard.cli import board_main, eval_main
from leaderboard.store import MEAN_SEED, ResultStore


@pytest.fixture(scope="module")
def photo_tree(tmp_path_factory) -> Path:
    """Six concepts, four real photographs each (crops of scikit-image's sample photos), a folder per concept."""
    from PIL import Image
    from skimage import data

    photos = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
              "rocket": data.rocket(), "camera": np.stack([data.camera()] * 3, -1), "hubble": data.hubble_deep_field()}
    root = tmp_path_factory.mktemp("photos") / "my_photos"
    for name, im in photos.items():
        (root / name).mkdir(parents=True)
        h, w = im.shape[:2]
        for i in range(4):
            y, x = (i * h) // 20, (i * w) // 17
            Image.fromarray(im[y:y + int(h * 0.8), x:x + int(w * 0.8)]).resize((96, 96)).save(root / name / f"{i}.jpg")
    return root


def _negatives_file(tmp_path: Path, names: list[str]) -> Path:
    """A user's own negatives table (the shape `lewis-data negatives --out` writes): every other concept."""
    negatives = tmp_path / "negatives.json"
    negatives.write_text(json.dumps({"negatives": {c: [x for x in names if x != c] for c in names}}))
    return negatives


def _args(tmp_path: Path, root: Path, *extra: str) -> list[str]:
    negatives = _negatives_file(tmp_path, sorted(p.name for p in root.iterdir()))
    return ["agent=random", f"data=folder:{root}", "auto.split=all", "auto.image_size=64", "seeds=[0,1]",
            f"auto.negatives={negatives}", f"store={tmp_path / 'r.sqlite'}", "n_resamples=50", "progress=false",
            *extra]


@pytest.mark.slow
def test_folder_of_photos_in_one_command(photo_tree, tmp_path, capsys):
    db = tmp_path / "db.json"
    db.write_text(json.dumps({c.name: f"my {c.name}, as photographed" for c in photo_tree.iterdir()}))
    assert eval_main(_args(tmp_path, photo_tree, f"auto.descriptions={db}")) == 0
    out = capsys.readouterr().out
    # the rule listener cannot judge a speaker on attribute-less photos: skipped, with the lewis-eval fix
    assert "task speaker skipped" in out and "auto.speaker_listener=" in out
    with ResultStore(tmp_path / "r.sqlite") as st:
        rows = [r for r in st.rows() if r.seed == MEAN_SEED]
        (suite, version), = st.suites()
        definition = st.suite_definition(suite, version)
    assert suite == "folder-my_photos" and version.startswith("auto-")
    assert definition["episodes_hash"] and "speaker" in definition["skipped_tasks"]
    played = {r.task for r in rows}
    assert {"listener", "recognition", "identification"} <= played and "speaker" not in played
    listener = next(r for r in rows if r.task == "listener")
    assert listener.data_record["negatives"].startswith("file:") and listener.data_record["fingerprint"]
    for r in rows:  # the random agent sits at chance: within its 95% CI (or within 0.25 of it on tiny samples)
        assert r.chance is not None and r.episodes_hash == definition["episodes_hash"]
        lo, hi = r.ci[r.primary_metric]
        assert lo - 0.15 <= r.chance <= hi + 0.15
    first = {r.task: r.metrics for r in rows}

    # a rerun (recomputing, not reusing) gives identical numbers under the same suite hash
    assert eval_main(_args(tmp_path, photo_tree, f"auto.descriptions={db}", "resume=false", "board=false")) == 0
    with ResultStore(tmp_path / "r.sqlite") as st:
        again = {r.task: r.metrics for r in st.rows() if r.seed == MEAN_SEED}
        assert st.suites() == [(suite, version)]
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)  # NaN-aware equality

    assert board_main(["--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "board")]) == 0
    md = (tmp_path / "board" / "leaderboard.md").read_text()
    assert f"## suite {suite}-{version}" in md and "Tasks not in this suite" in md and "- speaker: " in md
    assert (tmp_path / "board" / f"chart_{suite}-{version}.png").exists()


def test_without_descriptions_the_reason_says_how_to_give_them(photo_tree, tmp_path):
    from leaderboard.datasuite import build_data_suite
    from leaderboard.suites import SuiteError

    names = sorted(p.name for p in photo_tree.iterdir())
    auto = {"split": "all", "image_size": 32, "seeds": [0], "k": 4,
            "negatives": _negatives_file(tmp_path, names)}
    try:
        suite, skipped = build_data_suite(f"folder:{photo_tree}", auto)
    except SuiteError as exc:  # every task refused: the error lists each task's reason
        msg = str(exc)
        assert "listener" in msg and "descriptions" in msg
        return
    assert "listener" in skipped and "lewis-eval: auto.descriptions=" in skipped["listener"]
    assert set(suite.tasks).isdisjoint(skipped)


@pytest.mark.slow
def test_hf_saved_dataset_with_attributes_gets_every_task(tmp_path):
    """``data=hf:DIR`` (a `datasets` folder, here the exported tiny synthetic world): every task is supported."""
    from leaderboard.datasuite import build_data_suite
    from lewis_env.data.hf import to_hf_dataset
    from lewis_env.data.registry import load_dataset
    from tests.leaderboard.conftest import TINY_DATASET

    to_hf_dataset(load_dataset(dict(TINY_DATASET))).save_to_disk(str(tmp_path / "hf"))
    suite, skipped = build_data_suite(f"hf:{tmp_path / 'hf'}", {"split": "all", "image_size": 32, "seeds": [0],
                                                                 "k": 4, "num_episodes": 8})
    assert skipped == {} and set(suite.tasks) == {"speaker", "listener", "recognition", "vqa", "identification"}
    again, _ = build_data_suite(f"hf:{tmp_path / 'hf'}", {"split": "all", "image_size": 32, "seeds": [0], "k": 4,
                                                           "num_episodes": 8})
    assert again.episodes_hash == suite.episodes_hash and again.full_name == suite.full_name
    assert suite.name == "hf-hf"


@pytest.mark.slow
def test_rule_on_photos_is_refused_or_an_oracle(photo_tree, tmp_path, capsys):
    """The rule baseline reads ground-truth attributes: on photos it is refused, never ranked as a real agent."""
    rc = eval_main(["agent=rule", *_args(tmp_path, photo_tree)[1:], "board=false"])
    err = capsys.readouterr().err
    if rc == 2:
        assert "oracle" in err and "attributes" in err and "Traceback" not in err
    else:
        with ResultStore(tmp_path / "r.sqlite") as st:
            rows = st.rows(agent="rule")
        assert rows and all(r.agent_flags.get("oracle") for r in rows)
