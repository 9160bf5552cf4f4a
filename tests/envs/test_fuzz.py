"""Property test: arbitrary strings thrown at every text env never crash step or score_batch."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.envs.conftest import ROLES

ANSWERISH = st.sampled_from(["A", "b", "3", "yes", "No", "Answer: C", '{"Answer": "yes"}', "<coarse>", "</detailed>",
                             "<thinking>", "{", "option 9", "\x00", "é", "\n"])
TEXTS = st.one_of(st.text(max_size=200), st.lists(st.one_of(ANSWERISH, st.text(max_size=8)), max_size=12).map("".join))


@pytest.mark.parametrize("role", ROLES)
def test_arbitrary_text_actions_never_crash(make_env, role: str) -> None:
    env = make_env(role, num_episodes=8)
    base = env.unwrapped

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=TEXTS, episode=st.integers(0, 7))
    def check(text: str, episode: int) -> None:
        env.reset(options={"episode_id": episode})
        _, reward, terminated, _, info = env.step(text)
        assert terminated and math.isfinite(reward)
        assert (info["parse_error"] is None) == (info["parsed"] is not None)
        if info["parse_error"] is not None:
            assert reward == 0.0 and not info["correct"]
        rewards, _ = base.score_batch([episode, episode], [text, text])
        assert rewards.tolist() == [reward, reward]

    check()
