"""Speaker outputs from where they live: speaker-task episode records, a GRPO ``rollouts.jsonl``, a description
database. Each becomes a list of ``Utterance`` (text + the referent's attributes and hard negatives when known).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lewis_env.data.types import ConceptDataset
from lewis_env.language.metrics import Utterance
from lewis_env.parsing import extract_description

log = logging.getLogger(__name__)


def concept_meaning(dataset: ConceptDataset | None, concept_id: str | None) -> dict[str, str] | None:
    """A concept's ground-truth attributes plus its category, or None when the data has no attributes."""
    if dataset is None or concept_id is None:
        return None
    try:
        c = dataset.concept(str(concept_id))
    except KeyError:
        return None
    if not c.attributes:
        return None
    return {**{k: str(v) for k, v in c.attributes.items()}, "category": c.category}


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a corrupt line (e.g. a killed writer's last one) is skipped and counted in a warning."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist")
    bad = 0
    with p.open() as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(row, dict):
                yield row
            else:
                bad += 1
    if bad:
        log.warning("%s: skipped %d corrupt line(s) of %d", p, bad, n)


def from_episode_records(records: Sequence[Mapping[str, Any]], dataset: ConceptDataset | None = None,
                         text_key: str = "description") -> list[Utterance]:
    """Speaker-task records (``leaderboard.evaluate`` samples or rollout rows) -> utterances.

    The text is ``record[text_key]`` (else the parsed ``completion``/``action``); with a dataset, the
    target's attributes and the other candidates' (the hard negatives) come from ``target_concept`` and
    ``candidate_ids``. Records without any text (an unparseable index action) are skipped.
    """
    out = []
    for r in records:
        text = r.get(text_key)
        if text is None:
            raw = r.get("completion", r.get("action"))
            if not isinstance(raw, str):
                continue
            text = extract_description(raw)
        target = r.get("target_concept")
        meaning = concept_meaning(dataset, target)
        negs: tuple[Mapping[str, str], ...] = ()
        if meaning is not None and r.get("candidate_ids"):
            negs = tuple(m for c in r["candidate_ids"] if c != target
                         for m in [concept_meaning(dataset, c)] if m is not None)
        out.append(Utterance(str(text), key=str(target) if target is not None else None, meaning=meaning,
                             negatives=negs, step=int(r["step"]) if r.get("step") is not None else None))
    return out


def from_rollouts(path: str | Path, dataset: ConceptDataset | None = None) -> list[Utterance]:
    """A GRPO run's ``rollouts.jsonl`` (one row per scored completion) -> utterances with their step."""
    return from_episode_records(list(read_jsonl(path)), dataset)


def from_database(entries: Mapping[str, str], dataset: ConceptDataset | None = None,
                  negatives: Mapping[str, Sequence[str]] | None = None) -> list[Utterance]:
    """A description database ``{concept key: text}`` -> utterances; with a dataset, keys that are concept ids
    (or names) get attributes, and hard negatives come from ``negatives`` or ``lewis_env.data.negatives``."""
    ids = {}
    if dataset is not None:
        for c in dataset.concepts:
            for k in (c.concept_id, c.name, c.name.strip("<>")):
                ids.setdefault(k, c.concept_id)
    if dataset is not None and negatives is None and all(c.attributes for c in dataset.concepts) and len(dataset) > 1:
        from lewis_env.data.negatives import hard_negatives

        negatives = hard_negatives(dataset, k=min(3, len(dataset) - 1), method="attributes")
    out, seen = [], set()
    for key, text in entries.items():
        cid = ids.get(key)
        if cid is not None and cid in seen:  # load_database also indexes entries by name: count each once
            continue
        if cid is not None:
            seen.add(cid)
        meaning = concept_meaning(dataset, cid)
        negs = tuple(m for n in (negatives or {}).get(cid, ()) for m in [concept_meaning(dataset, n)] if m)
        out.append(Utterance(str(text), key=cid or key, meaning=meaning, negatives=negs))
    return out


__all__ = ["concept_meaning", "from_database", "from_episode_records", "from_rollouts", "read_jsonl"]
