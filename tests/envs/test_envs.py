"""Env behaviour: registration, env checker, replay, listeners, task ground truth, bad actions, batching."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lewis_env.listeners import make_listener
from lewis_env.parsing import LETTERS
from lewis_env.speakers import describe
from tests.envs.conftest import IDS, ROLES, CountingListener, env_kwargs


@pytest.mark.parametrize("mode", ["text", "index"])
@pytest.mark.parametrize("role", ROLES)
def test_env_checker_passes(make_env, role: str, mode: str) -> None:
    env = make_env(role, action_mode=mode, num_episodes=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
        check_env(env)
    assert env.unwrapped.role == role and env.unwrapped.action_mode == mode
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    for key in ("episode_id", "role", "target_concept", "category", "candidate_ids", "candidate_paths",
                "target_index"):
        assert key in info
    _, reward, terminated, truncated, step_info = env.step(env.action_space.sample())
    assert terminated and not truncated and isinstance(reward, float)
    for key in ("parsed", "parse_error", "correct", "reward_terms"):
        assert key in step_info


def test_make_with_module_prefix_in_fresh_process() -> None:
    import subprocess
    import sys

    code = ("import gymnasium as gym; e = gym.make('lewis_env:lewis_env/Identification-v0', "
            f"**{env_kwargs(num_episodes=3)!r}); print(e.unwrapped.role)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("identification")


@pytest.mark.parametrize("role", ROLES)
def test_episode_replay_is_exact(make_env, role: str) -> None:
    a, b = make_env(role), make_env(role)
    n = a.unwrapped.num_episodes
    for i in (0, 5, n - 1):
        oa, ia = a.reset(options={"episode_id": i})
        b.reset(options={"episode_id": (i + 1) % n})  # other state first
        ob, ib = b.reset(seed=99, options={"episode_id": i})
        assert ia == ib
        assert a.unwrapped.episode(i) == b.unwrapped.episode(i)
        for k in oa:
            assert np.array_equal(np.asarray(oa[k]), np.asarray(ob[k])) if isinstance(oa[k], np.ndarray) \
                else oa[k] == ob[k]
    # sampler: same reset seed -> same episode; the env seed changes the episodes
    assert a.reset(seed=7)[1] == b.reset(seed=7)[1]
    c = make_env(role, seed=1)
    diffs = [a.unwrapped.episode(i) != c.unwrapped.episode(i) for i in range(min(n, 10))]
    assert any(diffs)


def test_default_episodes_cover_every_target_pair(make_env) -> None:
    env = make_env("listener")
    base = env.unwrapped
    pairs = {(base.episode(i).target_concept, base.episode(i).query.path) for i in range(base.num_episodes)}
    assert len(pairs) == base.num_episodes == sum(len(c.query) for c in base.dataset.concepts)


def test_game_candidates_are_query_images_of_target_and_hard_negatives(make_env) -> None:
    base = make_env("listener").unwrapped
    for i in range(base.num_episodes):
        ep = base.episode(i)
        assert len(ep.candidates) == 4 and len(set(ep.candidate_ids)) == 4
        assert ep.candidate_ids[ep.target_index] == ep.target_concept
        assert all(c.role == "query" for c in ep.candidates)
        # tiny world: 4 concepts per category, so every negative shares the target's category
        assert {base.dataset.concept(c).category for c in ep.candidate_ids} == {ep.category}
    positions = [base.episode(i).target_index for i in range(base.num_episodes)]
    assert len(set(positions)) == 4  # the target is shuffled


def test_rule_listener_oracle_picks_target_and_empty_is_chance(make_env) -> None:
    env = make_env("speaker", num_episodes=400)
    base = env.unwrapped
    ids = list(range(base.num_episodes))
    oracle = [describe(base.dataset.concept(base.episode(i).target_concept)) for i in ids]
    rewards, infos = base.score_batch(ids, oracle)
    assert all(info["correct"] for info in infos)
    assert np.allclose(rewards, 1.0 + 1.0 + 0.1)
    _, infos = base.score_batch(ids, [""] * len(ids))
    acc = np.mean([info["correct"] for info in infos])
    assert 0.25 - 0.08 < acc < 0.25 + 0.08
    _, again = base.score_batch(ids, [""] * len(ids))
    assert [x["listener_choice"] for x in infos] == [x["listener_choice"] for x in again]


def test_rule_listener_refuses_candidates_without_attributes() -> None:
    from lewis_env.data.types import ImageRef
    from lewis_env.listeners.rule import NoAttributesError

    rule = make_listener("rule")
    cands = [ImageRef(f"c{j}", f"/x/c{j}/0.png") for j in range(4)]
    with pytest.raises(NoAttributesError, match="listener='clip'.*'qwen'.*'http'"):
        rule.choose("a red thing", cands)
    rnd = make_listener("random", seed=1)
    assert rnd.choose("x", cands) == rnd.choose("x", cands)


def test_rule_listener_reads_each_candidates_own_attributes_even_when_ids_collide() -> None:
    from lewis_env.data.types import ImageRef

    rule = make_listener("rule")
    red = [ImageRef("mug_00", "/a/mug_00/0.png", attributes={"color": "red"}),
           ImageRef("mug_01", "/a/mug_01/0.png", attributes={"color": "blue"})]
    # another dataset, same image ids, swapped colours (a long-running listener service sees both)
    swapped = [ImageRef("mug_00", "/b/mug_00/0.png", attributes={"color": "blue"}),
               ImageRef("mug_01", "/b/mug_01/0.png", attributes={"color": "red"})]
    assert rule.choose("a red mug", red)[0] == 0
    assert rule.choose("a red mug", swapped)[0] == 1


def test_speaker_listener_sees_coarse_and_detailed_only(make_env) -> None:
    base = make_env("speaker", listener=CountingListener()).unwrapped
    _, infos = base.score_batch([0, 1], ["<thinking>red</thinking><coarse>A mug.</coarse><detailed>Blue.</detailed>",
                                         "<thinking>hidden</thinking> raw words"])
    assert infos[0]["description"] == "A mug. Blue."
    assert infos[1]["description"] == "raw words"


def test_score_batch_makes_one_listener_call(make_env) -> None:
    listener = CountingListener()
    env = make_env("speaker", listener=listener)
    base = env.unwrapped
    group = [3] * 8
    rewards, infos = base.score_batch(group, [f"<coarse>attempt {g}</coarse>" for g in range(8)])
    assert listener.batch_calls == [8] and listener.single_calls == 0
    assert rewards.dtype == np.float32 and rewards.shape == (8,)
    assert all(info["episode_id"] == 3 for info in infos)
    expected = [1.0 if base.episode(3).target_index == 0 else 0.0] * 8
    assert [i["reward_terms"]["accuracy"] for i in infos] == expected


def test_speaker_index_mode_renders_slots(make_env) -> None:
    env = make_env("speaker", action_mode="index", num_episodes=30)
    base = env.unwrapped
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
    for i in range(base.num_episodes):
        env.reset(options={"episode_id": i})
        action = base.encode_attributes(base.dataset.concept(base.episode(i).target_concept).attributes)
        _, r, _, _, info = env.step(action)
        assert info["correct"] and r == pytest.approx(2.1)
    env.reset(options={"episode_id": 0})  # a finished episode cannot be stepped again
    _, r, _, _, info = env.step(np.zeros(len(base.slot_keys), dtype=np.int64))
    assert info["parse_error"] is None and info["description"].startswith("A photo of a")
    bad = np.full(len(base.slot_keys), 99, dtype=np.int64)
    env.reset(options={"episode_id": 0})
    _, r, _, _, info = env.step(bad)
    assert r == 0.0 and "out of range" in info["parse_error"]
    env.reset(options={"episode_id": 0})
    with pytest.raises(TypeError, match="int array of shape"):
        env.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(TypeError, match="int array"):
        env.step("a red mug")


@pytest.mark.parametrize("role", ROLES)
def test_bad_actions(make_env, role: str) -> None:
    env = make_env(role)
    env.reset(options={"episode_id": 0})
    with pytest.raises(TypeError, match="expects a str action"):
        env.step({"answer": "A"})
    if role != "speaker":
        _, r, _, _, info = env.step("Answer: Z")
        assert r == 0.0 and info["parse_error"] and info["parsed"] is None and not info["correct"]
        idx_env = make_env(role, action_mode="index")
        idx_env.reset(options={"episode_id": 0})
        with pytest.raises(TypeError, match="expects an int action"):
            idx_env.step("A")
        _, r, _, _, info = idx_env.step(17)
        assert r == 0.0 and "out of range" in info["parse_error"]
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"episode_id": 10_000})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"episode": 1})


@pytest.mark.parametrize("role", ["listener", "identification", "vqa", "recognition"])
def test_correct_answers_score_one_in_both_modes(make_env, role: str) -> None:
    text_env, idx_env = make_env(role, num_episodes=20), make_env(role, action_mode="index", num_episodes=20)
    ids = list(range(20))
    eps = [text_env.unwrapped.episode(i) for i in ids]
    answers = [("yes" if e.positive else "no") if role == "recognition" else f"Answer: {LETTERS[e.target_index]}"
               for e in eps]
    r, infos = text_env.unwrapped.score_batch(ids, answers)
    assert r.tolist() == [1.0] * 20 and all(i["correct"] for i in infos)
    r, _ = idx_env.unwrapped.score_batch(ids, [e.target_index for e in eps])
    assert r.tolist() == [1.0] * 20
    wrong = [(e.target_index + 1) % idx_env.unwrapped._num_choices(e) for e in eps]
    r, _ = idx_env.unwrapped.score_batch(ids, wrong)
    assert r.tolist() == [0.0] * 20


def test_recognition_is_balanced_with_hard_negatives(make_env) -> None:
    env = make_env("recognition", num_reference_shown=2)
    base = env.unwrapped
    eps = [base.episode(i) for i in range(base.num_episodes)]
    pos = [e.positive for e in eps]
    assert abs(sum(pos) - len(pos) / 2) <= 1
    for e in eps:
        assert (e.query.concept_id == e.target_concept) == e.positive
        if not e.positive:
            assert e.query.role == "query"
        assert all(r.concept_id == e.target_concept for r in e.reference)
    obs, info = env.reset(options={"episode_id": 1})
    assert obs["reference"].shape == (2, 32, 32, 3)
    name = base.dataset.concept(info["target_concept"]).name
    assert obs["question"] == f"Is {name} in this image? Answer yes or no."
    assert info["positive"] == eps[1].positive and info["query_concept"] == eps[1].query.concept_id


def test_vqa_answer_keys_match_ground_truth(make_env) -> None:
    env = make_env("vqa", num_episodes=120)
    base = env.unwrapped
    seen = set()
    for i in range(base.num_episodes):
        obs, info = env.reset(options={"episode_id": i})
        ep = base.episode(i)
        seen.add(ep.question_type)
        opts = obs["options"].splitlines()
        assert 2 <= len(opts) <= 4 and len(set(opts)) == len(opts)
        key = opts[info["answer_index"]].split(". ", 1)[1]
        assert info["answer"] == LETTERS[info["answer_index"]]
        concept = base.dataset.concept(ep.target_concept)
        truth = ep.query.attributes
        qt = ep.question_type
        if qt in ("color", "pattern"):
            assert key == concept.attributes[qt]
        elif qt == "mark":
            assert key == ("no mark" if concept.attributes["mark"] == "none" else concept.attributes["mark"])
        elif qt == "position":
            assert key == truth["position"]
        elif qt == "count":
            assert key == truth["num_objects"]
        else:
            assert key == ("yes" if ep.query.concept_id == ep.target_concept else "no")
    assert seen == {"color", "pattern", "mark", "position", "count", "presence"}


def test_vqa_uses_dataset_questions(tmp_path) -> None:
    from lewis_env.data.registry import load_dataset
    from lewis_env.data.types import VQAQuestion

    ds = load_dataset(dict(env_kwargs()["dataset"]))
    c = ds.concepts[0]
    qs = [VQAQuestion(c.concept_id, c.query[0].path, f"Is {c.name} smiling?", {"A": "yes", "B": "no"}, "B"),
          VQAQuestion(c.concept_id, c.query[1].path, "What colour?", {"A": "red", "B": "blue", "C": "x"}, "A")]
    ds2 = ds.with_config(test_questions=True)
    ds2.questions = qs
    env = gym.make(IDS["vqa"], **env_kwargs(dataset=ds2))
    base = env.unwrapped
    assert base.num_episodes == 2 and base.num_options == 4
    got = {base.episode(i).question: base.episode(i).answer for i in range(2)}
    assert got == {f"Is {c.name} smiling?": "B", "What colour?": "A"}
    r, _ = base.score_batch([0, 1], [base.episode(0).answer, base.episode(1).answer])
    assert r.tolist() == [1.0, 1.0]


def test_identification_database_lists_candidates(make_env) -> None:
    env = make_env("identification", k=3)
    base = env.unwrapped
    obs, info = env.reset(options={"episode_id": 4})
    lines = obs["database"].splitlines()
    assert len(lines) == 3
    for t, cid in enumerate(info["candidate_ids"]):
        c = base.dataset.concept(cid)
        assert lines[t] == f"{LETTERS[t]}. {c.name}: {describe(c, style='plain')}"
    assert info["candidate_ids"][info["target_index"]] == info["query_concept"] == info["target_concept"]
    name = base.dataset.concept(info["target_concept"]).name
    assert env.step(f"It is {name}")[4]["correct"]


def test_listener_descriptions_from_json_database(make_env, tmp_path) -> None:
    env = make_env("listener")
    ds = env.unwrapped.dataset
    db = {"concept_dict": {c.name: {"name": c.name, "info": f"custom text for {c.concept_id}",
                                    "category": c.category} for c in ds.concepts}}
    path = tmp_path / "database_test.json"
    path.write_text(json.dumps(db))
    env2 = make_env("listener", descriptions=str(path))
    obs, info = env2.reset(options={"episode_id": 2})
    assert obs["description"] == f"custom text for {info['target_concept']}"
    flat = {c.concept_id: f"<coarse>flat {c.concept_id}</coarse>" for c in ds.concepts}
    obs, info = make_env("listener", descriptions=flat).reset(options={"episode_id": 2})
    assert obs["description"] == f"flat {info['target_concept']}"
    with pytest.raises(ValueError, match="lack concepts"):
        make_env("listener", descriptions={ds.concepts[0].concept_id: "only one"})


def test_bad_config_errors(make_env) -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        make_env("listener", split="val")
    with pytest.raises(ValueError, match="action_mode must be one of"):
        make_env("listener", action_mode="tokens")
    with pytest.raises(ValueError, match="k must be an int"):
        make_env("listener", k=1)
    with pytest.raises(ValueError, match="need at least"):
        make_env("listener", k=26)
    with pytest.raises(KeyError, match="unknown listener"):
        make_env("speaker", listener="nobody")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs_step(mode: str) -> None:
    for role in ("speaker", "recognition"):
        envs = gym.make_vec(IDS[role], num_envs=3, vectorization_mode=mode,
                            **env_kwargs(num_episodes=10))
        try:
            obs, infos = envs.reset(seed=0)
            actions = ("<coarse>A photo of a red mug.</coarse>",) * 3 if role == "speaker" else ("yes",) * 3
            obs, rewards, term, trunc, infos = envs.step(actions)
            assert rewards.shape == (3,) and term.all() and not trunc.any()
            text_key = "instruction" if role == "speaker" else "question"
            assert isinstance(obs[text_key], tuple) and len(obs[text_key]) == 3
            img_key = "image" if role == "speaker" else "query"
            assert obs[img_key].shape == (3, 32, 32, 3)
        finally:
            envs.close()


README_EXAMPLE = """
import gymnasium as gym
from lewis_env.speakers import describe  # template speaker: an oracle on synthetic data

env = gym.make("lewis_env:lewis_env/LewisSpeaker-v0", dataset={"kind": "synthetic", "num_concepts": 16},
               split="all", k=4, image_size=64, listener="rule", reward_preset="readme")
obs, info = env.reset(seed=0)                        # {"image": (64, 64, 3) uint8, "instruction": str}
completion = describe(env.unwrapped.dataset.concept(info["target_concept"]))
obs, reward, terminated, truncated, info = env.step(completion)
print(reward, info["correct"], info["reward_terms"])  # 2.1 True {'accuracy': 1.0, 'format': 1.0, 'length': 0.1}
obs, info = env.reset(options={"episode_id": 3})     # replay episode 3 exactly
"""


def test_readme_example(capsys) -> None:
    """The README snippet, run verbatim."""
    ns: dict = {}
    exec(compile(README_EXAMPLE, "README", "exec"), ns)  # noqa: S102  (runs the README snippet as written)
    assert ns["terminated"] and ns["info"]["episode_id"] == 3
    assert ns["reward"] == pytest.approx(2.1)
    assert capsys.readouterr().out.strip() == "2.1 True {'accuracy': 1.0, 'format': 1.0, 'length': 0.1}"
    ns["env"].close()


def test_speaker_sees_distractors_and_text_is_sanitised(make_env) -> None:
    env = make_env("speaker", speaker_sees_distractors=True)
    obs, info = env.reset(options={"episode_id": 0})
    assert obs["distractors"].shape == (3, 32, 32, 3)
    base = env.unwrapped
    ep = base.episode(0)
    others = [c for j, c in enumerate(ep.candidates) if j != ep.target_index]
    assert np.array_equal(obs["distractors"][0], others[0].load(32))
    assert np.array_equal(obs["image"], ep.reference[0].load(32)) and ep.reference[0].role == "reference"
    ds = base.dataset
    fancy = {c.concept_id: "café – naïve “quoted” \u0000 mug" for c in ds.concepts}
    lenv = make_env("listener", descriptions=fancy)
    obs, _ = lenv.reset(options={"episode_id": 0})
    assert lenv.observation_space.contains(obs)
    assert obs["description"].startswith("cafe ? naive ?quoted?")


def test_make_listener_accepts_a_module_factory_path() -> None:
    from lewis_env.listeners.rule import RuleListener

    assert isinstance(make_listener("lewis_env.listeners.rule:RuleListener"), RuleListener)
    with pytest.raises(KeyError, match="cannot import listener 'no_such_module:X'"):
        make_listener("no_such_module:X")
