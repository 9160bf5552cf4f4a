"""VQA-v0: multiple-choice questions about a personal concept in an image.

Real datasets use their ``ConceptDataset.questions``. Otherwise questions are generated from ground truth
(synthetic world): ``color``, ``pattern``, ``mark`` (the concept's attributes), ``position`` and ``count``
(``num_objects``) of the image, and ``presence`` ("Is <name> in this image?", half with a hard-negative
image). Each has 2-``num_options`` options (fewer when the vocabulary is smaller); the key is in info.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lewis_env.data.types import ImageRef, VQAQuestion
from lewis_env.envs.base import MAX_IMAGES_SHOWN, MAX_K, LewisEnv, _check_int, resolve_negatives
from lewis_env.envs.recognition import pick_references
from lewis_env.envs.spaces import sanitize_text
from lewis_env.episodes import Episode, pick, query_images, reference_images
from lewis_env.parsing import LETTERS
from lewis_env.tasks.builtin import VQA

QUESTION_TYPES: tuple[str, ...] = ("color", "pattern", "mark", "position", "count", "presence")
_TEMPLATES = {"color": "What colour is {name} in this image?", "pattern": "What pattern does {name} have?",
              "mark": "What mark is on {name}?", "position": "Where is {name} in this image?",
              "count": "How many objects are in this image?", "presence": "Is {name} in this image?"}


def _show(qtype: str, value: str) -> str:
    return "no mark" if qtype == "mark" and value == "none" else value


class VQAEnv(LewisEnv):
    """Multiple-choice VQA; text answers are option letters or option text, index mode ``Discrete(options)``."""

    task = VQA

    def __init__(self, *args: Any, num_options: int = 4, num_reference_shown: int = 1,
                 question_source: str = "auto", question_types: tuple[str, ...] | list[str] | None = None,
                 **kwargs: Any) -> None:
        self.num_options = _check_int("num_options", num_options, 2, MAX_K)
        if question_source not in ("auto", "dataset", "generated"):
            raise ValueError(f"question_source must be 'auto', 'dataset' or 'generated', got {question_source!r}")
        self.question_source = question_source
        self.question_types = tuple(question_types or QUESTION_TYPES)
        bad = [t for t in self.question_types if t not in QUESTION_TYPES]
        if bad:
            raise ValueError(f"unknown question_types {bad}; known: {QUESTION_TYPES}")
        self._questions: list[VQAQuestion] | None = None
        super().__init__(*args, **kwargs)
        self.num_reference_shown = _check_int("num_reference_shown", num_reference_shown, 1, MAX_IMAGES_SHOWN)
        if self._questions:
            self.num_options = max(self.num_options, max(len(q.options) for q in self._questions))
        self._build_spaces()

    def _default_num_episodes(self) -> int:
        return len(self._questions) if self._questions is not None else len(self.schedule)

    def _setup(self) -> None:
        """Use the dataset's questions, or prepare the vocabularies questions are generated from."""
        use_ds = self.question_source == "dataset" or (self.question_source == "auto" and self.dataset.questions)
        if use_ds:
            if not self.dataset.questions:
                raise ValueError(f"question_source='dataset' but dataset {self.dataset.name!r} has no questions")
            self._questions = list(self.dataset.questions)
            self._q_order = np.random.default_rng([self.seed_value, 0x5EED]).permutation(len(self._questions))
            self.question_source_used = "dataset"
            return
        if not all(c.attributes for c in self.dataset.concepts):
            # real photos without questions or attributes: only "Is <name> in this image?" can be generated
            if "presence" not in self.question_types or len(self.dataset) < 2:
                raise ValueError(f"dataset {self.dataset.name!r} has no VQA questions and no attributes to generate "
                                 f"them from; only 'presence' questions (two or more concepts) can be asked, and "
                                 f"question_types is {list(self.question_types)}")
            self.question_types = ("presence",)
        self.question_source_used = "generated:" + ",".join(self.question_types)
        self._vocab = self.dataset.attribute_values()
        imgs = [r for c in self.dataset.concepts for r in c.images]
        self._positions = sorted({r.attributes.get("position") for r in imgs if r.attributes.get("position")})
        counts = sorted({int(r.attributes["num_objects"]) for r in imgs if r.attributes.get("num_objects")})
        self._counts = [str(n) for n in range(1, (max(counts) if counts else 1) + 2)]

    def _available_types(self, image: ImageRef) -> list[str]:
        out = []
        for t in self.question_types:
            if t in ("color", "pattern", "mark") and len(self._vocab.get(t, ())) < 2:
                continue
            if t == "position" and (len(self._positions) < 2 or not image.attributes.get("position")):
                continue
            if t == "count" and not image.attributes.get("num_objects"):
                continue
            if t == "presence" and len(self.dataset) < 2:
                continue
            out.append(t)
        if not out:
            raise ValueError(f"none of the question types {self.question_types} can be asked about this dataset")
        return out

    def _num_choices(self, ep: Episode) -> int:
        return len(ep.options)

    def _make_episode(self, i: int, rng: np.random.Generator) -> Episode:
        if self._questions is not None:
            return self._dataset_episode(i, rng)
        cid, j = self.schedule.pair(i)
        c = self.dataset.concept(cid)
        image = query_images(c)[j]
        qtype = pick(rng, self._available_types(image))
        if qtype == "presence":
            if not hasattr(self, "_negs"):
                self._negs = resolve_negatives(self.dataset, min(3, len(self.dataset) - 1), self.negatives_spec)
            present = bool(rng.integers(2))
            if not present:
                image = pick(rng, query_images(self.dataset.concept(pick(rng, self._negs[cid]))))
            truth, vocab = ("yes" if present else "no"), ["yes", "no"]
        elif qtype in ("color", "pattern", "mark"):
            truth, vocab = str(c.attributes[qtype]), list(self._vocab[qtype])
        elif qtype == "position":
            truth, vocab = image.attributes["position"], list(self._positions)
        else:
            truth, vocab = str(image.attributes["num_objects"]), list(self._counts)
        others = [v for v in vocab if v != truth]
        n_opt = min(self.num_options, len(others) + 1)
        chosen = [others[t] for t in rng.permutation(len(others))[: n_opt - 1]]
        opts = [truth, *chosen]
        perm = rng.permutation(len(opts))
        options = tuple(_show(qtype, opts[p]) for p in perm)
        refs = pick_references(rng, reference_images(c), self.num_reference_shown, avoid=image.path)
        return Episode(episode_id=i, role=self.role, target_concept=cid, category=c.category, candidates=(image,),
                       candidate_ids=(image.concept_id,), target_index=int(np.flatnonzero(perm == 0)[0]),
                       question=_TEMPLATES[qtype].format(name=c.name), reference=refs, query=image,
                       options=options, question_type=qtype)

    def _dataset_episode(self, i: int, rng: np.random.Generator) -> Episode:
        q = self._questions[int(self._q_order[i % len(self._questions)])]
        c = self.dataset.concept(q.concept_id)
        image = next((r for r in c.images if r.path == q.image_path), None) or ImageRef(c.concept_id, q.image_path)
        letters = sorted(q.options)
        if q.answer not in letters:
            raise ValueError(f"question about {q.concept_id} ({q.image_path}) has answer {q.answer!r} not among "
                             f"its options {letters}")
        refs = pick_references(rng, reference_images(c), self.num_reference_shown, avoid=image.path)
        return Episode(episode_id=i, role=self.role, target_concept=c.concept_id, category=c.category,
                       candidates=(image,), candidate_ids=(image.concept_id,), target_index=letters.index(q.answer),
                       question=q.question, reference=refs, query=image,
                       options=tuple(str(q.options[x]) for x in letters), question_type=q.kind)

    def options_text(self, ep: Episode) -> str:
        """``"A. red\\nB. blue"``."""
        return "\n".join(f"{LETTERS[t]}. {o}" for t, o in enumerate(ep.options))

    def _make_obs(self, ep: Episode) -> dict[str, Any]:
        return {"image": self.load_image(ep.query), "reference": self.load_images(ep.reference),
                "question": sanitize_text(ep.question), "options": sanitize_text(self.options_text(ep))}

    def _task_info(self, ep: Episode) -> dict[str, Any]:
        return {"answer": ep.answer, "answer_index": ep.target_index, "question_type": ep.question_type,
                "query_concept": ep.query.concept_id, "query_path": ep.query.path, "options": list(ep.options)}

    def _parsed_repr(self, parsed: int | None) -> Any:
        return None if parsed is None else LETTERS[parsed]
