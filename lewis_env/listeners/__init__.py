"""Listeners a speaker env can be scored by: the protocol, a rule listener and an HTTP client.

``LISTENERS`` (a ``lewis_env.registry.Registry``) holds them lazily; the concrete classes are imported on
first use, so importing this package pulls in neither httpx nor the rule listener.
"""

from __future__ import annotations

import importlib
from typing import Any

from lewis_env.listeners.base import (
    LISTENERS,
    BaseListener,
    Listener,
    list_listeners,
    make_listener,
    register_listener,
)

_EXPORTS = {"HTTPListener": "lewis_env.listeners.http", "ListenerServiceError": "lewis_env.listeners.http",
            "RuleListener": "lewis_env.listeners.rule"}


def __getattr__(name: str) -> Any:
    """``HTTPListener``, ``ListenerServiceError``, ``RuleListener``, imported on first access."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lewis_env.listeners' has no attribute {name!r}")


__all__ = [
    "LISTENERS",
    "BaseListener",
    "HTTPListener",
    "Listener",
    "ListenerServiceError",
    "RuleListener",
    "list_listeners",
    "make_listener",
    "register_listener",
]
