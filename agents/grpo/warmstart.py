"""Warm starts of a randomly initialised policy: stand-ins for the pretraining a real Qwen-VL already has.

- **Vocabulary** (speaker, listener format): a real checkpoint already names colours and says yes/no; the tiny
  random model emits byte noise, so GRPO would have to discover the words by chance and then collapses onto the
  first one it finds. This fits the model's first completion token on the training prompts to the uniform
  distribution over ``words``, the same target for every prompt: no image -> word information, so whatever
  mapping the model ends up with is learned by GRPO alone.
- **Grounding** (tiny listener): the listener's decision, "does this description match this image", is a
  comparison of two features (the colour in the image, the colour in the text); neither alone says anything
  about the answer (balanced rows), so from random weights the gradient of any loss on it vanishes to first
  order and even supervised training sits at chance (docs/ARCHITECTURE.md). A pretrained VLM can already read a
  word and name what it sees; this gives the tiny model those two skills on the TRAINING split, in prompts of
  their own: *name* the attribute of a candidate image (its ground-truth value; a captioning stand-in) and
  *read* which attribute word a description names (the word in the text itself, no label). It never sees the
  yes/no pair prompt, a distractor or a match label: the matching is left to GRPO.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def word_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """The single-token id of ``" " + word`` for each word; a word spanning several tokens is an error."""
    ids = []
    for w in words:
        toks = tokenizer.encode(" " + str(w).strip(), add_special_tokens=False)
        if len(toks) != 1:
            raise ValueError(f"warm-start word {w!r} is {len(toks)} tokens in this tokenizer; use single-token words")
        ids.append(int(toks[0]))
    if len(set(ids)) != len(ids):
        raise ValueError(f"warm-start words map to duplicate tokens: {list(words)}")
    return ids


def _fit_first_token(model: Any, processor: Any, rows: Sequence[dict[str, Any]], steps: int, learning_rate: float,
                     batch_size: int, seed: int, loss_fn: Any) -> tuple[float, Any]:
    """Adam on ``loss_fn(first-completion-token log-probs, batch rows)``; returns the last loss and log-probs."""
    import torch
    from trl.data_utils import prepare_multimodal_messages

    tok = getattr(processor, "tokenizer", processor)
    old_side = tok.padding_side
    tok.padding_side = "left"  # the last position is the first completion token's context for every row
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    loss_v, logp = float("nan"), None
    try:
        for _ in range(int(steps)):
            batch = [rows[int(i)] for i in rng.integers(len(rows), size=min(batch_size, len(rows)))]
            texts = [processor.apply_chat_template(prepare_multimodal_messages(r["prompt"], images=r["images"]),
                                                   tokenize=False, add_generation_prompt=True) for r in batch]
            images = [r["images"] for r in batch if r["images"]]
            inputs = processor(text=texts, images=images or None, return_tensors="pt", padding=True)
            inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}
            logp = torch.log_softmax(model(**inputs).logits[:, -1].float(), dim=-1)
            loss = loss_fn(logp, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_v, logp = float(loss.detach()), logp.detach()
    finally:
        tok.padding_side = old_side
    return loss_v, logp


def vocabulary_warm_start(model: Any, processor: Any, rows: Sequence[dict[str, Any]], words: Sequence[str],
                          steps: int = 60, learning_rate: float = 3e-3, batch_size: int = 16,
                          seed: int = 0) -> dict[str, float]:
    """Train the first completion token towards a uniform choice of ``words`` on ``rows`` (prompt + images).

    Returns the final loss and the probability mass the model puts on ``words`` (averaged over a batch).
    """
    import torch

    if not words:
        raise ValueError("vocabulary_warm_start needs at least one word")
    if not rows:
        raise ValueError("vocabulary_warm_start needs at least one prompt row")
    targets = torch.tensor(word_token_ids(getattr(processor, "tokenizer", processor), words))

    def uniform(logp: Any, _batch: Any) -> Any:  # cross-entropy to the uniform distribution over the words
        return -logp[:, targets.to(logp.device)].mean()

    loss_v, logp = _fit_first_token(model, processor, rows, steps, learning_rate, batch_size, seed, uniform)
    mass = float(logp[:, targets.to(logp.device)].exp().sum(-1).mean()) if logp is not None else 0.0
    return {"loss": loss_v, "word_mass": mass, "steps": int(steps)}


#: The two prompts of the grounding warm start ({attribute}: e.g. "color").
NAME_QUESTION = "What {attribute} is it?"
READ_QUESTION = "Description: {description}\nWhich {attribute} does the description name?"


def grounding_rows(env: Any, episode_ids: Sequence[int], attribute: str, max_rows: int = 512,
                   seed: int = 0, descriptions: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, words) of the grounding warm start over the TRAINING episodes ``episode_ids`` of a listener env.

    Naming rows: one candidate image + ``NAME_QUESTION``, target = that image's ground-truth ``attribute``.
    Reading rows: the episode's description alone + ``READ_QUESTION``, target = the one attribute word the
    description contains (read off the text; a description naming none or several is skipped). Equal numbers
    of each, seeded; ``words`` = the attribute values seen (each must be a single token). ``descriptions``:
    more texts to read besides the env's (self-play: the current speaker's words, the listener's real input).
    """
    import re

    from agents.grpo.pairs import _pil

    u = env.unwrapped
    rng = np.random.default_rng(seed)
    names: list[tuple[Any, str]] = []
    seen_keys: set[str] = set()
    for i in episode_ids:
        for ref in u.episode(int(i)).candidates:
            concept_attrs = u.dataset.concept(ref.concept_id).attributes
            value = ref.attributes.get(attribute) or concept_attrs.get(attribute)
            if value:
                names.append((ref, str(value)))
            else:
                seen_keys.update(k for a in (ref.attributes, concept_attrs) for k, v in a.items() if v)
    if not names:
        from agents.grpo.config import ConfigError, _near

        raise ConfigError(f"train.warm_start.grounding: no candidate image has a ground-truth {attribute!r} "
                          f"attribute{_near(attribute, sorted(seen_keys))} (synthetic data has one; set "
                          f"train.warm_start.grounding=null for other data)")
    words = sorted({v for _, v in names})
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    texts = [str(env.reset(options={"episode_id": int(i)})[0]["description"]) for i in episode_ids]
    reads = []
    for text in [*texts, *map(str, descriptions)]:
        found = {m.lower() for m in pattern.findall(text)}
        if len(found) == 1:
            reads.append((text.strip(), found.pop()))
    n = min(max_rows // 2, len(names), len(reads) or len(names))
    rows = []
    for j in rng.choice(len(names), size=n, replace=False):
        ref, value = names[int(j)]
        rows.append({"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text":
                                 NAME_QUESTION.format(attribute=attribute)}]}],
                     "images": [_pil(u.load_image(ref))], "target": value.lower()})
    for j in rng.choice(len(reads), size=min(n, len(reads)), replace=False) if reads else []:
        description, value = reads[int(j)]
        rows.append({"prompt": [{"role": "user", "content": [{"type": "text", "text":
                                 READ_QUESTION.format(description=description, attribute=attribute)}]}],
                     "images": [], "target": value})
    return rows, [w.lower() for w in words]


def grounding_warm_start(model: Any, processor: Any, rows: Sequence[dict[str, Any]], words: Sequence[str],
                         steps: int = 150, learning_rate: float = 1e-3, batch_size: int = 16,
                         seed: int = 0) -> dict[str, float]:
    """Fit the first completion token of each ``grounding_rows`` row to its target word (cross-entropy).

    Returns the final loss and the share of rows (in the last batch) whose most likely word is the target.
    """
    import torch

    if not rows:
        raise ValueError("grounding_warm_start needs at least one row")
    ids = dict(zip(words, word_token_ids(getattr(processor, "tokenizer", processor), words)))

    def cross_entropy(logp: Any, batch: Any) -> Any:
        target = torch.tensor([ids[r["target"]] for r in batch], device=logp.device)
        return torch.nn.functional.nll_loss(logp, target)

    loss_v, _logp = _fit_first_token(model, processor, rows, steps, learning_rate, batch_size, seed, cross_entropy)
    return {"loss": loss_v, "steps": int(steps)}


def warm_start(model: Any, processor: Any, rows: Sequence[dict[str, Any]], warm: dict[str, Any] | None, seed: int,
               env: Any = None, episode_ids: Sequence[int] = (), what: str = "policy",
               verbose: bool = True, descriptions: Sequence[str] = ()) -> dict[str, Any]:
    """Run the warm starts a ``train.warm_start`` node asks for: grounding (needs ``env`` + training
    ``episode_ids``; also reads ``descriptions``), then vocabulary over ``rows``; prints what each did."""
    warm = warm or {}
    out: dict[str, Any] = {}
    if warm.get("grounding"):
        if env is None:
            raise ValueError(f"{what}: the grounding warm start needs the listener env and its training episodes")
        g_rows, g_words = grounding_rows(env, episode_ids, str(warm["grounding"]), seed=seed,
                                         descriptions=descriptions)
        out["grounding"] = grounding_warm_start(model, processor, g_rows, g_words, int(warm.get("grounding_steps", 150)),
                                                float(warm.get("grounding_learning_rate", 1e-3)), seed=seed)
        if verbose:
            print(f"[lewis-train] {what} grounding warm start ({out['grounding']['steps']} steps on {len(g_rows)} "
                  f"training rows: name the {warm['grounding']} of an image, read it in a description; no yes/no, "
                  f"no match label): loss {out['grounding']['loss']:.3f}", flush=True)
    if warm.get("words") and int(warm.get("steps", 60)) > 0:
        out["vocabulary"] = vocabulary_warm_start(model, processor, list(rows)[: int(warm.get("max_prompts", 256))],
                                                  list(warm["words"]), int(warm.get("steps", 60)),
                                                  float(warm.get("learning_rate", 3e-3)), seed=seed)
        if verbose:
            print(f"[lewis-train] {what} vocabulary warm start ({out['vocabulary']['steps']} steps, the same uniform "
                  f"target for every prompt: no information): mass on {list(warm['words'])} "
                  f"{out['vocabulary']['word_mass']:.2f}", flush=True)
    return out
