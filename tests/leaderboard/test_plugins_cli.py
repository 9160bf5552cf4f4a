"""Third-party agents via the ``lewis_bench.agents`` entry point, and the ``lewis-eval`` command line."""

from __future__ import annotations

import sys
import textwrap

import pytest
import yaml

from agents.registry import list_agents, make
from leaderboard.cli import eval_main
from leaderboard.evaluate import config_hash, evaluate
from leaderboard.store import ResultStore

PLUGIN = textwrap.dedent('''
    """A third-party agent package: always answers the first candidate."""
    from agents.registry import BaseAgent


    class FirstChoiceAgent(BaseAgent):
        name = "first-choice"
        roles = frozenset({"listener", "identification"})

        def __init__(self, letter="A"):
            super().__init__()
            self.letter = letter

        def act(self, observation, info=None):
            return 0 if self.action_mode == "index" else self.letter
''')


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """Build a tiny installed-looking package: a module plus a .dist-info with entry_points.txt on sys.path."""
    site = tmp_path / "site"
    (site / "firstchoice_pkg").mkdir(parents=True)
    (site / "firstchoice_pkg" / "__init__.py").write_text(PLUGIN)
    info = site / "firstchoice_pkg-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: firstchoice-pkg\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[lewis_bench.agents]\nfirst-choice = firstchoice_pkg:FirstChoiceAgent\n")
    monkeypatch.syspath_prepend(str(site))
    yield "first-choice"
    sys.modules.pop("firstchoice_pkg", None)
    from agents.registry import AGENTS

    AGENTS.unregister("first-choice")


def test_entry_point_agent_is_listed_and_evaluated(plugin_on_path, tiny_suite, tmp_path):
    assert plugin_on_path in list_agents()
    agent = make(plugin_on_path, letter="B")
    assert agent.letter == "B"
    res = evaluate(plugin_on_path, tiny_suite, agent_kwargs={"letter": "A"}, store=tmp_path / "r.sqlite",
                   n_resamples=100, progress=False)
    assert set(res.summaries) == {"listener", "identification"}
    assert set(res.skipped) == {"speaker", "recognition", "vqa"}
    assert 0.0 <= res.score("listener") <= 1.0
    with ResultStore(tmp_path / "r.sqlite") as st:
        assert {r.agent for r in st.rows()} == {"first-choice"}


def test_config_hash_separates_configs():
    assert config_hash("random", {"seed": 0}) == config_hash("random", {"seed": 0})
    assert config_hash("random", {"seed": 0}) != config_hash("random", {"seed": 1})


def test_eval_cli_runs_and_prints_board(tiny_suite, tmp_path, capsys):
    suite_file = tmp_path / "tiny-v0.yaml"
    suite_file.write_text(yaml.safe_dump(tiny_suite.to_dict(), sort_keys=False))
    store = tmp_path / "cli.sqlite"
    args = [f"suite={suite_file}", f"store={store}", f"samples={tmp_path / 's'}", "n_resamples=100",
            "progress=false", "seeds=[0]"]
    assert eval_main(["agent=rule", *args]) == 0
    assert eval_main(["agent=random", "agent.seed=3", *args]) == 0
    out = capsys.readouterr().out
    assert "| oracle | rule [" in out and "| 1 | random" in out  # the rule oracle is ranked apart
    with ResultStore(store) as st:
        rnd = st.rows(agent="random")
        assert rnd and rnd[0].agent_config == {"seed": 3}
    assert eval_main(["agent=nobody", *args]) == 2
    assert "unknown agent 'nobody'" in capsys.readouterr().err
