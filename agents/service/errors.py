"""Service errors and how they are answered: a status, and a message naming what was wrong."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ServiceError(Exception):
    """An error answered with ``status`` and a message that names what was wrong."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def loc_str(loc: Sequence[Any]) -> str:
    """``("body", "batch", 0, "question")`` -> ``"batch[0].question"``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


_FIELD_MSG = re.compile(r"^Value error, ([A-Za-z_][A-Za-z0-9_]*): (.*)$", re.DOTALL)


def _at_field(error: dict[str, Any]) -> dict[str, Any]:
    """A ``__post_init__`` error written ``"field: message"`` moved to that field's location."""
    e = {k: v for k, v in error.items() if k in ("loc", "msg", "type")}
    m = _FIELD_MSG.match(str(e.get("msg", "")))
    if m:
        e["loc"], e["msg"] = (*tuple(e.get("loc", ())), m.group(1)), m.group(2)
    return e


def validation_response(errors: Sequence[dict[str, Any]]) -> JSONResponse:
    """422 with FastAPI's ``detail`` list plus a one-line ``error`` naming each bad field."""
    clean = [_at_field(e) for e in errors]
    summary = "; ".join(f"{loc_str(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in clean)
    return JSONResponse(status_code=422, content={"detail": clean, "error": summary})


def too_many(loc: tuple[Any, ...], limit: int, got: int, what: str) -> RequestValidationError:
    """A 422 for a list over its cap, naming the field, the limit and the count."""
    return RequestValidationError(
        [{"loc": ("body", *loc), "type": "too_long", "msg": f"at most {limit} {what} allowed, got {got}"}]
    )
