"""``lewis-data``: inspect a dataset, compute its hard negatives, or export it as a Hugging Face dataset.

    lewis-data stats [SPEC] [--set num_concepts=16 ...]
    lewis-data negatives SPEC --k 3 [--method auto|attributes|clip] --out negatives.json
    lewis-data export-hf SPEC OUT_DIR
    lewis-data descriptions evaluate|refine SRC [--mode state|location|both] [--by rule|agent] --out DIR
    lewis-data describe SPEC --agent NAME [agent.KEY=VALUE ...] --out db.json [--batch-size 8] [--images 1]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from lewis_env.data.negatives import METHODS
from lewis_env.data.registry import load_dataset


def _parse_value(text: str) -> Any:
    """``16`` -> 16, ``true`` -> True, ``["color"]`` -> list, anything else stays a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``["num_concepts=16", "vary=[\\"color\\"]"]`` -> loader kwargs; a malformed item names itself."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = _parse_value(val)
    return out


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lewis-data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add_spec(sp: argparse.ArgumentParser, optional: bool = False) -> None:
        if optional:
            sp.add_argument("spec", nargs="?", default="synthetic", help="dataset spec (default: synthetic)")
        else:
            sp.add_argument("spec", help='dataset spec: synthetic, folder:<root>, yollava:<root>, hf:<dir>, ...')
        sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="loader argument (repeatable)")

    s = sub.add_parser("stats", help="print a dataset summary")
    add_spec(s, optional=True)
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")

    n = sub.add_parser("negatives", help="compute hard negatives and save them as JSON")
    add_spec(n)
    n.add_argument("--k", type=int, default=3)
    n.add_argument("--method", choices=list(METHODS), default="auto",
                   help="auto = the best the data allows: attributes > clip (weights given) > category > random")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--clip-model", default="ViT-B-32")
    n.add_argument("--clip-pretrained", default=None,
                   help="checkpoint path or cached open_clip tag (default: $LEWIS_CLIP_PRETRAINED)")
    n.add_argument("--clip-download", action="store_true", help="let open_clip download the tag's weights")
    n.add_argument("--out", required=True)

    e = sub.add_parser("export-hf", help="save the dataset with datasets.Dataset.save_to_disk")
    add_spec(e)
    e.add_argument("out")

    from lewis_env.language.cli import add_descriptions_parser

    add_descriptions_parser(sub)  # lewis-data descriptions evaluate|refine (lewis_env/language)

    d = sub.add_parser("describe", help="write a description database with any registered speaker agent "
                                        "(resumable: rerun the same command after an interruption)")
    add_spec(d)
    d.add_argument("--agent", required=True, help="registered agent name (e.g. qwen-vl, clip)")
    d.add_argument("--out", required=True, help="database JSON (folder datasets read <root>/descriptions.json)")
    d.add_argument("--batch-size", type=int, default=8)
    d.add_argument("--images", type=int, default=1, help="reference images described per concept (0 = all)")
    d.add_argument("--image-size", type=int, default=448)
    d.add_argument("--restart", action="store_true", help="discard an interrupted run's progress")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lewis-data`` console script."""
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.cmd != "describe":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.cmd == "describe":  # runs an agent: the agents layer does it (imported by name, not by lewis_env)
            from lewis_env.imports import import_object

            return int(import_object("agents.describe:main", "describe command")(args, extra))
        return _run(args)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        parser.exit(2, f"lewis-data: error: {exc}\n")


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "descriptions":
        from lewis_env.language.cli import run_descriptions

        return run_descriptions(args)
    ds = load_dataset(args.spec, **parse_sets(args.set))
    if args.cmd == "stats":
        summary = ds.summary()
        summary["images"] = summary["reference_images"] + summary["query_images"]
        summary["attribute_keys"] = list(ds.attribute_values())
        if args.json:
            print(json.dumps(summary, indent=1))
        else:
            for k, v in summary.items():
                print(f"{k:>17}: {v}")
            for cat, ids in sorted(ds.categories().items()):
                print(f"{'':>17}  {cat}: {len(ids)} concepts")
    elif args.cmd == "negatives":
        from lewis_env.data.negatives import auto_method, hard_negatives, save_negatives

        kw = {"model_name": args.clip_model, "pretrained": args.clip_pretrained, "download": args.clip_download}
        method = auto_method(ds, kw) if args.method == "auto" else args.method
        table = hard_negatives(ds, k=args.k, method=method, seed=args.seed, **(kw if method == "clip" else {}))
        path = save_negatives(table, args.out)
        print(f"wrote {len(table)} concepts x {args.k} negatives ({table.method}) to {path}")
    elif args.cmd == "export-hf":
        from lewis_env.data.hf import to_hf_dataset

        hf = to_hf_dataset(ds)
        hf.save_to_disk(args.out)
        print(f"wrote {hf.num_rows} rows ({len(ds)} concepts) to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
