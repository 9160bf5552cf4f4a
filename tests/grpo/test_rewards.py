"""Reward batching: one listener call per reward batch, shared by every per-term TRL reward function."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agents.grpo.adapter import BatchScorer, make_reward_funcs
from agents.grpo.callbacks import RolloutLogger


def _conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_one_listener_call_per_batch_across_terms(colour_env):
    listener = colour_env.listener
    scorer = BatchScorer(colour_env)
    acc_fn, len_fn = make_reward_funcs(scorer, ["accuracy", "length"])
    assert (acc_fn.__name__, len_fn.__name__) == ("accuracy", "length")
    ids = [0, 0, 1, 1, 2, 2]
    # targets cycle red, green, blue, ...: name it right, or say something useless
    texts = ["red", "a long rambling answer here", "green", "", "blue", "purple"]
    completions = [_conv(t) for t in texts]
    state = SimpleNamespace(global_step=4)
    acc = acc_fn(prompts=[None] * 6, completions=completions, episode_id=ids, trainer_state=state)
    length = len_fn(prompts=[None] * 6, completions=completions, episode_id=ids, trainer_state=state)
    assert listener.batch_calls == 1 and listener.pairs == 6
    assert scorer.calls == 1
    assert [acc[0], acc[2], acc[4]] == [1.0, 1.0, 1.0]
    assert length == [0.1, 0.0, 0.1, 0.0, 0.1, 0.1]
    _, infos = colour_env.score_batch(ids, texts)
    assert acc == [i["reward_terms"]["accuracy"] for i in infos]

    # a different batch is scored afresh, once
    acc_fn(prompts=[None] * 2, completions=[_conv("x"), _conv("y")], episode_id=[3, 4], trainer_state=state)
    len_fn(prompts=[None] * 2, completions=[_conv("x"), _conv("y")], episode_id=[3, 4], trainer_state=state)
    assert scorer.calls == 2


def test_reward_funcs_need_episode_ids(colour_env):
    (fn,) = make_reward_funcs(BatchScorer(colour_env), ["accuracy"])
    with pytest.raises(ValueError, match="episode_id"):
        fn(prompts=["p"], completions=["red"])
    with pytest.raises(ValueError, match="at least one"):
        make_reward_funcs(BatchScorer(colour_env), [])
    with pytest.raises(ValueError, match="2 episode ids but 1"):
        BatchScorer(colour_env).score([0, 1], ["red"])


def test_rollout_rows_carry_step_terms_and_correct(colour_env, tmp_path):
    logger = RolloutLogger(tmp_path, ["accuracy", "length"])
    scorer = BatchScorer(colour_env, on_scored=logger.on_scored)
    (fn,) = make_reward_funcs(scorer, ["accuracy"])
    fn(completions=[_conv("red"), _conv("no")], episode_id=[0, 0], trainer_state=SimpleNamespace(global_step=6))
    logger.flush()
    logger.flush()  # nothing buffered: no duplicate rows
    import json

    rows = [json.loads(line) for line in (tmp_path / "lewis_rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert rows[0]["step"] == 7 and rows[0]["episode_id"] == 0 and rows[0]["completion"] == "red"
    assert rows[0]["correct"] is True and rows[0]["accuracy"] == 1.0 and rows[0]["length"] == 0.1
    assert rows[1]["correct"] is False and rows[1]["accuracy"] == 0.0


def test_the_lewis_envs_expose_their_reward_spec():
    """The speaker env's spec is its preset + overrides + extra terms; listener-side envs pay accuracy."""
    import gymnasium as gym

    import lewis_env  # noqa: F401

    env = gym.make("lewis_env/LewisSpeaker-v0", dataset={"kind": "synthetic", "num_concepts": 8, "image_size": 32},
                   split="all", k=2, image_size=32, listener="rule", extra_rewards=["unique_accuracy"],
                   reward_weights={"length": 0.0})
    assert env.unwrapped.reward_spec == {"accuracy": 1.0, "format": 1.0, "length": 0.0, "unique_accuracy": 1.0}
    _obs, info = env.reset(options={"episode_id": 0})
    _obs, reward, *_rest, info = env.step("a red thing")
    assert list(info["reward_terms"]) == list(env.unwrapped.reward_spec)
    assert reward == sum(w * info["reward_terms"][t] for t, w in env.unwrapped.reward_spec.items())
    lis = gym.make("lewis_env/LewisListener-v0", dataset={"kind": "synthetic", "num_concepts": 8, "image_size": 32},
                   split="all", k=2, image_size=32)
    assert lis.unwrapped.reward_spec == {"accuracy": 1.0}

