"""The board tells the truth: a section per suite, chance drawn, oracles apart, "—" for unplayed tasks,
flags shown, dataset copies never ranked together silently, legend clear of the bars, section hook."""

from __future__ import annotations

import dataclasses

import pytest

from leaderboard import board as board_mod
from leaderboard.board import (
    BoardContext,
    Section,
    board_sections,
    build_entries,
    sections_markdown,
    write_board,
)
from leaderboard.chart import suite_figure
from leaderboard.store import MEAN_SEED, ResultStore
from tests.leaderboard.test_store import make_row


def _row(agent, task, acc, h, suite="synthetic", version="v0", fp="f" * 16, flags=None, chance=0.25):
    r = make_row(agent=agent, task=task, seed=MEAN_SEED, acc=acc, cfg_hash=h)
    return dataclasses.replace(r, suite=suite, suite_version=version, dataset_fingerprint=fp,
                               agent_flags=flags or {}, chance=chance)


ROWS = [
    _row("rule", "listener", 1.0, "a" * 12, flags={"oracle": True}),
    _row("rule", "vqa", 1.0, "a" * 12, flags={"oracle": True}),
    _row("qwen-vl", "listener", 0.3, "b" * 12,
         flags={"random_init": True, "display_name": "qwen-vl (tiny, random weights)", "score_source": "logprob"}),
    _row("random", "listener", 0.25, "c" * 12),
    _row("random", "vqa", 0.25, "c" * 12),
    _row("random", "listener", 0.2, "c" * 12, suite="folder-photos", version="auto-1234abcd", chance=0.5),
]


def test_oracles_ranked_apart_and_flags_shown():
    entries = [e for e in build_entries(ROWS) if e.suite == "synthetic"]
    assert [e.agent for e in entries] == ["random", "qwen-vl", "rule"]  # the oracle last, whatever its score
    assert board_mod.ranks(entries) == ["1", "2", "oracle"]
    md = sections_markdown(board_sections(BoardContext(ROWS)))
    assert "| oracle | rule [aaaaaa]" in md and "oracle: reads ground truth" in md
    assert "qwen-vl (tiny, random weights) [bbbbbb]" in md and "score_source: logprob" in md
    assert "| 1 | random [cccccc]" in md


def test_unplayed_task_is_a_dash_and_chance_is_a_row():
    md = next(s.markdown for s in board_sections(BoardContext(ROWS)) if s.title == "suite synthetic-v0")
    qwen_line = next(line for line in md.splitlines() if "qwen-vl (tiny" in line)
    assert qwen_line.split("|")[4].strip() == "—"  # vqa not played
    chance_line = next(line for line in md.splitlines() if "chance" in line and "|" in line)
    assert "25.0" in chance_line


def test_one_section_per_suite():
    sections = board_sections(BoardContext(ROWS))
    assert [s.title for s in sections] == ["suite folder-photos-auto-1234abcd", "suite synthetic-v0"]
    assert "50.0" in sections[0].markdown and "rule" not in sections[0].markdown


def test_dataset_copies_are_ranked_separately_and_say_so(tmp_path):
    rows = [_row("random", "listener", 0.25, "c" * 12, fp="1" * 16), _row("rule", "listener", 0.9, "d" * 12,
                                                                            fp="2" * 16)]
    (section,) = board_sections(BoardContext(rows, out_dir=tmp_path))
    assert section.markdown.count("| 1 |") == 2  # two rankings, each with its own #1
    assert "not comparable" in section.markdown and "1111111111111111" in section.markdown
    assert len(section.files) == 2


def test_chart_draws_chance_no_bar_for_unplayed_and_legend_outside():
    entries = [e for e in build_entries(ROWS) if e.suite == "synthetic"]
    fig = suite_figure(entries, "synthetic-v0")
    try:
        ax = fig.axes[0]
        bars = [p for c in ax.containers for p in getattr(c, "patches", [])]
        assert len(bars) == 5  # 2 (random) + 1 (qwen-vl: vqa not played, no zero bar) + 2 (rule)
        assert any(t.get_text() == "— not played" for t in ax.texts)
        assert [c for c in ax.collections if c.get_label() == "chance (uniform random guess)"]
        assert sum(1 for p in bars if p.get_hatch() == "//") == 2  # oracle bars hatched
        fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        axes = ax.get_window_extent()
        assert legend.x0 >= axes.x1  # the legend never covers the bars
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("oracle" in t for t in labels) and any("random weights" in t for t in labels)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_section_providers_are_a_hook(tmp_path, monkeypatch):
    def extra(ctx: BoardContext) -> list[Section]:
        return [Section("language", f"{len(ctx.rows)} rows", "<p>lang</p>")]

    monkeypatch.setattr(board_mod, "SECTION_PROVIDERS", [*board_mod.SECTION_PROVIDERS, f"{__name__}:_extra"])
    monkeypatch.setitem(globals(), "_extra", extra)
    with ResultStore(tmp_path / "r.sqlite") as st:
        st.upsert(ROWS)
    paths = write_board(ROWS, tmp_path / "out", store_path=tmp_path / "r.sqlite")
    md = paths["md"].read_text()
    assert "## language" in md and "6 rows" in md and md.index("## suite") < md.index("## language")
    assert "<p>lang</p>" in paths["html"].read_text()
    assert paths["chart_synthetic-v0"].exists() and paths["chart_folder-photos-auto-1234abcd"].exists()


@pytest.mark.parametrize("flags, shown", [({"random_init": True}, "qwen-vl (random weights)"),
                                          ({"display_name": "qwen-vl (tiny, random weights)", "random_init": True},
                                           "qwen-vl (tiny, random weights) [")])
def test_random_weights_are_never_shown_as_plain_name(flags, shown):
    (e,) = build_entries([_row("qwen-vl", "listener", 0.3, "b" * 12, flags=flags)])
    assert e.label.startswith(shown)


def test_data_records_say_how_tasks_were_built():
    rec = {"dataset": "photos", "split": "test", "split_kind": "tree", "negatives": "random", "listener": "clip",
           "listener_flags": {"random_init": True}}
    rows = [dataclasses.replace(_row("random", "speaker", 0.25, "c" * 12), data_record=rec, role="speaker")]
    (section,) = board_sections(BoardContext(rows))
    assert "speaker: split test (tree), negatives random, judged by listener clip [RANDOM WEIGHTS]" in section.markdown


def test_unfinished_task_is_flagged():
    rows = [dataclasses.replace(_row("random", "listener", 0.25, "c" * 12), seed=0)]
    (e,) = build_entries(rows)
    assert e.partial == {"listener": 1} and "unfinished run?" in e.notes and "listener 1 seed" in e.notes
