"""The template speaker: a tagged description of a concept rendered from its ground-truth attributes.

Used by the listener env (descriptions for the synthetic world), the speaker env's index action mode
(attribute slots -> text) and the rule baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lewis_env.data.types import CONCEPT_ATTRIBUTE_KEYS, Concept

THINKING = "I name the intrinsic attributes that tell this object apart from look-alikes."


def _attributes_of(concept: Concept | Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    if isinstance(concept, Concept):
        return concept.category, {k: str(v) for k, v in concept.attributes.items()}
    if isinstance(concept, Mapping):
        attrs = {k: str(v) for k, v in concept.items() if k not in ("category", "name", "concept_id")}
        return str(concept.get("category", "object")), attrs
    raise TypeError(f"describe needs a Concept or a mapping of attributes, got {type(concept).__name__}")


def _phrase(key: str, value: str) -> str:
    if key == "color":
        return value
    if key == "pattern":
        return f"a {value} pattern"
    if key == "mark":
        return "no mark" if value == "none" else f"a {value} mark"
    if key == "shape":
        return f"{value} shape"
    if key == "size":
        return f"{value} size"
    return f"{value} {key}"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def describe(concept: Concept | Mapping[str, Any], style: str = "tags",
             slots: Iterable[str] | Mapping[str, str] | None = None) -> str:
    """Describe a concept from its attributes: ``style="tags"`` gives the speaker format, ``"plain"`` the text.

    ``slots`` limits which attributes are said (keys), or gives the values to say (a key -> value mapping).
    """
    if style not in ("tags", "plain"):
        raise ValueError(f"style must be 'tags' or 'plain', got {style!r}")
    category, attrs = _attributes_of(concept)
    if isinstance(slots, Mapping):
        attrs = {k: str(v) for k, v in slots.items()}
    elif slots is not None:
        keep = list(slots)
        attrs = {k: attrs[k] for k in keep if k in attrs}
    order = [k for k in CONCEPT_ATTRIBUTE_KEYS if k in attrs] + sorted(k for k in attrs if k not in
                                                                        CONCEPT_ATTRIBUTE_KEYS)
    color = attrs.get("color")
    coarse = f"A photo of a {color + ' ' if color else ''}{category}."
    parts = [_phrase(k, attrs[k]) for k in order]
    if color and parts and parts[0] == color:
        rest = parts[1:]
        detailed = f"The {category} is {color}" + (f" with {_join(rest)}." if rest else ".")
    elif parts:
        detailed = f"The {category} has {_join(parts)}."
    else:
        detailed = f"The {category} is shown."
    if style == "plain":
        return f"{coarse} {detailed}"
    return f"<thinking>{THINKING}</thinking><coarse>{coarse}</coarse><detailed>{detailed}</detailed>"


class TemplateSpeaker:
    """Object form of ``describe`` (style and slot choice fixed at construction)."""

    def __init__(self, style: str = "tags", slots: Iterable[str] | None = None) -> None:
        self.style = style
        self.slots = tuple(slots) if slots is not None else None

    def describe(self, concept: Concept | Mapping[str, Any]) -> str:
        """The template description of ``concept``."""
        return describe(concept, self.style, self.slots)


__all__ = ["TemplateSpeaker", "describe"]
