"""Versioned suites, evaluation of registered agents, a durable results store and the board."""

from __future__ import annotations

import importlib
from typing import Any

import baselines  # noqa: F401  (registers the reference agents lazily: nothing heavy is imported)

_EXPORTS = {
    "build_entries": "leaderboard.board", "to_markdown": "leaderboard.board", "write_board": "leaderboard.board",
    "export_results": "leaderboard.schema", "import_results": "leaderboard.schema",
    "EvalResult": "leaderboard.evaluate", "evaluate": "leaderboard.evaluate",
    "ResultRow": "leaderboard.store", "ResultStore": "leaderboard.store",
    "Suite": "leaderboard.suites", "SuiteError": "leaderboard.suites", "list_suites": "leaderboard.suites",
    "load_suite": "leaderboard.suites",
}
__all__ = ["EvalResult", "ResultRow", "ResultStore", "Suite", "SuiteError", "build_entries", "evaluate", "export_results",
           "import_results",
           "list_suites", "load_suite", "to_markdown", "write_board"]


def __getattr__(name: str) -> Any:
    """Lazy exports, so ``python -m leaderboard.<module>`` runs cleanly and importing stays cheap."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'leaderboard' has no attribute {name!r}")
