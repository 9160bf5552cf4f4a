"""Where the listener, recognition and identification envs get a concept's description from.

Sources: ``"template"`` (the template speaker over ground-truth attributes; synthetic data),
``"dataset"`` (``Concept.descriptions[0]``: shipped captions, or a ``lewis-data describe`` database the loader
picked up), ``"none"`` (no text; recognition then relies on the reference images alone), a dict ``{concept_id: description}``, or a path to JSON in
either that flat form or the reference database form ``{"concept_dict": {c: {"name", "info" or
"description", ...}}}`` (``database_{model}.json``). Tagged descriptions are reduced to coarse + detailed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lewis_env.data.types import Concept, ConceptDataset
from lewis_env.parsing import extract_description
from lewis_env.speakers import describe

DescriptionSpec = str | Path | Mapping[str, Any] | Callable[[Concept], str]


def _entry_text(entry: Any) -> str:
    """The description in one database entry (a str, a dict with description/info, or a list)."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        for key in ("description", "info", "detailed", "general", "text"):
            if entry.get(key):
                return _entry_text(entry[key])
        vals = [_entry_text(v) for k, v in entry.items() if k not in ("name", "image", "category") and v]
        return " ".join(v for v in vals if v)
    if isinstance(entry, (list, tuple)):
        return " ".join(_entry_text(e) for e in entry if e)
    return str(entry) if entry is not None else ""


def load_database(path: str | Path) -> dict[str, str]:
    """Read a descriptions JSON (flat or ``concept_dict`` form) into ``{key: description}``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"descriptions file {p} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"descriptions file {p} is not valid JSON: {exc}") from None
    return _normalise(data, str(p))


def _normalise(data: Any, where: str) -> dict[str, str]:
    if not isinstance(data, Mapping):
        raise ValueError(f"descriptions in {where} must be a JSON object, got {type(data).__name__}")  # noqa: TRY004
    if "concept_dict" in data:
        data = data["concept_dict"]
        if not isinstance(data, Mapping):
            raise ValueError(f"'concept_dict' in {where} must be an object")
    out: dict[str, str] = {}
    for key, entry in data.items():
        out[str(key)] = extract_description(_entry_text(entry))
        if isinstance(entry, Mapping) and entry.get("name"):
            out.setdefault(str(entry["name"]), out[str(key)])
    return out


#: The ``format`` field of a database written by ``lewis-data describe``.
DB_FORMAT = "lewis-bench-descriptions-v1"


def write_database(ds: ConceptDataset, texts: Mapping[str, list[tuple[str, str]]], path: str | Path,
                   meta: Mapping[str, Any]) -> Path:
    """Write the description database (atomically) in the reference ``concept_dict`` form::

        {"format": DB_FORMAT, "meta": {dataset fingerprint, agent, agent_kwargs, agent_flags, ...},
         "concept_dict": {<concept_id>: {"name", "category", "image", "info", "descriptions", "images"}}}

    ``info`` (what the envs show) is the description of the first image; ``descriptions``/``images`` keep all.
    """
    import os

    concept_dict = {}
    for c in ds.concepts:
        pairs = texts.get(c.concept_id) or []
        if not pairs:
            raise ValueError(f"no description for concept {c.concept_id!r}")
        concept_dict[c.concept_id] = {"name": c.name, "category": c.category, "image": pairs[0][0],
                                      "info": pairs[0][1], "descriptions": [t for _, t in pairs],
                                      "images": [p for p, _ in pairs]}
    payload = {"format": DB_FORMAT, "meta": {"dataset": ds.name, **dict(meta)}, "concept_dict": concept_dict}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


class DescriptionSource:
    """``source(concept) -> description``; resolves a spec once, checks every concept is covered."""

    def __init__(self, spec: DescriptionSpec, dataset: ConceptDataset) -> None:
        self.spec = spec if isinstance(spec, (str, Mapping)) else str(spec) if isinstance(spec, Path) else "callable"
        self._fn: Callable[[Concept], str]
        self._cache: dict[str, str] = {}
        if callable(spec) and not isinstance(spec, (str, Path)):
            self._fn = spec
            return
        if spec == "none":
            self._fn = lambda c: ""
        elif spec == "template":
            self._fn = lambda c: describe(c, style="plain")
        elif spec == "dataset":
            missing = [c.concept_id for c in dataset.concepts if not c.descriptions]
            if missing:
                raise ValueError(f"descriptions='dataset' but concepts {missing[:5]} have no descriptions; "
                                 f"use 'template' or a JSON file")
            self._fn = lambda c: extract_description(c.descriptions[0])
        else:
            table = _normalise(spec, "the descriptions dict") if isinstance(spec, Mapping) else load_database(spec)
            missing = [c.concept_id for c in dataset.concepts if self._lookup(table, c) is None]
            if missing:
                raise ValueError(f"descriptions {self.spec!r} lack concepts {missing[:5]} "
                                 f"({len(missing)} of {len(dataset)} missing)")
            self._fn = lambda c: self._lookup(table, c) or ""

    @staticmethod
    def _lookup(table: Mapping[str, str], c: Concept) -> str | None:
        for key in (c.concept_id, c.name, c.name.strip("<>")):
            if key in table:
                return table[key]
        return None

    def __call__(self, concept: Concept) -> str:
        """The description of ``concept`` (cached)."""
        got = self._cache.get(concept.concept_id)
        if got is None:
            got = self._cache[concept.concept_id] = str(self._fn(concept))
        return got


#: How to get descriptions for data that ships none.
DESCRIBE_HINT = ("write a description database with `lewis-data describe <dataset> --agent qwen-vl "
                 "agent.model=<path> --out <root>/descriptions.json` (folder datasets pick it up from there) and/or "
                 "pass descriptions=<that JSON>")


def default_description_spec(dataset: ConceptDataset, allow_none: bool = False) -> str:
    """'template' when every concept has attributes, else 'dataset' when they have descriptions, else 'none'
    where the task can do without (``allow_none``); otherwise an error saying how to make descriptions."""
    if dataset.concepts and all(c.attributes for c in dataset.concepts):
        return "template"
    if dataset.concepts and all(c.descriptions for c in dataset.concepts):
        return "dataset"
    if allow_none:
        return "none"
    missing = sum(not c.descriptions for c in dataset.concepts)
    raise ValueError(f"dataset {dataset.name!r} has neither attributes nor descriptions for {missing} of "
                     f"{len(dataset)} concepts, and this task shows descriptions; {DESCRIBE_HINT}")


__all__ = ["DB_FORMAT", "DESCRIBE_HINT", "DescriptionSource", "default_description_spec", "load_database", "write_database"]
