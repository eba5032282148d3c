"""Parsing one value of a source row: text, days, timestamps and counts.

Each parser accepts what CSV (text), Parquet and SQL drivers (typed values) hand over. A value
that cannot be used raises `BadValue`, which the readers turn into a `Reject` for its row.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal

__all__ = [
    "BadValue",
    "excerpt",
    "parse_count",
    "parse_day",
    "parse_number",
    "parse_text",
    "parse_timestamp",
]

_EXCERPT_CHARS = 80
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadValue(Exception):
    """Raised by the parse_* helpers; the reader turns it into a `Reject` for the row."""

    def __init__(self, reason: str, value: object = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = excerpt(value)


def parse_text(value: object, column: str, *, required: bool) -> str:
    """A stripped string ('' when missing); a required column's empty value is a BadValue."""
    text = "" if value is None else (value if isinstance(value, str) else str(value)).strip()
    if required and not text:
        raise BadValue(f"empty {column}")
    return text


def parse_day(value: object, column: str) -> dt.date:
    """A calendar day from 'YYYY-MM-DD', a date, or a datetime (its UTC day if aware)."""
    if isinstance(value, dt.datetime):
        return _utc(value).date()
    if isinstance(value, dt.date):
        return value
    text = parse_text(value, column, required=True)
    if _DATE_RE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise BadValue(f"bad {column}: expected a date like 2026-06-01", text)


def parse_timestamp(value: object, column: str) -> dt.datetime:
    """An aware UTC datetime from ISO 8601 text (Z or an offset; naive means UTC) or a datetime."""
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    text = parse_text(value, column, required=True)
    try:
        return _utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise BadValue(
            f"bad {column}: expected an ISO 8601 time like 2026-06-01T12:00:00Z", text
        ) from None


def parse_count(value: object, column: str) -> int:
    """A non-negative whole number ('3', '3.0', 3); anything else is a BadValue."""
    number = parse_number(value, column, required=True)
    if isinstance(number, float):
        if not number.is_integer():
            raise BadValue(f"{column} is not a whole number", value)
        return int(number)
    return number


def parse_number(value: object, column: str, *, required: bool = False) -> int | float:
    """A non-negative finite number, int when written as one; empty is 0 unless required."""
    if isinstance(value, bool):
        raise BadValue(f"{column} is not a number", value)
    if isinstance(value, int):
        number: int | float = value
    elif isinstance(value, float | Decimal):
        number = float(value)
    else:
        text = parse_text(value, column, required=required)
        if not text:
            return 0
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise BadValue(f"{column} is not a number", text) from None
    if isinstance(number, float) and not math.isfinite(number):
        raise BadValue(f"{column} is not a number", value)
    if number < 0:
        raise BadValue(f"negative {column}", value)
    return number


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def excerpt(value: object) -> str:
    """The value as a short printable excerpt for a Reject (bad bytes shown as \\xe9)."""
    if isinstance(value, str):
        # Undecodable bytes were kept as surrogates: show them as \xe9 escapes.
        text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    else:
        text = "" if value is None else str(value)
    text = text.replace("\x00", "\\0")
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"
