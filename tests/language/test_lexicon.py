"""Rule-based state/location evaluation and refinement on hand-built descriptions."""

from __future__ import annotations

import pytest

from lewis_env.language.lexicon import evaluate_text, refine_text

CASES = [
    # text, has_state, has_location, refined state, refined location, refined both
    ("A red mug sitting on a wooden table in the kitchen.", True, True,
     "A red mug.", "A red mug sitting.", "A red mug."),
    ("The dog, sitting on the grass, has brown fur and a white patch.", True, True,
     "The dog has brown fur and a white patch.", "The dog, sitting, has brown fur and a white patch.",
     "The dog has brown fur and a white patch."),
    ("The toy is on the left against a teal background and is wearing a small hat.", True, True,
     "The toy is on the left against a teal background.", "The toy is wearing a small hat.", "The toy."),
    ("A plush bear wearing a red scarf.", True, False, "A plush bear.", "A plush bear wearing a red scarf.",
     "A plush bear."),
    ("The cup is open and sits in the sink.", True, True, "The cup.", "The cup is open.", "The cup."),
    ("A photo of a red mug. The mug is red with a striped pattern, a star mark, round shape and small size.",
     False, False, None, None, None),
]


@pytest.mark.parametrize(("text", "state", "loc", "r_state", "r_loc", "r_both"), CASES)
def test_evaluate_and_refine(text, state, loc, r_state, r_loc, r_both):
    got = evaluate_text(text)
    assert (got.has_state, got.has_location) == (state, loc)
    assert refine_text(text, "state") == (r_state or text)
    assert refine_text(text, "location") == (r_loc or text)
    assert refine_text(text, "both") == (r_both or text)
    refined = evaluate_text(refine_text(text, "both"))
    assert not refined.has_state and not refined.has_location


def test_spans_are_reported():
    m = evaluate_text("A black cat with green eyes, lying on the sofa next to a pillow.")
    assert m.state_spans == ("lying",)
    assert m.location_spans == ("on the sofa", "next to a pillow")


def test_photo_of_is_not_a_location_and_bad_mode_is_an_error():
    assert not evaluate_text("The mug in the photo is red.").has_location
    with pytest.raises(ValueError, match="refine mode"):
        refine_text("a mug", "colour")


def test_text_without_mentions_is_left_untouched():
    for text in ("blue", "a red mug , round", "  The toy is wearing a hat.  "):
        if not evaluate_text(text).has_location:
            assert refine_text(text, "location") == text
    assert refine_text("blue", "both") == "blue"
