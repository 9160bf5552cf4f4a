"""LewisSpeaker-v0: the agent describes the target; a listener picks among K candidates; reward = it picked right.

Text actions are the raw completion (the listener receives ``<coarse>`` + ``<detailed>`` contents, or the
text without ``<thinking>``); index actions choose one value per attribute slot (0 = omit), rendered by the
template speaker. Rewards: ``accuracy`` + format/length shaping from ``lewis_env.rewards`` presets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from lewis_env.data.types import CONCEPT_ATTRIBUTE_KEYS
from lewis_env.envs.game import LewisGameEnv
from lewis_env.envs.spaces import images_space, sanitize_text, text_space
from lewis_env.episodes import Episode
from lewis_env.listeners.base import Listener, make_listener
from lewis_env.parsing import extract_description
from lewis_env.rewards import SpeakerReward
from lewis_env.speakers import describe
from lewis_env.tasks.builtin import SPEAKER

INSTRUCTION = (
    "You are the speaker in a reference game. Describe the object in the image so that a listener can pick "
    "it out among {k} photos of similar objects of the same category. Name its intrinsic attributes (colour, "
    "pattern, marks, shape, size), not its position, background or surroundings. Answer in the format "
    "<thinking>...</thinking><coarse>...</coarse><detailed>...</detailed>: <coarse> is a short phrase naming "
    "the object, <detailed> is one sentence with the details that set it apart."
)

class LewisSpeakerEnv(LewisGameEnv):
    """The agent is the speaker of the Lewis referential game."""

    task = SPEAKER

    def __init__(self, *args: Any, listener: str | Listener | None = "rule",
                 listener_kwargs: Mapping[str, Any] | None = None, reward_preset: str = "readme",
                 reward_weights: Mapping[str, float] | None = None, extra_rewards: Sequence[str] | None = None,
                 speaker_sees_distractors: bool = False, instruction: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listener = make_listener(listener, **dict(listener_kwargs or {}))
        check = getattr(self.listener, "check_dataset", None)
        if check is not None:  # e.g. the rule listener refuses data without ground-truth attributes
            check(self.dataset)
        self.listener_flags = dict(getattr(self.listener, "flags", {}) or {})
        self.reward = SpeakerReward(reward_preset, reward_weights, extra_rewards)
        self.speaker_sees_distractors = bool(speaker_sees_distractors)
        self.instruction = sanitize_text((instruction or INSTRUCTION).format(k=self.k))
        obs = self.task.observation_space(self)
        if self.speaker_sees_distractors:
            obs["distractors"] = images_space(self.k - 1, self.image_size)
        self.observation_space = obs
        vocab = self.full_dataset.attribute_values()  # the same slots on every split: a policy reloads
        self.slot_keys = tuple([k for k in CONCEPT_ATTRIBUTE_KEYS if k in vocab] +
                               [k for k in vocab if k not in CONCEPT_ATTRIBUTE_KEYS])
        self.slot_values = {k: list(vocab[k]) for k in self.slot_keys}
        if self.action_mode == "index" and not self.slot_keys:
            raise ValueError("action_mode='index' for the speaker needs concept attributes (slot vocabulary); "
                             f"dataset {self.dataset.name!r} has none")
        self.action_space = (spaces.MultiDiscrete([len(self.slot_values[k]) + 1 for k in self.slot_keys])
                             if self.action_mode == "index" else text_space())

    # -- index actions -------------------------------------------------------------------------
    def encode_attributes(self, attributes: Mapping[str, str]) -> np.ndarray:
        """The MultiDiscrete action that says these attribute values (slots not given -> 0 = omit)."""
        out = np.zeros(len(self.slot_keys), dtype=np.int64)
        for s, key in enumerate(self.slot_keys):
            v = attributes.get(key)
            if v is not None:
                try:
                    out[s] = self.slot_values[key].index(str(v)) + 1
                except ValueError:
                    raise ValueError(f"{key}={v!r} is not in the slot vocabulary {self.slot_values[key]}") from None
        return out

    def render_action(self, ep: Episode, action: Any) -> tuple[str | None, str | None]:
        """(completion text, None) for a slot vector, or (None, reason) when a slot is out of range."""
        vec = np.asarray(action).reshape(-1)
        slots = {}
        for s, key in enumerate(self.slot_keys):
            v = int(vec[s])
            if not 0 <= v <= len(self.slot_values[key]):
                return None, f"slot {key!r} value {v} out of range [0, {len(self.slot_values[key])}]"
            if v:
                slots[key] = self.slot_values[key][v - 1]
        return describe({"category": ep.category}, style="tags", slots=slots), None

    def check_action(self, action: Any) -> None:
        """Text mode: a str; index mode: an int vector with one entry per attribute slot."""
        if self.action_mode == "text":
            super().check_action(action)
            return
        arr = action if isinstance(action, np.ndarray) else None
        if arr is None and isinstance(action, (list, tuple)) and all(
                isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in action):
            arr = np.asarray(action, dtype=np.int64)
        if arr is None or not np.issubdtype(arr.dtype, np.integer) or arr.shape != (len(self.slot_keys),):
            raise TypeError(f"speaker env in index mode expects an int array of shape ({len(self.slot_keys)},) "
                            f"({self.action_space}, slots {list(self.slot_keys)}), got {type(action).__name__}"
                            + (f" of shape {arr.shape}" if arr is not None else ""))

    # -- episodes and scoring ------------------------------------------------------------------
    @property
    def reward_spec(self) -> dict[str, float]:
        """``{term: weight}`` of this env's reward (preset, weight overrides, extra terms), in report order."""
        return self.reward.spec()

    def _make_obs(self, ep: Episode) -> dict[str, Any]:
        obs = {"image": self.load_image(ep.reference[0]), "instruction": self.instruction}
        if self.speaker_sees_distractors:
            obs["distractors"] = self.load_images([c for j, c in enumerate(ep.candidates) if j != ep.target_index])
        return obs

    def _task_info(self, ep: Episode) -> dict[str, Any]:
        attrs = self.dataset.concept(ep.target_concept).attributes
        return {"reference_paths": [r.path for r in ep.reference],
                "avoid_texts": [str(attrs[k]) for k in ("state", "location") if attrs.get(k)]}

    def _score(self, eps: Sequence[Episode], actions: Sequence[Any]) -> tuple[list[float], list[dict]]:
        texts: list[str | None] = []
        errors: list[str | None] = []
        for ep, a in zip(eps, actions):
            text, err = (a, None) if self.action_mode == "text" else self.render_action(ep, a)
            texts.append(text)
            errors.append(err)
        todo = [j for j, t in enumerate(texts) if t is not None]
        descs = {j: extract_description(texts[j]) for j in todo}
        choices = (self.listener.choose_batch([descs[j] for j in todo], [list(eps[j].candidates) for j in todo])
                   if todo else [])
        if len(choices) != len(todo):
            raise RuntimeError(f"listener returned {len(choices)} choices for {len(todo)} descriptions")
        by_j = dict(zip(todo, choices))
        rewards = [0.0] * len(eps)
        infos = []
        for j, ep in enumerate(eps):
            info = self.info(ep)
            if j in by_j:
                choice, scores = by_j[j]
                correct = int(choice) == ep.target_index
                info.update(description=descs[j], listener_choice=int(choice),
                            listener_scores=[float(s) for s in scores], parsed=descs[j], parse_error=None,
                            correct=bool(correct))
                total, terms = self.reward(texts[j], info)
                rewards[j] = total
            else:
                info.update(description=None, listener_choice=None, listener_scores=None, parsed=None,
                            parse_error=errors[j], correct=False)
                terms = {name: 0.0 for name in self.reward.terms}
            info["reward_terms"] = terms
            infos.append(info)
        return rewards, infos
