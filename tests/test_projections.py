"""The text of projection rows, which an audit compares with what earlier versions wrote."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from creditbank.store.projections import _dump, _load

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), JSON, max_size=6))
def test_rows_are_written_as_earlier_versions_wrote_them(data: dict[str, Any]) -> None:
    """Sorted keys, ``", "`` and ``": "`` separators, non-ASCII kept: the drift check
    compares stored text, so a bank's rows must not change form between versions."""
    text = _dump(data)
    assert text == json.dumps(data, ensure_ascii=False, sort_keys=True)
    assert _load(text) == data
