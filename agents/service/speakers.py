"""Speakers the service can host: anything with ``describe_batch``, or a speaker-role Agent adapted to it."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable

from PIL import Image

DEFAULT_SPEAKER_INSTRUCTION = (
    "Describe the object in the image so that someone could pick it out among similar objects of the "
    "same kind. Answer as <thinking>...</thinking><coarse>...</coarse><detailed>...</detailed>."
)


@runtime_checkable
class Speaker(Protocol):
    """Anything that describes images: one text per PIL image, in order."""

    def describe_batch(self, images: Sequence[Image.Image]) -> list[str]:
        """Describe each image (the raw completion, tags and all)."""
        ...


class AgentSpeaker:
    """Adapts a registered speaker-role ``Agent`` (``act_batch`` on observations) to ``describe_batch``."""

    def __init__(
        self, agent: Any, instruction: str = DEFAULT_SPEAKER_INSTRUCTION, image_size: int = 224
    ) -> None:
        if not hasattr(agent, "act_batch"):
            raise TypeError(f"speaker agent must have act_batch, got {type(agent).__name__}")
        self.agent = agent
        self.instruction = instruction
        self.image_size = int(image_size)
        self.name = str(getattr(agent, "name", type(agent).__name__))
        # A stand-in env: agents learn their role from ``env.unwrapped.role`` when bound.
        stub = SimpleNamespace(role="speaker", action_mode="text", dataset=None)
        stub.unwrapped = stub
        if hasattr(agent, "bind"):
            agent.bind(stub)

    def describe_batch(self, images: Sequence[Image.Image]) -> list[str]:
        """Turn each image into a speaker observation and return the agent's text actions."""
        import numpy as np

        obs = []
        for im in images:
            im = im.convert("RGB")
            if im.size != (self.image_size, self.image_size):
                im = im.resize((self.image_size, self.image_size), Image.BILINEAR)
            obs.append({"image": np.asarray(im, dtype=np.uint8), "instruction": self.instruction})
        return [str(a) for a in self.agent.act_batch(obs)]


def as_speaker(speaker: Any) -> Speaker | None:
    """A speaker object from a ``describe_batch`` object, a speaker-role Agent, or an agent registry name."""
    if speaker is None:
        return None
    if isinstance(speaker, str):
        from agents.registry import make

        speaker = make(speaker)
    if hasattr(speaker, "describe_batch"):
        return speaker
    if hasattr(speaker, "act_batch"):
        return AgentSpeaker(speaker)
    raise TypeError(
        f"speaker must have describe_batch or be an Agent with act_batch, got {type(speaker).__name__}"
    )
