"""The ``rule`` baseline: an attribute oracle over synthetic ground truth (the ceiling of the synthetic world).

It never looks at pixels. ``bind(env)`` gives it the env's dataset; each episode's images are looked up
by path/id in that dataset, whose ``ImageRef.attributes`` hold the generator's ground truth (concept
attributes + category per image). From those it speaks (template description of the target concept),
listens (candidate whose attributes the description names most), recognises (query image's attributes
equal the reference concept's), answers VQA (option naming the image's attribute values) and identifies
(database entry whose concept attributes match the query image's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.registry import ROLES, BaseAgent
from baselines._obs import LETTERS, answer_text, option_lines, stable_seed, words

#: Ground-truth keys that identify a concept (the intrinsic attributes plus the category).
IDENTITY_KEYS: tuple[str, ...] = ("color", "pattern", "mark", "shape", "size", "category")


def _template(category: str, attributes: Mapping[str, str], style: str = "tags") -> str:
    """The template speaker's description of a concept (``lewis_env.speakers.describe``)."""
    from lewis_env.speakers import describe

    return describe({**attributes, "category": category}, style=style)


class RuleAgent(BaseAgent):
    """Attribute oracle on synthetic ground truth; deterministic; plays every role."""

    name = "rule"
    #: it reads ground truth (attributes and labels): the board marks it and ranks it apart
    flags = {"oracle": True}
    roles = frozenset(ROLES)  # the built-in tasks only

    def __init__(self, speaker_words: Sequence[str] | None = None) -> None:
        super().__init__()
        self.speaker_words = tuple(speaker_words) if speaker_words is not None else None
        self.config: dict[str, Any] = ({"speaker_words": list(self.speaker_words)}
                                       if self.speaker_words is not None else {})
        self._by_path: dict[str, Any] = {}
        self._by_id: dict[str, Any] = {}
        from lewis_env.listeners.rule import RuleListener

        self._listener = RuleListener()

    # -- ground truth ---------------------------------------------------------------------------
    def bind(self, env: Any) -> None:
        """Attach to ``env`` and index its dataset's images by path and by image id."""
        super().bind(env)
        ds = getattr(self.env, "dataset", None)
        if ds is None:
            raise ValueError("the rule agent needs env.unwrapped.dataset (ground truth); this env has none")
        missing = [c.concept_id for c in ds.concepts if not c.attributes]
        if missing:
            from lewis_env.listeners.rule import NoAttributesError

            raise NoAttributesError(
                f"the rule agent is an oracle over ground-truth attributes, and dataset {ds.name!r} has none for "
                f"{len(missing)} of {len(ds)} concepts (e.g. {missing[0]!r}); on real photos evaluate an agent that "
                f"looks at the images: clip (agent.pretrained=<weights>), qwen-vl (agent.model=<path>) or random "
                f"(chance level)")
        self.dataset = ds
        self._by_path, self._by_id = {}, {}
        for c in ds.concepts:
            for ref in c.images:
                self._by_path[str(ref.path)] = ref
                self._by_id[ref.image_id] = ref

    def _episode(self, info: Mapping[str, Any] | None) -> Any:
        if not info or "episode_id" not in info:
            raise ValueError("the rule agent needs info['episode_id'] (pass the reset info to act/act_batch)")
        return self.env.episode(int(info["episode_id"]))

    def _concept_truth(self, concept_id: str) -> dict[str, str]:
        c = self.dataset.concept(concept_id)
        return {**{k: str(v) for k, v in c.attributes.items()}, "category": c.category}

    def _image_truth(self, ref: Any) -> dict[str, str]:
        """Ground-truth attributes of one image given as ImageRef, path or image id."""
        if hasattr(ref, "attributes") and getattr(ref, "attributes", None):
            attrs = dict(ref.attributes)
        else:
            key = str(getattr(ref, "path", ref))
            found = self._by_path.get(key) or self._by_id.get(key)
            if found is None:
                raise KeyError(f"rule agent: image {key!r} is not in the bound dataset")
            attrs = dict(found.attributes)
            if not attrs:
                attrs = self._concept_truth(found.concept_id)
        if "category" not in attrs and hasattr(ref, "concept_id"):
            attrs["category"] = self.dataset.concept(ref.concept_id).category
        return {k: str(v) for k, v in attrs.items()}

    @staticmethod
    def _identity(truth: Mapping[str, str]) -> dict[str, str]:
        return {k: truth[k] for k in IDENTITY_KEYS if k in truth}

    # -- roles -----------------------------------------------------------------------------------
    def describe(self, concept_id: str) -> str:
        """The tagged template description of a concept (only the ``speaker_words`` attribute keys when given)."""
        from lewis_env.speakers import describe

        return describe(self.dataset.concept(concept_id), style="tags", slots=self.speaker_words)

    def _pick(self, scores: Sequence[float], *tiebreak: Any) -> int:
        """Index of the best score; ties broken by a stable hash (so an uninformative input is at chance)."""
        s = np.asarray(scores, dtype=float)
        best = np.flatnonzero(s == s.max())
        return int(best[stable_seed(*tiebreak) % len(best)])

    def _match(self, truth: Mapping[str, str], target: Mapping[str, str]) -> int:
        a, b = self._identity(truth), self._identity(target)
        return sum(1 for k in b if a.get(k) == b[k])

    def _answer(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None) -> int | str:
        ep_info = dict(info or {})
        role = self.role
        if role == "speaker":
            return self.describe(ep_info.get("target_concept") or self._episode(info).target_concept)
        if role == "listener":
            cands = self._candidates(ep_info, info)
            return int(self._listener.choose(str(obs.get("description", "")), cands)[0])
        if role == "recognition":
            query = self._image_truth(self._query_ref(ep_info, info))
            target = self._concept_truth(ep_info["target_concept"])
            return 1 if self._match(query, target) == len(self._identity(target)) else 0
        if role == "identification":
            query = self._image_truth(self._query_ref(ep_info, info))
            scores = [self._match(query, self._concept_truth(c)) for c in ep_info["candidate_ids"]]
            return self._pick(scores, ep_info.get("episode_id"), "ident")
        if role == "vqa":
            return self._vqa(obs, ep_info, info)
        raise ValueError(f"rule agent cannot play role {role!r}")

    def _candidates(self, ep_info: Mapping[str, Any], info: Mapping[str, Any] | None) -> list[Any]:
        """The episode's candidate ImageRefs with their ground-truth attributes (looked up in the dataset)."""
        ep = self._episode(info)
        cands = list(getattr(ep, "candidates", ()) or ())
        if not cands:
            cands = [self._by_path.get(str(p)) or self._by_id.get(str(p)) for p in ep_info["candidate_paths"]]
        return [self._by_path.get(str(c.path), c) for c in cands]

    def _query_ref(self, ep_info: Mapping[str, Any], info: Mapping[str, Any] | None) -> Any:
        ep = self._episode(info)
        if getattr(ep, "query", None) is not None:
            return ep.query
        for key in ("query_path", "image_path"):
            if ep_info.get(key):
                return ep_info[key]
        for attr in ("query", "image", "query_ref"):
            if getattr(ep, attr, None) is not None:
                return getattr(ep, attr)
        raise KeyError("rule agent: identification episode names no query image")

    def _vqa(self, obs: Mapping[str, Any], ep_info: Mapping[str, Any], info: Mapping[str, Any] | None) -> int:
        """Presence: yes iff the image shows the concept; otherwise the option equal to the image's ground truth."""
        ep = self._episode(info)
        opts = option_lines(str(obs.get("options", "")))
        if not opts:
            raise ValueError(f"vqa observation has no parsable options: {obs.get('options')!r}")
        truth = self._image_truth(self._query_ref(ep_info, info))
        qtype = str(ep_info.get("question_type") or getattr(ep, "question_type", ""))
        concept = self._concept_truth(ep.target_concept)
        if qtype == "presence":
            present = self._match(truth, concept) == len(self._identity(concept))
            scores = [float(text.strip().lower() == ("yes" if present else "no")) for _, text in opts]
        else:
            values = {str(v).lower() for v in truth.values() if v}
            if truth.get("mark") == "none":
                values.add("no mark")
            scores = []
            for _, text in opts:
                t = text.strip().lower()
                scores.append(2.0 if t in values else float(len(words(t) & values)))
        return self._pick(scores, obs.get("question", ""), len(opts))

    def act(self, observation: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
        """The oracle's answer: text in text mode, the index in index mode."""
        if self.role is None:
            raise RuntimeError("RuleAgent.act called before bind(env)")
        ans = self._answer(observation, info)
        if self.role == "speaker":
            if self.action_mode == "index":
                return self._speaker_index_action(ans, info)
            return ans
        if self.action_mode == "index":
            return int(ans)
        return answer_text(self.role, int(ans)) if self.role != "vqa" else LETTERS[int(ans)]

    def _speaker_index_action(self, description: str, info: Mapping[str, Any] | None) -> Any:
        """Index-mode speaker: each attribute slot set to the target's value (``env.encode_attributes``)."""
        enc = getattr(self.env, "encode_attributes", None)
        if enc is None:
            raise NotImplementedError("rule speaker in index mode needs env.unwrapped.encode_attributes")
        concept = (info or {}).get("target_concept") or self._episode(info).target_concept
        attrs = dict(self.dataset.concept(concept).attributes)
        if self.speaker_words is not None:
            attrs = {k: v for k, v in attrs.items() if k in self.speaker_words}
        return enc(attrs)
