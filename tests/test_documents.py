"""Reading users' JSON and TOML documents: whatever a file holds, a dict or one InputError."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbank.documents import parse_json, read_document, read_json
from creditbank.errors import InputError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_a_json_object_reads_back_as_written(document: dict[str, Any]) -> None:
    assert parse_json(json.dumps(document), "x") == document


@given(json_values.filter(lambda v: not isinstance(v, dict)))
def test_anything_but_an_object_is_refused_by_name(value: Any) -> None:
    with pytest.raises(InputError, match=r"^--data: expected a JSON object at the top level$"):
        parse_json(json.dumps(value), "--data")


@given(st.binary(max_size=64), st.sampled_from(["d.json", "d.toml", "d.txt"]))
def test_any_bytes_give_a_table_or_one_input_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes, name: str
) -> None:
    path = tmp_path_factory.mktemp("documents") / name
    path.write_bytes(content)
    try:
        assert isinstance(read_document(path), dict)
    except InputError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.json", "[" * 100_000 + "]" * 100_000, "not valid JSON: nested too deeply"),
        ("d.toml", "a = " + "[" * 100_000 + "]" * 100_000, "not valid TOML: nested too deeply"),
        ("d.toml", "a = " + "{b = " * 5_000 + "1" + "}" * 5_000, "not valid TOML: nested too"),
        ("d.toml", "a = 1\na = 2", "not valid TOML: Cannot overwrite a value"),
        ("d.json", '{"a": 1', "not valid JSON: Expecting ',' delimiter"),
    ],
)
def test_damaged_files_name_the_file_and_the_fault(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=f"^{re.escape(str(path))}: {re.escape(message)}"):
        read_document(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.json: cannot read: .*No such file"):
        read_json(tmp_path / "missing.json")
