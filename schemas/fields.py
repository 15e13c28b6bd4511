"""Field types shared by the payload schemas: decimal strings, UTC times, hex hashes."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate

from creditbank.clock import format_time, parse_time
from creditbank.domain.text import control_character
from creditbank.errors import InputError


class DecimalString(fields.Field[Decimal]):
    """A non-negative decimal, written as a JSON string (``"4.5"``); floats are refused."""

    normal_text: ClassVar[re.Pattern[str]] = re.compile(
        r"^(?=.{1,28}\Z)(?:0|[1-9][0-9]*)(?:\.[0-9]{0,3}[1-9])?\Z"
    )
    """The text this field writes for a value it accepts: no sign, exponent, leading
    or trailing zeros, at most four decimal places; up to 28 characters, which the
    decimal context's 28 digits always hold exactly."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool | float):
            raise ValidationError('write decimals as strings such as "4.5", not JSON numbers')
        try:
            number = Decimal(str(value).strip()) if isinstance(value, str | int | Decimal) else None
        except InvalidOperation as e:
            raise ValidationError(f"{value!r} is not a decimal number") from e
        if number is None or not number.is_finite():
            raise ValidationError(f"{value!r} is not a decimal number")
        if number < 0:
            raise ValidationError("must not be negative")
        if number.as_tuple().exponent < -4:  # type: ignore[operator]
            raise ValidationError("at most four decimal places")
        return number

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else decimal_text(Decimal(value))


def decimal_text(value: Decimal) -> str:
    """The canonical text of a decimal: no exponent, no trailing zeros (``4.50`` -> ``4.5``)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


class UtcTime(fields.Field[datetime]):
    """An RFC 3339 UTC time ending in ``Z``; aware datetimes are accepted too."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValidationError("naive datetime: give a timezone")
            return value
        try:
            return parse_time(value, attr or "time")
        except InputError as e:
            raise ValidationError("not an RFC 3339 UTC time ending in Z") from e

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_time(value)


class Day(fields.Field[date]):
    """A calendar date ``YYYY-MM-DD``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if isinstance(value, datetime):
            raise ValidationError("give a date, not a time")
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError as e:
            raise ValidationError("not a date YYYY-MM-DD") from e

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.isoformat()


class PatternString(fields.String):
    """A string kept as given that must match ``pattern`` whole."""

    pattern: ClassVar[re.Pattern[str]]
    message: ClassVar[str]

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not self.pattern.match(text):
            raise ValidationError(self.message)
        return text


class Hash(PatternString):
    """A SHA-256 digest as 64 lower-case hex digits."""

    pattern = re.compile(r"^[0-9a-f]{64}\Z")
    message = "expected 64 lower-case hex digits"


class Code(PatternString):
    """An identifier: letters, digits and ``_.:-``, at most 64 characters."""

    pattern = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
    message = "use 1-64 letters, digits and _.:- (a letter or digit first)"


class Choice(fields.String):
    """One of fixed codes; ``aliases`` map other spellings (e.g. Chinese terms) to a code."""

    def __init__(self, choices: tuple[str, ...], aliases: dict[str, str] | None = None, **kw: Any):
        super().__init__(**kw)
        self.choices = choices
        self.aliases = aliases or {}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        text = self.aliases.get(text.strip(), text.strip())
        if text not in self.choices:
            raise ValidationError(f"must be one of: {self.listing()}")
        return text

    def listing(self) -> str:
        """The choices, each with the other spellings it accepts: ``junior (初级), ...``."""

        def named(code: str) -> str:
            others = [alias for alias, target in self.aliases.items() if target == code]
            return f"{code} ({'/'.join(others)})" if others else code

        return ", ".join(named(code) for code in self.choices)


class PlainText(validate.Validator):
    """Refuses text that holds a control character (:mod:`creditbank.domain.text`)."""

    def __call__(self, value: str) -> str:
        """Return ``value`` unchanged.

        Raises:
            ValidationError: ``value`` holds such a character (named by code point).
        """
        problem = control_character(value)
        if problem is not None:
            raise ValidationError(problem)
        return value
