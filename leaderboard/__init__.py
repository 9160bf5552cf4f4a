"""Versioned suites, evaluation of registered agents, a durable results store and the board."""
