"""Console scripts: ``lewis-eval`` (evaluate agents on a suite) and ``lewis-board`` (rank, render, export/import).

``lewis-eval`` takes Hydra-style ``key=value`` overrides, values parsed as YAML (``seeds=[0,1]``,
``progress=false``); ``agent.<kw>=<value>`` become agent keyword arguments on top of the defaults in
``conf/agent/<agent>.yaml``. With no arguments it runs the main job: every baseline that can run here
on the default suite, then prints the board.

    lewis-eval agent=rule suite=synthetic-v0
    lewis-eval agent=qwen-vl agent.model=/ckpt/qwen2-vl-2b store=results.sqlite seeds=[0]
    lewis-eval agent=clip agent.model_name=ViT-B-32 agent.pretrained=/weights/clip.bin tasks=[listener,vqa]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from leaderboard.store import DEFAULT_STORE

#: Keys ``lewis-eval`` understands (besides ``agent.<kw>``), with defaults.
EVAL_DEFAULTS: dict[str, Any] = {
    "agent": None, "suite": "synthetic-v0", "store": DEFAULT_STORE, "seeds": None, "tasks": None,
    "batch_size": 16, "samples": "lewis_samples", "n_resamples": 1000, "max_episodes": None, "progress": True,
    "board": True, "verify": True,
}
#: Baselines the no-argument main job runs, in order (clip only when weights are configured).
MAIN_JOB_AGENTS = ("random", "rule", "qwen-vl", "clip")


class UsageError(ValueError):
    """A malformed command line (the message says which argument)."""


def parse_overrides(argv: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``key=value`` strings -> (top-level options, agent kwargs); values are YAML-parsed, unknown keys rejected."""
    opts: dict[str, Any] = {}
    agent_kw: dict[str, Any] = {}
    for arg in argv:
        arg = arg.lstrip("+")
        if "=" not in arg:
            raise UsageError(f"argument {arg!r} is not key=value (e.g. agent=rule suite=synthetic-v0)")
        key, raw = arg.split("=", 1)
        try:
            val = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            val = raw
        if key.startswith("agent."):
            sub = key[len("agent."):]
            if not sub:
                raise UsageError(f"argument {arg!r}: empty agent keyword")
            agent_kw[sub] = val
        elif key in EVAL_DEFAULTS:
            opts[key] = val
        else:
            raise UsageError(f"unknown option {key!r}; known: {', '.join(sorted(EVAL_DEFAULTS))}, agent.<kwarg>")
    return opts, agent_kw


def agent_defaults(name: str) -> dict[str, Any]:
    """Keyword arguments from ``conf/agent/<name>.yaml`` (``kwargs:`` mapping), or {} when there is none."""
    from leaderboard.suites import conf_dir

    p = conf_dir() / "agent" / f"{name}.yaml"
    if not p.exists():
        return {}
    data = yaml.safe_load(p.read_text()) or {}
    kw = data.get("kwargs", {}) or {}
    if not isinstance(kw, dict):
        raise UsageError(f"{p}: 'kwargs' must be a mapping, got {type(kw).__name__}")
    return dict(kw)


def clip_configured(kwargs: dict[str, Any]) -> bool:
    """True when CLIP weights are configured (agent kwarg ``pretrained`` or ``$LEWIS_CLIP_PRETRAINED``)."""
    return bool(kwargs.get("pretrained") or os.environ.get("LEWIS_CLIP_PRETRAINED"))


def _run_one(name: str, agent_kw: dict[str, Any], opts: dict[str, Any]) -> Any:
    from leaderboard.evaluate import evaluate

    kwargs = {**agent_defaults(name), **agent_kw}
    if name == "clip" and not kwargs.get("pretrained") and os.environ.get("LEWIS_CLIP_PRETRAINED"):
        kwargs["pretrained"] = os.environ["LEWIS_CLIP_PRETRAINED"]
    t0 = time.perf_counter()
    res = evaluate(name, opts["suite"], agent_kwargs=kwargs, seeds=opts["seeds"], tasks=opts["tasks"],
                   batch_size=int(opts["batch_size"]), store=opts["store"],
                   samples_dir=None if opts["samples"] in (None, False, "none") else opts["samples"],
                   n_resamples=int(opts["n_resamples"]), max_episodes=opts["max_episodes"],
                   progress=bool(opts["progress"]), verify=bool(opts["verify"]))
    dt = time.perf_counter() - t0
    for t, why in res.skipped.items():
        print(f"note: {name}: skipped task {t}: {why}")
    scores = ", ".join(f"{t}={100 * res.score(t):.1f}" for t in res.summaries)
    print(f"{name} ({res.agent_config_hash}) on {res.suite}-{res.suite_version}: {scores}  [{dt:.1f}s]")
    return res


def _print_board(store: str, suite: str) -> None:
    from leaderboard.board import build_entries, to_markdown
    from leaderboard.store import ResultStore
    from leaderboard.suites import load_suite

    s = load_suite(suite, verify=False)
    with ResultStore(store) as st:
        entries = build_entries(st.rows(suite=s.name, suite_version=s.version))
    print()
    print(to_markdown(entries, title=f"{s.full_name} ({store})"))


def eval_main(argv: Sequence[str] | None = None) -> int:
    """``lewis-eval [agent=NAME] [suite=S] [store=PATH] [seeds=[..]] [tasks=[..]] [agent.KW=V ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    try:
        opts_in, agent_kw = parse_overrides(argv)
    except UsageError as exc:
        print(f"lewis-eval: {exc}", file=sys.stderr)
        return 2
    opts = {**EVAL_DEFAULTS, **opts_in}
    from agents.registry import list_agents

    known = list_agents()
    if opts["agent"] is None:  # the main job: every baseline that can run here
        if agent_kw:
            print("lewis-eval: agent.<kw> overrides need agent=<name>", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        for name in MAIN_JOB_AGENTS:
            if name not in known:
                print(f"note: agent {name!r} is not registered here (missing extra?); skipped")
                continue
            if name == "clip" and not clip_configured(agent_defaults("clip")):
                print("note: clip skipped: no CLIP weights configured (set agent.pretrained in "
                      "conf/agent/clip.yaml or $LEWIS_CLIP_PRETRAINED to a checkpoint path or open_clip tag)")
                continue
            _run_one(name, {}, opts)
        print(f"main job finished in {time.perf_counter() - t0:.1f}s")
    else:
        name = str(opts["agent"])
        if name not in known:
            print(f"lewis-eval: unknown agent {name!r}; known agents: {', '.join(known)}", file=sys.stderr)
            return 2
        _run_one(name, agent_kw, opts)
    if opts["board"]:
        _print_board(opts["store"], opts["suite"])
    return 0


def board_main(argv: Sequence[str] | None = None) -> int:
    """``lewis-board [--store PATH] [--suite S] [--out DIR] [--export F.json] [--import F.json]``."""
    import argparse

    from leaderboard.board import build_entries, export_results, import_results, to_markdown, write_board
    from leaderboard.schema import SubmissionError
    from leaderboard.store import ResultStore

    ap = argparse.ArgumentParser(prog="lewis-board", description="Rank stored results; render, export, import.")
    ap.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results store (default {DEFAULT_STORE})")
    ap.add_argument("--suite", default=None, help="only this suite, e.g. synthetic-v0 (default: every suite)")
    ap.add_argument("--out", default=None, help="write leaderboard.{md,html,png} into this folder")
    ap.add_argument("--export", default=None, metavar="FILE", help="write results as a submission JSON file")
    ap.add_argument("--import", dest="import_", default=None, metavar="FILE",
                    help="validate a submission JSON file and add its results to the store")
    args = ap.parse_args(sys.argv[1:] if argv is None else list(argv))
    with ResultStore(args.store) as st:
        if args.import_:
            try:
                n = import_results(st, args.import_)
            except SubmissionError as exc:
                print(f"lewis-board: rejected: {exc}", file=sys.stderr)
                return 2
            print(f"imported {n} result rows from {args.import_}")
        name = version = None
        if args.suite:
            name, _, version = args.suite.rpartition("-")
            if not name:
                name, version = args.suite, None
        if args.export:
            n = export_results(st, args.export, suite=name, suite_version=version)
            print(f"exported {n} result rows to {args.export}")
        rows = st.rows(suite=name, suite_version=version)
    entries = build_entries(rows)
    groups: dict[str, list[Any]] = {}
    for e in entries:
        groups.setdefault(f"{e.suite}-{e.suite_version}", []).append(e)
    if not groups:
        print(f"no results in {args.store}" + (f" for suite {args.suite}" if args.suite else ""))
    for g, es in sorted(groups.items()):
        print(to_markdown(es, title=g))
        print()
    from leaderboard.language import language_markdown, write_language_board

    lang = language_markdown(rows)
    if lang:
        print(lang)
        print()
    if args.out:
        paths = write_board(entries, Path(args.out))
        paths.update(write_language_board(rows, Path(args.out), args.store))  # language table, cross-play
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(eval_main())
