"""What a speaker's language has become: length, vocabulary, entropy, topographic similarity, posdis/bosdis,
attribute coverage and state/location mention rates of a set of utterances (numpy + scipy, no torch).

Definitions (docs/LANGUAGE.md has them with examples). Words are ``lewis_env.parsing.words`` (lower-case
alphanumeric runs); entropies are in bits. Topographic similarity, posdis and bosdis follow EGG
(``egg/core/language_analysis.py``; Chaabouni et al., ACL 2020) with words as symbols:

- ``lang_topsim``: Spearman correlation between pairwise meaning distances (Hamming over the target's
  attributes + category) and message distances (word-level edit distance / mean length of the pair);
  ``lang_topsim_embedding`` is the same with cosine distance between image embeddings as the meaning
  (used when the data has no attributes and embeddings are given);
- ``lang_posdis``: for each word position, (MI of the best attribute - MI of the second) / H(position),
  averaged over positions whose entropy is > 0 (messages padded with an end symbol);
- ``lang_bosdis``: the same over word-count histograms (one column per vocabulary word).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lewis_env.parsing import words

#: Every metric ``language_metrics`` returns, with its meaning (stored under these names in result rows).
METRICS: dict[str, str] = {
    "lang_n": "number of utterances measured",
    "lang_length_words": "mean words per utterance",
    "lang_length_tokens": "mean tokens per utterance (word-punct tokens unless a tokenizer is given)",
    "lang_vocab_size": "distinct words over all utterances",
    "lang_message_entropy": "entropy (bits) of the distribution of whole utterances",
    "lang_word_entropy": "entropy (bits) of the unigram word distribution",
    "lang_topsim": "Spearman(meaning Hamming distance over attributes, normalised word edit distance)",
    "lang_topsim_embedding": "Spearman(cosine distance of image embeddings, normalised word edit distance)",
    "lang_posdis": "positional disentanglement, attribute -> word position (EGG / Chaabouni et al. 2020)",
    "lang_bosdis": "bag-of-symbols disentanglement, attribute -> word counts (EGG / Chaabouni et al. 2020)",
    "lang_attribute_coverage": "mean share of distinguishing attributes (target vs hard negatives) mentioned",
    "lang_state_rate": "share of utterances mentioning a transient state (lexicon in lewis_env.language.lexicon)",
    "lang_location_rate": "share of utterances mentioning a location / surroundings",
}
_TOKEN = re.compile(r"\w+|[^\w\s]")
#: The one NaN object metrics use for "not defined here" (so equal results compare equal).
NAN = float("nan")


@dataclass(frozen=True)
class Utterance:
    """One speaker output with what is known about its referent.

    ``meaning``: the target's ground-truth attributes (incl. ``category``) when the data has them;
    ``negatives``: the hard negatives' attributes (for attribute coverage); ``key``: concept id used to look
    up an embedding; ``step``: training step for rollouts.
    """

    text: str
    key: str | None = None
    meaning: Mapping[str, str] | None = None
    negatives: tuple[Mapping[str, str], ...] = ()
    step: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


# -- basic statistics ----------------------------------------------------------------------------
def entropy_bits(items: Iterable[Any]) -> float:
    """Shannon entropy in bits of the empirical distribution of hashable ``items`` (0 for none)."""
    counts = np.array(list(Counter(items).values()), dtype=float)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def wordpunct_tokens(text: str) -> list[str]:
    """Word-punct tokens (runs of word characters, and each punctuation mark), the default token count."""
    return _TOKEN.findall(text)


# -- topographic similarity ----------------------------------------------------------------------
def _scipy(module: str) -> Any:
    """Import a scipy module, or say which extra provides it (the core install has no scipy)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"language metrics need scipy ({module}): pip install 'lewis-bench[language]'") from None


def edit_distances(messages: Sequence[Sequence[int]]) -> np.ndarray:
    """Condensed (``pdist`` order) Levenshtein distances between integer sequences, / mean length of each pair.

    Identical messages are computed once; the dynamic programme runs over all pairs at once (numpy).
    """
    n = len(messages)
    if n < 2:
        return np.zeros(0, dtype=float)
    uniq: dict[tuple[int, ...], int] = {}
    inv = np.array([uniq.setdefault(tuple(m), len(uniq)) for m in messages])
    seqs = list(uniq)
    u = len(seqs)
    lens = np.array([len(m) for m in seqs], dtype=np.int64)
    width = max(int(lens.max()), 1)
    pad = np.full((u, width), -1, dtype=np.int64)
    for i, m in enumerate(seqs):
        pad[i, :len(m)] = m
    ia, ib = np.triu_indices(u, k=1)
    dist_u = np.zeros((u, u), dtype=float)
    if ia.size:
        a, b = pad[ia], pad[ib]
        la, lb = lens[ia], lens[ib]
        prev = np.tile(np.arange(width + 1, dtype=np.int32), (ia.size, 1))
        raw = prev[np.arange(ia.size), lb].astype(float)  # distance when a is empty
        for x in range(1, width + 1):
            cur = np.empty_like(prev)
            cur[:, 0] = x
            sym = a[:, x - 1]
            for j in range(1, width + 1):
                cur[:, j] = np.minimum(np.minimum(prev[:, j], cur[:, j - 1]) + 1, prev[:, j - 1] + (b[:, j - 1] != sym))
            done = la == x
            raw[done] = cur[done, lb[done]]
            prev = cur
        denom = (la + lb) / 2.0
        d = np.divide(raw, denom, out=np.zeros_like(raw), where=denom > 0)
        dist_u[ia, ib] = d
        dist_u[ib, ia] = d
    i, j = np.triu_indices(n, k=1)
    return dist_u[inv[i], inv[j]]


def encode_words(texts: Sequence[str]) -> tuple[list[list[int]], dict[str, int]]:
    """Texts -> word-id sequences (ids from 1; 0 is kept for the end/padding symbol) and the vocabulary."""
    vocab: dict[str, int] = {}
    seqs = [[vocab.setdefault(w, len(vocab) + 1) for w in words(t)] for t in texts]
    return seqs, vocab


def encode_attributes(meanings: Sequence[Mapping[str, str]], keys: Sequence[str] | None = None) -> np.ndarray:
    """Attribute dicts -> an int matrix (one column per key, values numbered per column; missing = its own value)."""
    keys = list(keys) if keys is not None else sorted({k for m in meanings for k in m})
    out = np.zeros((len(meanings), len(keys)), dtype=np.int64)
    for c, k in enumerate(keys):
        codes: dict[str, int] = {}
        for r, m in enumerate(meanings):
            out[r, c] = codes.setdefault(str(m.get(k, "\x00missing")), len(codes))
    return out


def topographic_similarity(meaning_dist: np.ndarray, message_dist: np.ndarray) -> float:
    """Spearman correlation of two condensed distance vectors (NaN when either is constant or too short)."""
    spearmanr = _scipy("scipy.stats").spearmanr
    a, b = np.asarray(meaning_dist, dtype=float), np.asarray(message_dist, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"distance vectors differ in length: {a.shape} vs {b.shape}")
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return NAN
    return float(spearmanr(a, b).statistic)


def topsim_attributes(meanings: Sequence[Mapping[str, str]], texts: Sequence[str]) -> float:
    """Topographic similarity with Hamming distance over attributes and normalised word edit distance."""
    pdist = _scipy("scipy.spatial.distance").pdist
    if len(meanings) != len(texts):
        raise ValueError(f"{len(meanings)} meanings but {len(texts)} texts")
    if len(texts) < 3:
        return NAN
    seqs, _ = encode_words(texts)
    return topographic_similarity(pdist(encode_attributes(meanings), "hamming"), edit_distances(seqs))


def topsim_embeddings(embeddings: np.ndarray, texts: Sequence[str]) -> float:
    """Topographic similarity with cosine distance between (image) embeddings as the meaning distance."""
    pdist = _scipy("scipy.spatial.distance").pdist
    emb = np.asarray(embeddings, dtype=float)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(f"embeddings must be (n, d) with n = {len(texts)} texts, got {emb.shape}")
    if len(texts) < 3:
        return NAN
    seqs, _ = encode_words(texts)
    return topographic_similarity(pdist(emb, "cosine"), edit_distances(seqs))


# -- disentanglement (EGG's gap_mi_first_second) --------------------------------------------------
def _column_entropy(col: np.ndarray) -> float:
    _, counts = np.unique(col, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    """I(x; y) = H(x) + H(y) - H(x, y) in bits, for two aligned integer columns."""
    return _column_entropy(x) + _column_entropy(y) - _column_entropy(np.stack([x, y], axis=1))


def gap_mi_first_second(attributes: np.ndarray, representations: np.ndarray) -> float:
    """Mean over non-constant representation columns of (top MI - second MI with an attribute) / H(column)."""
    attributes, representations = np.asarray(attributes), np.asarray(representations)
    if attributes.ndim != 2 or attributes.shape[1] < 2:
        raise ValueError(f"disentanglement needs >= 2 attribute columns, got shape {attributes.shape}")
    if attributes.shape[0] != representations.shape[0]:
        raise ValueError(f"{attributes.shape[0]} attribute rows but {representations.shape[0]} messages")
    gaps, used = 0.0, 0
    for j in range(representations.shape[1]):
        y = representations[:, j]
        h = _column_entropy(y)
        if h <= 0.0:
            continue
        mis = sorted((mutual_information(attributes[:, i], y) for i in range(attributes.shape[1])), reverse=True)
        gaps += (mis[0] - mis[1]) / h
        used += 1
    return gaps / used if used else NAN


def posdis(attributes: np.ndarray, messages: np.ndarray) -> float:
    """Positional disentanglement: representations are the message symbols by position."""
    return gap_mi_first_second(attributes, messages)


def bosdis(attributes: np.ndarray, messages: np.ndarray, vocab_size: int) -> float:
    """Bag-of-symbols disentanglement: representations are counts of symbols 1..vocab_size-1 (0 = end)."""
    messages = np.asarray(messages)
    hist = np.stack([(messages == v).sum(axis=1) for v in range(1, vocab_size)], axis=1) if vocab_size > 1 else \
        np.zeros((messages.shape[0], 0), dtype=np.int64)
    return gap_mi_first_second(attributes, hist)


def pad_messages(seqs: Sequence[Sequence[int]], max_len: int | None = None) -> np.ndarray:
    """Word-id sequences -> a 0-padded (n, L) int matrix (truncated to ``max_len``)."""
    width = max((len(s) for s in seqs), default=0)
    if max_len is not None:
        width = min(width, max_len)
    out = np.zeros((len(seqs), max(width, 1)), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = list(s)[:width]
        out[i, :len(s)] = s
    return out


# -- attribute coverage ---------------------------------------------------------------------------
def _phrases(key: str, value: str) -> tuple[str, ...]:
    v = " ".join(words(str(value)))
    if v == "none":
        return (f" no {key} ", f" without {key} ", f" without a {key} ", f" without any {key} ")
    return (f" {v} ",) if v else ()


def mentions(text: str, key: str, value: str) -> bool:
    """True when ``text`` names ``value`` of ``key`` as whole words (``none`` = "no <key>" / "without a <key>")."""
    padded = f" {' '.join(words(text))} "
    return any(p in padded for p in _phrases(key, value))


def distinguishing_keys(meaning: Mapping[str, str], negatives: Sequence[Mapping[str, str]],
                        keys: Sequence[str] | None = None) -> list[str]:
    """Attribute keys whose target value differs from at least one hard negative's."""
    keys = list(keys) if keys is not None else list(meaning)
    return [k for k in keys if k in meaning and any(str(n.get(k)) != str(meaning[k]) for n in negatives)]


def attribute_coverage(text: str, meaning: Mapping[str, str], negatives: Sequence[Mapping[str, str]],
                       keys: Sequence[str] | None = None) -> float:
    """Share of the distinguishing attributes the text names (NaN when nothing distinguishes the target)."""
    dist = distinguishing_keys(meaning, negatives, keys)
    if not dist:
        return NAN
    return sum(mentions(text, k, str(meaning[k])) for k in dist) / len(dist)


# -- everything at once ---------------------------------------------------------------------------
def _subsample(n: int, cap: int, seed: int) -> np.ndarray:
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def language_metrics(utts: Sequence[Utterance], embeddings: Mapping[str, np.ndarray] | None = None,
                     tokenizer: Callable[[str], Sequence[Any]] | None = None, max_pairs_items: int = 300,
                     max_positions: int = 64, seed: int = 0) -> dict[str, float]:
    """Every metric in ``METRICS`` for a set of utterances (NaN where the data cannot support one).

    Topsim, posdis and bosdis use at most ``max_pairs_items`` utterances (a seeded subsample) so their
    cost stays bounded; ``lang_topsim_embedding`` is present only when ``embeddings`` (key -> vector) are.
    """
    from lewis_env.language.lexicon import evaluate_text

    nan = NAN
    texts = [u.text or "" for u in utts]
    tok = tokenizer or wordpunct_tokens
    word_lists = [words(t) for t in texts]
    out: dict[str, float] = {name: nan for name in METRICS if name != "lang_topsim_embedding" or embeddings}
    out["lang_n"] = float(len(utts))
    if not utts:
        return out
    out["lang_length_words"] = float(np.mean([len(w) for w in word_lists]))
    out["lang_length_tokens"] = float(np.mean([len(tok(t)) for t in texts]))
    out["lang_vocab_size"] = float(len({w for ws in word_lists for w in ws}))
    out["lang_message_entropy"] = entropy_bits(" ".join(ws) for ws in word_lists)
    out["lang_word_entropy"] = entropy_bits(w for ws in word_lists for w in ws)
    flags = [evaluate_text(t) for t in texts]
    out["lang_state_rate"] = float(np.mean([f.has_state for f in flags]))
    out["lang_location_rate"] = float(np.mean([f.has_location for f in flags]))

    with_meaning = [i for i, u in enumerate(utts) if u.meaning]
    if with_meaning:
        idx = [with_meaning[j] for j in _subsample(len(with_meaning), max_pairs_items, seed)]
        meanings = [utts[i].meaning or {} for i in idx]
        sub_texts = [texts[i] for i in idx]
        out["lang_topsim"] = topsim_attributes(meanings, sub_texts)
        attrs = encode_attributes(meanings)
        if attrs.shape[1] >= 2:
            seqs, vocab = encode_words(sub_texts)
            msgs = pad_messages(seqs, max_positions)
            out["lang_posdis"] = posdis(attrs, msgs)
            out["lang_bosdis"] = bosdis(attrs, msgs, len(vocab) + 1)
        cov = [attribute_coverage(texts[i], utts[i].meaning or {}, utts[i].negatives) for i in with_meaning
               if utts[i].negatives]
        cov = [c for c in cov if not np.isnan(c)]
        if cov:
            out["lang_attribute_coverage"] = float(np.mean(cov))
    if embeddings:
        keyed = [i for i, u in enumerate(utts) if u.key is not None and u.key in embeddings]
        if keyed:
            idx = [keyed[j] for j in _subsample(len(keyed), max_pairs_items, seed)]
            out["lang_topsim_embedding"] = topsim_embeddings(
                np.stack([np.asarray(embeddings[utts[i].key], dtype=float) for i in idx]), [texts[i] for i in idx])
    return out


__all__ = ["METRICS", "NAN", "Utterance", "attribute_coverage", "bosdis", "distinguishing_keys", "edit_distances",
           "encode_attributes", "encode_words", "entropy_bits", "gap_mi_first_second", "language_metrics",
           "mentions", "mutual_information", "pad_messages", "posdis", "topographic_similarity",
           "topsim_attributes", "topsim_embeddings", "wordpunct_tokens"]
