"""Language metrics over training from a hand-made rollout log (a speaker that learns the colour words)."""

from __future__ import annotations

import json

import numpy as np

from lewis_env.data.types import Concept, ConceptDataset
from lewis_env.language.curves import CURVES_JSON, language_curves, plot_language_curves
from lewis_env.language.sources import from_rollouts

COLOURS = ("red", "green", "blue", "yellow")


def _world():
    concepts = [Concept(f"{cat}_{i}", cat, f"<{cat}-{i}>", {"color": col, "pattern": "plain", "mark": "none",
                                                            "shape": "round", "size": "small"})
                for cat in ("mug", "lamp") for i, col in enumerate(COLOURS)]
    return ConceptDataset("colour-toy", concepts)


def _rollouts(path, steps=20, per_step=16):
    rng = np.random.default_rng(0)
    ds = _world()
    with path.open("w") as fh:
        for step in range(1, steps + 1):
            for g in range(per_step):
                c = ds.concepts[(step * per_step + g) % len(ds)]
                said = c.attributes["color"] if step > steps // 2 else str(rng.choice(COLOURS))
                cands = [x.concept_id for x in ds.concepts if x.category == c.category]
                fh.write(json.dumps({"episode_id": g, "step": step, "completion": f" {said}", "description": said,
                                     "reward": 0.0, "correct": said == c.attributes["color"],
                                     "target_concept": c.concept_id, "candidate_ids": cands}) + "\n")
    return ds


def test_curves_show_the_language_becoming_informative(tmp_path):
    log = tmp_path / "lewis_rollouts.jsonl"
    ds = _rollouts(log)
    utts = from_rollouts(log, ds)
    assert len(utts) == 320 and utts[0].meaning["category"] in ("mug", "lamp") and len(utts[0].negatives) == 3
    curves = language_curves(utts, bins=4)
    assert [c["step_lo"] for c in curves] == [1, 6, 11, 16]
    early, late = curves[0], curves[-1]
    assert late["lang_attribute_coverage"] == 1.0 and early["lang_attribute_coverage"] < 0.6
    assert late["lang_topsim"] > 0.5 > early["lang_topsim"]
    assert late["lang_length_words"] == 1.0 and late["lang_vocab_size"] == 4
    png = plot_language_curves(log, tmp_path / "run", ds, bins=4)
    assert png is not None and png.stat().st_size > 10000
    assert len(json.loads((tmp_path / "run" / CURVES_JSON).read_text())) == 4


def test_no_rollouts_no_plot(tmp_path):
    assert plot_language_curves(tmp_path / "missing.jsonl", tmp_path) is None
    (tmp_path / "empty.jsonl").write_text("")
    assert plot_language_curves(tmp_path / "empty.jsonl", tmp_path) is None
