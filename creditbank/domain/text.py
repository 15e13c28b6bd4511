"""What free text in the credit bank may hold: no control characters.

Tabs and line breaks are text; other control characters (``U+0000``-``U+001F``,
``U+007F``-``U+009F``) would act on whatever displays the text, and bidirectional
embeddings, overrides and isolates (``U+202A``-``U+202E``, ``U+2066``-``U+2069``)
would show it in another order than it is stored.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def control_character(text: str) -> str | None:
    """Why ``text`` is not plain text (``holds the control character U+001B``), or None."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"holds the control character U+{ord(found.group()):04X}"
