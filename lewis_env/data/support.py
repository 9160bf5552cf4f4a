"""Which tasks a dataset supports, and why the others are skipped (``lewis-eval data=SPEC`` asks this)."""

from __future__ import annotations

from lewis_env.data.types import ConceptDataset

#: Every task, in board order.
TASKS: tuple[str, ...] = ("speaker", "listener", "recognition", "vqa", "identification")


def supported_tasks(dataset: ConceptDataset, k: int = 4) -> dict[str, str | None]:
    """``{task: None}`` when the data supports it, else ``{task: reason}`` (a sentence saying what to do).

    The speaker task depends on the listener judging it (the rule listener refuses data without attributes,
    naming the alternatives), so the data layer only rules it out for too few concepts."""
    from lewis_env.descriptions import DESCRIBE_HINT

    has_attrs = bool(dataset.concepts) and all(c.attributes for c in dataset.concepts)
    has_desc = has_attrs or (bool(dataset.concepts) and all(c.descriptions for c in dataset.concepts))
    n = len(dataset)
    too_few = f"{n} concept(s) cannot fill K={k} candidates: lower k or add concepts" if n < k else None
    out: dict[str, str | None] = {}
    out["speaker"] = too_few
    out["listener"] = too_few or (None if has_desc else f"no descriptions to show; {DESCRIBE_HINT}")
    out["recognition"] = None if n >= 2 else "recognition needs two or more concepts (negatives)"
    out["vqa"] = None if dataset.questions or has_attrs or n >= 2 else "no VQA questions and a single concept"
    out["identification"] = too_few or (None if has_desc else f"no description database; {DESCRIBE_HINT}")
    return out


__all__ = ["TASKS", "supported_tasks"]
