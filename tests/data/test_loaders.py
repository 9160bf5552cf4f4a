"""Real-layout loaders on small trees built in tmp_path: folder, YoLLaVA, MyVLM, PerVA; bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lewis_env.data.loaders import load_folder, load_myvlm, load_perva, load_yollava
from lewis_env.data.loaders.common import DatasetLayoutError, split_reference


def test_folder_seeded_split_is_deterministic_and_sorted(concept_tree):
    root = concept_tree({"zebra_toy": 7, "alpha_mug": 6, "mid_cup": 3})
    ds = load_folder(root, num_reference=5, seed=0)
    assert ds.concept_ids == ["alpha_mug", "mid_cup", "zebra_toy"]
    assert [len(c.reference) for c in ds] == [5, 2, 5] and [len(c.query) for c in ds] == [1, 1, 2]
    assert ds.concept("alpha_mug").category == "unknown" and ds.concept("alpha_mug").name == "<alpha_mug>"
    again = load_folder(root, num_reference=5, seed=0)
    assert [[r.path for r in c.images] for c in again] == [[r.path for r in c.images] for c in ds]
    splits = {tuple(r.path for r in load_folder(root, num_reference=5, seed=s).concept("zebra_toy").reference)
              for s in range(6)}
    assert len(splits) > 1, "the seed changes which images are references"
    for c in ds:  # every image used exactly once
        assert len({r.path for r in c.images}) == len(c.images)


def test_split_reference_leaves_a_query_and_ignores_input_order(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(4)]
    ref, query = split_reference(paths, 9, seed=1, key="c")
    assert len(ref) == 3 and len(query) == 1
    assert split_reference(list(reversed(paths)), 2, 1, "c") == split_reference(paths, 2, 1, "c")


def test_folder_with_train_test_and_meta_and_category_map(concept_tree):
    root = concept_tree({"bo": 3, "mam": 2}, sub="train")
    concept_tree({"bo": 2, "mam": 1}, sub="test", root=root)
    (root / "train" / "bo" / "meta.json").write_text(json.dumps(
        {"category": "dog", "attributes": {"color": "brown"}, "descriptions": "a brown corgi"}))
    ds = load_folder(root, category={"mam": "cat"})
    bo, mam = ds.concept("bo"), ds.concept("mam")
    assert (len(bo.reference), len(bo.query), len(mam.reference), len(mam.query)) == (3, 2, 2, 1)
    assert all("/train/" in r.path for r in bo.reference) and all("/test/" in r.path for r in bo.query)
    assert bo.category == "dog" and bo.attributes == {"color": "brown"} and bo.descriptions == ["a brown corgi"]
    assert mam.category == "cat"
    with pytest.raises(ValueError, match="nope"):
        load_folder(root, category={"nope": "x"})


def test_yollava_layout_and_vqa(concept_tree, png):
    root = concept_tree({"bo": 4, "mam": 4}, sub="train")
    concept_tree({"bo": 3, "mam": 2}, sub="test", root=root)
    for i in range(3):  # the negatives folder holds other objects, never concept images
        png(root / "train" / "bo" / "negative_example" / f"{i}.png", seed=500 + i)
    (root / "train" / "bo" / "negative_example" / "scores.json").write_text("{}")
    vqa = {
        "./yollava-data/test/bo/1.png": {"question": "What colour is <bo>'s fur?",
                                         "options": {"A": "brown", "B": "white"}, "correct_answer": "A"},
        "yollava-data/test/mam/0.png": {"question": "Is <mam> sleeping?", "options": {"A": "yes", "B": "no"},
                                        "correct_answer": "no"},
        "yollava-data/test/ghost/0.png": {"question": "?", "options": {"A": "x", "B": "y"}, "correct_answer": "A"},
    }
    (root / "yollava-visual-qa.json").write_text(json.dumps(vqa))
    with pytest.warns(UserWarning, match="dropped 1 question"):
        ds = load_yollava(root)
    bo = ds.concept("bo")
    assert len(bo.reference) == 4 and len(bo.query) == 3
    assert not any("negative_example" in r.path for c in ds for r in c.images)
    qs = sorted(ds.questions, key=lambda q: q.concept_id)
    assert [(q.concept_id, q.answer) for q in qs] == [("bo", "A"), ("mam", "B")]
    assert Path(qs[0].image_path) == root / "test" / "bo" / "1.png" and qs[0].options == {"A": "brown", "B": "white"}
    assert ds.summary()["questions"] == 2


def test_yollava_vqa_nested_by_concept(concept_tree, tmp_path):
    """The released file nests entries by concept: {concept: {image path: entry}}."""
    root = concept_tree({"bo": 2}, sub="train")
    concept_tree({"bo": 2}, sub="test", root=root)
    nested = {"bo": {"./yollava-data/test/bo/0.png": {"question": "Fur?", "options": {"A": "Brown", "B": "Grey"},
                                                      "correct_answer": "A"},
                     "./yollava-data/test/bo/1.png": {"question": "Hat?", "options": {"A": "yes", "B": "no"},
                                                      "correct_answer": "B"}}}
    qa = tmp_path / "elsewhere.json"
    qa.write_text(json.dumps(nested))
    ds = load_yollava(root, vqa_file=qa)
    assert sorted((Path(q.image_path).name, q.answer) for q in ds.questions) == [("0.png", "A"), ("1.png", "B")]
    assert all(q.concept_id == "bo" for q in ds.questions)
    nested["bo"]["./yollava-data/test/bo/0.png"]["question"] = "What colour is <sks>'s fur?"
    qa.write_text(json.dumps(nested))
    q0 = next(q for q in load_yollava(root, vqa_file=qa).questions if q.image_path.endswith("0.png"))
    assert q0.question == "What colour is <bo>'s fur?"
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        load_yollava(root, vqa_file=tmp_path / "nothere.json")


def test_yollava_errors_name_the_path(tmp_path, concept_tree):
    with pytest.raises(FileNotFoundError, match="missing_root"):
        load_yollava(tmp_path / "missing_root")
    root = concept_tree({"bo": 2})
    with pytest.raises(DatasetLayoutError, match="train/"):
        load_yollava(root)


def test_myvlm_captions_become_descriptions(concept_tree):
    root = concept_tree({"my_mug": 6, "toy": 4})
    (root / "my_mug" / "captions.json").write_text(json.dumps(
        {"0.png": "my mug on a desk", "1.png": ["my mug by the window", "my mug on a desk"]}))
    (root / "toy" / "captions.json").write_text(json.dumps(["toy on a shelf"]))
    (root / "toy" / "additional_llava_vqa_data.json").write_text("{}")
    ds = load_myvlm(root, num_reference=4, seed=2)
    assert ds.concept("my_mug").descriptions == ["my mug on a desk", "my mug by the window"]
    assert ds.concept("toy").descriptions == ["toy on a shelf"]
    assert (len(ds.concept("my_mug").reference), len(ds.concept("toy").reference)) == (4, 3)


def test_perva_with_and_without_split(concept_tree):
    root = concept_tree({"bag_a": 3, "bag_b": 3}, sub="train/bag")
    concept_tree({"bag_a": 2, "bag_b": 1}, sub="test/bag", root=root)
    concept_tree({"cup_x": 2}, sub="train/cup", root=root)
    concept_tree({"cup_x": 1}, sub="test/cup", root=root)
    ds = load_perva(root)
    assert ds.categories() == {"bag": ["bag_a", "bag_b"], "cup": ["cup_x"]}
    assert (len(ds.concept("bag_a").reference), len(ds.concept("bag_a").query)) == (3, 2)
    flat = concept_tree({"a": 4, "b": 4}, sub="plant", root=root.parent / "flat")
    ds2 = load_perva(flat, num_reference=2)
    assert ds2.categories() == {"plant": ["a", "b"]} and all(len(c.reference) == 2 for c in ds2)
    with pytest.raises(DatasetLayoutError, match="<category>/<concept>"):
        load_perva(concept_tree({"lone": 2}, root=root.parent / "wrong"))


def test_unreadable_files_skipped_with_one_warning(concept_tree):
    root = concept_tree({"a": 4, "b": 3})
    good = (root / "a" / "0.png").read_bytes()
    (root / "a" / "trunc.png").write_bytes(good[: len(good) // 2])
    (root / "b" / "notes.jpg").write_text("this is not an image")
    (root / "b" / "readme.txt").write_text("ignored by suffix")
    with pytest.warns(UserWarning) as rec:
        ds = load_folder(root)
    msgs = [str(w.message) for w in rec if "unreadable" in str(w.message)]
    assert len(msgs) == 1 and "skipped 2" in msgs[0]
    assert "trunc.png" in msgs[0] and "notes.jpg" in msgs[0]
    assert len(ds.concept("a").images) == 4 and len(ds.concept("b").images) == 3


def test_empty_concept_folder_raises_naming_it(concept_tree):
    root = concept_tree({"a": 2})
    (root / "empty_one").mkdir()
    with pytest.raises(DatasetLayoutError, match="empty_one"):
        load_folder(root)
    shutil.rmtree(root / "empty_one")
    (root / "bad_only").mkdir()
    (root / "bad_only" / "x.jpg").write_text("nope")
    with pytest.warns(UserWarning), pytest.raises(DatasetLayoutError, match="bad_only"):
        load_folder(root)


def test_fingerprint_changes_when_a_file_changes(concept_tree, png):
    root = concept_tree({"a": 3, "b": 3})
    fp = load_folder(root).fingerprint()
    assert load_folder(root).fingerprint() == fp
    png(root / "b" / "1.png", seed=999)
    assert load_folder(root).fingerprint() != fp
