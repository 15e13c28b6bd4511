"""What free text in the credit bank may hold: no control characters.

Tabs and line breaks are text; other control characters (``U+0000``-``U+001F``,
``U+007F``-``U+009F``) would act on whatever displays the text, and bidirectional
embeddings, overrides and isolates (``U+202A``-``U+202E``, ``U+2066``-``U+2069``)
would show it in another order than it is stored.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def control_character(text: str) -> str | None:
    """Why ``text`` is not plain text (``holds the control character U+001B``), or None."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"holds the control character U+{ord(found.group()):04X}"


REPLACEMENT = "\ufffd"
"""What :func:`plain_copy` puts in place of each control character (one for one)."""


def plain_copy(value: Any) -> Any:
    """A copy of JSON-like ``value`` with control characters in its strings replaced.

    Each control character in a string (not in a dict's keys) becomes
    :data:`REPLACEMENT`, so every string keeps its length: a payload that is sound
    once its text is made plain was refused for its control characters alone.
    Never raises.
    """
    if isinstance(value, str):
        return _CONTROL.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    return value
