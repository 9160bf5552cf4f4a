"""Numeric observations for classic RL code: images stay ``Box`` uint8, every text becomes fixed-length token ids.

``gym.make(id, obs_mode="numeric")`` (any of the five envs; ``LewisEnv(obs_mode=...)`` directly too) or
``NumericObservation(env)`` around a text-mode env gives observations with only numeric spaces, which
Stable-Baselines3, CleanRL, RLlib and TorchRL accept:

* an image field keeps its ``Box(0, 255, (..., S, S, 3), uint8)`` space;
* a text field becomes ``MultiDiscrete([V] * L)`` token ids (``L`` per field, ``FIELD_LENGTHS``), padded with
  ``0`` (``<pad>``) and truncated past ``L``;
* an option-list field (``database`` of Identification, ``options`` of VQA: ``"A. ...\\nB. ..."``) becomes
  ``n`` rows of ``L`` tokens, one per option with its letter dropped, flattened row-major to
  ``MultiDiscrete([V] * (n * L))`` (``codec.layout[field] == (n, L)``); missing rows are all padding.

The vocabulary (``Vocabulary.synthetic()``) is ``<pad>``, ``<unk>``, then the sorted words of the synthetic
world (categories, attribute values, backgrounds, positions), of the template speaker, the questions and
the speaker instruction, the letters a-z and the digits 0-9. Text is lower-cased and split into ``[a-z]+``
words and single digits; any other word maps to ``<unk>`` (id 1). The vocabulary and the lengths depend on
nothing but this module, so the space is identical for a given env config (train and test splits
included) and a saved policy reloads; ``env.unwrapped.vocabulary`` decodes ids. numpy only (no torch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

OBS_MODES: tuple[str, ...] = ("text", "numeric")
PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z]+|[0-9]")
_OPTION = re.compile(r"^\s*[A-Z][.)]\s*(.*)$")

#: Token length per text field (per row for option lists); any other text field gets ``DEFAULT_LENGTH``.
FIELD_LENGTHS: dict[str, int] = {"description": 32, "question": 24, "instruction": 96, "database": 32,
                                 "options": 6}
DEFAULT_LENGTH = 32
#: Text fields that are option lists, and the env attribute holding their row count.
OPTION_FIELDS: dict[str, str] = {"database": "k", "options": "num_options"}

#: Words of the env questions and templates that the synthetic constants do not contain.
_TEMPLATE_TEXT = (
    "Which of the images shows the object described? Answer with its letter. Is it in this image? Answer yes "
    "or no. Which concept from the database is in the image? A photo of a mug. The mug is red with a plain "
    "pattern, a star mark, no mark, tall shape and small size. The mug has a star mark. What colour is it in "
    "this image? What pattern does it have? What mark is on it? Where is it in this image? How many objects "
    "are in this image?"
)


def tokenize(text: str) -> list[str]:
    """Lower-cased ``[a-z]+`` words and single digits (punctuation and tags dropped)."""
    return _TOKEN.findall(str(text).lower())


def _synthetic_words() -> list[str]:
    from lewis_env.data.synthetic import ATTRIBUTE_VALUES, BACKGROUNDS, CATEGORIES, POSITIONS
    from lewis_env.envs.speaker import INSTRUCTION

    words: set[str] = set(CATEGORIES) | set(BACKGROUNDS) | set(POSITIONS)
    for values in ATTRIBUTE_VALUES.values():
        words.update(values)
    words.update(tokenize(_TEMPLATE_TEXT))
    words.update(tokenize(INSTRUCTION))
    words.update("abcdefghijklmnopqrstuvwxyz")
    words.update("0123456789")
    return sorted(words)


@dataclass(frozen=True)
class Vocabulary:
    """Token ids: 0 = ``<pad>``, 1 = ``<unk>``, then ``words`` in order."""

    tokens: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens[:2] != (PAD, UNK):
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {self.tokens[:2]}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        object.__setattr__(self, "index", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def from_words(cls, words: Iterable[str]) -> Vocabulary:
        """``<pad>``, ``<unk>``, then the given words (deduplicated, in order)."""
        return cls((PAD, UNK, *dict.fromkeys(w for w in words if w not in (PAD, UNK))))

    @classmethod
    def synthetic(cls) -> Vocabulary:
        """The documented default: the synthetic world's and the env templates' words (see module doc)."""
        global _SYNTHETIC
        if _SYNTHETIC is None:
            _SYNTHETIC = cls.from_words(_synthetic_words())
        return _SYNTHETIC

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, length: int) -> tuple[np.ndarray, bool]:
        """(``length`` int64 ids padded with 0, whether the text was truncated)."""
        ids = [self.index.get(w, 1) for w in tokenize(text)]
        out = np.zeros(length, dtype=np.int64)
        out[: min(length, len(ids))] = ids[:length]
        return out, len(ids) > length

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The words of non-padding ids, space-joined."""
        return " ".join(self.tokens[int(i)] for i in np.asarray(ids).reshape(-1) if int(i) != 0)


_SYNTHETIC: Vocabulary | None = None


def option_texts(text: str) -> list[str]:
    """``"A. foo\\nB. bar"`` -> ``["foo", "bar"]`` (a line not starting with a letter continues the previous)."""
    out: list[str] = []
    for line in str(text).splitlines():
        m = _OPTION.match(line)
        if m:
            out.append(m.group(1))
        elif out:
            out[-1] += " " + line
        elif line.strip():
            out.append(line)
    return out


class NumericCodec:
    """Maps one env's text observations to numeric ones (``encode``) and builds the numeric ``space``."""

    def __init__(self, text_space: spaces.Dict, rows: Mapping[str, int] | None = None,
                 vocabulary: Vocabulary | None = None, lengths: Mapping[str, int] | None = None) -> None:
        if not isinstance(text_space, spaces.Dict):
            raise TypeError(f"numeric observations need a Dict observation space, got {text_space}")
        self.vocabulary = vocabulary or Vocabulary.synthetic()
        self.text_space = text_space
        lengths = {**FIELD_LENGTHS, **dict(lengths or {})}
        rows = dict(rows or {})
        self.layout: dict[str, tuple[int, ...]] = {}
        out: dict[str, spaces.Space] = {}
        for key, sub in text_space.spaces.items():
            if isinstance(sub, spaces.Text):
                n_rows = rows.get(key, 1) if key in OPTION_FIELDS else 1
                L = int(lengths.get(key, DEFAULT_LENGTH))
                self.layout[key] = (n_rows, L) if key in OPTION_FIELDS else (L,)
                out[key] = spaces.MultiDiscrete(np.full(n_rows * L, len(self.vocabulary), dtype=np.int64))
            elif isinstance(sub, spaces.Box):
                out[key] = sub
            else:
                raise TypeError(f"observation field {key!r} has space {sub}, which has no numeric form")
        self.space = spaces.Dict(out)
        self.truncated = 0  # texts cut to their field length so far (a count, so truncation is never silent)

    @classmethod
    def for_env(cls, env: Any, text_space: spaces.Dict | None = None, **kw: Any) -> NumericCodec:
        """The codec of a lewis-bench env: option-list row counts read from the env (``k``, ``num_options``)."""
        base = getattr(env, "unwrapped", env)
        space = text_space if text_space is not None else getattr(base, "text_observation_space",
                                                                   base.observation_space)
        rows = {f: int(getattr(base, attr)) for f, attr in OPTION_FIELDS.items()
                if f in space.spaces and hasattr(base, attr)}
        return cls(space, rows=rows, **kw)

    def encode(self, obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The numeric observation of one text observation."""
        out: dict[str, np.ndarray] = {}
        for key, shape in ((k, self.layout.get(k)) for k in self.space.spaces):
            if shape is None:
                out[key] = np.asarray(obs[key])
                continue
            if len(shape) == 1:
                ids, cut = self.vocabulary.encode(obs[key], shape[0])
                self.truncated += cut
                out[key] = ids
                continue
            n, L = shape
            texts = option_texts(obs[key])
            if len(texts) > n:
                raise ValueError(f"field {key!r} lists {len(texts)} options but the numeric layout has {n} rows")
            mat = np.zeros((n, L), dtype=np.int64)
            for r, t in enumerate(texts):
                mat[r], cut = self.vocabulary.encode(t, L)
                self.truncated += cut
            out[key] = mat.reshape(-1)
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (vocabulary, layout) that a saved policy keeps to check it is reloaded right."""
        return {"vocabulary": list(self.vocabulary.tokens), "layout": {k: list(v) for k, v in self.layout.items()},
                "fields": list(self.space.spaces)}


class NumericObservation(gym.ObservationWrapper):
    """Wrap a text-mode lewis-bench env so it emits numeric observations (same as ``obs_mode="numeric"``)."""

    def __init__(self, env: gym.Env, vocabulary: Vocabulary | None = None,
                 lengths: Mapping[str, int] | None = None) -> None:
        super().__init__(env)
        if getattr(env.unwrapped, "obs_mode", "text") != "text":
            raise ValueError("NumericObservation wraps a text-mode env; this one already has obs_mode="
                             f"{env.unwrapped.obs_mode!r}")
        self.codec = NumericCodec.for_env(env, env.observation_space, vocabulary=vocabulary, lengths=lengths)
        self.observation_space = self.codec.space

    @property
    def vocabulary(self) -> Vocabulary:
        """The token vocabulary (``decode`` turns ids back into words)."""
        return self.codec.vocabulary

    def observation(self, observation: dict[str, Any]) -> dict[str, np.ndarray]:
        """Encode one observation."""
        return self.codec.encode(observation)


__all__ = [
    "DEFAULT_LENGTH",
    "FIELD_LENGTHS",
    "OBS_MODES",
    "OPTION_FIELDS",
    "PAD",
    "UNK",
    "NumericCodec",
    "NumericObservation",
    "Vocabulary",
    "option_texts",
    "tokenize",
]
