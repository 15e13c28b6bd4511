"""The text of projection rows, which an audit compares with what earlier versions wrote."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from creditbank.schemas.payloads import PAYLOAD_SCHEMAS
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Table

from creditbank.bank import CreditBank
from creditbank.domain.accounts import Account
from creditbank.domain.issuers import Accreditation, Issuer, IssuerKey
from creditbank.errors import StoreError
from creditbank.ledger.keys import SigningKey
from creditbank.store.projections import _dump, _load, same_document
from creditbank.store.tables import (
    accounts,
    accreditations,
    issuer_keys,
    issuers,
    metadata,
    outcomes,
    programmes,
    rules,
)

from .bank_fixtures import CERTIFICATE, ORG, PROGRAMME, converting_bank
from .conftest import fetch, run_sql
from .test_cli import one_line_error, run

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _earlier_spelling(data: Any) -> str:
    """How versions before the compact text wrote a document."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


@given(st.dictionaries(st.text(), JSON, max_size=6))
def test_rows_are_compact_sorted_json_that_reads_back(data: dict[str, Any]) -> None:
    """Sorted members, no spaces, non-ASCII kept; a document reads back as written."""
    text = _dump(data)
    assert text == json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    document = {**data, **dict.fromkeys(accounts.info["document"], "x")}
    assert _load(_dump(document), accounts, "acct-1") == document


@given(st.dictionaries(st.text(), JSON, max_size=6), st.dictionaries(st.text(), JSON, max_size=6))
def test_a_document_is_the_same_however_it_was_spelt(
    data: dict[str, Any], other: dict[str, Any]
) -> None:
    """The drift check takes a row in the earlier spelling for this version's text of
    the same document, and for no other document."""
    assert same_document(_earlier_spelling(data), _dump(data))
    assert same_document(_dump(data), _earlier_spelling(data))
    alike = _dump(data) == _dump(other)
    assert same_document(_earlier_spelling(data), _dump(other)) is alike


@pytest.mark.parametrize(
    ("stored", "replayed"),
    [('{"a": 1}', '{"a":true}'), ('{"a": 1}', '{"a":1.0}'), ("{", "{}"), ("x", "y")],
)
def test_values_of_another_type_or_text_that_is_not_json_are_not_the_same(
    stored: str, replayed: str
) -> None:
    assert not same_document(stored, replayed)


@given(st.one_of(st.text(), JSON.map(json.dumps)), st.integers(0, 2**53))
def test_a_row_that_is_not_its_tables_document_is_reported_by_key(text: str, seq: int) -> None:
    """Text edited past the bank (not JSON, not an object, a member missing) is one
    StoreError naming the table and the row; a well-formed document reads back."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    members = outcomes.info["document"]
    if isinstance(data, dict) and all(m in data for m in members):
        assert _load(text, outcomes, seq) == data
    else:
        with pytest.raises(StoreError, match=f"^the outcomes row {seq} is damaged"):
            _load(text, outcomes, seq)


# -- projection rows edited past the bank, on SQLite and PostgreSQL ------------------------

DOCUMENT_TABLES = [t for t in metadata.sorted_tables if "document" in t.info]


def test_each_tables_members_are_what_every_version_wrote() -> None:
    """The members a row must hold are the fields the domain has always written (the
    account's programme version and last resumption day and a revoked key's revocation
    seq came later and are read with a default) and the fields the signed payload
    schemas require."""
    assert {t.name for t in DOCUMENT_TABLES} == {
        "accounts", "issuers", "issuer_keys", "accreditations",
        "outcomes", "programmes", "rules", "conversions",
    }  # fmt: skip
    for table, domain in [
        (accounts, Account),
        (issuers, Issuer),
        (issuer_keys, IssuerKey),
        (accreditations, Accreditation),
    ]:
        later = {"programme_version", "revoked_seq", "resumed_on"}
        fields = {f.name for f in dataclasses.fields(domain)} - later
        assert set(table.info["document"]) == fields, table.name
    for table, kind in [(programmes, "programme.published/1"), (rules, "rule.loaded/1")]:
        schema = PAYLOAD_SCHEMAS[kind]._declared_fields
        assert set(table.info["document"]) == {n for n, f in schema.items() if f.required}


@pytest.fixture
def converted(bank: CreditBank, authority: SigningKey) -> str:
    """A bank with a row in every projection table: an account with a conversion."""
    account = converting_bank(bank, authority)
    bank.issue("certificate", account, CERTIFICATE, ORG)
    bank.convert(account, PROGRAMME, authority)
    return account


def test_every_row_the_bank_writes_holds_its_tables_members(
    bank: CreditBank, converted: str, db_url: str
) -> None:
    for table in DOCUMENT_TABLES:
        rows = fetch(db_url, f"SELECT data FROM {table.name}")
        assert rows, table.name
        for (text,) in rows:
            assert set(table.info["document"]) <= set(json.loads(text)), table.name


_READERS: dict[str, Callable[[CreditBank, str], object]] = {
    "accounts": lambda bank, account: bank.account(account),
    "issuers": lambda bank, _: bank.issuers(),
    "issuer_keys": lambda bank, _: bank.issuers(),
    "accreditations": lambda bank, _: bank.issuers(),
    "outcomes": lambda bank, account: bank.outcomes(account=account),
    "programmes": lambda bank, _: bank.programme(PROGRAMME),
    "rules": lambda bank, _: bank.rules(),
    "conversions": lambda bank, account: bank.conversions(account),
}


@pytest.mark.parametrize("table", DOCUMENT_TABLES, ids=lambda t: t.name)
@pytest.mark.parametrize("text", ["{", "[1]", "{}", '"text"'])
def test_a_damaged_row_is_one_store_error_naming_it_and_the_audit_reports_it(
    bank: CreditBank, converted: str, db_url: str, table: Table, text: str
) -> None:
    key = ", ".join(c.name for c in table.primary_key.columns)
    first = fetch(db_url, f"SELECT {key} FROM {table.name} ORDER BY {key} LIMIT 1")[0]
    where = " AND ".join(f"{c.name} = :{c.name}" for c in table.primary_key.columns)
    values = dict(zip((c.name for c in table.primary_key.columns), first, strict=True))
    run_sql(db_url, f"UPDATE {table.name} SET data = :d WHERE {where}", {**values, "d": text})
    shown = " ".join(map(str, first))
    with pytest.raises(StoreError, match=f"^the {table.name} row {shown} is damaged"):
        _READERS[table.name](bank, converted)
    drift = [p for p in bank.audit().problems if p.kind == "projection_drift"]
    assert any(table.name in p.detail for p in drift), drift


def test_a_damaged_row_is_one_line_from_the_cli(
    runner: CliRunner, bank: CreditBank, converted: str, db_url: str
) -> None:
    run_sql(db_url, "UPDATE accounts SET data = '{}' WHERE account = :a", {"a": converted})
    for command in (["accounts", "show", converted], ["transcript", converted]):
        one_line_error(run(runner, db_url, *command), 2, f"the accounts row {converted} is damaged")


def test_rows_in_the_earlier_spelling_audit_clean_and_their_edits_do_not(
    bank: CreditBank, converted: str, db_url: str
) -> None:
    """A bank whose rows an earlier version wrote (spaces after separators) audits
    clean; a value changed in such a row is still drift, at its row's seq."""
    for table in DOCUMENT_TABLES:
        key = ", ".join(c.name for c in table.primary_key.columns)
        where = " AND ".join(f"{c.name} = :{c.name}" for c in table.primary_key.columns)
        for *values, text in fetch(db_url, f"SELECT {key}, data FROM {table.name}"):
            names = [c.name for c in table.primary_key.columns]
            params = {
                **dict(zip(names, values, strict=True)),
                "d": _earlier_spelling(json.loads(text)),
            }
            run_sql(db_url, f"UPDATE {table.name} SET data = :d WHERE {where}", params)
    assert " " in fetch(db_url, "SELECT data FROM accounts")[0][0]
    assert bank.audit().ok
    cert = bank.outcomes(account=converted, kind="certificate")[0]["seq"]
    text = fetch(db_url, "SELECT data FROM outcomes WHERE seq = :s", {"s": cert})[0][0]
    edited = _earlier_spelling({**json.loads(text), "issued": "2020-01-01T00:00:00Z"})
    run_sql(db_url, "UPDATE outcomes SET data = :d WHERE seq = :s", {"d": edited, "s": cert})
    drift = [(p.kind, p.seq) for p in bank.audit().problems]
    assert drift == [("projection_drift", cert)]
