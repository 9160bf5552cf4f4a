"""The random and rule baselines: valid answers, seeded determinism, the oracle's ceiling, no torch on import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from agents.registry import list_agents, make
from baselines import RandomAgent, RuleAgent
from tests.baselines.conftest import play

ROLES = ("speaker", "listener", "recognition", "vqa", "identification")


def test_importing_baselines_does_not_import_torch():
    code = "import sys, baselines, agents; agents.list_agents(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_baselines_are_registered():
    assert {"random", "rule", "clip", "qwen-vl"} <= set(list_agents())
    assert isinstance(make("random", seed=3), RandomAgent)
    with pytest.raises(ValueError, match="min_words"):
        RandomAgent(min_words=5, max_words=2)


@pytest.mark.parametrize("role", ROLES)
def test_random_answers_parse_and_are_reproducible(make_env, role):
    env = make_env(role)
    a = play(RandomAgent(seed=1), env)
    b = play(RandomAgent(seed=1), env)
    assert [i["parsed"] for i in a] == [i["parsed"] for i in b]
    assert all(i["parse_error"] is None for i in a), [i["parse_error"] for i in a]
    c = play(RandomAgent(seed=2), env)
    if role != "recognition":  # two seeds give different answers somewhere (yes/no may coincide on 12 episodes)
        assert [i["parsed"] for i in a] != [i["parsed"] for i in c]


def test_random_is_independent_of_batching(make_env):
    env = make_env("listener")
    agent = RandomAgent(seed=0)
    agent.bind(env)
    obs, infos = zip(*(env.reset(options={"episode_id": i}) for i in range(8)))
    whole = agent.act_batch(list(obs), list(infos))
    reversed_ = [agent.act(o, i) for o, i in zip(obs[::-1], infos[::-1])][::-1]
    assert whole == reversed_


def test_random_index_mode_samples_the_action_space(make_env):
    env = make_env("listener", action_mode="index")
    agent = RandomAgent(seed=0)
    agent.bind(env)
    obs, _ = env.reset(options={"episode_id": 0})
    acts = [agent.act(obs, {"episode_id": i}) for i in range(20)]
    assert all(env.action_space.contains(a) for a in acts) and len({int(a) for a in acts}) > 1


@pytest.mark.parametrize("role", ROLES)
def test_rule_oracle_is_the_ceiling(make_env, role):
    infos = play(RuleAgent(), make_env(role))
    acc = np.mean([i["correct"] for i in infos])
    assert acc >= 0.9, (role, [(i.get("parsed"), i.get("parse_error")) for i in infos])


def test_rule_needs_episode_ids_and_ground_truth(make_env):
    agent = RuleAgent()
    env = make_env("listener")
    agent.bind(env)
    obs, _ = env.reset(options={"episode_id": 0})
    with pytest.raises(ValueError, match="episode_id"):
        agent.act(obs, {})
    with pytest.raises(RuntimeError, match="before bind"):
        RuleAgent().act(obs, {"episode_id": 0})


def test_rule_speaker_with_fewer_words_is_worse(make_env):
    env = make_env("speaker", num_episodes=24)
    full = np.mean([i["correct"] for i in play(RuleAgent(), env)])
    cat_only = np.mean([i["correct"] for i in play(RuleAgent(speaker_words=()), env)])
    assert full > cat_only


@pytest.mark.parametrize("role", ["speaker", "listener", "recognition", "vqa", "identification"])
def test_index_mode_rule_is_the_ceiling_and_random_is_valid(make_env, role):
    env = make_env(role, action_mode="index")
    assert np.mean([i["correct"] for i in play(RuleAgent(), env)]) >= 0.9
    infos = play(RandomAgent(seed=0), env)
    assert all(i["parse_error"] is None for i in infos)
