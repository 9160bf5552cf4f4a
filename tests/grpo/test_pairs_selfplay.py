"""Pair-format listener rewards (balanced, noise cannot farm them), the contrastive term, and self-play configs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import lewis_env  # noqa: F401
from agents.grpo import config as C
from agents.grpo import pairs as P


@pytest.fixture(scope="module")
def listener_env():
    return gym.make("lewis_env/LewisListener-v0", dataset={"kind": "synthetic", "num_concepts": 8, "image_size": 32,
                                                          "vary": ("color",), "colors": ("red", "green", "blue", "yellow")},
                    split="all", k=4, image_size=32)


@pytest.mark.parametrize("contrastive", [False, True])
def test_pair_rows_are_balanced_so_a_constant_answer_earns_half(listener_env, contrastive):
    ids = list(range(12))
    rows = P.pair_rows(listener_env, ids, seed=0, contrastive=contrastive)
    per_episode = 4 if contrastive else 2
    assert len(rows) == per_episode * len(ids)
    assert all(len(r["images"]) == 1 and "Answer yes or no" in r["prompt"][-1]["content"][-1]["text"] for r in rows)
    scorer = P.PairScorer(listener_env)
    eids, cands = [r["episode_id"] for r in rows], [r["candidate"] for r in rows]
    for constant in ("yes", "no"):
        rewards, infos = scorer.score(eids, [constant] * len(rows), candidate=cands)
        assert rewards.mean() == pytest.approx(0.5), constant
    truth = ["yes" if i["is_target"] else "no" for i in infos]
    rewards, infos = scorer.score(eids, truth, candidate=cands)
    assert rewards.min() == 1.0 and all(i["reward_terms"] == {P.PAIR_TERM: 1.0} for i in infos)
    rewards, infos = scorer.score(eids, ["maybe"] * len(rows), candidate=cands)
    assert rewards.max() == 0.0 and infos[0]["parse_error"]
    if contrastive:  # the extra positive is another image of the target concept, not the candidate shown
        extra = [r for r in rows if r["candidate"] == 4]
        assert extra and all(np.asarray(r["images"][0]).shape == (32, 32, 3) for r in extra)


def test_contrastive_reward_is_target_minus_mean_negative():
    assert P.contrastive_reward("", {"listener_scores": [0.9, 0.1, 0.3, 0.2], "target_index": 0}) == pytest.approx(0.7)
    assert P.contrastive_reward("", {"listener_scores": [0.9, 0.1], "target_index": 1}) == pytest.approx(-0.8)
    assert P.contrastive_reward("", {"listener_scores": None, "target_index": 0}) == 0.0


def test_selfplay_configs_compose_with_their_defaults():
    tiny = C.compose(["train=selfplay_tiny_cpu"]).train
    assert tiny.role == "selfplay" and not tiny.selfplay.shared_model and tiny.selfplay.reference_listener == "rule"
    big = C.compose(["train=selfplay_qwen2vl_2b"]).train
    assert big.selfplay.shared_model and big.selfplay.contrastive and big.use_peft and big.deepspeed is None
    for bad, key in (("train.selfplay.first=referee", "selfplay.first"),
                     ("train.selfplay.reference_weight=1.5", "reference_weight"),
                     ("train.selfplay.speaker_steps=0", "speaker_steps")):
        with pytest.raises(C.ConfigError, match=key):
            C.compose(["train=selfplay_tiny_cpu", bad])
    with pytest.raises(C.ConfigError, match="needs train.selfplay.reference_listener"):
        C.compose(["train=selfplay_tiny_cpu", "train.selfplay.reference_listener=null"])


def test_grounding_rows_name_training_images_and_read_descriptions_without_yes_no(listener_env):
    """The listener's grounding warm start: its own prompts, training episodes only, no match label anywhere."""
    from agents.grpo.warmstart import NAME_QUESTION, grounding_rows

    train_ids = list(range(30))
    rows, words = grounding_rows(listener_env, train_ids, "color", max_rows=40, seed=0)
    assert words == ["blue", "green", "red", "yellow"]
    names = [r for r in rows if r["images"]]
    reads = [r for r in rows if not r["images"]]
    assert len(names) == len(reads) == 20
    train_pixels = {np.asarray(listener_env.unwrapped.load_image(ref)).tobytes()
                    for i in train_ids for ref in listener_env.unwrapped.episode(i).candidates}
    for r in names:
        text = r["prompt"][0]["content"][-1]["text"]
        assert text == NAME_QUESTION.format(attribute="color")
        assert np.asarray(r["images"][0]).tobytes() in train_pixels  # never a held-out image
        assert r["target"] in words
    for r in reads:
        text = r["prompt"][0]["content"][-1]["text"]
        assert r["target"] in text.lower().split("\n")[0]
    for r in rows:
        text = r["prompt"][0]["content"][-1]["text"].lower()
        assert "yes or no" not in text and "match" not in text
    # self-play: the listener also reads the speaker's own words; texts naming no or several colours are skipped
    spoken = ["red", "blue", "blue", "nothing here", "red or green"]
    rows, _ = grounding_rows(listener_env, train_ids[:3], "color", max_rows=200, seed=0, descriptions=spoken)
    read = sorted(r["prompt"][0]["content"][-1]["text"].split("\n")[0] for r in rows if not r["images"])
    assert [t for t in read if t.count(" ") == 1] == ["Description: blue", "Description: blue", "Description: red"]
    assert len(read) == 3 + 3  # the env's three descriptions and the three one-colour speaker texts
    with pytest.raises(ValueError, match="no candidate image has a ground-truth 'texture'"):
        grounding_rows(listener_env, train_ids, "texture")
    from agents.grpo.config import ConfigError

    with pytest.raises(ConfigError, match=r"ground-truth 'colour' attribute; did you mean 'color'\?"):
        grounding_rows(listener_env, train_ids, "colour")  # a typo is a config error naming the near key


def test_live_listener_scores_at_the_listener_envs_image_size(tmp_path):
    """The speaker phase's live listener sees candidates at the size the listener trains on, not the speaker's."""
    pytest.importorskip("trl")
    from agents.grpo.selfplay import SelfPlay

    cfg = C.compose(["train=selfplay_tiny_cpu", f"train.output_dir={tmp_path}", "train.env.kwargs.image_size=32",
                     "train.env.kwargs.dataset.num_concepts=8", "train.env.kwargs.dataset.images_per_concept=3",
                     "train.env.kwargs.dataset.image_size=32", "+train.selfplay.listener_env.kwargs.image_size=24"])
    sess = SelfPlay(cfg)
    sess.load(None)
    sess.build_envs()
    obs, _ = sess.l_env.reset(options={"episode_id": 0})
    assert np.asarray(obs["candidates"][0]).shape[:2] == (24, 24)
    assert sess.live.image_size == 24


def test_selfplay_listener_warm_start_reads_the_speakers_words_once(tmp_path, monkeypatch):
    """The listener's grounding warm start waits for its first phase and reads the current speaker's words
    (its real input, not only the env's templates); a resumed run does not warm-start it again."""
    pytest.importorskip("trl")
    from agents.grpo import warmstart as W
    from agents.grpo.selfplay import run_selfplay
    from tests.grpo.test_selfplay_service import SMALL

    calls = []
    real = W.grounding_rows

    def spy(*args, **kwargs):
        calls.append(list(kwargs.get("descriptions", ())))
        return real(*args, **kwargs)

    monkeypatch.setattr(W, "grounding_rows", spy)
    over = [*SMALL, f"train.output_dir={tmp_path}", "train.selfplay.first=speaker",
            "train.selfplay.listener_select_every=1", "train.selfplay.listener_val_episodes=3"]
    first = run_selfplay(C.compose(over)).metrics
    assert [p["role"] for p in first["phases"]] == ["speaker", "listener"]
    # early stopping: validation at steps 0, 1, 2 on episodes the listener never trains on
    listener = first["phases"][1]
    assert [c["step"] for c in listener["validation_curve"]] == [0, 1, 2] and listener["selected_step"] in (0, 1, 2)
    import json

    from agents.grpo.selfplay import split_episodes

    train_ids, _ = split_episodes(24, 0.25, 0)
    trained_on = {json.loads(line)["episode_id"]
                  for line in (tmp_path / "rollouts" / "phase-001-listener.jsonl").read_text().splitlines()}
    assert trained_on and not trained_on & set(train_ids[-3:])
    assert len(calls) == 1 and calls[0] and all(isinstance(d, str) for d in calls[0])
    assert first["listener_warm_start"]["grounding"]["steps"] == 5
    spoken = {e["description"] for p in first["phases"][:1] for e in p["examples"]}
    assert spoken & set(calls[0])  # the speaker's greedy words after phase 0 are among the texts it read
    again = run_selfplay(C.compose([*over, "train.selfplay.phases=3", "train.resume_from_checkpoint=auto"])).metrics
    assert [p["role"] for p in again["phases"]] == ["speaker", "listener", "speaker"] and len(calls) == 1
