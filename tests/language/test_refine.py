"""lewis-data descriptions evaluate|refine on hand-built databases and rollout logs; the agent judge's plumbing."""

from __future__ import annotations

import json

import pytest

from lewis_env.data.cli import main as data_main
from lewis_env.descriptions import load_database
from lewis_env.language.judge import AgentJudge
from lewis_env.language.refine import evaluate_texts, load_descriptions, refine_texts

DB = {"concept_dict": {
    "mug_00": {"name": "<mug-0>", "info": {"general": "A red mug sitting on a wooden table in the kitchen."}},
    "dog_01": {"name": "<dog-1>", "description": "The dog, sitting on the grass, has brown fur and a white patch."},
    "toy_02": "The toy is on the left against a teal background and is wearing a small hat.",
    "cup_03": "A plain white cup with a blue handle.",
}}


def test_evaluate_then_refine_a_database(tmp_path, capsys):
    src = tmp_path / "database_model.json"
    src.write_text(json.dumps(DB))
    assert data_main(["descriptions", "evaluate", str(src), "--out", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "database_model.stats.json").read_text())
    assert report["stats"]["mean_state"] == pytest.approx(0.75)
    assert report["stats"]["mean_location"] == pytest.approx(0.75)
    by_id = {r["id"]: r for r in report["response"]}
    assert by_id["mug_00"]["location_spans"] == ["on a wooden table", "in the kitchen"]
    assert not by_id["cup_03"]["has_state"] and not by_id["cup_03"]["has_location"]

    # removing a state clause also drops the location inside it ("sitting on the grass")
    for mode, state, loc in (("state", 0.0, 0.25), ("location", 0.75, 0.0), ("both", 0.0, 0.0)):
        assert data_main(["descriptions", "refine", str(src), "--mode", mode, "--out", str(tmp_path / "o")]) == 0
        stats = json.loads((tmp_path / "o" / f"database_model.refined-{mode}.stats.json").read_text())["stats"]
        assert (stats["mean_state"], stats["mean_location"]) == (pytest.approx(state), pytest.approx(loc))
        assert stats["before"]["mean_state"] == pytest.approx(0.75)
    refined = load_database(tmp_path / "o" / "database_model.refined-both.json")  # the env's own loader reads it
    assert refined["mug_00"] == "A red mug."
    assert refined["dog_01"] == "The dog has brown fur and a white patch."
    assert refined["cup_03"] == DB["concept_dict"]["cup_03"]
    assert refined["<dog-1>"] == refined["dog_01"]  # names and other fields survive


def test_rollout_log_with_a_torn_last_line(tmp_path, caplog):
    log = tmp_path / "lewis_rollouts.jsonl"
    rows = [{"episode_id": 0, "step": 1, "completion": "<thinking>x</thinking><coarse>A mug.</coarse>"
             "<detailed>The mug is red and sits in the sink.</detailed>", "reward": 1.0},
            {"episode_id": 1, "step": 1, "description": "A blue mug.", "reward": 0.0}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"episode_id": 2, "ste')
    src = load_descriptions(log)
    assert src.texts == {"0": "A mug. The mug is red and sits in the sink.", "1": "A blue mug."}
    assert "skipped 1 corrupt line" in caplog.text
    assert data_main(["descriptions", "refine", str(log), "--mode", "both", "--out", str(tmp_path)]) == 0
    out = [json.loads(x) for x in (tmp_path / "lewis_rollouts.refined-both.jsonl").read_text().splitlines()]
    assert out[0]["description"] == "A mug. The mug is red."
    assert out[0]["description_raw"].endswith("sits in the sink.") and out[0]["reward"] == 1.0


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        data_main(["descriptions", "evaluate", str(tmp_path / "missing.json")])
    assert exc.value.code == 2 and "does not exist" in capsys.readouterr().err
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(SystemExit):
        data_main(["descriptions", "evaluate", str(tmp_path / "list.json")])
    assert "must be a JSON object" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_main(["descriptions", "evaluate", str(tmp_path / "list.json"), "--by", "agent"])
    assert "--agent NAME" in capsys.readouterr().err


class _ScriptedModel:
    """Stands in for a text-generating agent: answers from keywords, one answer unparseable."""

    name = "scripted"

    def __init__(self):
        self.prompts = []

    def generate(self, messages_list, images_list):
        texts = [m[0]["content"][0]["text"] for m in messages_list]
        self.prompts += texts
        out = []
        for t in texts:
            desc = t.split("Description: ")[1].split("\n")[0]
            if "Rewrite" in t:
                out.append(desc.split(",")[0] + ".")
            elif "hmm" in desc:
                out.append("I cannot tell")
            else:
                key = "sitting" if "mention the object's state" in t else "table"
                out.append("Yes." if key in desc else "No.")
        return out


def test_agent_judge_evaluates_and_refines_through_generate():
    model = _ScriptedModel()
    judge = AgentJudge(model)
    texts = {"a": "A mug sitting on the table, red.", "b": "A red mug.", "c": "hmm"}
    report = evaluate_texts(texts, judge)
    flags = {r["id"]: (r["has_state"], r["has_location"]) for r in report["response"]}
    assert flags == {"a": (True, True), "b": (False, False), "c": (None, None)}
    assert report["stats"]["unparsed"] == 2 and report["stats"]["evaluator"] == "agent:scripted"
    assert report["stats"]["mean_state"] == pytest.approx(0.5)  # over parsed answers only
    assert refine_texts(texts, "both", judge)["a"] == "A mug sitting on the table."
    assert any("state or location" in p for p in model.prompts)
    with pytest.raises(TypeError, match="cannot generate text"):
        AgentJudge(object())


@pytest.mark.slow
def test_cli_with_a_registered_qwen_agent(tmp_path):
    """--by agent through the registry with the tiny offline Qwen2-VL (random weights: its answers are noise,
    so the test checks the plumbing and that unparseable verdicts are counted, not replaced)."""
    src = tmp_path / "db.json"
    src.write_text(json.dumps({"a": "A red mug sitting on a table.", "b": "A blue cup."}))
    args = ["descriptions", "evaluate", str(src), "--by", "agent", "--agent", "qwen-vl", "--agent-kw",
            "model=tiny", "--agent-kw", "max_new_tokens=3", "--out", str(tmp_path)]
    assert data_main(args) == 0
    stats = json.loads((tmp_path / "db.stats.json").read_text())["stats"]
    assert stats["evaluator"] == "agent:qwen-vl" and stats["n"] == 2
    assert 0 <= stats["unparsed"] <= 4
    assert data_main(["descriptions", "refine", str(src), "--mode", "state", "--by", "agent", "--agent", "qwen-vl",
                      "--agent-kw", "max_new_tokens=3", "--out", str(tmp_path)]) == 0
    refined = json.loads((tmp_path / "db.refined-state.json").read_text())
    assert set(refined) == {"a", "b"} and all(isinstance(v, str) for v in refined.values())
