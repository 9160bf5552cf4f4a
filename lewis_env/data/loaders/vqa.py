"""Multiple-choice VQA files of the YoLLaVA/MyVLM kind: ``{image_path: {question, options, correct_answer}}``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lewis_env.data.loaders.common import DatasetLayoutError, read_json
from lewis_env.data.types import ConceptDataset, VQAQuestion


def _entries(data: Any, path: Path) -> list[tuple[str, Mapping[str, Any]]]:
    """(image path, entry) pairs from a flat ``{image: entry}``, a nested ``{concept: {image: entry}}``,
    a list of entries with an ``image`` field, or ``{image: [entry, ...]}``."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(data, list):
        for e in data:
            if not isinstance(e, Mapping) or not any(k in e for k in ("image", "image_path")):
                raise DatasetLayoutError(f"{path}: list entries need an 'image' field, got {str(e)[:80]}")
            out.append((str(e.get("image", e.get("image_path"))), e))
        return out
    if not isinstance(data, Mapping):
        raise DatasetLayoutError(f"{path} must hold a JSON object or list, got {type(data).__name__}")
    for key, val in data.items():
        if isinstance(val, Mapping) and "question" in val:
            out.append((str(key), val))
        elif isinstance(val, list):
            out.extend((str(key), e) for e in val if isinstance(e, Mapping))
        elif isinstance(val, Mapping):  # nested by concept
            out.extend(_entries(val, path))
        else:
            raise DatasetLayoutError(f"{path}: entry {key!r} is not a question object")
    return out


def _answer_letter(entry: Mapping[str, Any], options: dict[str, str], where: str) -> str:
    ans = str(entry.get("correct_answer", entry.get("answer", ""))).strip()
    if ans in options:
        return ans
    if ans.upper() in options:
        return ans.upper()
    for letter, text in options.items():  # answer given as the option text
        if text.strip().lower() == ans.lower():
            return letter
    raise DatasetLayoutError(f"{where}: correct_answer {ans!r} is neither an option letter nor an option text")


def load_vqa_file(path: str | Path, ds: ConceptDataset, placeholder: str | None = "<sks>") -> list[VQAQuestion]:
    """Questions whose image is one of ``ds``'s images, matched by ``<concept folder>/<file name>``; questions
    about images not in the dataset are dropped with one warning. The release's concept placeholder
    (``<sks>``) is replaced by the concept's display name so every task names concepts the same way."""
    path = Path(path)
    data = read_json(path)
    by_key = {}
    for c in ds.concepts:
        for ref in c.images:
            p = Path(ref.path)
            by_key[(p.parent.name, p.name)] = ref
    questions: list[VQAQuestion] = []
    missing: list[str] = []
    for img, entry in _entries(data, path):
        p = Path(img.replace("\\", "/"))
        ref = by_key.get((p.parent.name, p.name))
        if ref is None:
            missing.append(img)
            continue
        if "question" not in entry:
            raise DatasetLayoutError(f"{path}: entry for {img} has no 'question'")
        opts = entry.get("options") or entry.get("choices") or {}
        if isinstance(opts, list):
            opts = {chr(ord("A") + i): o for i, o in enumerate(opts)}
        options = {str(k).strip().upper(): str(v) for k, v in dict(opts).items()}
        question = str(entry["question"])
        if placeholder:
            question = question.replace(placeholder, ds.concept(ref.concept_id).name)
        if len(options) < 2:
            raise DatasetLayoutError(f"{path}: question for {img} has fewer than two options")
        questions.append(VQAQuestion(
            concept_id=ref.concept_id, image_path=ref.path, question=question, options=options,
            answer=_answer_letter(entry, options, f"{path} [{img}]"), kind=str(entry.get("type", "dataset"))))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        warnings.warn(f"{path}: dropped {len(missing)} question(s) about images not in the dataset: "
                      f"{', '.join(missing[:3])}{more}", stacklevel=2)
    return questions


def find_vqa_file(root: Path, name: str) -> Path | None:
    """``name`` in the root or its parent (the repos keep the JSON next to the data folder)."""
    for cand in (root / name, root.parent / name):
        if cand.is_file():
            return cand
    return None


def attach_vqa(ds: ConceptDataset, root: Path, vqa_file: str | Path | None, default_name: str,
               layout: str) -> ConceptDataset:
    """``ds`` with the questions of ``vqa_file`` (or ``default_name`` found by ``find_vqa_file``), if any.

    An explicit ``vqa_file`` that does not exist is an error naming it; a missing default file is not.
    """
    vqa_path = Path(vqa_file) if vqa_file is not None else find_vqa_file(root, default_name)
    if vqa_file is not None and not vqa_path.is_file():
        raise FileNotFoundError(f"{layout} VQA file {vqa_path} does not exist")
    if vqa_path is None:
        return ds
    return replace(ds, questions=load_vqa_file(vqa_path, ds), _fingerprint=None)


__all__ = ["attach_vqa", "find_vqa_file", "load_vqa_file"]
