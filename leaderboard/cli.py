"""Console scripts: ``lewis-eval`` (evaluate agents on a suite) and ``lewis-board`` (rank, render, export/import).

``lewis-eval`` composes ``conf/lewis_eval.yaml`` with Hydra (typed: leaderboard.config.EvalConfig) and checks
it, the agent's options and its paths before anything heavy loads. ``agent.<kw>=<value>`` become agent
keyword arguments on top of ``conf/agent/<agent>.yaml``. With no agent it runs the main job: every
baseline that can run here on the default suite, then prints the board.

    lewis-eval agent=rule suite=synthetic-v0
    lewis-eval agent=qwen-vl agent.model=/ckpt/qwen2-vl-2b store=results.sqlite seeds=[0]
    lewis-eval agent=clip agent.pretrained=/weights/clip.bin tasks=[listener,vqa]
    lewis-eval agent=random data=folder:/my/photos          # a suite built from your own photos
    lewis-eval agent=qwen-vl suite=yollava-v0 data.root=/data/yollava
    lewis-eval agent=rule resume=false                     # recompute instead of reusing stored seeds
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from leaderboard.config import ConfigError, _near, check_agent_kwargs, check_paths
from leaderboard.store import DEFAULT_STORE

#: Baselines the no-argument main job runs, in order (clip only when weights are configured).
MAIN_JOB_AGENTS = ("random", "rule", "qwen-vl", "clip", "ppo")
#: Ordinary mistakes (bad suite, missing path/descriptions, refused data): one line, no traceback.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, ImportError)


def agent_defaults(name: str) -> dict[str, Any]:
    """Keyword arguments from ``conf/agent/<name>.yaml`` (``kwargs:`` mapping), or {} when there is none."""
    from leaderboard.suites import conf_dir

    p = conf_dir() / "agent" / f"{name}.yaml"
    if not p.exists():
        return {}
    data = yaml.safe_load(p.read_text()) or {}
    kw = data.get("kwargs", {}) or {}
    if not isinstance(kw, dict):
        raise ConfigError(f"{p}: 'kwargs' must be a mapping, got {type(kw).__name__}")
    return dict(kw)


def clip_configured(kwargs: dict[str, Any]) -> bool:
    """True when CLIP weights are configured (agent kwarg ``pretrained`` or ``$LEWIS_CLIP_PRETRAINED``)."""
    return bool(kwargs.get("pretrained") or os.environ.get("LEWIS_CLIP_PRETRAINED"))


def agent_kwargs(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """conf/agent defaults + overrides (+ $LEWIS_CLIP_PRETRAINED for clip), checked against the agent."""
    kwargs = {**agent_defaults(name), **(overrides or {})}
    if name == "clip" and not kwargs.get("pretrained") and os.environ.get("LEWIS_CLIP_PRETRAINED"):
        kwargs["pretrained"] = os.environ["LEWIS_CLIP_PRETRAINED"]
    check_agent_kwargs(name, kwargs)
    check_paths(name, kwargs)
    return kwargs


def resolve_suite(opts: dict[str, Any]) -> Any:
    """The suite to run: built from ``data=<spec>``, or a named/path suite with ``data.<key>`` merged in."""
    from leaderboard.suites import compute_episodes_hash, load_suite, suite_path

    if opts["data"] is not None:
        from leaderboard.datasuite import build_data_suite

        suite, skipped = build_data_suite(str(opts["data"]), opts["auto"])
        for t, why in skipped.items():
            print(f"note: suite {suite.full_name}: task {t} skipped: {why}")
        print(f"suite {suite.full_name}: tasks {', '.join(suite.tasks)}; episodes_hash {suite.episodes_hash}")
        return suite
    if opts["data_overrides"]:  # a published suite pointed at the user's copy: record its hash, never compare
        data = yaml.safe_load(suite_path(opts["suite"]).read_text())
        ds = data.get("dataset")
        if isinstance(ds, str):
            from lewis_env.data.registry import parse_spec

            kind, root, kw = parse_spec(ds)
            ds = {"kind": kind, **({"root": root} if root else {}), **kw}
        data["dataset"] = {**(ds or {}), **opts["data_overrides"]}
        suite = load_suite(data, verify=False)
        suite.episodes_hash = compute_episodes_hash(suite)
        return suite
    return load_suite(opts["suite"], verify=bool(opts["verify"]))


def _run_one(name: str, kwargs: dict[str, Any], opts: dict[str, Any], suite: Any) -> Any:
    from leaderboard.evaluate import evaluate

    t0 = time.perf_counter()
    samples = opts["samples"]
    if samples == "auto":
        samples = str(Path(opts["store"]).expanduser().resolve().parent / "lewis_samples")
    res = evaluate(name, suite, agent_kwargs=kwargs, seeds=opts["seeds"], tasks=opts["tasks"],
                   batch_size=int(opts["batch_size"]), store=opts["store"],
                   samples_dir=None if samples in (None, False, "none", "null", "") else samples,
                   n_resamples=int(opts["n_resamples"]), max_episodes=opts["max_episodes"],
                   progress=bool(opts["progress"]), verify=False, resume=bool(opts["resume"]))
    dt = time.perf_counter() - t0
    for t, why in res.skipped.items():
        print(f"note: {name}: skipped task {t}: {why}")
    if res.reused:
        print(f"note: {name}: reused {len(res.reused)} stored (task, seed) result(s) of this agent config and suite "
              f"hash; computed {len(res.computed)} (resume=false recomputes)")
    scores = ", ".join(f"{t}={100 * res.score(t):.1f}" for t in res.summaries)
    print(f"{name} ({res.agent_config_hash}) on {res.suite}-{res.suite_version}: {scores}  [{dt:.1f}s]")
    return res


def _print_board(store: str, suite: Any) -> None:
    from leaderboard.board import BoardContext, board_sections, sections_markdown
    from leaderboard.store import ResultStore

    with ResultStore(store) as st:
        rows = st.rows(suite=suite.name, suite_version=suite.version)
    print()
    print(sections_markdown(board_sections(BoardContext(rows, Path(store)))))


def _fail(exc: BaseException, where: str = "") -> int:
    from leaderboard.suites import SuiteError

    if os.environ.get("LEWIS_BENCH_DEBUG"):
        raise exc
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    print(f"lewis-eval: {where}{msg}", file=sys.stderr)
    if not isinstance(exc, (ConfigError, SuiteError)):
        print(f"lewis-eval: ({type(exc).__name__}; set LEWIS_BENCH_DEBUG=1 for the traceback)", file=sys.stderr)
    return 2


def eval_main(argv: Sequence[str] | None = None) -> int:
    """``lewis-eval [agent=NAME] [suite=S | data=SPEC] [store=PATH] [seeds=[..]] [tasks=[..]] [agent.KW=V ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        from leaderboard.config import options_help

        print(__doc__)
        print("options (key=default (type)):")
        print(options_help())
        return 0
    from omegaconf import OmegaConf

    from leaderboard.config import compose
    from leaderboard.suites import SuiteError

    try:
        opts = OmegaConf.to_container(compose(argv), resolve=True)
    except ConfigError as exc:
        print(f"lewis-eval: {exc}", file=sys.stderr)
        return 2
    from agents.registry import list_agents

    known = list_agents()
    try:
        if opts["agent"] is None:
            plan = []
            for name in MAIN_JOB_AGENTS:
                if name not in known:
                    print(f"note: agent {name!r} is not registered here (missing extra?); skipped")
                elif name == "clip" and not clip_configured(agent_defaults("clip")):
                    print("note: clip skipped: no CLIP weights configured (set agent.pretrained in "
                          "conf/agent/clip.yaml or $LEWIS_CLIP_PRETRAINED to a checkpoint path or open_clip tag)")
                else:
                    plan.append((name, agent_kwargs(name, {})))
        else:
            name = str(opts["agent"]["name"])
            if name not in known:
                raise ConfigError(f"unknown agent {name!r}{_near(name, known)}; known agents: {', '.join(known)}")
            kwargs = dict(opts["agent"].get("kwargs") or {})
            if name == "clip" and not kwargs.get("pretrained") and os.environ.get("LEWIS_CLIP_PRETRAINED"):
                kwargs["pretrained"] = os.environ["LEWIS_CLIP_PRETRAINED"]
            check_agent_kwargs(name, kwargs)
            check_paths(name, kwargs)
            plan = [(name, kwargs)]
        suite = resolve_suite(opts)  # loads the dataset and checks the suite hash: still before any model loads
        if opts["tasks"]:
            for t in opts["tasks"]:
                suite.task(t)
    except (ConfigError, SuiteError, *USER_ERRORS) as exc:
        return _fail(exc)
    t0 = time.perf_counter()
    for name, kwargs in plan:
        try:
            _run_one(name, kwargs, opts, suite)
        except (*USER_ERRORS, OSError) as exc:  # OSError: e.g. a hub id that is neither local nor cached
            return _fail(exc, f"agent {name} ({', '.join(f'agent.{k}={v}' for k, v in kwargs.items()) or 'defaults'}): ")
    if opts["agent"] is None:
        print(f"main job finished in {time.perf_counter() - t0:.1f}s")
    if opts["board"]:
        _print_board(opts["store"], suite)
    return 0


def board_main(argv: Sequence[str] | None = None) -> int:
    """``lewis-board [--store PATH] [--suite S] [--out DIR] [--export F.json] [--import F.json]``."""
    import argparse

    from leaderboard.board import BoardContext, board_sections, sections_markdown, write_board
    from leaderboard.schema import SubmissionError, export_results, load_submission, submission_rows
    from leaderboard.store import ResultStore

    ap = argparse.ArgumentParser(prog="lewis-board", description="Rank stored results; render, export, import.")
    ap.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results store (default {DEFAULT_STORE})")
    ap.add_argument("--suite", default=None, help="only this suite, e.g. synthetic-v0 (default: every suite)")
    ap.add_argument("--out", default=None, help="write leaderboard.{md,html,png} into this folder")
    ap.add_argument("--export", default=None, metavar="FILE", help="write results as a submission JSON file")
    ap.add_argument("--import", dest="import_", default=None, metavar="FILE",
                    help="validate a submission JSON file and add its results to the store")
    args = ap.parse_args(sys.argv[1:] if argv is None else list(argv))
    if not args.import_ and not Path(args.store).exists():
        print(f"lewis-board: no results store at {args.store} (run lewis-eval first, or pass --store PATH)",
              file=sys.stderr)
        return 2
    imported = None
    if args.import_:  # validate the whole file before the store is even opened: a rejected file writes nothing
        try:
            imported = submission_rows(load_submission(args.import_))
        except SubmissionError as exc:
            print(f"lewis-board: rejected: {exc}", file=sys.stderr)
            return 2
    with ResultStore(args.store) as st:
        if imported is not None:
            n = st.upsert(imported)
            print(f"imported {n} result rows from {args.import_}")
        pairs = [(s, v) for s, v in st.suites() if args.suite in (None, s, f"{s}-{v}")]
        if args.suite and not pairs:
            have = ", ".join(f"{s}-{v}" for s, v in st.suites()) or "(none)"
            print(f"lewis-board: no results for suite {args.suite!r} in {args.store}; suites there: {have}",
                  file=sys.stderr)
            return 2
        rows = [r for s, v in pairs for r in st.rows(suite=s, suite_version=v)]
        if args.export:
            n = export_results(st, Path(args.export), rows=rows)
            print(f"exported {n} result rows to {args.export}")
    if not rows:
        print(f"no results in {args.store}" + (f" for suite {args.suite}" if args.suite else ""))
        return 0
    print(sections_markdown(board_sections(BoardContext(rows, Path(args.store)))))
    if args.out:
        paths = write_board(rows, Path(args.out), store_path=args.store)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(eval_main())
