"""One speaker-output parser everywhere: ``/describe`` and the speaker env split the same completions alike."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import httpx
import pytest

import lewis_env  # noqa: F401  (registers the env ids)
from agents.service import create_app
from lewis_env.parsing import split_speaker_output
from lewis_env.wire import DescribeResult, from_wire
from tests.agents.serve_helpers import LiveServer, write_color_images

#: Tagged completions where the old /describe parser and the env disagreed, and ordinary ones.
COMPLETIONS = [
    "<thinking>hmm</thinking><coarse>A mug</coarse><detailed>It is red.</detailed>",
    "<think>a reasoning model's block</think><coarse>a blue ball</coarse><detailed>Dotted.</detailed>",
    "<coarse>a red mug",  # unclosed: not a tag for the env either
    "<think>only thinking, then</think> a plain green hat",
    "<thinking>never closed, the rest is thinking",
    "  <COARSE>Upper-case tags</COARSE>\n<detailed> spaced   out </detailed>  ",
    "no tags at all, just words",
    "<thinking>x</thinking><detailed>only detailed</detailed>",
    "",
]


class ScriptedSpeaker:
    """Answers each image with the next completion of a script (in order)."""

    name = "scripted"

    def __init__(self, script: Sequence[str]) -> None:
        self.script, self.i = list(script), 0

    def describe_batch(self, images):
        out = []
        for _ in images:
            out.append(self.script[self.i % len(self.script)])
            self.i += 1
        return out


class RecordingListener:
    """Records the descriptions the env hands it; picks candidate 0."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def choose(self, description, candidates):
        return self.choose_batch([description], [candidates])[0]

    def choose_batch(self, descriptions, candidates):
        self.seen.extend(descriptions)
        return [(0, [1.0] + [0.0] * (len(c) - 1)) for c in candidates]


def test_describe_and_the_env_give_identical_descriptions(tmp_path):
    img = write_color_images(tmp_path / "imgs")["red"]
    app = create_app(speaker=ScriptedSpeaker(COMPLETIONS), allowed_roots=[tmp_path], batch_size=3)
    with LiveServer(app) as srv:
        body = httpx.post(srv.url + "/batch_describe",
                          json={"batch": [{"image_path": str(img)} for _ in COMPLETIONS]}, timeout=30).json()
    served = [from_wire(DescribeResult, r) for r in body["results"]]
    assert [r.text for r in served] == COMPLETIONS

    listener = RecordingListener()
    env = gym.make("lewis_env/LewisSpeaker-v0", listener=listener, split="all", k=4, image_size=32, seed=0,
                   dataset={"kind": "synthetic", "num_concepts": 8, "images_per_concept": 3,
                            "num_reference": 1, "image_size": 32, "seed": 0})
    try:
        infos = []
        for i, text in enumerate(COMPLETIONS):
            env.reset(options={"episode_id": i})
            _, _, _, _, info = env.step(text)
            infos.append(info)
    finally:
        env.close()
    # what the env's listener read == what /describe says the listener would read, completion by completion
    assert listener.seen == [r.description for r in served]
    assert [i["description"] for i in infos] == [r.description for r in served]
    # and the other parts come from the same parser
    for r in served:
        assert vars(r) == {"text": r.text, **split_speaker_output(r.text)}


@pytest.mark.parametrize("text,expected", [
    ("<thinking>hmm</thinking><coarse>A mug</coarse><detailed>It is red.</detailed>",
     {"thinking": "hmm", "coarse": "A mug", "detailed": "It is red.", "description": "A mug It is red."}),
    ("<think>r</think> a red mug with dots",
     {"thinking": "r", "coarse": None, "detailed": None, "description": "a red mug with dots"}),
    ("<coarse>a red mug",  # unclosed tags are not tags (the old /describe parser said coarse="a red mug")
     {"thinking": None, "coarse": None, "detailed": None, "description": "<coarse>a red mug"}),
])
def test_split_speaker_output(text, expected):
    assert split_speaker_output(text) == expected
