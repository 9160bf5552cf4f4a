"""Reference agents registered under stable names: random, rule, clip, qwen-vl (importing does not import torch)."""

from baselines import clip_agent, qwen, random_agent, rule  # noqa: F401  (importing registers the agents)
from baselines.clip_agent import ClipAgent
from baselines.random_agent import RandomAgent
from baselines.rule import RuleAgent

__all__ = ["ClipAgent", "RandomAgent", "RuleAgent"]
