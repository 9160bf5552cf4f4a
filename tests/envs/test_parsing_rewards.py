"""Answer parsing rules and speaker reward terms, against hand-computed cases."""

from __future__ import annotations

import pytest

from lewis_env.parsing import count_sentences, extract_description, parse_choice, parse_yes_no
from lewis_env.rewards import SpeakerReward, get_reward, list_rewards, register_reward, rouge2_f1


@pytest.mark.parametrize("text, expected", [
    ("B", 1), ("(c)", 2), ("2", 1), ("D.", 3), ("Answer: C", 2), ("answer = 1", 0),
    ("<thinking>A is wrong, maybe D</thinking>B", 1), ('{"Reasoning": "x", "Answer": "C"}', 2),
    ("```json\n{\"Answer\": \"A\"}\n```", 0), ("<answer>D</answer>", 3), ("B. the red one", 1),
    ("Image 3", 2), ("option b", 1), ("I think so.\nFinal answer: A", 0),
])
def test_parse_choice_accepts_documented_forms(text: str, expected: int) -> None:
    assert parse_choice(text, 4) == (expected, None)


@pytest.mark.parametrize("text", ["E", "5", "0", "Answer: Z"])
def test_parse_choice_out_of_range_is_an_error(text: str) -> None:
    idx, err = parse_choice(text, 4)
    assert idx is None and "out of range" in err


def test_parse_choice_option_text_and_failures() -> None:
    opts = ["red", "blue", "green"]
    assert parse_choice("It is blue.", 3, opts) == (1, None)
    assert parse_choice("GREEN", 3, opts) == (2, None)
    assert parse_choice("red or blue", 3, opts)[0] is None
    assert parse_choice("", 3, opts)[1] == "empty answer"
    assert parse_choice("a photo of something", 3, opts)[0] is None


@pytest.mark.parametrize("text, expected", [
    ("Yes", True), ("no.", False), ('{"Reasoning": "same mark", "Answer": "yes"}', True),
    ("Answer: No", False), ("<thinking>yes? no?</thinking> yes", True), ("True", True),
    ("It is definitely there, yes", True),
])
def test_parse_yes_no(text: str, expected: bool) -> None:
    assert parse_yes_no(text) == (expected, None)


@pytest.mark.parametrize("text", ["maybe", "", "hard to say: yes and no"])
def test_parse_yes_no_errors(text: str) -> None:
    val, err = parse_yes_no(text)
    assert val is None and err


def test_extract_description_and_sentences() -> None:
    tagged = "<thinking>secret red</thinking><coarse>A mug.</coarse><detailed>It is blue.</detailed>"
    assert extract_description(tagged) == "A mug. It is blue."
    assert extract_description("<thinking>secret</thinking> a  blue mug") == "a blue mug"
    assert count_sentences("One. Two! Three") == 3
    assert count_sentences("Just one sentence.") == 1


ONE = "The mug is red with a striped pattern."  # one sentence, 8 words
LONG1 = ("The mug is bright red with thin white stripes, a small gold star near the rim, "
         "a tall narrow body and a curved handle.")  # one sentence, 25 words
TWO = "The mug is red. It has stripes."


@pytest.mark.parametrize("completion, readme, code", [
    # all tags, one short detailed sentence, coarse 5 words
    (f"<thinking>t</thinking><coarse>A photo of a mug.</coarse><detailed>{ONE}</detailed>",
     {"format": 1.0, "length": 0.1}, {"format": 1.0, "length": -0.3}),
    # all tags, one long sentence (>= 20 words), coarse 7 words
    (f"<thinking>t</thinking><coarse>A photo of a red striped mug.</coarse><detailed>{LONG1}</detailed>",
     {"format": 1.0, "length": 0.1}, {"format": 1.0, "length": 0.0}),
    # no thinking, two sentences, coarse 6 words
    (f"<coarse>A photo of a red mug.</coarse><detailed>{TWO}</detailed>",
     {"format": 0.0, "length": 0.0}, {"format": 0.66, "length": -0.2}),
    # unclosed detailed
    ("<thinking>t</thinking><coarse>a</coarse><detailed>open", {"format": 0.0, "length": 0.0},
     {"format": 0.67, "length": -0.3}),
    ("plain text only", {"format": 0.0, "length": 0.0}, {"format": 0.0, "length": -0.3}),
])
def test_reward_presets_match_hand_computed(completion: str, readme: dict, code: dict) -> None:
    for preset, want in (("readme", readme), ("code", code)):
        for correct in (True, False):
            total, terms = SpeakerReward(preset)(completion, {"correct": correct})
            assert terms["accuracy"] == (1.0 if correct else 0.0)
            assert terms["format"] == pytest.approx(want["format"])
            assert terms["length"] == pytest.approx(want["length"])
            assert total == pytest.approx(terms["accuracy"] + want["format"] + want["length"])


def test_reward_weights_extra_terms_and_registry() -> None:
    r = SpeakerReward("readme", weights={"format": 0.5, "length": 0.0})
    total, _ = r("<thinking>a</thinking><coarse>b</coarse><detailed>c.</detailed>", {"correct": True})
    assert total == pytest.approx(1.5)

    @register_reward("test_bonus")
    def bonus(completion: str, info: dict) -> float:
        return 2.0 if "mug" in completion else 0.0

    assert "test_bonus" in list_rewards()
    total, terms = SpeakerReward("code", weights={"accuracy": 0.0, "format": 0.0, "length": 0.0},
                                 extra=["test_bonus"])("a mug", {})
    assert terms["test_bonus"] == 2.0 and total == 2.0
    with pytest.raises(ValueError, match="unknown term 'nope'"):
        SpeakerReward("readme", weights={"nope": 1.0})
    with pytest.raises(ValueError, match="unknown reward_preset"):
        SpeakerReward("fancy")
    with pytest.raises(KeyError, match="unknown reward term"):
        get_reward("missing")


def test_overlap_term() -> None:
    fn = get_reward("overlap")
    assert fn("<coarse>a red mug</coarse>", {}) == 0.0
    assert fn("<detailed>sitting on the kitchen table</detailed>", {"avoid_texts": ["on the kitchen table"]}) \
        == pytest.approx(-rouge2_f1("sitting on the kitchen table", "on the kitchen table"))
    assert rouge2_f1("a b c", "a b c") == 1.0 and rouge2_f1("a b", "c d") == 0.0


def test_reward_term_by_import_path() -> None:
    r = SpeakerReward("readme", extra=["lewis_env.rewards:rouge2_f1"],
                      weights={"accuracy": 0.0, "format": 0.0, "length": 0.0})
    with pytest.raises(KeyError, match="cannot import"):
        get_reward("lewis_env.nothing_here:fn")
    assert "lewis_env.rewards:rouge2_f1" in r.terms


@pytest.mark.parametrize(("scores", "target", "expected"), [
    ([0.0, 2.0, 1.0, 0.0], 1, 1.0),   # decided listener: same as accuracy
    ([0.0, 2.0, 1.0, 0.0], 2, 0.0),
    ([1.0, 1.0, 0.0, 0.0], 0, 0.5),   # tie between two incl. the target
    ([0.0, 0.0, 0.0, 0.0], 3, 0.25),  # names nothing: chance
    (None, 0, 0.0),                   # unparseable action: no listener scores
])
def test_expected_accuracy_counts_ties_fractionally(scores, target, expected) -> None:
    assert get_reward("expected_accuracy")("", {"listener_scores": scores, "target_index": target}) == expected


@pytest.mark.parametrize(("scores", "target", "expected"), [
    ([0.0, 2.0, 1.0, 0.0], 1, 1.0),
    ([0.0, 2.0, 2.0, 0.0], 1, 0.0),   # a tie never singles the target out
    ([0.0, 0.0, 0.0, 0.0], 0, 0.0),   # naming nothing is not a safe bet
    ([1.0, 0.0, 0.0, 0.0], 2, 0.0),
    (None, 0, 0.0),
])
def test_unique_accuracy_needs_a_unique_top_score_on_the_target(scores, target, expected) -> None:
    assert get_reward("unique_accuracy")("", {"listener_scores": scores, "target_index": target}) == expected
