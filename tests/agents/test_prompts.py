"""Prompt builders: one image placeholder per returned image, role-specific text, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from agents.qwen.prompts import (
    DESCRIPTION_MARKER,
    build_messages,
    listener_pair_messages,
    option_letters,
    to_pil,
)

S = 32


def _img(v: int) -> np.ndarray:
    return np.full((S, S, 3), v, dtype=np.uint8)


def _placeholders(msgs) -> int:
    return sum(1 for m in msgs for c in m["content"] if c["type"] == "image")


def _text(msgs) -> str:
    return " ".join(c["text"] for m in msgs for c in m["content"] if c["type"] == "text")


def test_speaker_prompt_asks_for_the_three_tags_and_keeps_image_order():
    obs = {"image": _img(10), "instruction": "Describe the object so a listener can find it."}
    msgs, imgs = build_messages("speaker", obs, object_name="mug")
    assert _placeholders(msgs) == len(imgs) == 1
    t = _text(msgs)
    assert "Describe the object so a listener can find it." in t
    assert all(tag in t for tag in ("<thinking>", "<coarse>", "<detailed>"))
    obs["distractors"] = np.stack([_img(20), _img(30)])
    msgs, imgs = build_messages("speaker", obs)
    assert _placeholders(msgs) == len(imgs) == 3
    assert [np.asarray(i)[0, 0, 0] for i in imgs] == [10, 20, 30]  # target first


def test_unstructured_speaker_prompt_is_the_instruction_alone():
    obs = {"image": _img(10), "instruction": "What colour is it?"}
    msgs, _ = build_messages("speaker", obs, structured=False)
    assert _text(msgs) == "What colour is it?"


def test_listener_text_mode_labels_candidates():
    obs = {"description": "a red mug", "candidates": np.stack([_img(1), _img(2), _img(3)]), "question": "?"}
    msgs, imgs = build_messages("listener", obs, object_name="mug")
    assert len(imgs) == _placeholders(msgs) == 3
    t = _text(msgs)
    assert "Image A:" in t and "Image C:" in t and "Image D:" not in t and "a red mug" in t


def test_pair_prompt_has_the_reference_wording():
    msgs = listener_pair_messages("  a red mug ", object_name="mug")
    t = _text(msgs)
    assert t == f"Does the description match the mug in the image? {DESCRIPTION_MARKER} a red mug\nAnswer yes or no."
    assert msgs[0]["content"][0] == {"type": "image"}


def test_recognition_vqa_identification():
    ref = np.stack([_img(1), _img(2)])
    msgs, imgs = build_messages("recognition", {"reference": ref, "query": _img(9), "description": "my mug",
                                                "question": "Is this my mug?"})
    assert len(imgs) == _placeholders(msgs) == 3 and np.asarray(imgs[-1])[0, 0, 0] == 9
    assert "yes or no" in _text(msgs).lower() and "my mug" in _text(msgs)
    msgs, imgs = build_messages("vqa", {"image": _img(5), "reference": ref, "question": "What colour?",
                                        "options": "A. red\nB. blue"})
    assert len(imgs) == 3 and "A. red" in _text(msgs) and np.asarray(imgs[-1])[0, 0, 0] == 5
    msgs, imgs = build_messages("vqa", {"image": _img(5), "reference": ref, "question": "Q", "options": "A. x"},
                                use_reference=False)
    assert len(imgs) == 1
    msgs, imgs = build_messages("identification", {"query": _img(4), "database": "A. <mug-1>: red\nB. <mug-2>: blue",
                                                   "question": "Which one?"})
    assert len(imgs) == 1 and "<mug-2>" in _text(msgs)
    assert option_letters("A. <mug-1>: red\nB. <mug-2>: blue\nnot an option") == ["A", "B"]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown role 'painter'"):
        build_messages("painter", {})
    with pytest.raises(KeyError, match="candidates"):
        build_messages("listener", {"description": "x"})
    with pytest.raises(ValueError, match="shape"):
        to_pil(np.zeros((4, 4)))
    assert isinstance(to_pil(_img(0)), Image.Image)


def test_registering_qwen_vl_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, agents; names = agents.list_agents(); import agents.qwen.prompts; "
            "print('qwen-vl' in names, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
