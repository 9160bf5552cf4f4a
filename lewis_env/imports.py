"""Resolve ``"package.module:attribute"`` specs: how registries accept objects defined outside the package."""

from __future__ import annotations

import importlib
from typing import Any


def import_object(spec: str, kind: str) -> Any:
    """The attribute named by ``"module:attr"``; a KeyError names the ``kind`` and the cause otherwise."""
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"cannot import {kind} {spec!r}: {exc}") from None
