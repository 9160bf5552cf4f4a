"""Listeners a speaker env can be scored by: the protocol, a rule listener and an HTTP client."""

from lewis_env.listeners.base import BaseListener, Listener, list_listeners, make_listener, register_listener

__all__ = ["BaseListener", "Listener", "list_listeners", "make_listener", "register_listener"]
