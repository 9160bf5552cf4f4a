"""Rule-based detection and removal of *state* and *location* details in a description.

A state is what the object is doing or how it happens to be in one photo (sitting, open, wearing a
hat, wet); a location is where the photo was taken or what surrounds the object (on the table, in the
kitchen, on the left, against a teal background). Both are transient: they make a description useless
on another photo of the same object, so the reference project's ``eval_utils`` counts and removes them.

Detection works on clauses (sentences split at ``,;`` and at `` and `` / `` while ``): a clause is a state
clause when it contains a word of ``STATE_WORDS`` or a phrase of ``STATE_PHRASES``; a location span is a
preposition (``LOCATION_PREPOSITIONS``) followed within four words by a noun of ``LOCATION_NOUNS``, or one
of ``LOCATION_PHRASES``. Refinement removes the matched location spans and the state clauses, then tidies
spaces and punctuation (a description made only of such details becomes empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Words that name a transient state (posture, activity, worn/held items, open/closed, on/off, wet, ...).
STATE_WORDS: frozenset[str] = frozenset("""
sitting sits sat standing stands stood lying lies laying lays sleeping sleeps asleep running runs walking walks
jumping jumps eating eats drinking drinks playing plays resting rests looking looks staring stares smiling
smiles holding holds held wearing wears worn carrying carries posing poses perched leaning leans hanging hangs
floating floats flying flies swimming swims curled crouching crouched kneeling open opened closed shut folded
unfolded lit unlit glowing wet damp dirty muddy filled empty half-full spilled melting steaming tilted upside
stacked turned switched plugged unplugged charging moving blurred blurry shadowed illuminated sunlit
""".split())
#: Multi-word state phrases.
STATE_PHRASES: tuple[str, ...] = ("turned on", "turned off", "switched on", "switched off", "upside down",
                                  "facing the camera", "facing left", "facing right", "in motion", "in use",
                                  "being held", "with its mouth open", "with the lid open", "lit up")
#: Prepositions that open a location phrase.
LOCATION_PREPOSITIONS: tuple[str, ...] = ("on top of", "in front of", "next to", "close to", "to the left of",
                                          "to the right of", "on", "in", "at", "near", "beside", "behind",
                                          "under", "underneath", "beneath", "above", "below", "against",
                                          "inside", "outside", "by", "atop", "among", "across", "along")
#: Nouns that make a prepositional phrase a location (places, furniture, surfaces, image regions).
LOCATION_NOUNS: frozenset[str] = frozenset("""
table tables desk desks floor floors ground grass lawn garden yard park street road sidewalk beach sand snow
water lake river sea pool kitchen bedroom bathroom living room office room rooms house home hallway garage
shelf shelves counter countertop bed sofa couch chair chairs bench windowsill window windows wall walls
door doorway carpet rug mat blanket pillow cushion tray plate box bag backpack car cabinet drawer sink
stove fridge refrigerator corner center centre left right middle foreground background backdrop surface
surroundings scene outdoors indoors field forest tree trees bush plants
""".split())
#: Fixed location phrases (matched anywhere).
LOCATION_PHRASES: tuple[str, ...] = ("in the background", "in the foreground", "on the left", "on the right",
                                     "in the center", "in the centre", "in the middle", "background",
                                     "surrounded by", "next to it", "nearby", "indoors", "outdoors")

_COPULA = re.compile(r"\b(?:is|are|was|were|sits|sit|stands|stand|lies|rests|placed|located|positioned|set|"
                     r"which is|that is)\s+$", re.IGNORECASE)
_STATE_LEAD = re.compile(r"(?:\b(?:is|are|was|were|which is|that is|while)\s+)?$", re.IGNORECASE)
_CLAUSE_SPLIT = re.compile(r"(?<=[.!?;,])\s+|\s+(?=\b(?:and|while|but)\b)", re.IGNORECASE)


def _phrase_re(phrases: tuple[str, ...] | frozenset[str]) -> re.Pattern[str]:
    alts = sorted((re.escape(p).replace(r"\ ", r"\s+") for p in phrases), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(alts) + r")\b", re.IGNORECASE)


_STATE = _phrase_re(STATE_WORDS | frozenset(STATE_PHRASES))
_PAREN_STATE = re.compile(r",\s*(?:which is\s+|that is\s+)?" + _STATE.pattern + r"[^,.;!?]*,", re.IGNORECASE)
_LOC_FIXED = _phrase_re(LOCATION_PHRASES)
_LOC_SPAN = re.compile(
    r"\b(?:" + "|".join(sorted((re.escape(p).replace(r"\ ", r"\s+") for p in LOCATION_PREPOSITIONS),
                               key=len, reverse=True)) + r")\s+(?:[\w'-]+\s+){0,4}?(?:"
    + "|".join(sorted(re.escape(n).replace(r"\ ", r"\s+") for n in LOCATION_NOUNS)) + r")\b(?:\s+of\s+[\w'-]+)?",
    re.IGNORECASE)


@dataclass(frozen=True)
class Mentions:
    """What the rule evaluator found in one description."""

    has_state: bool
    has_location: bool
    state_spans: tuple[str, ...] = field(default=())
    location_spans: tuple[str, ...] = field(default=())


def location_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of location phrases (preposition + location noun, or a fixed phrase)."""
    return _merge([m.span() for m in _LOC_SPAN.finditer(text)] + [m.span() for m in _LOC_FIXED.finditer(text)])


def _removal_spans(text: str) -> list[tuple[int, int]]:
    """Location spans widened over a copula before them ("is on the table") and an "and" after that."""
    out = []
    joined: list[tuple[int, int]] = []
    for s, e in location_spans(text):  # "on the left against a wall": one span
        if joined and not text[joined[-1][1]:s].strip():
            joined[-1] = (joined[-1][0], e)
        else:
            joined.append((s, e))
    for s, e in joined:
        m = _COPULA.search(text[:s])
        if m:
            s = m.start()
            after = re.match(r"\s+and\b", text[e:])
            if after:
                e += after.end()
        out.append((s, e))
    return _merge(out)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def evaluate_text(text: str) -> Mentions:
    """Does the description mention a state / a location, and where (rule-based, lexicons above)?"""
    text = text or ""
    states = tuple(m.group(0) for m in _STATE.finditer(text))
    locs = tuple(text[s:e] for s, e in location_spans(text))
    return Mentions(bool(states), bool(locs), states, locs)


def _tidy(text: str) -> str:
    return _tidy_once(_tidy_once(text))


def _tidy_once(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;!?])", r"\1", text)
    text = re.sub(r"([,;])\s*([,;.!?])", r"\2", text)
    text = re.sub(r"\b(and|with|while|but)\s*([.!?])", r"\2", text, flags=re.IGNORECASE)
    text = re.sub(r"(^|[.!?]\s+)[,;]\s*", r"\1", text)
    text = re.sub(r"(^|[.!?]\s+)(?:and|while|but)\s+", r"\1", text, flags=re.IGNORECASE)
    text = re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    text = re.sub(r"\.\s*\.", ".", text)
    return text.strip(" ,;")


def refine_text(text: str, mode: str = "both") -> str:
    """Remove state clauses (``mode="state"``), location phrases (``"location"``) or both (``"both"``)."""
    if mode not in ("state", "location", "both"):
        raise ValueError(f"refine mode must be 'state', 'location' or 'both', got {mode!r}")
    out = text or ""
    found = evaluate_text(out)
    if not ((mode != "location" and found.has_state) or (mode != "state" and found.has_location)):
        return out  # nothing to remove: the text stays byte-identical
    if mode in ("location", "both"):
        for s, e in reversed(_removal_spans(out)):
            out = out[:s] + out[e:]
        out = _tidy(out)
    if mode in ("state", "both"):
        out = _PAREN_STATE.sub(" ", out)  # ", sitting on the grass," -> " "
        kept = []
        for clause in (c for c in _CLAUSE_SPLIT.split(out) if c):
            m = _STATE.search(clause)
            if m is None:
                kept.append(clause)
                continue
            head = clause[:m.start()]
            head = head[:_STATE_LEAD.search(head).start()]  # drop "is"/"which is" before the state word
            if re.sub(r"\b(?:and|while|but|with)\b|[\s,;]", "", head, flags=re.IGNORECASE):
                kept.append(head)
        out = _tidy(" ".join(kept))
        if out and out[-1] not in ".!?" and (text or "").rstrip()[-1:] in ".!?":
            out += "."
    return out


__all__ = ["LOCATION_NOUNS", "LOCATION_PHRASES", "LOCATION_PREPOSITIONS", "Mentions", "STATE_PHRASES",
           "STATE_WORDS", "evaluate_text", "location_spans", "refine_text"]
