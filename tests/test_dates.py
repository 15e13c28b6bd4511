"""The day an outcome states against the time of its record (creditbank.domain.dates)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbank.clock import format_time
from creditbank.domain.dates import EARLIEST_DAY, STATED_DAYS, check_earliest_day, check_stated_day
from creditbank.domain.vocab import OUTCOME_KINDS
from creditbank.errors import RuleError

from .test_schemas import EXAMPLES

times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@given(times, st.integers(min_value=-4000, max_value=4000))
def test_a_day_up_to_one_after_the_records_utc_date_is_allowed(when: datetime, offset: int) -> None:
    recorded = format_time(when)
    day = (when.date() + timedelta(days=offset)).isoformat()
    if offset <= 1:
        check_stated_day("completed_on", day, recorded)
    else:
        with pytest.raises(RuleError, match=f"completed_on: {day} is after the day") as caught:
            check_stated_day("completed_on", day, recorded)
        assert caught.value.kind == "rule_violation"


@given(st.integers(min_value=-14 * 60, max_value=14 * 60), times)
def test_an_issuers_own_calendar_day_is_never_refused(minutes: int, when: datetime) -> None:
    """Whatever its time zone (UTC-12 to UTC+14), an issuer may state the day it is in."""
    local_day = (when + timedelta(minutes=minutes)).date().isoformat()
    check_stated_day("issued_on", local_day, format_time(when))


def test_every_outcome_kind_but_a_course_states_its_day() -> None:
    assert set(STATED_DAYS) == set(OUTCOME_KINDS) - {"course"}
    for kind, field in STATED_DAYS.items():
        assert date.fromisoformat(EXAMPLES[f"outcome.{kind}/1"][field])


@given(st.dates(max_value=date(2099, 12, 31)), times)
def test_no_day_before_the_earliest_is_recorded(day: date, when: datetime) -> None:
    """Any day before 1900-01-01 is refused, whatever the record's time; any day from
    it on passes the lower bound (the upper bound is the test above's)."""
    text = day.isoformat()
    if day < date.fromisoformat(EARLIEST_DAY):
        for check in (
            lambda: check_earliest_day("enrolled_on", text),
            lambda: check_stated_day("enrolled_on", text, format_time(when)),
        ):
            with pytest.raises(RuleError, match=f"enrolled_on: {text} is before 1900-01-01"):
                check()
    else:
        check_earliest_day("enrolled_on", text)
