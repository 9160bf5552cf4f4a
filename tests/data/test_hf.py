"""ConceptDataset <-> datasets.Dataset round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lewis_env.data import load_dataset
from lewis_env.data.hf import from_hf_dataset, to_hf_dataset
from lewis_env.data.loaders import load_yollava

datasets = pytest.importorskip("datasets")


def _same(a, b):
    assert a.concept_ids == b.concept_ids
    for ca, cb in zip(a, b):
        assert (ca.category, ca.name, ca.attributes, ca.descriptions) == (cb.category, cb.name, cb.attributes,
                                                                          cb.descriptions)
        assert [r.role for r in ca.images] == [r.role for r in cb.images]
        for ra, rb in zip(ca.images, cb.images):
            assert dict(ra.attributes) == dict(rb.attributes) and ra.image_id == rb.image_id
            assert np.array_equal(ra.load(), rb.load())


def test_rows_and_round_trip_via_disk(tiny_world, tmp_path):
    hf = to_hf_dataset(tiny_world)
    assert hf.num_rows == tiny_world.num_images()
    assert isinstance(hf.features["image"], datasets.Image)
    row = hf[0]
    assert row["concept_id"] == tiny_world.concepts[0].concept_id and row["role"] == "reference"
    assert json.loads(row["attributes"])["category"] == tiny_world.concepts[0].category
    assert row["image"].size == (32, 32)
    hf.save_to_disk(str(tmp_path / "saved"))
    back = load_dataset(f"hf:{tmp_path / 'saved'}", cache_dir=str(tmp_path / "imgs"))
    _same(tiny_world, back)
    assert back.name == tiny_world.name and back.config == tiny_world.config
    assert back.fingerprint() == tiny_world.fingerprint()


def test_round_trip_keeps_questions_and_same_named_files(concept_tree, tmp_path):
    root = concept_tree({"bo": 2}, sub="train")
    concept_tree({"bo": 2}, sub="test", root=root)  # test/bo/0.png and train/bo/0.png share a name
    (root / "yollava-visual-qa.json").write_text(json.dumps(
        {"test/bo/0.png": {"question": "q?", "options": {"A": "x", "B": "y"}, "correct_answer": "B"}}))
    ds = load_yollava(root)
    back = from_hf_dataset(to_hf_dataset(ds), cache_dir=tmp_path / "c")
    _same(ds, back)
    assert len(back.questions) == 1 and back.questions[0].answer == "B"
    from lewis_env.data.images import load_rgb

    assert np.array_equal(load_rgb(back.questions[0].image_path), load_rgb(ds.questions[0].image_path))
    assert "/query/" in back.questions[0].image_path


def test_plain_hf_dataset_without_role_is_split(tmp_path):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(6)]
    hf = datasets.Dataset.from_dict({"concept_id": ["a"] * 3 + ["b"] * 3, "image": imgs},
                                    features=datasets.Features({"concept_id": datasets.Value("string"),
                                                                "image": datasets.Image()}))
    ds = from_hf_dataset(hf, name="plain", cache_dir=tmp_path, num_reference=2)
    assert ds.concept_ids == ["a", "b"] and all((len(c.reference), len(c.query)) == (2, 1) for c in ds)
    assert ds.concept("a").category == "a"
    with pytest.raises(ValueError, match="concept_id"):
        from_hf_dataset(hf.remove_columns("concept_id"))
