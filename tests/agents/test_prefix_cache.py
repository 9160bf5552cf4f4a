"""Listener prefix cache and direct M-RoPE positions: bounded, keyed by content and weights, equal to naive."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.qwen.positions import single_image_positions
from agents.qwen.prefix_cache import PrefixCache, PrefixEntry, image_key, model_fingerprint
from agents.qwen.scoring import YesNoScorer

DESCS = ["red mug", "The large blue striped ball with a star mark.", "x"]


def _entry(nbytes: int) -> PrefixEntry:
    return PrefixEntry(kv=torch.zeros(nbytes, dtype=torch.uint8), next_pos=0)


def test_cache_evicts_least_recent_within_its_bound():
    cache = PrefixCache(max_bytes=300)
    for k in "abc":
        assert cache.put(k, _entry(100))
    assert cache.get("a") is not None  # a is now the most recent
    assert cache.put("d", _entry(100))  # evicts b, the least recently used
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    assert cache.nbytes == 300 <= cache.max_bytes
    assert cache.put("e", _entry(250)) and cache.nbytes <= 300 and len(cache) == 1
    assert not cache.put("huge", _entry(301))  # larger than the whole bound: not stored, nothing evicted
    st = cache.stats()
    assert st["evictions"] == 4 and st["hits"] == 1 and st["entries"] == 1
    assert cache.get("zzz") is None and cache.stats()["misses"] == 1
    with pytest.raises(ValueError):
        PrefixCache(-1)


def test_image_key_is_content_based(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    assert image_key(a) == image_key(a.copy())
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert image_key(a) != image_key(b)
    assert image_key(Image.fromarray(a)) == image_key(Image.fromarray(a.copy()))
    f = tmp_path / "x.png"
    Image.fromarray(a).save(f)
    k1 = image_key(str(f))
    Image.fromarray(b).save(f)  # rewritten file: a new key (size/mtime)
    import os

    os.utime(f, ns=(1, 1))
    assert image_key(str(f)) != k1


def test_direct_positions_equal_get_rope_index(tiny_model_and_processor, rng, images_of):
    model, proc = tiny_model_and_processor
    for size in (56, 84, 112):
        img = images_of(rng, 1, size)[0]
        text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                          "text": "Does it match? Description: red"}]}],
                                        add_generation_prompt=True, tokenize=False)
        batch = proc(text=[text], images=[img], return_tensors="pt")
        ref, _ = model.model.get_rope_index(batch["input_ids"], image_grid_thw=batch["image_grid_thw"],
                                            video_grid_thw=None, attention_mask=batch["attention_mask"],
                                            mm_token_type_ids=batch["mm_token_type_ids"])
        pos, nxt = single_image_positions(batch["input_ids"][0].tolist(), model.config.image_token_id,
                                          batch["image_grid_thw"][0].tolist(), proc.image_processor.merge_size)
        assert torch.equal(pos, ref[:, 0]) and nxt == int(ref.max()) + 1
    with pytest.raises(ValueError, match="image tokens"):
        single_image_positions([1, 2, 3], model.config.image_token_id, (1, 4, 4), 2)


def test_warm_cache_skips_encoding_and_matches_naive(tiny_model_and_processor, rng, images_of, monkeypatch):
    model, proc = tiny_model_and_processor
    images = list(images_of(rng, 3))
    scorer = YesNoScorer(model, proc, method="shared", cache_bytes=64 * 2**20)
    encoded = []
    enc = scorer._encode_prefixes
    monkeypatch.setattr(scorer, "_encode_prefixes", lambda ims, t: encoded.append(len(ims)) or enc(ims, t))
    cold = scorer.yes_probabilities(DESCS, images)
    warm = scorer.yes_probabilities(DESCS, [im.copy() for im in images])  # same content, new objects
    assert encoded == [3] and scorer.cache_stats()["hits"] == 3 and scorer.cache_stats()["misses"] == 3
    naive = YesNoScorer(model, proc, method="naive").yes_probabilities(DESCS, images)
    assert np.abs(cold - naive).max() <= 1e-3 and np.abs(warm - cold).max() <= 1e-6
    scorer.yes_probabilities(DESCS, images, object_name="ball")  # another prompt: other entries
    assert encoded == [3, 3]
    keyed = scorer.score_candidates(DESCS[:1], [images], candidate_keys=[["k0", "k1", "k2"]])
    assert encoded == [3, 3, 3]  # caller's keys are new keys: encoded once more
    assert np.abs(np.array(keyed[0]) - naive[0]).max() <= 1e-3


def test_cache_bound_holds_and_weight_change_invalidates(tiny_path, rng, images_of):
    from agents.qwen.loading import load_model_and_processor

    model, proc = load_model_and_processor(tiny_path, dtype="float32", device="cpu")
    images = list(images_of(rng, 4))
    probe = YesNoScorer(model, proc, cache_bytes=2**30)
    probe.yes_probabilities(DESCS[:1], images[:1])
    one = probe.cache.nbytes
    scorer = YesNoScorer(model, proc, cache_bytes=2 * one)  # room for two images' prefixes
    first = scorer.yes_probabilities(DESCS, images)
    assert len(scorer.cache) == 2 and scorer.cache.nbytes <= 2 * one and scorer.cache_stats()["evictions"] == 2
    fp = model_fingerprint(model)
    with torch.no_grad():
        layer = model.model.language_model.layers[0].self_attn  # an optimizer step updates weights in place
        layer.v_proj.weight.add_(torch.randn_like(layer.v_proj.weight))
        layer.k_proj.weight.mul_(2.0)
    assert model_fingerprint(model) != fp
    after = scorer.yes_probabilities(DESCS, images)
    naive = YesNoScorer(model, proc, method="naive").yes_probabilities(DESCS, images)
    assert np.abs(after - naive).max() <= 1e-3 and np.abs(after - first).max() > 1e-4  # no stale prefix read
