"""Language metrics against hand-computed values and EGG's definitions (egg/core/language_analysis.py doctests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from lewis_env.language.metrics import (
    Utterance, attribute_coverage, bosdis, distinguishing_keys, edit_distances, entropy_bits, language_metrics,
    mentions, mutual_information, posdis, topographic_similarity, topsim_attributes, topsim_embeddings,
)


def test_entropy_and_mutual_information_by_hand():
    assert entropy_bits(["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert entropy_bits(["a", "b", "c", "d"]) == pytest.approx(2.0)
    assert entropy_bits(["a"] * 5) == pytest.approx(0.0)
    x = np.array([0, 0, 1, 1])
    assert mutual_information(x, x) == pytest.approx(1.0)
    assert mutual_information(x, np.array([0, 1, 0, 1])) == pytest.approx(0.0)


def test_edit_distances_by_hand():
    # [1,2,3] vs [1,3]: 1 edit / mean length 2.5; vs []: 3 / 1.5; vs [4,5,6,7]: 4 / 3.5
    d = edit_distances([[1, 2, 3], [1, 3], [], [4, 5, 6, 7]])
    assert d == pytest.approx([0.4, 2.0, 4 / 3.5, 2.0, 4 / 3, 2.0])
    assert edit_distances([[1, 2], [1, 2]]) == pytest.approx([0.0])
    assert edit_distances([[]]).size == 0


def test_topsim_matches_egg_doctest():
    # EGG TopographicSimilarity doctest: identical meanings/messages (hamming vs normalised edit) -> 1.0
    words = ["cat", "dog", "pen", "ben", "ten"]
    codes = [[ord(c) for c in w] for w in words]
    assert topographic_similarity(pdist(np.array(codes), "hamming"), edit_distances(codes)) == pytest.approx(1.0)


def test_topsim_by_hand_and_degenerate_cases():
    meanings = [{"color": "red", "shape": "round"}, {"color": "red", "shape": "square"},
                {"color": "blue", "shape": "square"}]
    compositional = ["red round", "red square", "blue square"]
    assert topsim_attributes(meanings, compositional) == pytest.approx(1.0)
    # one constant message: message distances all 0 -> undefined
    assert math.isnan(topsim_attributes(meanings, ["x", "x", "x"]))
    emb = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cosine: 0.29, 1, 0.29 like the messages
    assert topsim_embeddings(emb, ["red round", "red square", "blue square"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="embeddings"):
        topsim_embeddings(emb[:2], compositional)


def test_posdis_by_hand_and_egg_doctest():
    attrs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    # the single position encodes attribute 0: gap = (1 - 0) / H = 1
    assert posdis(attrs, np.array([[0], [0], [1], [1]])) == pytest.approx(1.0)
    # XOR of both attributes: no attribute alone informs the symbol
    assert posdis(attrs, np.array([[0], [1], [1], [0]])) == pytest.approx(0.0)
    # EGG doctest: two symbols encoding two 10-valued attributes over 1000 samples -> ~0.98; constant extra
    # positions are ignored
    rng = np.random.default_rng(0)
    a = rng.integers(0, 10, size=(1000, 2))
    p = posdis(a, a)
    assert 0.95 < p < 1.0
    assert posdis(a, np.concatenate([a, np.zeros_like(a)], axis=1)) == pytest.approx(p)
    assert math.isnan(posdis(attrs, np.zeros((4, 3), dtype=int)))
    with pytest.raises(ValueError, match=">= 2 attribute"):
        posdis(attrs[:, :1], attrs)


def test_bosdis_egg_doctest_is_one():
    # Chaabouni et al. 2020, appendix 8.2 (EGG Disent doctest): a perfect bag-of-symbols language
    attrs = np.array([[i, j] for i in range(4) for j in range(4)])
    msgs = np.array([[0, 0, 4], [0, 0, 5], [0, 0, 6], [0, 0, 7], [1, 4, 1], [1, 5, 1], [1, 6, 1], [1, 7, 1],
                     [2, 4, 2], [2, 5, 2], [2, 6, 2], [2, 7, 2], [3, 4, 3], [3, 3, 5], [3, 3, 6], [3, 3, 7]])
    assert bosdis(attrs, msgs, vocab_size=3) == pytest.approx(1.0)


def test_attribute_coverage_by_hand():
    target = {"color": "red", "pattern": "striped", "mark": "none", "category": "mug"}
    negs = [{"color": "blue", "pattern": "striped", "mark": "star", "category": "mug"}]
    assert distinguishing_keys(target, negs) == ["color", "mark"]
    assert attribute_coverage("A red mug with no mark.", target, negs) == pytest.approx(1.0)
    assert attribute_coverage("A red mug.", target, negs) == pytest.approx(0.5)
    assert attribute_coverage("A blue striped mug with a star.", target, negs) == pytest.approx(0.0)
    assert math.isnan(attribute_coverage("anything", target, [dict(target)]))
    assert mentions("It is Red-ish", "color", "red") and not mentions("a reddish mug", "color", "red")


def test_language_metrics_summary_by_hand():
    m1 = {"color": "red", "shape": "round", "category": "mug"}
    m2 = {"color": "blue", "shape": "round", "category": "mug"}
    utts = [Utterance("a red mug", "a", m1, (m2,)), Utterance("a blue mug", "b", m2, (m1,)),
            Utterance("a red mug on the table", "a", m1, (m2,))]
    m = language_metrics(utts)
    assert m["lang_n"] == 3
    assert m["lang_length_words"] == pytest.approx((3 + 3 + 6) / 3)
    assert m["lang_vocab_size"] == 7  # a red mug blue on the table
    assert m["lang_message_entropy"] == pytest.approx(math.log2(3))
    assert m["lang_attribute_coverage"] == pytest.approx(1.0)
    assert m["lang_location_rate"] == pytest.approx(1 / 3) and m["lang_state_rate"] == 0.0
    assert "lang_topsim_embedding" not in m
    empty = language_metrics([])
    assert empty["lang_n"] == 0 and math.isnan(empty["lang_topsim"])
