"""Turning source values into store values, one column type at a time.

A value that does not fit its column (a malformed date, text in a number field) never stops a
pull: the column is left empty, the raw value is kept under `custom["_invalid"]`, and the record
is reported, so nothing is silently lost and a person can see what to fix in the source.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from smartseg.store.types import UTCDateTime

__all__ = ["Coercer", "email_domain", "normalize_domain", "parse_datetime"]

MAX_TEXT = 10_000  # longer source text is cut, and the record reported


class Coercer:
    """Coerces a mapping of {column: raw value} to one table's column types."""

    def __init__(self, table: sa.Table) -> None:
        self._kinds = {column.name: _kind(column.type) for column in table.columns}

    def columns(self) -> set[str]:
        return set(self._kinds)

    def coerce(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The coerced values and, per column that did not fit, the problem."""
        out: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for column, raw in values.items():
            try:
                out[column] = _convert(self._kinds[column], raw)
            except (ValueError, TypeError, InvalidOperation) as exc:
                out[column] = None
                problems[column] = f"{column}: {exc}"
            if isinstance(out[column], str) and len(out[column]) > MAX_TEXT:
                out[column] = out[column][:MAX_TEXT]
                problems[column] = f"{column}: text longer than {MAX_TEXT} characters was cut"
        return out, problems


def _kind(type_: Any) -> str:
    if isinstance(type_, UTCDateTime):
        return "datetime"
    if isinstance(type_, sa.TypeDecorator):  # e.g. sqlmodel's AutoString over String
        type_ = type_.impl_instance
    # Float before Numeric: which one subclasses the other has changed across SQLAlchemy versions.
    for kind, types in (
        ("bool", (sa.Boolean,)),
        ("int", (sa.Integer,)),
        ("float", (sa.Float,)),
        ("decimal", (sa.Numeric,)),
        ("date", (sa.Date,)),
        ("json", (sa.JSON,)),
        ("text", (sa.String,)),
    ):
        if isinstance(type_, types):
            return kind
    return "any"


def _convert(kind: str, raw: Any) -> Any:
    # Blank is no value: a rule's `is null` must hold for a field left empty in the source.
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    match kind:
        case "text":
            return str(raw)
        case "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise ValueError(f"expected true/false, got {str(raw)[:40]!r}")
        case "int":
            number = _number(raw, "a whole number")
            if number != number.to_integral_value():
                raise ValueError(f"expected a whole number, got {str(raw)[:40]!r}")
            return int(number)
        case "float":
            return float(_number(raw, "a number"))
        case "decimal":
            return _number(raw, "a number")
        case "date":
            return (
                raw if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime) else _date(raw)
            )
        case "datetime":
            return parse_datetime(raw)
    return raw


def _number(raw: Any, expected: str) -> Decimal:
    if isinstance(raw, bool):
        raise ValueError(f"expected {expected}, got {raw!r}")
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"expected {expected}, got {str(raw)[:40]!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected {expected}, got {str(raw)[:40]!r}")
    return number


def _date(raw: Any) -> dt.date:
    text = str(raw).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {text[:40]!r}") from None


_SF_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_datetime(raw: Any) -> dt.datetime:
    """ISO 8601 (Salesforce's +0000 offsets included) or epoch milliseconds, as aware UTC."""
    if isinstance(raw, dt.datetime):
        moment = raw
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        moment = dt.datetime.fromtimestamp(raw / 1000, dt.UTC)
    else:
        text = _SF_OFFSET.sub(r"\1:\2", str(raw).strip().replace("Z", "+00:00"))
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected a date-time, got {str(raw)[:40]!r}") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def normalize_domain(website: Any) -> str | None:
    """'https://www.Acme.com/about' -> 'acme.com'; None when there is no host."""
    if not website or not isinstance(website, str):
        return None
    text = website.strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    host = host.removeprefix("www.").strip(".")
    return host or None


_PERSONAL = frozenset(
    ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com",
     "proton.me", "protonmail.com", "gmx.com", "live.com")
)  # fmt: skip


def email_domain(email: Any) -> str | None:
    """The company domain of an email address; None for personal mailboxes (they identify none)."""
    if not email or not isinstance(email, str) or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower()
    return None if not domain or domain in _PERSONAL else domain
