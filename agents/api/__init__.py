"""Agents behind an API: ``openai`` plays every role through any OpenAI-compatible chat-completions server.

Named ``agents.api`` (not ``openai``) so it never shadows the ``openai`` package. ``agents.api.agent``
imports the ``openai`` client only when an agent is built (the ``openai`` extra).
"""
