"""The ranking: stored results -> Markdown table, HTML page and a PNG bar chart with CI whiskers; JSON export/import."""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leaderboard.schema import SCHEMA_VERSION, load_submission
from leaderboard.store import MEAN_SEED, ResultRow, ResultStore

#: Display order of tasks (others follow alphabetically).
TASK_ORDER = ("speaker", "listener", "recognition", "vqa", "identification")


@dataclass
class Entry:
    """One leaderboard line: an agent config on a suite version, its per-task score and CI, and the mean."""

    agent: str
    agent_config_hash: str
    agent_config: dict[str, Any]
    suite: str
    suite_version: str
    scores: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # task -> (value, lo, hi)
    metric_names: dict[str, str] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean primary metric over the tasks this agent played (NaN if none)."""
        vals = [v for v, _, _ in self.scores.values() if not math.isnan(v)]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def label(self) -> str:
        """``agent`` plus a short config hash so two configs of one agent stay apart."""
        return f"{self.agent} ({self.agent_config_hash[:6]})"


def _order_tasks(tasks: Sequence[str]) -> list[str]:
    return sorted(set(tasks), key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t))


def build_entries(rows: Sequence[ResultRow]) -> list[Entry]:
    """Group rows into entries, using each task's mean-over-seeds row (or averaging per-seed rows), ranked by mean."""
    groups: dict[tuple[str, str, str, str], dict[str, list[ResultRow]]] = {}
    for r in rows:
        key = (r.agent, r.agent_config_hash, r.suite, r.suite_version)
        groups.setdefault(key, {}).setdefault(r.task, []).append(r)
    entries = []
    for (agent, h, suite, version), tasks in groups.items():
        any_row = next(iter(tasks.values()))[0]
        e = Entry(agent, h, any_row.agent_config, suite, version)
        for task, trs in tasks.items():
            mean_rows = [r for r in trs if r.seed == MEAN_SEED]
            seed_rows = [r for r in trs if r.seed != MEAN_SEED]
            if mean_rows:
                r = mean_rows[0]
                lo, hi = (r.ci.get(r.primary_metric) or [float("nan"), float("nan")])
                e.scores[task] = (r.score, _f(lo), _f(hi))
                e.metric_names[task] = r.primary_metric
            else:  # e.g. an imported file with per-seed rows only: average values and bounds
                vals = np.array([[r.score, *map(_f, r.ci.get(r.primary_metric, [None, None]))] for r in seed_rows])
                e.scores[task] = tuple(float(np.nanmean(c)) if not np.isnan(c).all() else float("nan")
                                       for c in vals.T)
                e.metric_names[task] = seed_rows[0].primary_metric
            e.seeds[task] = len(seed_rows)
        entries.append(e)
    entries.sort(key=lambda e: (-len(e.scores), -(e.mean if not math.isnan(e.mean) else -1.0), e.agent))
    return entries


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _fmt(v: float, lo: float, hi: float) -> str:
    if math.isnan(v):
        return "—"
    if math.isnan(lo) or math.isnan(hi):
        return f"{100 * v:.1f}"
    return f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def all_tasks(entries: Sequence[Entry]) -> list[str]:
    """Every task any entry has, in display order."""
    return _order_tasks([t for e in entries for t in e.scores])


def to_markdown(entries: Sequence[Entry], title: str | None = None) -> str:
    """A Markdown ranking: one row per agent config, per-task primary metric (%) with 95% CI, and the mean."""
    tasks = all_tasks(entries)
    lines = []
    if title:
        lines += [f"### {title}", ""]
    head = ["#", "agent", "suite", *[f"{t} ({_metric_short(entries, t)})" for t in tasks], "mean"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---:", "---", "---", *["---:"] * len(tasks), "---:"]) + "|")
    for i, e in enumerate(entries, 1):
        cells = [str(i), e.label, f"{e.suite}@{e.suite_version}",
                 *[_fmt(*e.scores[t]) if t in e.scores else "—" for t in tasks],
                 "—" if math.isnan(e.mean) else f"{100 * e.mean:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if not entries:
        lines.append("| — | (no results) |" + " |" * (len(tasks) + 2))
    lines += ["", "Scores in %, mean over seeds, [95% bootstrap CI over episodes]; mean = over tasks played."]
    return "\n".join(lines)


def _metric_short(entries: Sequence[Entry], task: str) -> str:
    for e in entries:
        if task in e.metric_names:
            return {"accuracy": "acc", "weighted_accuracy": "w-acc"}.get(e.metric_names[task], e.metric_names[task])
    return "?"


def plot_png(entries: Sequence[Entry], path: str | Path) -> Path:
    """Grouped bar chart (task groups, one bar per agent) with CI whiskers, written with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tasks = all_tasks(entries)
    n = max(len(entries), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(tasks) + 0.4 * n), 4.0))
    width = 0.8 / n
    x = np.arange(len(tasks))
    for j, e in enumerate(entries):
        vals = np.array([e.scores.get(t, (np.nan, np.nan, np.nan)) for t in tasks], dtype=float).reshape(-1, 3)
        v, lo, hi = vals[:, 0], vals[:, 1], vals[:, 2]
        err = np.vstack([np.where(np.isnan(lo), 0, v - lo), np.where(np.isnan(hi), 0, hi - v)])
        err = np.clip(np.nan_to_num(err), 0, None)
        ax.bar(x + (j - (n - 1) / 2) * width, np.nan_to_num(v), width, yerr=err, capsize=3, label=e.label)
    ax.set_xticks(x)
    ax.set_xticklabels(tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("primary metric (mean over seeds)")
    ax.set_title("lewis-bench leaderboard (95% bootstrap CI)")
    if entries:
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def to_html(entries: Sequence[Entry], png_name: str | None = "leaderboard.png", title: str = "lewis-bench") -> str:
    """A standalone HTML page with the ranking table (and the chart when ``png_name`` is given)."""
    tasks = all_tasks(entries)
    esc = html.escape
    rows = []
    for i, e in enumerate(entries, 1):
        cfg = esc(json.dumps(e.agent_config, sort_keys=True))
        cells = "".join(f"<td>{esc(_fmt(*e.scores[t]) if t in e.scores else '—')}</td>" for t in tasks)
        mean = "—" if math.isnan(e.mean) else f"{100 * e.mean:.1f}"
        rows.append(f"<tr><td>{i}</td><td title='{cfg}'>{esc(e.label)}</td>"
                    f"<td>{esc(e.suite)}@{esc(e.suite_version)}</td>{cells}<td><b>{mean}</b></td></tr>")
    head = "".join(f"<th>{esc(t)}</th>" for t in tasks)
    img = f"<p><img src='{esc(png_name)}' alt='leaderboard chart'></p>" if png_name else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(title)} leaderboard</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:nth-child(2),td:nth-child(3){{text-align:left}}
th{{background:#eee}}</style></head>
<body><h1>{esc(title)} leaderboard</h1>
<table><tr><th>#</th><th>agent</th><th>suite</th>{head}<th>mean</th></tr>
{chr(10).join(rows)}
</table>
<p>Scores in %: mean over seeds of each task's primary metric (recognition: weighted accuracy), with the
95% bootstrap confidence interval over episodes; mean = over tasks played.
Generated {esc(_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'))}.</p>
{img}
</body></html>
"""


def write_board(entries: Sequence[Entry], out_dir: str | Path) -> dict[str, Path]:
    """Write leaderboard.md, leaderboard.html and leaderboard.png into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "leaderboard.md", "html": out / "leaderboard.html", "png": out / "leaderboard.png"}
    paths["md"].write_text(to_markdown(entries) + "\n")
    plot_png(entries, paths["png"])
    paths["html"].write_text(to_html(entries, png_name=paths["png"].name))
    return paths


def export_results(store: ResultStore, path: str | Path, suite: str | None = None,
                   suite_version: str | None = None) -> int:
    """Write the store's rows (optionally one suite) as a submission JSON file; returns the row count."""
    rows = store.rows(suite=suite, suite_version=suite_version)
    data = {"schema_version": SCHEMA_VERSION,
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "results": [r.to_dict() for r in rows]}
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False))
    return len(rows)


def import_results(store: ResultStore, path: str | Path) -> int:
    """Validate a submission JSON file against the schema and upsert its rows; returns the row count."""
    data = load_submission(path)
    from leaderboard.store import _renan

    rows = []
    for d in data["results"]:
        d = dict(d)
        d["metrics"] = _renan(d["metrics"])
        d["ci"] = _renan(d["ci"])
        d.setdefault("episodes_hash", None)
        d.setdefault("dataset_fingerprint", None)
        d.setdefault("git_commit", None)
        rows.append(ResultRow.from_dict(d))
    return store.upsert(rows)
