"""Answer parsing: turn a model's raw completion into a choice, a yes/no, or a description.

Rules, applied in this order (every parser first strips reasoning blocks):

1. ``<thinking>…</thinking>`` and ``<think>…</think>`` blocks are removed.
2. A JSON object with an ``Answer``/``answer`` key (the reference recognition format
   ``{"Reasoning": "...", "Answer": "yes"}``, code fences allowed) -> its value is the answer span.
3. Else an ``<answer>X</answer>`` tag -> ``X``.
4. Else the last ``Answer: X`` (case-insensitive; also ``Final answer:``) -> the rest of that line.
5. Else the whole remaining text is the answer span.

Choices (``parse_choice``) inside the span:
- the whole span is one letter (``B``, ``(b)``, ``B.``) or a 1-based number (``2``) -> that option;
- the span starts with an upper-case letter followed by ``.``, ``)`` or ``:`` (``B. the red mug``), with
  ``(B)``, or with ``option/candidate/image/choice <letter|number>`` -> that option;
- the span equals an option text / name (case-insensitive), or exactly one option text occurs in it
  as whole words -> that option.
A letter or number outside the K options is an out-of-range error, never a silent guess.

Yes/no (``parse_yes_no``): the span's first word is yes/no (also true/false), or exactly one of
``yes``/``no`` occurs as a whole word; both or neither -> error.

Descriptions (``extract_description``): the contents of ``<coarse>`` and ``<detailed>`` when present,
else the raw text with ``<thinking>`` blocks removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_THINK = re.compile(r"<(thinking|think)>.*?(</\1>|$)", re.IGNORECASE | re.DOTALL)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_ANSWER_LINE = re.compile(r"(?:final\s+)?answer\s*[:=]\s*([^\n]*)", re.IGNORECASE)
_JSON_OBJ = re.compile(r"\{[^{}]*\}", re.DOTALL)
_WORD = re.compile(r"[a-z0-9]+")
_LEAD = re.compile(r"^\s*(?:\(([A-Za-z]|\d{1,3})\)|([A-Z])[.):](?:\s|$)|(?:option|candidate|image|choice|concept)"
                   r"\s*[#(]?\s*([A-Za-z]|\d{1,3})\b)", re.IGNORECASE)
_SINGLE = re.compile(r"^[\s(\[\"'*]*([A-Za-z]|\d{1,3})[\s)\]\"'*.:,!]*$")
_TAG_CACHE: dict[str, re.Pattern[str]] = {}


def strip_thinking(text: str) -> str:
    """The text without ``<thinking>``/``<think>`` blocks (an unclosed block runs to the end)."""
    return _THINK.sub(" ", text)


def tag_content(text: str, tag: str) -> str | None:
    """Contents of the first closed ``<tag>…</tag>`` (stripped), or None when absent or unclosed."""
    pat = _TAG_CACHE.get(tag)
    if pat is None:
        pat = _TAG_CACHE[tag] = re.compile(rf"<{tag}>(.*?)</{tag}>", re.IGNORECASE | re.DOTALL)
    m = pat.search(text)
    return m.group(1).strip() if m else None


def extract_description(text: str) -> str:
    """What a listener receives: ``<coarse>`` + ``<detailed>`` contents if tagged, else the text sans thinking."""
    coarse, detailed = tag_content(text, "coarse"), tag_content(text, "detailed")
    if coarse is not None or detailed is not None:
        return " ".join(p for p in (coarse, detailed) if p)
    return " ".join(strip_thinking(text).split())


def split_speaker_output(text: str) -> dict[str, str | None]:
    """A speaker completion's parts: ``thinking`` (``<thinking>`` or ``<think>``), ``coarse``, ``detailed``
    (closed tags only, None when absent) and ``description`` (what the listener receives, as in the env)."""
    thinking = tag_content(text, "thinking")
    return {"thinking": thinking if thinking is not None else tag_content(text, "think"),
            "coarse": tag_content(text, "coarse"), "detailed": tag_content(text, "detailed"),
            "description": extract_description(text)}


def count_sentences(text: str) -> int:
    """Number of sentences: runs of text ended by ., ! or ? (a trailing fragment counts as one)."""
    parts = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()]
    return len(parts)


def count_words(text: str) -> int:
    """Number of whitespace-separated words."""
    return len(text.split())


def words(text: str) -> list[str]:
    """Lower-case alphanumeric tokens of a text."""
    return _WORD.findall(text.lower())


def answer_span(text: str) -> str:
    """The part of a completion that holds the answer (rules 1-5 of the module docstring)."""
    body = strip_thinking(text)
    for m in _JSON_OBJ.finditer(body):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict):
            for key in ("Answer", "answer", "ANSWER"):
                if key in obj:
                    return str(obj[key]).strip()
    m = _ANSWER_TAG.search(body)
    if m:
        return m.group(1).strip()
    found = _ANSWER_LINE.findall(body)
    if found:
        return found[-1].strip()
    return body.strip()


def _index_of(token: str, n: int) -> tuple[int | None, str | None]:
    if token.isdigit():
        i = int(token) - 1
        if 0 <= i < n:
            return i, None
        return None, f"answer {token!r} is out of range: expected a number 1-{n}"
    i = LETTERS.find(token.upper())
    if 0 <= i < n:
        return i, None
    return None, f"answer {token!r} is out of range: expected a letter A-{LETTERS[n - 1]}"


def _phrase_in(phrase: str, text_words: str) -> bool:
    p = " ".join(words(phrase))
    return bool(p) and f" {p} " in text_words


def parse_choice(text: str, n: int, options: Sequence[str] | None = None) -> tuple[int | None, str | None]:
    """(0-based choice, None) or (None, reason) for a text answer among ``n`` options (see module rules)."""
    if not isinstance(text, str):
        return None, f"expected a str answer, got {type(text).__name__}"
    if n < 1:
        return None, "there are no options to choose from"
    span = answer_span(text)
    if not span:
        return None, "empty answer"
    m = _SINGLE.match(span)
    if m:
        return _index_of(m.group(1), n)
    m = _LEAD.match(span)
    if m:
        return _index_of(next(g for g in m.groups() if g), n)
    if options:
        norm = " ".join(words(span))
        for i, opt in enumerate(options):
            if norm and norm == " ".join(words(opt)):
                return i, None
        padded = f" {norm} "
        hits = [i for i, opt in enumerate(options) if _phrase_in(opt, padded)]
        if len(hits) == 1:
            return hits[0], None
        if len(hits) > 1:
            return None, f"answer names several options ({', '.join(LETTERS[i] for i in hits)})"
    short = span if len(span) <= 60 else span[:57] + "..."
    return None, f"no option letter, number or option text found in answer {short!r}"


def parse_yes_no(text: str) -> tuple[bool | None, str | None]:
    """(True/False, None) for a yes/no answer, or (None, reason)."""
    if not isinstance(text, str):
        return None, f"expected a str answer, got {type(text).__name__}"
    span = answer_span(text)
    toks = words(span)
    if not toks:
        return None, "empty answer"
    if toks[0] in ("yes", "true"):
        return True, None
    if toks[0] in ("no", "false"):
        return False, None
    has_yes, has_no = "yes" in toks, "no" in toks
    if has_yes and not has_no:
        return True, None
    if has_no and not has_yes:
        return False, None
    short = span if len(span) <= 60 else span[:57] + "..."
    if has_yes and has_no:
        return None, f"answer says both yes and no: {short!r}"
    return None, f"no yes/no found in answer {short!r}"


__all__ = ["LETTERS", "answer_span", "count_sentences", "count_words", "extract_description", "parse_choice",
           "parse_yes_no", "split_speaker_output", "strip_thinking", "tag_content", "words"]
