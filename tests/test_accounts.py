"""Suspension and resumption days under flexible study (creditbank.domain.accounts)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbank.domain.accounts import Account
from creditbank.errors import RuleError

ENROLLED = date(2026, 9, 1)
periods = st.lists(
    st.tuples(
        st.integers(0, 400),  # days studied before the suspension
        st.integers(0, 400),  # days suspended
        st.integers(0, 60),  # days before the suspension is recorded
        st.integers(0, 60),  # days before the resumption is recorded
    ),
    max_size=5,
)


def enrolled() -> Account:
    """An account enrolled on ENROLLED, as the projector makes it."""
    opened = Account("acct-0123456789abcdef", "open", 1, "2026-08-01T00:00:00.000000Z")
    return opened.after(
        "account.enrolled/1",
        {
            "programme": "P1",
            "school": "s1",
            "enrolled_on": ENROLLED.isoformat(),
            "max_study_years": 5,
        },
        "2026-08-01T00:00:00.000000Z",
    )


def at(day: date) -> str:
    """A record time on ``day`` (UTC)."""
    return f"{day.isoformat()}T08:00:00.000000Z"


@given(periods)
def test_stated_days_count_each_suspension_once(spans: list[tuple[int, int, int, int]]) -> None:
    """Suspensions stated on their own days, however late recorded, add up to the days
    suspended; a suspension dated into the one before, or a resumption dated before its
    suspension, is refused."""
    account, day, total = enrolled(), ENROLLED, 0
    for studied, suspended, late, late_resumed in spans:
        stopped = day + timedelta(days=studied)
        if day > ENROLLED:
            with pytest.raises(RuleError, match=r"suspended_on: .* is before .* resumed on"):
                account.after(
                    "account.suspended/1",
                    {"reason": "health", "suspended_on": (day - timedelta(days=1)).isoformat()},
                    at(stopped + timedelta(days=late)),
                )
        account = account.after(
            "account.suspended/1",
            {"reason": "health", "suspended_on": stopped.isoformat()},
            at(stopped + timedelta(days=late)),
        )
        resumed = stopped + timedelta(days=suspended)
        recorded = at(max(resumed, stopped + timedelta(days=late)) + timedelta(days=late_resumed))
        with pytest.raises(RuleError, match=r"resumed_on: .* is before the suspension"):
            account.after(
                "account.resumed/1",
                {"resumed_on": (stopped - timedelta(days=1)).isoformat()},
                recorded,
            )
        account = account.after("account.resumed/1", {"resumed_on": resumed.isoformat()}, recorded)
        day, total = resumed, total + suspended
    assert account.suspended_days == total
    assert account.suspended_since is None and account.status == "enrolled"


@given(st.integers(1, 400), st.integers(2, 30))
def test_a_day_stated_before_the_enrolment_or_after_the_record_is_refused(
    before: int, after: int
) -> None:
    account = enrolled()
    with pytest.raises(RuleError, match=r"suspended_on: .* is before the enrolment"):
        account.after(
            "account.suspended/1",
            {"reason": "health", "suspended_on": (ENROLLED - timedelta(days=before)).isoformat()},
            at(ENROLLED),
        )
    with pytest.raises(RuleError, match=r"suspended_on: .* is after the day it is recorded"):
        account.after(
            "account.suspended/1",
            {"reason": "health", "suspended_on": (ENROLLED + timedelta(days=after)).isoformat()},
            at(ENROLLED),
        )


@given(st.integers(1, 400), st.integers(0, 400))
def test_a_suspension_after_one_whose_end_is_not_stated_may_not_be_dated_back(
    length: int, later: int
) -> None:
    """Records written before days were stated end a suspension on the day recorded,
    which the projection does not keep: a later suspension then takes its record's day."""
    account = enrolled()
    account = account.after("account.suspended/1", {"reason": "health"}, at(ENROLLED))
    back = ENROLLED + timedelta(days=length)
    account = account.after("account.resumed/1", {}, at(back))
    assert account.suspended_days == length and account.resumed_on is None
    recorded = back + timedelta(days=later)
    with pytest.raises(RuleError, match="does not state, so a suspension may not be dated back"):
        account.after(
            "account.suspended/1",
            {"reason": "health", "suspended_on": recorded.isoformat()},
            at(recorded),
        )
    undated = account.after("account.suspended/1", {"reason": "health"}, at(recorded))
    assert undated.suspended_since == at(recorded)
    assert "resumed_on" not in account.to_dict()
    assert Account.from_dict(undated.to_dict()) == undated
