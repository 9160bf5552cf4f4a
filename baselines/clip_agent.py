"""The ``clip`` baseline: open_clip image/text similarity for every role (torch is imported lazily).

- listener: candidate image most similar to the description text;
- recognition: cosine(query, mean reference embedding) >= threshold; the threshold is calibrated on the
  train split (the one maximising weighted accuracy) unless given;
- identification: query image vs each database concept's mean reference-image embedding, plus the
  similarity to its description line;
- VQA: image vs "question + option" texts;
- speaker: zero-shot attribute classification ("a photo of a red object", ...) rendered as a template.

Weights come from ``pretrained`` (an open_clip tag such as ``laion2b_s34b_b79k`` when already in the
local cache, or a checkpoint path; default ``$LEWIS_CLIP_PRETRAINED``). Without weights the agent refuses
to build; ``allow_random_init=True`` (tests only) gives a random-init model flagged ``random_init``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.registry import ROLES, BaseAgent
from baselines._obs import LETTERS, answer_text, option_lines

_CALIBRATION_CACHE: dict[str, float] = {}


def _img_key(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


class ClipAgent(BaseAgent):
    """open_clip similarity agent; ``threshold=None`` calibrates recognition on the train split at bind."""

    name = "clip"
    roles = frozenset(ROLES)  # the built-in tasks only

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None, threshold: float | None = None,
                 calibrate: bool = True, calibration_episodes: int = 64, text_weight: float = 0.5,
                 device: str = "cpu", batch_size: int = 32, seed: int = 0, allow_random_init: bool = False) -> None:
        super().__init__()
        if threshold is not None and not -1.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        if calibration_episodes < 2:
            raise ValueError(f"calibration_episodes must be >= 2, got {calibration_episodes}")
        from lewis_env.data.clip_embed import ClipWeightsError, HOW_TO_GIVE_WEIGHTS, resolve_pretrained

        pretrained = resolve_pretrained(pretrained)
        if pretrained is None and not allow_random_init:  # fail before any episode, not after a long eval
            raise ClipWeightsError(f"the clip agent has no weights configured; {HOW_TO_GIVE_WEIGHTS}")
        self.allow_random_init = bool(allow_random_init)
        if pretrained is None:
            self.flags = {"random_init": True, "display_name": f"clip ({model_name}, random weights)"}
        self.model_name, self.pretrained = model_name, pretrained
        self.threshold = None if threshold is None else float(threshold)
        self.calibrate, self.calibration_episodes = bool(calibrate), int(calibration_episodes)
        self.text_weight, self.device, self.batch_size, self.seed = float(text_weight), device, int(batch_size), seed
        self.config = {"model_name": model_name, "pretrained": pretrained, "threshold": threshold,
                       "calibrate": calibrate, "calibration_episodes": calibration_episodes,
                       "text_weight": text_weight}
        self._embedder: Any = None
        self._img_cache: dict[str, np.ndarray] = {}
        self._txt_cache: dict[str, np.ndarray] = {}
        self._active_threshold: float | None = self.threshold

    # -- model ------------------------------------------------------------------------------------
    @property
    def embedder(self) -> Any:
        """The lazily built ``ClipEmbedder`` (open_clip model, preprocess, tokenizer)."""
        if self._embedder is None:
            from lewis_env.data.clip_embed import ClipEmbedder

            self._embedder = ClipEmbedder(self.model_name, pretrained=self.pretrained, device=self.device,
                                          batch_size=self.batch_size, seed=self.seed,
                                          allow_random_init=self.allow_random_init)
        return self._embedder

    def embed_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) unit-norm embeddings of RGB uint8 arrays (memoised by content)."""
        import torch
        from PIL import Image

        keys = [_img_key(a) for a in images]
        todo = [(k, a) for k, a in zip(keys, images) if k not in self._img_cache]
        seen: set[str] = set()
        todo = [(k, a) for k, a in todo if not (k in seen or seen.add(k))]
        emb = self.embedder
        with torch.inference_mode():
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i:i + self.batch_size]
                batch = torch.stack([emb.preprocess(Image.fromarray(np.asarray(a, dtype=np.uint8))) for _, a in chunk])
                feats = torch.nn.functional.normalize(emb.model.encode_image(batch.to(self.device)).float(), dim=-1)
                for (k, _), f in zip(chunk, feats.cpu().numpy()):
                    self._img_cache[k] = f.astype(np.float32)
        if len(self._img_cache) > 20000:  # keep memory bounded on long runs
            self._img_cache = {k: self._img_cache[k] for k in keys}
        return np.stack([self._img_cache[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) unit-norm text embeddings (memoised: prompts such as attribute names repeat every episode)."""
        texts = [t if t.strip() else "." for t in texts]
        todo = sorted({t for t in texts if t not in self._txt_cache})
        if todo:
            for t, e in zip(todo, self.embedder.embed_texts(todo)):
                self._txt_cache[t] = e
        if len(self._txt_cache) > 50000:
            self._txt_cache = {t: self._txt_cache[t] for t in texts}
        return np.stack([self._txt_cache[t] for t in texts])

    # -- binding / calibration ----------------------------------------------------------------
    def bind(self, env: Any) -> None:
        """Attach to ``env``; for recognition without a fixed threshold, calibrate one on the train split."""
        super().bind(env)
        self.dataset = getattr(self.env, "dataset", None)
        self._active_threshold = self.threshold
        if self.role == "recognition" and self.threshold is None:
            self._active_threshold = self._calibrated_threshold(env) if self.calibrate else 0.5

    def _calibrated_threshold(self, env: Any) -> float:
        spec = getattr(self.env, "spec", None) or getattr(env, "spec", None)
        if spec is None:
            raise ValueError("clip recognition calibration needs an env built by gym.make (env.spec); "
                             "pass threshold=<float> or calibrate=False")
        kwargs = {k: v for k, v in dict(spec.kwargs).items() if k != "seed"}
        key = json.dumps({"id": spec.id, "kw": kwargs, "cfg": self.config}, sort_keys=True, default=str)
        if key in _CALIBRATION_CACHE:
            return _CALIBRATION_CACHE[key]
        import gymnasium as gym

        cal = gym.make(spec.id, **{**kwargs, "split": "train", "seed": 0, "action_mode": "text"})
        try:
            n = min(self.calibration_episodes, int(cal.unwrapped.num_episodes))
            sims, labels = [], []
            for i in range(n):
                obs, info = cal.reset(options={"episode_id": i})
                sims.append(self._recognition_similarity(obs))
                labels.append(bool(info["positive"]))
        finally:
            cal.close()
        thr = best_threshold(np.asarray(sims), np.asarray(labels))
        _CALIBRATION_CACHE[key] = thr
        return thr

    def _recognition_similarity(self, obs: Mapping[str, Any]) -> float:
        refs = np.asarray(obs["reference"])
        embs = self.embed_arrays([*refs, np.asarray(obs["query"])])
        proto = embs[:-1].mean(axis=0)
        proto /= max(float(np.linalg.norm(proto)), 1e-12)
        return float(embs[-1] @ proto)

    # -- acting ------------------------------------------------------------------------------------
    def act(self, observation: dict[str, Any], info: dict[str, Any] | None = None) -> Any:
        """One answer from CLIP similarities (text, or the index in index mode)."""
        if self.role is None:
            raise RuntimeError("ClipAgent.act called before bind(env)")
        role = self.role
        if role == "speaker":
            if self.action_mode == "index":
                raise NotImplementedError("the clip speaker produces text; use action_mode='text'")
            return self._speak(observation)
        if role == "listener":
            cands = list(np.asarray(observation["candidates"]))
            img = self.embed_arrays(cands)
            txt = self.embed_texts([str(observation.get("description", ""))])[0]
            idx = int(np.argmax(img @ txt))
        elif role == "recognition":
            idx = int(self._recognition_similarity(observation) >= float(self._active_threshold))
        elif role == "vqa":
            opts = option_lines(str(observation.get("options", "")))
            if not opts:
                raise ValueError(f"vqa observation has no parsable options: {observation.get('options')!r}")
            q = str(observation.get("question", ""))
            img = self.embed_arrays([np.asarray(observation["image"])])[0]
            idx = int(np.argmax(self.embed_texts([f"{q} {t}" for _, t in opts]) @ img))
        elif role == "identification":
            idx = self._identify(observation, info)
        else:
            raise ValueError(f"clip agent cannot play role {role!r}")
        if self.action_mode == "index":
            return idx
        return answer_text(role, idx) if role != "vqa" else LETTERS[idx]

    def _identify(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None) -> int:
        entries = option_lines(str(obs.get("database", "")))
        if not entries:
            raise ValueError(f"identification observation has no parsable database: {obs.get('database')!r}")
        q = self.embed_arrays([np.asarray(obs["query"])])[0]
        scores = self.text_weight * (self.embed_texts([t for _, t in entries]) @ q)
        ids = (info or {}).get("candidate_ids")
        if ids is not None and self.dataset is not None and len(ids) == len(entries):
            size = int(np.asarray(obs["query"]).shape[0])
            protos = []
            for cid in ids:
                refs = self.dataset.concept(cid).reference or self.dataset.concept(cid).images
                e = self.embed_arrays([r.load(size) for r in refs]).mean(axis=0)
                protos.append(e / max(float(np.linalg.norm(e)), 1e-12))
            scores = scores + np.stack(protos) @ q
        return int(np.argmax(scores))

    def _speak(self, obs: Mapping[str, Any]) -> str:
        """Zero-shot attribute classification of the target image, rendered like the template speaker."""
        from baselines.rule import _template

        img = self.embed_arrays([np.asarray(obs["image"])])[0]
        vocab = self.dataset.attribute_values() if self.dataset is not None else {}
        attrs: dict[str, str] = {}
        for key, values in vocab.items():
            texts = [f"a photo of a {v} object" if key != "mark" else f"an object with a {v} mark" for v in values]
            attrs[key] = values[int(np.argmax(self.embed_texts(texts) @ img))]
        cats = sorted(self.dataset.categories()) if self.dataset is not None else ["object"]
        cat = cats[int(np.argmax(self.embed_texts([f"a photo of a {c}" for c in cats]) @ img))]
        return _template(cat, attrs)

    def act_batch(self, observations: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]] | None = None) -> list[Any]:
        """Answers for many observations (images are embedded once and memoised)."""
        infos = list(infos) if infos is not None else [None] * len(observations)
        return [self.act(o, i) for o, i in zip(observations, infos)]


def best_threshold(sims: np.ndarray, positive: np.ndarray) -> float:
    """The similarity threshold (midpoint between sorted values) maximising weighted (pos+neg)/2 accuracy."""
    sims = np.asarray(sims, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    if sims.shape != positive.shape or sims.size == 0:
        raise ValueError(f"need equally long non-empty sims and labels, got {sims.shape} and {positive.shape}")
    s = np.unique(sims)
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    best, best_acc = float(cands[0]), -1.0
    for t in cands:
        pred = sims >= t
        pos = pred[positive].mean() if positive.any() else np.nan
        neg = (~pred[~positive]).mean() if (~positive).any() else np.nan
        acc = float(np.nanmean([pos, neg]))
        if acc > best_acc:
            best, best_acc = float(t), acc
    return best
