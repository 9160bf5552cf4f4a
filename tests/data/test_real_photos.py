"""Folder datasets of REAL photographs in each arrangement users keep them in: defaults that work, errors
that say what to change, nothing fake without saying so (#17 items 1-2, #10 item 5)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import gymnasium as gym
import pytest

import lewis_env.envs  # noqa: F401  (registers the ids)
from lewis_env.data.loaders.folder import load_folder
from lewis_env.data.registry import clear_memo
from lewis_env.data.types import UNKNOWN_CATEGORY
from tests.photos import LAYOUTS, photo_tree

pytest.importorskip("skimage")
IDS = {"speaker": "lewis_env/LewisSpeaker-v0", "listener": "lewis_env/LewisListener-v0",
       "recognition": "lewis_env/Recognition-v0", "vqa": "lewis_env/VQA-v0",
       "identification": "lewis_env/Identification-v0"}


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("photos")
    return {lay: photo_tree(base / lay, lay) for lay in LAYOUTS}


def _write_db(root: Path) -> None:
    ds = load_folder(root)
    db = {"concept_dict": {c.concept_id: {"name": c.name, "info": f"a photo of {c.concept_id}"} for c in ds}}
    (root / "descriptions.json").write_text(json.dumps(db))
    clear_memo()


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_env_makes_on_a_photo_folder_with_defaults(trees, layout, tmp_path, monkeypatch):
    from lewis_env.data import negatives
    from lewis_env.envs import base

    monkeypatch.setattr(negatives, "_ANNOUNCED", set())  # the same photos in another layout: same fingerprint
    monkeypatch.setattr(base, "_NEG_MEMO", {})
    root = tmp_path / layout
    photo_tree(root, layout)
    spec = f"folder:{root}"
    clear_memo()
    ds = load_folder(root)
    assert len(ds) == 9 and {c.category for c in ds} == {UNKNOWN_CATEGORY} and not ds.has_categories()
    # recognition and VQA need nothing beyond the photos (reference images; presence questions)
    with pytest.warns(UserWarning, match="using 'random'"):
        rec = gym.make(IDS["recognition"], dataset=spec)
    obs, info = rec.reset(seed=0)
    assert obs["query"].shape == (224, 224, 3) and obs["description"] == ""
    assert rec.unwrapped.data_record()["negatives"] == "random"
    assert rec.unwrapped.data_record()["descriptions"] == "none"
    vqa = gym.make(IDS["vqa"], dataset=spec)
    obs, info = vqa.reset(seed=0)
    assert info["question_type"] == "presence" and vqa.unwrapped.data_record()["question_source"] == "generated:presence"
    # listener / identification need descriptions: the error says how to make them
    for role in ("listener", "identification"):
        with pytest.raises(ValueError, match="lewis-data describe"):
            gym.make(IDS[role], dataset=spec)
    # speaker: the default rule listener refuses photos and names the listeners that see images
    with pytest.raises(ValueError, match="listener='clip'.*'qwen'.*'http'"):
        gym.make(IDS["speaker"], dataset=spec)
    # after `lewis-data describe --out ROOT/descriptions.json` every env makes with defaults
    _write_db(root)
    for role in ("listener", "identification"):
        env = gym.make(IDS[role], dataset=spec)
        obs, info = env.reset(seed=0)
        _, reward, terminated, _, step_info = env.step("A")
        assert terminated and step_info["parse_error"] is None
    sp = gym.make(IDS["speaker"], dataset=spec, listener="clip",
                  listener_kwargs={"model_name": "ViT-S-32", "allow_random_init": True})
    assert sp.unwrapped.data_record()["listener_flags"] == {"random_init": True}
    obs, info = sp.reset(seed=0)
    _, _, _, _, step_info = sp.step("<coarse>a cat</coarse><detailed>A tabby cat.</detailed>")
    assert len(step_info["listener_scores"]) == 4 and len(set(step_info["listener_scores"])) > 1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_split_uses_the_trees_own_train_test_images(trees, layout):
    ds = load_folder(trees[layout])
    train, test = ds.split()
    if layout == "flat":
        assert ds.split_kind == "concepts"
        assert (len(train), len(test)) == (5, 4)  # 9 concepts: the test side keeps K=4 possible
        assert not set(train.concept_ids) & set(test.concept_ids)
    else:
        assert ds.split_kind == "images"
        assert train.concept_ids == test.concept_ids == ds.concept_ids
        for c_tr, c_te in zip(train, test):
            assert all("test" not in Path(r.path).parts[-3:-1] for r in c_tr.images)  # no test image in train
            assert all("test" in Path(r.path).parts for r in c_te.query) and len(c_te.query) == 2
            assert all("train" in Path(r.path).parts for r in c_te.reference) and len(c_te.reference) == 3


def test_impossible_k_says_what_to_change(trees):
    clear_memo()
    with pytest.raises(ValueError, match=r"has 4 concept.*lower k to 4.*split='all'"):
        gym.make(IDS["listener"], dataset=f"folder:{trees['flat']}", k=6, descriptions="none")
    env = gym.make(IDS["recognition"], dataset=f"folder:{trees['flat']}", split="all", num_negatives=8)
    assert env.unwrapped.num_negatives == 8


def test_categories_from_meta_are_kept_and_stratify(tmp_path):
    root = photo_tree(tmp_path / "t", "flat", concepts=["astronaut", "cameraman", "cat", "coffee", "clock",
                                                          "rocket", "moon", "galaxy"])
    for c, cat in {"astronaut": "person", "cameraman": "person", "cat": "pet", "coffee": "object",
                   "clock": "object", "rocket": "object", "moon": "sky", "galaxy": "sky"}.items():
        (root / c / "meta.json").write_text(json.dumps({"category": cat}))
    ds = load_folder(root)
    assert ds.has_categories() and ds.concept("cat").category == "pet"
    train, test = ds.split()
    for cat in ("person", "sky"):  # two-concept categories: one on each side
        assert sum(ds.concept(c).category == cat for c in test.concept_ids) == 1
    from lewis_env.data.negatives import hard_negatives

    with pytest.warns(UserWarning, match="using 'category'"):
        table = hard_negatives(ds, k=1)
    assert table.method == "category" and table["moon"] == ["galaxy"]


# -- nothing fake without saying so ------------------------------------------------------------------------
def test_rule_agent_is_an_oracle_and_refuses_photos(trees):
    from baselines.rule import RuleAgent

    agent = RuleAgent()
    assert agent.flags["oracle"] is True
    env = gym.make(IDS["recognition"], dataset=f"folder:{trees['split_above']}")
    with pytest.raises(ValueError, match="oracle over ground-truth attributes.*clip.*qwen-vl.*random"):
        agent.bind(env)


def test_clip_without_weights_stops_with_how_to_give_them(monkeypatch, tmp_path):
    from baselines.clip_agent import ClipAgent
    from lewis_env.data.clip_embed import ClipEmbedder, ClipWeightsError

    monkeypatch.delenv("LEWIS_CLIP_PRETRAINED", raising=False)
    with pytest.raises(ClipWeightsError, match="LEWIS_CLIP_PRETRAINED"):
        ClipAgent()
    with pytest.raises(ClipWeightsError, match="allow_random_init"):
        ClipEmbedder("ViT-S-32")
    # an open_clip tag not in the local cache: a clear error, no download attempt
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    with pytest.raises(ClipWeightsError, match="not in the local cache"):
        ClipEmbedder("ViT-B-32", pretrained="laion2b_s34b_b79k")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ClipEmbedder("ViT-S-32", pretrained=str(tmp_path / "missing.bin"))
    agent = ClipAgent(model_name="ViT-S-32", allow_random_init=True)
    assert agent.flags["random_init"] is True and "random weights" in agent.flags["display_name"]


def test_negatives_clip_without_weights_is_refused_and_cli_says_so(trees, monkeypatch, capsys):
    from lewis_env.data.cli import main

    monkeypatch.delenv("LEWIS_CLIP_PRETRAINED", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["negatives", f"folder:{trees['flat']}", "--method", "clip", "--out", "/tmp/never.json"])
    assert exc.value.code == 2 and "LEWIS_CLIP_PRETRAINED" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["negatives", f"folder:{trees['flat']}", "--method", "clip", "--clip-pretrained", "laion2b_s34b_b79k",
              "--out", "/tmp/never.json"])
    assert "not in the local cache" in capsys.readouterr().err


# -- #10 item 5: a decompression bomb and a non-UTF-8 file name ---------------------------------------------
def _bomb_png(path: Path, side: int = 40000) -> None:
    """A few-hundred-byte PNG whose header claims side x side pixels (over PIL's bomb limit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_bomb_and_non_utf8_name_are_counted_and_skipped_with_one_warning(tmp_path):
    root = photo_tree(tmp_path / "t", "flat", concepts=["cat", "coffee", "rocket"])
    _bomb_png(root / "cat" / "bomb.png")
    good = (root / "coffee" / "0.jpg").read_bytes()
    with open(os.path.join(os.fsencode(root / "coffee"), b"caf\xe9.jpg"), "wb") as fh:  # latin-1 name
        fh.write(good)
    code = ("import warnings; warnings.simplefilter('default');"
            "from lewis_env.data.loaders.folder import load_folder;"
            f"ds = load_folder({str(root)!r}); print(ds.fingerprint(), ds.num_images())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path.cwd(),
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1] == "15"  # 3 concepts x 5 photos; the two bad files are not counted as images
    lines = [ln for ln in out.stderr.splitlines() if "skipped" in ln]
    assert len(lines) == 1, out.stderr
    assert "skipped 2 unreadable image file(s)" in lines[0] and "bomb.png" in lines[0] and "caf\ufffd.jpg" in lines[0]
