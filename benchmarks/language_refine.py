"""Identification accuracy with a raw vs a refined description database (the README's refinement experiment).

The raw database describes each synthetic-v0 concept the way a captioning model describes its first
reference photo: the template description plus where the object sits in that photo and the background
colour ("A photo of a red mug on the left against a teal background. The mug is red with ...").
``lewis-data descriptions refine --mode location`` removes those details. Both databases then serve the
suite's identification task (3 seeds x 100 episodes) for two text-reading identifiers:

- ``visible``: scores each database entry by how many of the query photo's visible properties it names
  (intrinsic attributes, category, position and background, read from the query image's ground truth):
  a reader that, like a VLM, matches everything it sees, including transient details;
- ``intrinsic``: the same restricted to intrinsic attributes and category (a control).

    python benchmarks/language_refine.py [--seeds 0,1,2] [--out /tmp/refine_exp]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lewis_env.data.types import CONCEPT_ATTRIBUTE_KEYS
from lewis_env.language.metrics import mentions
from lewis_env.speakers import describe

POSITION_PHRASE = {"left": "on the left", "center": "in the center", "right": "on the right"}
_LINE = re.compile(r"^([A-Z])\. (.*?): (.*)$")


def caption_database(dataset: Any) -> dict[str, str]:
    """Template description + the first reference photo's position and background, per concept."""
    out = {}
    for c in dataset.concepts:
        ref = c.reference[0].attributes
        where = f"{POSITION_PHRASE.get(ref.get('position', ''), '')} against a {ref.get('background')} background"
        plain = describe(c, style="plain")
        first, _, rest = plain.partition(". ")
        out[c.concept_id] = f"{first} {where.strip()}. {rest}"
    return out


class TextMatchIdentifier:
    """Picks the database entry naming most of the query photo's properties (``keys``); hash tie-break."""

    name = "text-match"
    roles = frozenset({"identification"})

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)

    def bind(self, env: Any) -> None:
        base = env.unwrapped
        self.by_path = {str(r.path): r for c in base.dataset.concepts for r in c.images}

    def act_batch(self, observations: Sequence[dict[str, Any]], infos: Sequence[dict[str, Any]]) -> list[str]:
        out = []
        for obs, info in zip(observations, infos):
            props = {**self.by_path[str(info["query_path"])].attributes}
            entries = [m.groups() for line in str(obs["database"]).splitlines() if (m := _LINE.match(line))]
            scores = []
            for _, _, text in entries:
                s = sum(mentions(text, k, str(props[k])) for k in self.keys if k in props and k != "position")
                if "position" in self.keys and props.get("position") in POSITION_PHRASE:
                    s += POSITION_PHRASE[props["position"]] in text
                scores.append(s)
            best = np.flatnonzero(np.array(scores) == max(scores))
            out.append(entries[int(best[int(info["episode_id"]) % len(best)])][0])
        return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment and print accuracies (mean over seeds, 95% bootstrap CI over episodes)."""
    from leaderboard.evaluate import run_task
    from leaderboard.metrics import mean_ci
    from leaderboard.suites import load_suite
    from lewis_env.data.registry import load_dataset
    from lewis_env.language.refine import run_evaluate, run_refine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="synthetic-v0")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="refine_experiment")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    suite = load_suite(args.suite)
    ds = load_dataset(suite.dataset)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw_path = out / "database_captions.json"
    raw_path.write_text(json.dumps(caption_database(ds), indent=1))
    raw_report, _ = run_evaluate(raw_path, out)
    ref_report, ref_path, _ = run_refine(raw_path, out, "location")
    print(f"raw database: location rate {raw_report['stats']['mean_location']:.2f}, "
          f"{raw_report['stats']['mean_length']:.1f} words; refined: location rate "
          f"{ref_report['stats']['mean_location']:.2f}, {ref_report['stats']['mean_length']:.1f} words")
    readers = {"visible": TextMatchIdentifier((*CONCEPT_ATTRIBUTE_KEYS, "category", "position", "background")),
               "intrinsic": TextMatchIdentifier((*CONCEPT_ATTRIBUTE_KEYS, "category"))}
    seeds = [int(s) for s in args.seeds.split(",")]
    task = next(n for n, t in suite.tasks.items() if t.role == "identification")
    results = {}
    print("| identifier | database | accuracy | 95% CI | episodes |\n|---|---|---:|---:|---:|")
    for rname, reader in readers.items():
        for dname, path in (("raw", raw_path), ("refined (location)", ref_path)):
            correct = [np.array([r["correct"] for r in run_task(reader, suite, task, s,
                                                                env_kwargs={"descriptions": str(path)})], float)
                       for s in seeds]
            acc = float(np.mean([c.mean() for c in correct]))
            lo, hi = mean_ci(np.concatenate(correct))
            results[f"{rname}/{dname}"] = {"accuracy": acc, "ci": [lo, hi], "n": int(sum(c.size for c in correct))}
            print(f"| {rname} | {dname} | {100 * acc:.1f} | [{100 * lo:.1f}, {100 * hi:.1f}] | "
                  f"{results[f'{rname}/{dname}']['n']} |")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"wall {time.perf_counter() - t0:.1f}s; wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
