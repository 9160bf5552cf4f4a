"""Hard negatives by attributes and by CLIP (random-init open_clip), and their JSON files."""

from __future__ import annotations

import numpy as np
import pytest

from lewis_env.data.negatives import attribute_distance, hard_negatives, load_negatives, save_negatives
from lewis_env.data.synthetic import make_synthetic


def test_attribute_negatives_share_category_and_are_near(tiny_world):
    table = hard_negatives(tiny_world, k=3)
    assert table.method == "attributes" and table.k == 3 and set(table) == set(tiny_world.concept_ids)
    for cid, negs in table.items():
        c = tiny_world.concept(cid)
        assert len(negs) == 3 and cid not in negs and len(set(negs)) == 3
        dists = [attribute_distance(c.attributes, tiny_world.concept(n).attributes) for n in negs]
        assert all(tiny_world.concept(n).category == c.category for n in negs)
        assert all(d in (1, 2) for d in dists) and dists == sorted(dists)
    assert hard_negatives(tiny_world, k=3, seed=0) == table


def test_fallback_to_other_categories_only_when_needed(tmp_path):
    ds = make_synthetic(num_concepts=6, num_categories=3, images_per_concept=1, image_size=16, cache_dir=tmp_path)
    table = hard_negatives(ds, k=3)
    for cid, negs in table.items():
        cat = ds.concept(cid).category
        same = [n for n in negs if ds.concept(n).category == cat]
        assert len(same) == 1 and negs[0] == same[0]  # the only sibling comes first
    with pytest.raises(ValueError, match="at least 7 concepts"):
        hard_negatives(ds, k=6)
    with pytest.raises(ValueError, match="method"):
        hard_negatives(ds, method="cosine")


def test_save_load_round_trip_and_stale_check(tiny_world, tmp_path):
    table = hard_negatives(tiny_world, k=2)
    path = save_negatives(table, tmp_path / "neg" / "n.json")
    back = load_negatives(path, dataset=tiny_world)
    assert back == table and (back.method, back.k, back.fingerprint) == ("attributes", 2, tiny_world.fingerprint())
    other = tiny_world.with_config(extra=1)
    with pytest.raises(ValueError, match="fingerprint"):
        load_negatives(path, dataset=other)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_negatives(tmp_path / "bad.json")


def test_clip_negatives_and_embedding_cache(tmp_path):
    pytest.importorskip("open_clip")
    from lewis_env.data.clip_embed import ClipEmbedder

    ds = make_synthetic(num_concepts=8, num_categories=2, images_per_concept=2, num_reference=1, image_size=32,
                        cache_dir=tmp_path / "w")
    emb = ClipEmbedder("ViT-S-32", pretrained=None, allow_random_init=True, cache_dir=tmp_path / "clip")
    ids, vecs = emb.embed_dataset(ds)
    assert vecs.shape == (16, emb.model.visual.output_dim) and len(ids) == 16
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert (emb.cache_hits, emb.cache_misses) == (0, 1) and list((tmp_path / "clip").rglob("*.npy"))
    _, again = emb.embed_dataset(ds)
    assert emb.cache_hits == 1 and np.array_equal(again, vecs)
    # retrieval: an image is its own nearest neighbour among all images
    sims = vecs @ vecs.T
    assert (sims.argmax(axis=1) == np.arange(16)).all()
    table = hard_negatives(ds, k=3, method="clip", model_name="ViT-S-32", allow_random_init=True, cache_dir=tmp_path / "clip")
    assert table.method == "clip"
    concept_emb = emb.concept_embeddings(ds)
    for cid, negs in table.items():
        assert all(ds.concept(n).category == ds.concept(cid).category for n in negs)
        s = [float(concept_emb[cid] @ concept_emb[n]) for n in negs]
        assert s == sorted(s, reverse=True)
    # the same pixels embed the same way from a file, an array, or a second seeded random-init model
    first = ds.concepts[0].reference[0]
    assert np.allclose(emb.embed_arrays([first.load()])[0], vecs[0], atol=1e-5)
    twin = ClipEmbedder("ViT-S-32", pretrained=None, allow_random_init=True, cache_dir=tmp_path / "clip2")
    assert np.allclose(twin.embed_images([first.path])[0], vecs[0], atol=1e-5)
    other_seed = ClipEmbedder("ViT-S-32", pretrained=None, allow_random_init=True, cache_dir=tmp_path / "clip", seed=1)
    assert other_seed.cache_dir != emb.cache_dir
    t = emb.embed_texts(["a red mug", "a blue ball"])
    assert t.shape == (2, vecs.shape[1]) and np.allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-4)
