"""The JSON schema of an exported/submitted results file: validation that names the bad field, export, import."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leaderboard.store import ResultRow, ResultStore

SCHEMA_VERSION = 1
#: Bounds that keep an accepted file storable: integers fit SQLite, size and nesting are capped.
MAX_INT32 = 2**31 - 1
MAX_FILE_BYTES = 64 * 2**20
MAX_DEPTH = 32

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
        "role": {"type": "string", "minLength": 1},  # a registered task id (lewis_env.tasks), checked below
        "seed": {"type": "integer", "minimum": -1, "maximum": MAX_INT32},
        "primary_metric": {"type": "string", "minLength": 1},
        "metrics": {"type": "object", "minProperties": 1,
                    # language metrics (leaderboard/language.py) are counts, bits or correlations
                    "patternProperties": {"^lang_": _NUM_OR_NULL},
                    "additionalProperties": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
                                                       {"type": "null"}]}},
        "ci": {"type": "object",
               "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2, "items": _NUM_OR_NULL}},
        "n_episodes": {"type": "integer", "minimum": 0, "maximum": MAX_INT32},
        "dataset_fingerprint": {"type": ["string", "null"]},
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "git_commit": {"type": ["string", "null"]},
        "created_at": {"type": "string", "minLength": 1},
        "agent_flags": {"type": "object", "properties": {
            "oracle": {"type": "boolean"}, "random_init": {"type": "boolean"},
            "display_name": {"type": "string", "maxLength": 200}}},
        "chance": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "null"}]},
        "data_record": {"type": "object"},
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


def _depth_error(data: Any) -> str | None:
    """The JSON path of the first value nested deeper than MAX_DEPTH (iterative: no recursion), else None."""
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return _where(path[:MAX_DEPTH])
        if isinstance(node, dict):
            stack.extend((v, [*path, k]) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(node))
    return None


def validate_submission(data: Any) -> None:
    """Raise SubmissionError naming the first bad field (JSON path) when ``data`` is not a valid results file."""
    try:
        import jsonschema
    except ImportError:
        raise SubmissionError("cannot validate results files: the 'jsonschema' package is missing; install the "
                              "board extra: pip install 'lewis-bench[board]'") from None
    deep = _depth_error(data)
    if deep is not None:
        raise SubmissionError(f"invalid results file: field {deep}: nested more than {MAX_DEPTH} levels deep")

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
    """Checks JSON schema cannot express: the role is a registered task; the primary metric is one of the
    metrics; CI bounds are ordered."""
    from lewis_env.tasks import TASKS, list_tasks

    for i, r in enumerate(data["results"]):
        if r["role"] not in TASKS:
            raise SubmissionError(f"invalid results file: field $.results[{i}].role: {r['role']!r} is not a "
                                  f"registered task ({', '.join(list_tasks())})")
        if r["primary_metric"] not in r["metrics"]:
            raise SubmissionError(f"invalid results file: field $.results[{i}].primary_metric: "
                                  f"{r['primary_metric']!r} is not among metrics {sorted(r['metrics'])}")
        for name, (lo, hi) in r["ci"].items():
            if lo is not None and hi is not None and lo > hi:
                raise SubmissionError(f"invalid results file: field $.results[{i}].ci.{name}: lower bound {lo} "
                                      f"exceeds upper bound {hi}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON (write null for a missing metric)")


def load_submission(path: str | Path) -> dict[str, Any]:
    """Read and validate a results JSON file; errors name the file and the bad field, nothing is half-read."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise SubmissionError(f"results file {p} is not a regular file")
        if size > MAX_FILE_BYTES:
            raise SubmissionError(f"results file {p} is {size} bytes; the limit is {MAX_FILE_BYTES}")
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SubmissionError(f"results file {p} does not exist") from None
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"results file {p} is not UTF-8 JSON text (a binary file?): byte {exc.start} "
                              f"is {exc.object[exc.start:exc.start + 1]!r}") from None
    except OSError as exc:
        raise SubmissionError(f"results file {p} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"results file {p} is not valid JSON: {exc}") from None
    except RecursionError:
        raise SubmissionError(f"results file {p}: JSON nested too deeply (limit {MAX_DEPTH} levels)") from None
    except ValueError as exc:
        raise SubmissionError(f"results file {p}: {exc}") from None
    try:
        validate_submission(data)
    except SubmissionError as exc:
        raise SubmissionError(f"{p}: {exc}") from None
    return data


def export_results(store: ResultStore, path: str | Path, suite: str | None = None,
                   suite_version: str | None = None, rows: Sequence[ResultRow] | None = None) -> int:
    """Write the store's rows (optionally one suite, or the given rows) as a submission JSON file; returns the count."""
    rows = store.rows(suite=suite, suite_version=suite_version) if rows is None else rows
    data = {"schema_version": SCHEMA_VERSION,
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "results": [r.to_dict() for r in rows]}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False))
    return len(rows)


def submission_rows(data: dict[str, Any]) -> list[ResultRow]:
    """ResultRows of an already validated submission (integers normalised, NaN restored)."""
    from leaderboard.store import ResultRow, _renan

    rows = []
    for d in data["results"]:
        d = dict(d)
        d["metrics"] = _renan(d["metrics"])
        d["ci"] = _renan(d["ci"])
        d["seed"], d["n_episodes"] = int(d["seed"]), int(d["n_episodes"])
        for k in ("episodes_hash", "dataset_fingerprint", "git_commit", "chance"):
            d.setdefault(k, None)
        d.setdefault("agent_flags", {})
        d.setdefault("data_record", {})
        rows.append(ResultRow.from_dict(d))
    return rows


def import_results(store: ResultStore, path: str | Path) -> int:
    """Validate a submission JSON file against the schema and upsert its rows (all or none); returns the count."""
    return store.upsert(submission_rows(load_submission(path)))
