"""Listeners a speaker env can be scored by: the protocol, a rule listener and an HTTP client."""

from lewis_env.listeners.base import BaseListener, Listener, list_listeners, make_listener, register_listener
from lewis_env.listeners.http import HTTPListener, ListenerServiceError
from lewis_env.listeners.rule import RuleListener

__all__ = [
    "BaseListener",
    "HTTPListener",
    "Listener",
    "ListenerServiceError",
    "RuleListener",
    "list_listeners",
    "make_listener",
    "register_listener",
]
