"""Listener scoring: P("Yes") that a description matches an image, naive or with a shared image prefix.

The reference listener asks, for each (description, candidate image) pair, "Does the description match
the <object> in the image? ... Answer yes or no." and reads P(Yes) = softmax over the "Yes"/"No" logits at
the answer position. Scoring G descriptions against K candidates naively costs G×K full forwards, each
re-encoding the image. The shared-prefix path runs the prompt up to the description once per distinct
image (vision tower + image tokens, ``use_cache=True``), then scores all descriptions of that image by
continuing from a batch-expanded copy of the KV cache, with explicit M-RoPE position ids.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.qwen.prompts import DESCRIPTION_MARKER, listener_pair_messages, to_pil
from agents.qwen.vision import fit_image

#: Answer-token spellings folded into the "Yes" and "No" classes (only those that are single tokens count).
YES_VARIANTS: tuple[str, ...] = ("Yes", " Yes", "yes", " yes", "YES")
NO_VARIANTS: tuple[str, ...] = ("No", " No", "no", " no", "NO")
METHODS = ("shared", "naive")


def answer_token_ids(tokenizer: Any, variants: Sequence[str]) -> list[int]:
    """Ids of the variants that the tokenizer encodes as one token (deduplicated, in order)."""
    ids: list[int] = []
    for v in variants:
        enc = tokenizer.encode(v, add_special_tokens=False)
        if len(enc) == 1 and enc[0] not in ids:
            ids.append(int(enc[0]))
    if not ids:
        raise ValueError(f"tokenizer has no single-token spelling of any of {list(variants)}")
    return ids


def yes_probability_from_logits(logits: Any, yes_ids: Sequence[int], no_ids: Sequence[int]) -> Any:
    """P(Yes) from next-token logits (..., V): softmax over the two classes, each a logsumexp of its variants."""
    import torch

    logits = logits.float()
    yes = torch.logsumexp(logits[..., list(yes_ids)], dim=-1)
    no = torch.logsumexp(logits[..., list(no_ids)], dim=-1)
    return torch.sigmoid(yes - no)


def _image_key(image: Any) -> str:
    """A content key for grouping identical candidate images (path for ImageRefs, pixel hash otherwise)."""
    path = getattr(image, "path", None)
    if path is not None and hasattr(image, "concept_id"):
        return f"path:{path}"
    if isinstance(image, str):
        return f"path:{image}"
    arr = np.asarray(to_pil(image))
    return "px:" + hashlib.blake2b(arr.tobytes() + str(arr.shape).encode(), digest_size=16).hexdigest()


def _rope_module(model: Any) -> Any:
    """The inner Qwen2-VL module that owns ``get_rope_index`` (works through peft wrappers)."""
    for module in model.modules():
        if hasattr(module, "get_rope_index") and hasattr(module, "language_model"):
            return module
    raise TypeError(f"{type(model).__name__} has no Qwen2-VL get_rope_index; shared-prefix scoring needs Qwen2-VL")


class YesNoScorer:
    """Scores (description, image) pairs by P("Yes") with one model; ``method`` picks naive or shared-prefix."""

    def __init__(self, model: Any, processor: Any, method: str = "shared", batch_size: int = 8,
                 object_name: str = "object") -> None:
        if method not in METHODS:
            raise ValueError(f"scoring method must be one of {METHODS}, got {method!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.processor = model, processor
        self.method, self.batch_size, self.object_name = method, int(batch_size), object_name
        tok = processor.tokenizer
        self.yes_ids = answer_token_ids(tok, YES_VARIANTS)
        self.no_ids = answer_token_ids(tok, NO_VARIANTS)

    # -- helpers ------------------------------------------------------------------------------
    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def _prompt_text(self, description: str, object_name: str | None) -> str:
        msgs = listener_pair_messages(description, object_name=object_name or self.object_name)
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def _to_device(self, batch: Any) -> dict[str, Any]:
        dtype = next(self.model.parameters()).dtype
        out = {}
        for k, v in batch.items():
            if hasattr(v, "to"):
                v = v.to(self.device)
                if k in ("pixel_values", "pixel_values_videos"):
                    v = v.to(dtype)
            out[k] = v
        return out

    # -- naive: one full forward per pair ------------------------------------------------------
    def _naive_pairs(self, pairs: Sequence[tuple[str, Any]], object_name: str | None) -> np.ndarray:
        import torch

        out = np.zeros(len(pairs), dtype=np.float64)
        tok = self.processor.tokenizer
        old_side = tok.padding_side
        tok.padding_side = "left"
        try:
            for s in range(0, len(pairs), self.batch_size):
                chunk = pairs[s:s + self.batch_size]
                texts = [self._prompt_text(d, object_name) for d, _ in chunk]
                images = [fit_image(to_pil(im), self.processor) for _, im in chunk]
                batch = self._to_device(self.processor(text=texts, images=images, return_tensors="pt",
                                                       padding=True))
                with torch.inference_mode():
                    logits = self.model(**batch, use_cache=False).logits[:, -1, :]
                out[s:s + len(chunk)] = yes_probability_from_logits(logits, self.yes_ids, self.no_ids).cpu().numpy()
        finally:
            tok.padding_side = old_side
        return out

    # -- shared prefix: one prefix forward per image, descriptions continue from its KV cache --
    def _split_prompt(self, description: str, object_name: str | None) -> tuple[str, str]:
        text = self._prompt_text(description, object_name)
        cut = text.index(DESCRIPTION_MARKER) + len(DESCRIPTION_MARKER)
        return text[:cut], text[cut:]

    def _shared_images(self, images: Sequence[Any], descriptions: Sequence[Sequence[str]],
                       object_name: str | None) -> list[np.ndarray]:
        """P(Yes) of ``descriptions[i]`` against ``images[i]``; all images must have the same pixel size.

        One batched prefix forward per ``batch_size`` images; then rows (image, description) of several
        images share each continuation forward, every row continuing from its own image's cached prefix.
        """
        import torch

        prefix_text, _ = self._split_prompt("x", object_name)
        tok = self.processor.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        rope = _rope_module(self.model)
        results = [np.zeros(len(d), dtype=np.float64) for d in descriptions]
        for s in range(0, len(images), self.batch_size):
            group = list(range(s, min(s + self.batch_size, len(images))))
            prefix = self._to_device(self.processor(text=[prefix_text] * len(group),
                                                    images=[fit_image(to_pil(images[i]), self.processor)
                                                            for i in group], return_tensors="pt"))
            with torch.inference_mode():
                pos, _ = rope.get_rope_index(prefix["input_ids"], image_grid_thw=prefix.get("image_grid_thw"),
                                             video_grid_thw=None, attention_mask=prefix["attention_mask"],
                                             mm_token_type_ids=prefix["mm_token_type_ids"])
                cache = self.model(**prefix, position_ids=pos, use_cache=True).past_key_values
            plen = prefix["input_ids"].shape[1]
            next_pos = pos.amax(dim=(0, 2)) + 1  # (n_images,): text after the prefix continues from here
            rows = [(g, j, tok.encode(self._split_prompt(d, object_name)[1], add_special_tokens=False))
                    for g, i in enumerate(group) for j, d in enumerate(descriptions[i])]
            for r in range(0, len(rows), self.batch_size):
                chunk = rows[r:r + self.batch_size]
                n, width = len(chunk), max(len(e) for _, _, e in chunk)
                ids = torch.full((n, width), pad_id, dtype=torch.long)
                mask = torch.zeros((n, plen + width), dtype=torch.long)
                mask[:, :plen] = 1
                for q, (_, _, e) in enumerate(chunk):  # right padding: real tokens never attend to later pads
                    ids[q, :len(e)] = torch.tensor(e, dtype=torch.long)
                    mask[q, plen:plen + len(e)] = 1
                src = torch.tensor([g for g, _, _ in chunk], device=next_pos.device)
                positions = (next_pos[src].view(1, n, 1) + torch.arange(width, device=next_pos.device)).expand(3, n, -1)
                kv = cache if r + self.batch_size >= len(rows) else copy.deepcopy(cache)
                kv.batch_select_indices(src)  # each row gets (a copy of) its image's prefix cache
                with torch.inference_mode():
                    logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                        position_ids=positions.to(self.device), past_key_values=kv,
                                        use_cache=True).logits
                last = torch.tensor([len(e) - 1 for _, _, e in chunk], device=logits.device)
                probs = yes_probability_from_logits(logits[torch.arange(n, device=logits.device), last],
                                                    self.yes_ids, self.no_ids).cpu().numpy()
                for (g, j, _), p in zip(chunk, probs):
                    results[group[g]][j] = p
        return results

    # -- public -------------------------------------------------------------------------------
    def pair_probabilities(self, pairs: Sequence[tuple[str, Any]], object_name: str | None = None) -> np.ndarray:
        """P(Yes) for each (description, image) pair, in order."""
        pairs = [(str(d).strip(), im) for d, im in pairs]
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        if self.method == "naive":
            return self._naive_pairs(pairs, object_name)
        groups: dict[str, tuple[Any, list[int]]] = {}  # distinct image -> the pairs that use it
        for i, (_, im) in enumerate(pairs):
            groups.setdefault(_image_key(im), (to_pil(im), []))[1].append(i)
        by_size: dict[tuple[int, int], list[tuple[Any, list[int]]]] = {}  # equal sizes batch their prefixes
        for im, idxs in groups.values():
            by_size.setdefault(im.size, []).append((im, idxs))
        out = np.zeros(len(pairs), dtype=np.float64)
        for items in by_size.values():
            probs = self._shared_images([im for im, _ in items], [[pairs[i][0] for i in idxs] for _, idxs in items],
                                        object_name)
            for (_, idxs), p in zip(items, probs):
                out[idxs] = p
        return out

    def yes_probabilities(self, descriptions: Sequence[str], images: Sequence[Any],
                          object_name: str | None = None) -> np.ndarray:
        """(len(descriptions), len(images)) matrix of P(Yes): every description against every image."""
        descriptions, images = list(descriptions), list(images)
        pairs = [(d, im) for d in descriptions for im in images]
        return self.pair_probabilities(pairs, object_name).reshape(len(descriptions), len(images))

    def score_candidates(self, descriptions: Sequence[str], candidate_lists: Sequence[Sequence[Any]],
                         object_names: Sequence[str | None] | None = None) -> list[list[float]]:
        """P(Yes) of each description against each of its own candidates (images shared across lists)."""
        if len(descriptions) != len(candidate_lists):
            raise ValueError(f"score_candidates got {len(descriptions)} descriptions but "
                             f"{len(candidate_lists)} candidate lists")
        names = list(object_names) if object_names is not None else [None] * len(descriptions)
        by_name: dict[str | None, list[tuple[int, int]]] = {}
        for i, cands in enumerate(candidate_lists):
            if len(cands) == 0:
                raise ValueError(f"candidate list {i} is empty")
            by_name.setdefault(names[i], []).extend((i, j) for j in range(len(cands)))
        scores = [[0.0] * len(c) for c in candidate_lists]
        for name, slots in by_name.items():
            probs = self.pair_probabilities([(descriptions[i], candidate_lists[i][j]) for i, j in slots], name)
            for (i, j), p in zip(slots, probs):
                scores[i][j] = float(p)
        return scores


def yes_probabilities(model: Any, processor: Any, descriptions: Sequence[str], images: Sequence[Any],
                      method: str = "shared", batch_size: int = 8, object_name: str = "object") -> np.ndarray:
    """(G, K) P(Yes) of G descriptions against K images; ``method`` "shared" (prefix KV reuse) or "naive"."""
    return YesNoScorer(model, processor, method=method, batch_size=batch_size,
                       object_name=object_name).yes_probabilities(descriptions, images)


def score_candidates(model: Any, processor: Any, descriptions: Sequence[str],
                     candidate_lists: Sequence[Sequence[Any]], method: str = "shared", batch_size: int = 8,
                     object_names: Sequence[str | None] | None = None) -> list[list[float]]:
    """P(Yes) of each description against each of its own candidates; identical images are encoded once."""
    return YesNoScorer(model, processor, method=method, batch_size=batch_size).score_candidates(
        descriptions, candidate_lists, object_names)
