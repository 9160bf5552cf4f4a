"""Chat prompts for every role: conversational messages with image placeholders, plus the PIL images.

Shared by QwenVLAgent, the listener scorer and the GRPO adapter, so training and evaluation see the
same prompts. Messages follow the transformers multimodal chat format
(``[{"role": "user", "content": [{"type": "image"}, ..., {"type": "text", "text": ...}]}]``);
images are returned separately, in placeholder order, ready for ``processor(text=..., images=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image

from lewis_env.parsing import LETTERS

#: The text right before the description in the listener pair prompt; the shared-prefix scorer cuts here.
DESCRIPTION_MARKER = "Description:"

SPEAKER_PROMPT = (
    "You are the speaker in a reference game. Describe the {object} in the image so that a listener can "
    "pick it out among other {object}s that look similar. First reason inside <thinking></thinking>, then "
    "give a short coarse description inside <coarse></coarse>, then one detailed sentence naming its "
    "distinguishing features inside <detailed></detailed>."
)
LISTENER_PAIR_PROMPT = "Does the description match the {object} in the image? " + DESCRIPTION_MARKER + \
    " {description}\nAnswer yes or no."
LISTENER_TEXT_PROMPT = (
    "Which image shows the described {object}? Description: {description}\n"
    "Answer with the letter of the image ({letters})."
)
RECOGNITION_PROMPT = "Is the {object} in the query image the same object as in the reference images? " \
    "Answer yes or no."
VQA_PROMPT = "{question}\nOptions:\n{options}\nAnswer with the letter of the correct option."
IDENTIFICATION_PROMPT = "{question}\nDatabase:\n{database}\nAnswer with the letter of the matching entry."


def to_pil(image: Any) -> Image.Image:
    """An RGB PIL image from a PIL image, an (H, W, 3) uint8 array, an ImageRef or a file path."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    if hasattr(image, "load") and hasattr(image, "concept_id"):  # lewis_env ImageRef
        return Image.fromarray(np.asarray(image.load(), dtype=np.uint8))
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        from lewis_env.data.images import load_pil

        return load_pil(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _stack(images: Any) -> list[Image.Image]:
    """A (N, H, W, 3) array or a list of images as PIL images."""
    if images is None:
        return []
    if isinstance(images, np.ndarray) and images.ndim == 3:
        return [to_pil(images)]
    return [to_pil(im) for im in images]


def _user(content: list[dict[str, Any]], system: str | None = None) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if system:
        msgs.append({"role": "system", "content": [{"type": "text", "text": system}]})
    msgs.append({"role": "user", "content": content})
    return msgs


def _need(observation: Mapping[str, Any], role: str, *keys: str) -> None:
    missing = [k for k in keys if k not in observation]
    if missing:
        raise KeyError(f"{role} observation lacks {missing}; it has {sorted(observation)}")


def listener_pair_messages(description: str, image: Any = None, object_name: str = "object") -> list[dict[str, Any]]:
    """The P(Yes) scoring prompt for one (description, image) pair; ``image`` is unused (placeholder only)."""
    text = LISTENER_PAIR_PROMPT.format(object=object_name, description=str(description).strip())
    return _user([{"type": "image"}, {"type": "text", "text": text}])


def speaker_messages(observation: Mapping[str, Any], object_name: str = "object", system: str | None = None,
                     structured: bool = True, **_: Any) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """Speaker: the target image (then distractors when the env shows them) and the structured-output prompt.

    ``structured=False`` sends the env's instruction alone (no tag-format request): for free-form games.
    """
    _need(observation, "speaker", "image")
    images = [to_pil(observation["image"])]
    content: list[dict[str, Any]] = [{"type": "image"}]
    distractors = _stack(observation.get("distractors"))
    if distractors:
        content = [{"type": "text", "text": "Target image:"}, {"type": "image"},
                   {"type": "text", "text": "Other images (do not describe these):"}]
        content += [{"type": "image"} for _ in distractors]
        images += distractors
    instruction = str(observation.get("instruction") or "").strip()
    text = instruction or SPEAKER_PROMPT.format(object=object_name)
    if instruction and structured and "<detailed>" not in instruction:
        text = instruction + "\n" + SPEAKER_PROMPT.format(object=object_name)
    content.append({"type": "text", "text": text})
    return _user(content, system), images


def listener_messages(observation: Mapping[str, Any], object_name: str = "object", mode: str = "text",
                      system: str | None = None, answer_style: str = "letter", description_first: bool = False,
                      **_: Any) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """Listener, text mode: all K candidates labelled in one prompt (score mode uses pair prompts).

    ``answer_style``: ``"letter"`` labels the candidates A, B, ... and asks for a letter; ``"index"`` labels them
    1, 2, ... and asks for a number (both parse with ``lewis_env.parsing.parse_choice``).
    ``description_first`` puts the description before the images, so (causal) image tokens can attend to it:
    the layout the tiny CPU listener learns fastest with.
    """
    _need(observation, "listener", "description", "candidates")
    if answer_style not in ("letter", "index"):
        raise ValueError(f"answer_style must be 'letter' or 'index', got {answer_style!r}")
    cands = _stack(observation["candidates"])
    labels = list(LETTERS[:len(cands)]) if answer_style == "letter" else [str(i + 1) for i in range(len(cands))]
    description = str(observation["description"]).strip()
    content: list[dict[str, Any]] = []
    if description_first:
        content.append({"type": "text", "text": f"Description: {description}"})
    for label in labels:
        content += [{"type": "text", "text": f"Image {label}:"}, {"type": "image"}]
    if description_first:
        what = "letter" if answer_style == "letter" else "number"
        text = f"Which image shows the described {object_name}? Answer with its {what} ({', '.join(labels)})."
    else:
        text = LISTENER_TEXT_PROMPT.format(object=object_name, description=description, letters=", ".join(labels))
        if answer_style == "index":
            text = text.replace("the letter of the image", "the number of the image")
    content.append({"type": "text", "text": text})
    return _user(content, system), cands


def recognition_messages(observation: Mapping[str, Any], object_name: str = "object", system: str | None = None,
                         **_: Any) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """Recognition: reference images, the optional description, the query image, a yes/no question."""
    _need(observation, "recognition", "reference", "query")
    refs = _stack(observation["reference"])
    content: list[dict[str, Any]] = [{"type": "text", "text": "Reference images:"}]
    content += [{"type": "image"} for _ in refs]
    desc = str(observation.get("description") or "").strip()
    if desc:
        content.append({"type": "text", "text": f"Description: {desc}"})
    content += [{"type": "text", "text": "Query image:"}, {"type": "image"}]
    question = str(observation.get("question") or "").strip() or RECOGNITION_PROMPT.format(object=object_name)
    if "yes or no" not in question.lower():
        question += " Answer yes or no."
    content.append({"type": "text", "text": question})
    return _user(content, system), [*refs, to_pil(observation["query"])]


def vqa_messages(observation: Mapping[str, Any], system: str | None = None, use_reference: bool = True,
                 **_: Any) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """VQA: (reference images,) the image, the question and its lettered options."""
    _need(observation, "vqa", "image", "question", "options")
    refs = _stack(observation.get("reference")) if use_reference else []
    content: list[dict[str, Any]] = []
    if refs:
        content.append({"type": "text", "text": "Reference images of the object:"})
        content += [{"type": "image"} for _ in refs]
        content.append({"type": "text", "text": "Image:"})
    content.append({"type": "image"})
    content.append({"type": "text", "text": VQA_PROMPT.format(question=str(observation["question"]).strip(),
                                                              options=str(observation["options"]).strip())})
    return _user(content, system), [*refs, to_pil(observation["image"])]


def identification_messages(observation: Mapping[str, Any], system: str | None = None,
                            **_: Any) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """Identification: the query image, the lettered database of named concepts, the question."""
    _need(observation, "identification", "query", "database")
    question = str(observation.get("question") or "Which of these personal objects is shown in the image?").strip()
    text = IDENTIFICATION_PROMPT.format(question=question, database=str(observation["database"]).strip())
    return _user([{"type": "image"}, {"type": "text", "text": text}], system), [to_pil(observation["query"])]


_BUILDERS: dict[str, Callable[..., tuple[list[dict[str, Any]], list[Image.Image]]]] = {
    "speaker": speaker_messages,
    "listener": listener_messages,
    "recognition": recognition_messages,
    "vqa": vqa_messages,
    "identification": identification_messages,
}


def build_messages(role: str, observation: Mapping[str, Any], **opts: Any) -> tuple[list[dict[str, Any]],
                                                                                    list[Image.Image]]:
    """Chat messages with ``{"type": "image"}`` placeholders and the PIL images in order, for ``role``."""
    if role not in _BUILDERS:
        raise ValueError(f"unknown role {role!r}; roles: {sorted(_BUILDERS)}")
    if not isinstance(observation, Mapping):
        raise TypeError(f"observation must be a dict, got {type(observation).__name__}")
    messages, images = _BUILDERS[role](observation, **opts)
    n_placeholders = sum(1 for m in messages for c in m["content"] if c.get("type") == "image")
    assert n_placeholders == len(images), (n_placeholders, len(images))
    return messages, images


def option_letters(text: str) -> list[str]:
    """The option letters of an ``"A. ...\\nB. ..."`` block, in order."""
    out = []
    for line in str(text).splitlines():
        line = line.strip()
        if len(line) >= 2 and line[0] in LETTERS and line[1] in ".):":
            out.append(line[0])
    return out
