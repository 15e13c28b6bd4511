"""Account chain tips: the same answers as a plain dict, with most of them on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.ledger import account_tips as account_tips_module
from creditbank.ledger.account_tips import AccountTips
from creditbank.ledger.keyring import key_entry
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.log import Entry

SCHOOL = SigningKey.from_seed(bytes([7]) * 32)

operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "get"]),
        st.sampled_from([f"learner-{i}" for i in range(12)]),
        st.integers(0, 50),
        st.binary(min_size=32, max_size=32),
    ),
    max_size=80,
)


@settings(max_examples=200)
@given(operations, st.integers(1, 5))
def test_tips_answer_as_a_dict_would(ops: list[tuple[str, str, int, bytes]], limit: int) -> None:
    original = account_tips_module.MEMORY_LIMIT
    account_tips_module.MEMORY_LIMIT = limit
    tips = AccountTips()
    try:
        model: dict[str, tuple[int, bytes]] = {}
        for op, account, seq, digest in ops:
            if op == "put":
                tips.put(account, seq, digest)
                model[account] = (seq, digest)
            else:
                assert tips.get(account) == model.get(account)
        assert sorted(tips.items()) == sorted((a, n, h) for a, (n, h) in model.items())
        assert len(tips._memory) <= limit
        reloaded = AccountTips(tips.items())
        try:
            for account in {a for _, a, _, _ in ops}:
                assert reloaded.get(account) == model.get(account)
            assert len(reloaded._memory) <= limit
        finally:
            reloaded.close()
    finally:
        tips.close()
        account_tips_module.MEMORY_LIMIT = original


def test_the_spill_file_goes_with_close(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(account_tips_module, "MEMORY_LIMIT", 1)
    tips = AccountTips([("a", 0, bytes(32)), ("b", 0, bytes(32)), ("c", 0, bytes(32))])
    assert tips._folder is not None
    folder = Path(tips._folder.name)
    assert folder.exists()
    assert tips.get("a") == (0, bytes(32))
    tips.close()
    assert not folder.exists()


def test_a_forged_account_link_is_caught_when_its_tip_was_spilled(
    bank: CreditBank, authority: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A validly signed record whose account prev is wrong, checked against a tip on disk."""
    bank.ledger.append(
        "ledger.key/1", {"keys": [key_entry(SCHOOL.public, owner="school-1")]}, authority
    )
    credits = [
        Entry("sample.credit/1", {"course": f"C{i}", "credits": "2"}, SCHOOL, f"learner-{i % 5}")
        for i in range(20)
    ]
    bank.ledger.append_batch(credits)
    with bank.ledger.transaction() as tx:
        count, _ = tx.tip.accounts["learner-0"]
        tx.accounts["learner-0"] = (count, bytes(32))
        forged = tx.append([Entry("sample.credit/1", {"credits": "9"}, SCHOOL, "learner-0")])[0]
    bank.ledger.append("sample.credit/1", {"credits": "1"}, SCHOOL, "learner-3")
    monkeypatch.setattr(account_tips_module, "MEMORY_LIMIT", 2)
    report = bank.verify()
    assert [(p.kind, p.seq) for p in report.problems] == [("broken_account_link", forged.seq)]
