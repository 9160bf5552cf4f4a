"""Model-based state/location evaluation and refinement: ask any agent that can generate text.

An agent qualifies when it has ``generate(messages_list, images_list) -> list[str]`` (chat messages in
the transformers format; e.g. ``qwen-vl``). Its yes/no answers are parsed with ``lewis_env.parsing``; an
unparseable answer is recorded as None and counted, never replaced by the rule evaluator's verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lewis_env.parsing import extract_description, parse_yes_no

DEFINITIONS = {
    "state": ("A state is how the object happens to be in this one photo: its posture or activity (sitting, "
              "running), what it wears or holds, whether it is open/closed, on/off, wet or dirty."),
    "location": ("A location is where the object is or what surrounds it: the room, the furniture or surface it "
                 "is on, its position in the frame, the background, nearby objects."),
}
EVALUATE_PROMPT = ("{definition}\nDoes the following description of an object mention the object's {what}?\n"
                   "Description: {text}\nAnswer with Yes or No.")
REFINE_PROMPT = ("{definitions}\nRewrite the following description of an object so that it no longer mentions "
                 "the object's {what}. Keep every other detail and the original wording.\n"
                 "Description: {text}\nAnswer with the rewritten description only.")


class AgentJudge:
    """State/location evaluator and refiner backed by an agent's text generation."""

    def __init__(self, agent: Any, name: str | None = None) -> None:
        if not callable(getattr(agent, "generate", None)):
            raise TypeError(f"agent {getattr(agent, 'name', type(agent).__name__)!r} cannot generate text: the "
                            f"model-based evaluator needs an agent with generate(messages_list, images_list), "
                            f"e.g. qwen-vl")
        self.agent = agent
        self.name = name or str(getattr(agent, "name", type(agent).__name__))

    def _ask(self, prompts: Sequence[str]) -> list[str]:
        msgs = [[{"role": "user", "content": [{"type": "text", "text": p}]}] for p in prompts]
        out = list(self.agent.generate(msgs, [[] for _ in prompts]))
        if len(out) != len(prompts):
            raise RuntimeError(f"agent {self.name!r} returned {len(out)} answers for {len(prompts)} prompts")
        return out

    def evaluate(self, texts: Sequence[str]) -> list[dict[str, bool | None]]:
        """Per text: ``has_state`` / ``has_location`` from the agent's yes/no answers (None when unparseable)."""
        result: list[dict[str, bool | None]] = [{} for _ in texts]
        for what in ("state", "location"):
            answers = self._ask([EVALUATE_PROMPT.format(definition=DEFINITIONS[what], what=what, text=t)
                                 for t in texts])
            for r, a in zip(result, answers):
                r[f"has_{what}"] = parse_yes_no(a)[0]
        return result

    def refine(self, texts: Sequence[str], mode: str) -> list[str]:
        """The agent's rewrite of each text without its state (``mode="state"``), location, or ``both``."""
        if mode not in ("state", "location", "both"):
            raise ValueError(f"refine mode must be 'state', 'location' or 'both', got {mode!r}")
        whats = ["state", "location"] if mode == "both" else [mode]
        defs = " ".join(DEFINITIONS[w] for w in whats)
        answers = self._ask([REFINE_PROMPT.format(definitions=defs, what=" or ".join(whats), text=t) for t in texts])
        return [extract_description(a) for a in answers]


def make_judge(agent_name: str, **kwargs: Any) -> AgentJudge:
    """An ``AgentJudge`` over a registered agent (resolved at run time through ``agents.registry:make``)."""
    from lewis_env.imports import import_object

    make = import_object("agents.registry:make", "agent registry")
    return AgentJudge(make(agent_name, **kwargs), name=agent_name)


__all__ = ["AgentJudge", "DEFINITIONS", "EVALUATE_PROMPT", "REFINE_PROMPT", "make_judge"]
