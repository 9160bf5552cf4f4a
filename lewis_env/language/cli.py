"""``lewis-data descriptions evaluate|refine SRC``: state/location statistics and the refined file (the parser
and runner that ``lewis_env.data.cli`` mounts; the logic lives in ``lewis_env.language.refine``)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_descriptions_parser(sub: Any) -> None:
    """Add the ``descriptions`` sub-command (``evaluate`` / ``refine``) to ``lewis-data``'s subparsers."""
    d = sub.add_parser("descriptions", help="evaluate/refine descriptions for state and location mentions")
    dsub = d.add_subparsers(dest="desc_cmd", required=True)
    for name in ("evaluate", "refine"):
        sp = dsub.add_parser(name, help=("write state/location statistics" if name == "evaluate" else
                                         "write the database without state/location details, and its statistics"))
        sp.add_argument("src", help="description database (.json) or speaker outputs (.jsonl, e.g. lewis_rollouts.jsonl)")
        sp.add_argument("--out", default=".", help="folder for the statistics (and the refined file)")
        sp.add_argument("--by", choices=["rule", "agent"], default="rule",
                        help="rule lexicons (default) or a registered agent that generates text")
        sp.add_argument("--agent", default=None, help="agent name for --by agent (e.g. qwen-vl)")
        sp.add_argument("--agent-kw", action="append", metavar="KEY=VALUE", help="agent keyword argument")
        sp.add_argument("--data", default=None,
                        help="dataset spec whose attributes give topsim/coverage (e.g. synthetic)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="loader argument for --data")
        if name == "refine":
            sp.add_argument("--mode", choices=["state", "location", "both"], required=True)


def run_descriptions(args: argparse.Namespace) -> int:
    """Run ``lewis-data descriptions evaluate|refine`` from parsed arguments; prints the statistics."""
    from lewis_env.data.cli import parse_sets
    from lewis_env.language.refine import run_evaluate, run_refine

    judge = None
    if args.by == "agent":
        if not args.agent:
            raise ValueError("--by agent needs --agent NAME (a registered agent that can generate text)")
        from lewis_env.language.judge import make_judge

        judge = make_judge(args.agent, **parse_sets(args.agent_kw))
    elif args.agent:
        raise ValueError("--agent is only used with --by agent")
    dataset = None
    if args.data:
        from lewis_env.data.registry import load_dataset

        dataset = load_dataset(args.data, **parse_sets(args.set))
    if args.desc_cmd == "evaluate":
        report, path = run_evaluate(args.src, args.out, judge=judge, dataset=dataset)
        print(json.dumps(report["stats"], indent=1))
        print(f"wrote {path}")
    else:
        report, refined, stats = run_refine(args.src, args.out, args.mode, judge=judge, dataset=dataset)
        print(json.dumps(report["stats"], indent=1))
        print(f"wrote {refined} and {stats}")
    return 0
