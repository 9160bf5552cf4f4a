"""The synthetic world: vocabulary, determinism, hard negatives by construction, caching."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lewis_env.data import synthetic as syn
from lewis_env.data.negatives import attribute_distance
from lewis_env.data.synthetic import ATTRIBUTE_VALUES, BACKGROUNDS, CATEGORIES, make_synthetic
from lewis_env.data.types import CONCEPT_ATTRIBUTE_KEYS, IMAGE_ATTRIBUTE_KEYS

from .conftest import TINY


def test_vocabulary_is_one_word_and_disjoint_across_keys():
    assert len(CATEGORIES) >= 8
    assert set(ATTRIBUTE_VALUES) == set(CONCEPT_ATTRIBUTE_KEYS)
    words = [v for vals in ATTRIBUTE_VALUES.values() for v in vals]
    assert all(w.isalpha() and w.islower() for w in words)
    assert len(words) == len(set(words))
    assert not set(BACKGROUNDS) & set(ATTRIBUTE_VALUES["color"])
    assert not set(CATEGORIES) & set(words)


def test_concepts_ids_names_and_image_ground_truth(tiny_world):
    ds = tiny_world
    assert len(ds) == 16 and ds.num_images() == 64
    for c in ds.concepts:
        assert c.concept_id.startswith(c.category + "_") and c.name == f"<{c.category}-{int(c.concept_id[-2:])}>"
        assert set(c.attributes) == set(CONCEPT_ATTRIBUTE_KEYS)
        assert [r.role for r in c.images] == ["reference"] * 2 + ["query"] * 2
        assert c.descriptions and c.attributes["color"] in c.descriptions[0]
        for ref in c.images:
            a = ref.attributes
            assert set(a) == set(CONCEPT_ATTRIBUTE_KEYS) | {"category"} | set(IMAGE_ATTRIBUTE_KEYS)
            assert all(a[k] == c.attributes[k] for k in CONCEPT_ATTRIBUTE_KEYS) and a["category"] == c.category
            assert a["position"] in ("left", "center", "right") and a["background"] in BACKGROUNDS
            clutter = [x for x in a["clutter"].split(",") if x]
            assert int(a["num_objects"]) == 1 + len(clutter) and c.category not in clutter
            assert ref.load().shape == (32, 32, 3)
    # nuisance factors do vary across a concept's images
    backgrounds = {r.attributes["background"] for c in ds.concepts for r in c.images}
    assert len(backgrounds) >= 3


def _bytes(ds):
    return [Path(r.path).read_bytes() for c in ds.concepts for r in c.images]


def test_same_seed_gives_identical_bytes_and_split(tmp_path, tiny_world):
    again = make_synthetic(**TINY, cache_dir=tmp_path)  # a fresh cache: regenerated from scratch
    assert [c.concept_id for c in again] == [c.concept_id for c in tiny_world]
    assert [c.attributes for c in again] == [c.attributes for c in tiny_world]
    assert _bytes(again) == _bytes(tiny_world)
    assert again.fingerprint() == tiny_world.fingerprint()
    a_train, a_test = again.split(0.65, seed=3)
    b_train, b_test = tiny_world.split(0.65, seed=3)
    assert a_train.concept_ids == b_train.concept_ids and a_test.concept_ids == b_test.concept_ids


def test_different_seed_gives_different_world(tmp_path, tiny_world):
    other = make_synthetic(**{**TINY, "seed": 1}, cache_dir=tmp_path)
    assert _bytes(other) != _bytes(tiny_world)
    assert [c.attributes for c in other] != [c.attributes for c in tiny_world]
    assert other.fingerprint() != tiny_world.fingerprint()


def test_generation_order_does_not_matter(tmp_path, tiny_world):
    """Deleting some cached files and regenerating only those reproduces them byte for byte."""
    ds = make_synthetic(**TINY, cache_dir=tmp_path)
    victims = [ds.concepts[5].query[1].path, ds.concepts[11].reference[0].path]
    before = [Path(p).read_bytes() for p in victims]
    for p in victims:
        os.remove(p)
    make_synthetic(**TINY, cache_dir=tmp_path)
    assert [Path(p).read_bytes() for p in victims] == before


def test_cache_is_reused_and_keyed_by_config(tmp_path):
    ds = make_synthetic(**TINY, cache_dir=tmp_path)
    p = Path(ds.concepts[0].reference[0].path)
    mtime = p.stat().st_mtime_ns
    again = make_synthetic(**TINY, cache_dir=tmp_path)
    assert Path(again.concepts[0].reference[0].path).stat().st_mtime_ns == mtime
    bigger = make_synthetic(**{**TINY, "image_size": 40}, cache_dir=tmp_path)
    assert Path(bigger.root) != Path(ds.root) and bigger.concepts[0].reference[0].load().shape == (40, 40, 3)
    assert p.relative_to(tmp_path).parts[:1] == ("synthetic",)
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files left behind"


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LEWIS_BENCH_CACHE", str(tmp_path))
    ds = make_synthetic(num_concepts=2, images_per_concept=1, num_reference=1, image_size=16)
    assert Path(ds.root).is_relative_to(tmp_path / "synthetic")


def test_siblings_differ_in_one_or_two_attributes(tiny_world):
    for ids in tiny_world.categories().values():
        assert len(ids) == 4
        for a, b in itertools.combinations(ids, 2):
            d = attribute_distance(tiny_world.concept(a).attributes, tiny_world.concept(b).attributes)
            assert d in (1, 2), (a, b, d)


def test_colour_game_siblings_differ_only_in_colour(tmp_path):
    ds = make_synthetic(num_concepts=24, images_per_concept=1, num_reference=1, image_size=24, vary=("color",),
                        cache_dir=tmp_path)
    assert ds.config["vary"] == ["color"]
    for ids in ds.categories().values():
        attrs = [ds.concept(i).attributes for i in ids]
        colours = [a["color"] for a in attrs]
        assert len(set(colours)) == len(colours)
        for k in ("pattern", "mark", "shape", "size"):
            assert len({a[k] for a in attrs}) == 1


def test_config_is_recorded_and_bad_args_are_named(tmp_path):
    capped = make_synthetic(num_concepts=2, images_per_concept=3, num_reference=5, image_size=16, cache_dir=tmp_path)
    assert capped.config["num_reference"] == 2 and all(len(c.query) == 1 for c in capped)
    with pytest.raises(ValueError, match="num_reference"):
        make_synthetic(num_concepts=2, num_reference=-1, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="vary"):
        make_synthetic(num_concepts=2, vary=("colour",), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="at most 10"):  # 11 colour-only siblings cannot exist
        make_synthetic(num_concepts=11, num_categories=1, vary="color", images_per_concept=1, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        make_synthetic(num_concepts=2, image_size=4, cache_dir=tmp_path)


def test_render_image_all_categories_draw_something():
    """Every category leaves a visible object on the background (pixels differ from the empty scene)."""
    attrs = {"color": "red", "pattern": "plain", "mark": "none", "shape": "round", "size": "large"}
    for cat in CATEGORIES:
        img, gt = syn.render_image(cat, attrs, image_size=48, seed=[0, 1])
        arr = np.asarray(img).astype(int)
        red = (arr[..., 0] > 120) & (arr[..., 1] < 90) & (arr[..., 2] < 90)
        assert red.sum() > 20, cat
        assert gt["category"] == cat
    with pytest.raises(ValueError, match="color"):
        syn.render_image("mug", {**attrs, "color": "beige"})


@settings(max_examples=60, deadline=None)
@given(num_concepts=st.integers(1, 90), seed=st.integers(0, 2**31 - 1),
       vary=st.sets(st.sampled_from(CONCEPT_ATTRIBUTE_KEYS), min_size=1))
def test_concept_plan_properties(num_concepts, seed, vary):
    """Any world: unique ids and attribute sets; siblings differ in 1-2 attributes, only in ``vary`` keys."""
    try:
        specs = syn.concept_specs(num_concepts, seed=seed, vary=tuple(vary))
    except ValueError as exc:  # only when a category cannot hold that many distinct siblings
        assert "allows at most" in str(exc)
        return
    assert len(specs) == num_concepts and len({cid for cid, _, _ in specs}) == num_concepts
    by_cat: dict[str, list[dict[str, str]]] = {}
    for cid, cat, attrs in specs:
        assert cid.startswith(cat + "_") and all(attrs[k] in ATTRIBUTE_VALUES[k] for k in CONCEPT_ATTRIBUTE_KEYS)
        by_cat.setdefault(cat, []).append(attrs)
    for members in by_cat.values():
        assert len({tuple(sorted(a.items())) for a in members}) == len(members)
        for a, b in itertools.combinations(members, 2):
            diff = {k for k in CONCEPT_ATTRIBUTE_KEYS if a[k] != b[k]}
            assert 1 <= len(diff) <= 2 and diff <= set(vary)


def test_concept_split_is_stratified_and_seeded(tiny_world):
    train, test = tiny_world.split(0.65, seed=0)
    assert set(train.concept_ids).isdisjoint(test.concept_ids)
    assert sorted(train.concept_ids + test.concept_ids) == sorted(tiny_world.concept_ids)
    for cat in tiny_world.categories():  # 4 per category -> 3 train, 1 test in every category
        assert len(train.categories()[cat]) == 3 and len(test.categories()[cat]) == 1, cat
    others = {tuple(tiny_world.split(0.65, seed=s)[0].concept_ids) for s in range(5)}
    assert len(others) > 1
    assert train.fingerprint() != test.fingerprint() != tiny_world.fingerprint()


def test_plain_scene_is_uncluttered_deterministic_and_keyed_apart(tmp_path):
    full = make_synthetic(8, 3, 1, 48, seed=3, cache_dir=tmp_path, vary=["color"])
    plain = make_synthetic(8, 3, 1, 48, seed=3, cache_dir=tmp_path, vary=["color"], scene="plain")
    again = make_synthetic(8, 3, 1, 48, seed=3, cache_dir=tmp_path / "b", vary=["color"], scene="plain")
    assert "scene" not in full.config and plain.config["scene"] == "plain"  # default keeps old fingerprints
    assert plain.root != full.root and plain.fingerprint != full.fingerprint
    for c, c2 in zip(plain.concepts, again.concepts):
        for ref, ref2 in zip(c.reference + c.query, c2.reference + c2.query):
            assert ref.attributes["clutter"] == "" and ref.attributes["background"] == "gray"
            assert Path(ref.path).read_bytes() == Path(ref2.path).read_bytes()
    imgs = [np.asarray(syn.Image.open(r.path)) for r in plain.concepts[0].reference + plain.concepts[0].query]
    assert any(not np.array_equal(imgs[0], im) for im in imgs[1:])  # jittered: not a pixel match
    with pytest.raises(ValueError, match="scene"):
        make_synthetic(8, 3, 1, 48, cache_dir=tmp_path, scene="busy")
