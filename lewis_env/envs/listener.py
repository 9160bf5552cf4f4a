"""LewisListener-v0: the agent reads a description of the target and picks it among K candidate images."""

from __future__ import annotations

from typing import Any

from lewis_env.descriptions import DescriptionSource, DescriptionSpec, default_description_spec
from lewis_env.envs.game import LewisGameEnv
from lewis_env.envs.spaces import sanitize_text
from lewis_env.episodes import Episode
from lewis_env.parsing import LETTERS
from lewis_env.tasks.builtin import LISTENER


class LewisListenerEnv(LewisGameEnv):
    """The agent is the listener: ``Discrete(K)`` in index mode, a letter/number answer in text mode."""

    task = LISTENER

    def __init__(self, *args: Any, descriptions: DescriptionSpec | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.descriptions = DescriptionSource(descriptions or default_description_spec(self.dataset), self.dataset)
        self._build_spaces()

    def _question(self) -> str:
        return (f"Which of the {self.k} images shows the object described? Answer with its letter "
                f"(A-{LETTERS[self.k - 1]}).")

    def _make_obs(self, ep: Episode) -> dict[str, Any]:
        desc = self.descriptions(self.dataset.concept(ep.target_concept))
        return {"description": sanitize_text(desc), "candidates": self.load_images(ep.candidates),
                "question": ep.question}

    def _task_info(self, ep: Episode) -> dict[str, Any]:
        return {"description": self.descriptions(self.dataset.concept(ep.target_concept))}
