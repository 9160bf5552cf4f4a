"""load_dataset specs, memoisation and errors."""

from __future__ import annotations

import pytest

from lewis_env.data import ConceptDataset, clear_memo, list_datasets, load_dataset, register_dataset

from .conftest import TINY


def test_synthetic_spec_memoised(tmp_path):
    a = load_dataset("synthetic", **TINY, cache_dir=str(tmp_path))
    b = load_dataset({"kind": "synthetic", **TINY, "cache_dir": str(tmp_path)})
    assert a is b and len(a) == 16
    c = load_dataset("synthetic", **TINY, cache_dir=str(tmp_path), memo=False)
    assert c is not a and c.fingerprint() == a.fingerprint()
    assert load_dataset("synthetic", **{**TINY, "seed": 5}, cache_dir=str(tmp_path)) is not a


def test_dataset_passes_through(tiny_world):
    assert load_dataset(tiny_world) is tiny_world
    with pytest.raises(ValueError, match="already loaded"):
        load_dataset(tiny_world, seed=1)


@pytest.mark.parametrize("kind", ["folder", "perva", "myvlm"])
def test_root_specs_string_and_dict_agree(kind, concept_tree):
    root = concept_tree({"x": 3, "y": 3}, sub="cat" if kind == "perva" else "")
    a = load_dataset(f"{kind}:{root}", num_reference=1)
    b = load_dataset({"kind": kind, "root": str(root), "num_reference": 1})
    assert a is b and a.concept_ids == ["x", "y"] and all(len(c.reference) == 1 for c in a)
    clear_memo()
    assert load_dataset(f"{kind}:{root}", num_reference=1) is not a


def test_bad_specs_are_named(tmp_path):
    assert {"synthetic", "folder", "yollava", "myvlm", "perva", "hf"} <= set(list_datasets())
    with pytest.raises(ValueError, match="unknown dataset kind 'imagenet'"):
        load_dataset("imagenet:/x")
    with pytest.raises(ValueError, match="needs a root"):
        load_dataset("folder")
    with pytest.raises(ValueError, match="'kind'"):
        load_dataset({"root": "/x"})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="folder:"):
        load_dataset(str(tmp_path))
    with pytest.raises(TypeError):
        load_dataset(42)


def test_register_custom_kind(tiny_world):
    calls = []

    @register_dataset("mine")
    def _load(root: str, **kw) -> ConceptDataset:
        calls.append((root, kw))
        return tiny_world

    assert load_dataset("mine:abc", flag=1) is tiny_world and load_dataset("mine:abc", flag=1) is tiny_world
    assert calls == [("abc", {"flag": 1})]
