"""Evaluate and refine a description database or a rollout log: state/location statistics and the refined file.

Inputs: a description database JSON (flat ``{key: text | entry}`` or ``{"concept_dict": {...}}``, as
``lewis_env.descriptions`` reads it) or a JSONL of speaker outputs (GRPO ``lewis_rollouts.jsonl``, evaluation
samples). The refined file keeps the input's shape: database entries get the refined text (dict entries
under ``description``, which the loader reads first), JSONL rows get ``description`` replaced and the old
text kept in ``description_raw``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lewis_env.descriptions import _entry_text
from lewis_env.language.lexicon import evaluate_text, refine_text
from lewis_env.parsing import extract_description, words


@dataclass
class DescriptionFile:
    """A loaded input: ``texts`` keyed by entry id, plus what is needed to write it back in its own shape."""

    path: Path
    kind: str  # "database" | "jsonl"
    texts: dict[str, str]
    raw: Any  # the parsed JSON object (database) or the list of rows (jsonl)


def load_descriptions(path: str | os.PathLike) -> DescriptionFile:
    """Read a description database (.json) or a JSONL of speaker outputs; a clear error names a bad file."""
    from lewis_env.language.sources import read_jsonl

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"descriptions file {p} does not exist")
    if p.suffix == ".jsonl":
        rows = list(read_jsonl(p))
        texts = {}
        for i, r in enumerate(rows):
            text = r.get("description")
            if text is None and isinstance(r.get("completion", r.get("action")), str):
                text = extract_description(r.get("completion", r.get("action")))
            if text is not None:
                texts[str(i)] = str(text)
        if not texts:
            raise ValueError(f"{p}: no row has a 'description' or 'completion' text")
        return DescriptionFile(p, "jsonl", texts, rows)
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"descriptions file {p} is not valid JSON: {exc}") from None
    entries = data.get("concept_dict", data) if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping):
        raise ValueError(f"descriptions file {p} must be a JSON object ({{key: description}} or "
                         f"{{'concept_dict': ...}}), got {type(data).__name__}")
    texts = {str(k): extract_description(_entry_text(v)) for k, v in entries.items()}
    return DescriptionFile(p, "database", texts, data)


def evaluate_texts(texts: Mapping[str, str], judge: Any = None) -> dict[str, Any]:
    """``{"stats": ..., "response": [...]}`` in the reference project's shape, from the rule evaluator or a judge."""
    keys = list(texts)
    rule = [evaluate_text(texts[k]) for k in keys]
    model = judge.evaluate([texts[k] for k in keys]) if judge is not None else None
    response = []
    for i, k in enumerate(keys):
        rec: dict[str, Any] = {"id": k, "length": len(words(texts[k])), "text": texts[k]}
        if model is None:
            rec.update(has_state=rule[i].has_state, has_location=rule[i].has_location,
                       state_spans=list(rule[i].state_spans), location_spans=list(rule[i].location_spans))
        else:
            rec.update(has_state=model[i]["has_state"], has_location=model[i]["has_location"])
        response.append(rec)

    def mean_flag(name: str) -> float | None:
        vals = [r[name] for r in response if r[name] is not None]
        return float(np.mean(vals)) if vals else None

    stats = {"n": len(response), "mean_state": mean_flag("has_state"), "mean_location": mean_flag("has_location"),
             "mean_length": float(np.mean([r["length"] for r in response])) if response else None,
             "evaluator": "rule" if judge is None else f"agent:{judge.name}"}
    if judge is not None:
        stats["unparsed"] = sum(r["has_state"] is None for r in response) + sum(
            r["has_location"] is None for r in response)
    return {"stats": stats, "response": response}


def refine_texts(texts: Mapping[str, str], mode: str, judge: Any = None) -> dict[str, str]:
    """Every text with its state / location / both removed, by rule or through ``judge.refine``."""
    keys = list(texts)
    if judge is None:
        return {k: refine_text(texts[k], mode) for k in keys}
    return dict(zip(keys, judge.refine([texts[k] for k in keys], mode)))


def write_refined(src: DescriptionFile, refined: Mapping[str, str], out: str | os.PathLike) -> Path:
    """Write the refined texts in the input's own shape (atomically: a temp file, then a rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if src.kind == "jsonl":
        with tmp.open("w") as fh:
            for i, row in enumerate(src.raw):
                row = dict(row)
                if str(i) in refined:
                    row["description_raw"] = src.texts[str(i)]
                    row["description"] = refined[str(i)]
                fh.write(json.dumps(row) + "\n")
    else:
        data = copy.deepcopy(src.raw)
        entries = data["concept_dict"] if "concept_dict" in data else data
        for k in list(entries):
            if k not in refined:
                continue
            if isinstance(entries[k], Mapping):
                entries[k]["description"] = refined[k]
            else:
                entries[k] = refined[k]
        tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(out)
    return out


def _with_language(report: dict[str, Any], src: DescriptionFile, texts: Mapping[str, str], dataset: Any) -> None:
    """Add the lang_* metrics (with attributes from ``dataset`` when given) to a report's stats."""
    from lewis_env.language.metrics import language_metrics
    from lewis_env.language.sources import from_database, from_episode_records

    if src.kind == "jsonl":
        rows = [{**src.raw[int(k)], "description": t} for k, t in texts.items()]
        utts = from_episode_records(rows, dataset)
    else:
        utts = from_database(texts, dataset)
    m = language_metrics(utts)
    report["stats"]["language"] = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in m.items()}


def run_evaluate(path: str | os.PathLike, out_dir: str | os.PathLike, judge: Any = None,
                 dataset: Any = None) -> tuple[dict[str, Any], Path]:
    """Evaluate a file; write ``<out_dir>/<stem>.stats.json``; return (report, path)."""
    src = load_descriptions(path)
    report = evaluate_texts(src.texts, judge)
    _with_language(report, src, src.texts, dataset)
    report["stats"]["source"] = str(src.path)
    dest = Path(out_dir) / f"{src.path.stem}.stats.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(report, indent=1))
    return report, dest


def run_refine(path: str | os.PathLike, out_dir: str | os.PathLike, mode: str, judge: Any = None,
               dataset: Any = None) -> tuple[dict[str, Any], Path, Path]:
    """Refine a file; write the refined file and its stats (before/after mention rates); return them."""
    src = load_descriptions(path)
    before = evaluate_texts(src.texts)["stats"]
    refined = refine_texts(src.texts, mode, judge)
    report = evaluate_texts(refined)  # the rule evaluator judges every refinement the same way
    _with_language(report, src, refined, dataset)
    report["stats"].update(source=str(src.path), mode=mode, refiner="rule" if judge is None else f"agent:{judge.name}",
                           before={k: before[k] for k in ("mean_state", "mean_location", "mean_length")},
                           emptied=sum(1 for k, t in refined.items() if not t.strip() and src.texts[k].strip()),
                           changed=sum(1 for k in refined if refined[k] != src.texts[k]))
    out = Path(out_dir)
    refined_path = write_refined(src, refined, out / f"{src.path.stem}.refined-{mode}{src.path.suffix or '.json'}")
    stats_path = out / f"{src.path.stem}.refined-{mode}.stats.json"
    stats_path.write_text(json.dumps(report, indent=1))
    return report, refined_path, stats_path


__all__ = ["DescriptionFile", "evaluate_texts", "load_descriptions", "refine_texts", "run_evaluate", "run_refine",
           "write_refined"]

