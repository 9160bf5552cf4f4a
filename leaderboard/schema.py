"""The JSON schema of an exported/submitted results file, and validation that names the bad field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_NUM_OR_NULL = {"type": ["number", "null"]}

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["agent", "agent_config", "agent_config_hash", "suite", "suite_version", "task", "role", "seed",
                 "primary_metric", "metrics", "ci", "n_episodes", "versions", "created_at"],
    "properties": {
        "agent": {"type": "string", "minLength": 1},
        "agent_config": {"type": "object"},
        "agent_config_hash": {"type": "string", "pattern": "^[0-9a-f]{8,64}$"},
        "suite": {"type": "string", "minLength": 1},
        "suite_version": {"type": "string", "minLength": 1},
        "episodes_hash": {"type": ["string", "null"]},
        "task": {"type": "string", "minLength": 1},
        "role": {"enum": ["speaker", "listener", "recognition", "vqa", "identification"]},
        "seed": {"type": "integer", "minimum": -1},
        "primary_metric": {"type": "string", "minLength": 1},
        "metrics": {"type": "object", "minProperties": 1,
                    # language metrics (leaderboard/language.py) are counts, bits or correlations
                    "patternProperties": {"^lang_": _NUM_OR_NULL},
                    "additionalProperties": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
                                                       {"type": "null"}]}},
        "ci": {"type": "object",
               "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2, "items": _NUM_OR_NULL}},
        "n_episodes": {"type": "integer", "minimum": 0},
        "dataset_fingerprint": {"type": ["string", "null"]},
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "git_commit": {"type": ["string", "null"]},
        "created_at": {"type": "string", "minLength": 1},
    },
}

SUBMISSION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lewis-bench results file",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema_version", "results"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "exported_at": {"type": "string"},
        "results": {"type": "array", "items": RESULT_SCHEMA},
    },
}


class SubmissionError(ValueError):
    """A results file that does not match the submission schema (the message names the bad field)."""


def _where(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "$" + "".join(parts)


def validate_submission(data: Any) -> None:
    """Raise SubmissionError naming the first bad field (JSON path) when ``data`` is not a valid results file."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(SUBMISSION_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(e.absolute_path), e.message))
    if not errors:
        _check_semantics(data)
        return
    err = jsonschema.exceptions.best_match(errors)
    where = _where(err.absolute_path)
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        where = f"{where}.{missing}"
    elif err.validator == "additionalProperties":
        extra = err.message.split("'")[1] if "'" in err.message else err.message
        where = f"{where}.{extra}"
    raise SubmissionError(f"invalid results file: field {where}: {err.message}"
                          f" ({len(errors)} problem(s) in total)")


def _check_semantics(data: dict[str, Any]) -> None:
    """Checks JSON schema cannot express: the primary metric is one of the metrics; CI bounds are ordered."""
    for i, r in enumerate(data["results"]):
        if r["primary_metric"] not in r["metrics"]:
            raise SubmissionError(f"invalid results file: field $.results[{i}].primary_metric: "
                                  f"{r['primary_metric']!r} is not among metrics {sorted(r['metrics'])}")
        for name, (lo, hi) in r["ci"].items():
            if lo is not None and hi is not None and lo > hi:
                raise SubmissionError(f"invalid results file: field $.results[{i}].ci.{name}: lower bound {lo} "
                                      f"exceeds upper bound {hi}")


def load_submission(path: str | Path) -> dict[str, Any]:
    """Read and validate a results JSON file; errors name the file and the bad field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise SubmissionError(f"results file {p} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"results file {p} is not valid JSON: {exc}") from None
    try:
        validate_submission(data)
    except SubmissionError as exc:
        raise SubmissionError(f"{p}: {exc}") from None
    return data
