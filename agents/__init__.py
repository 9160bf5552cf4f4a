"""Agents that act in lewis-bench envs: the protocol and registry, Qwen-VL agents, the service, GRPO."""

from agents.registry import ROLES, Agent, BaseAgent, list_agents, make, register

__all__ = ["ROLES", "Agent", "BaseAgent", "list_agents", "make", "register"]
