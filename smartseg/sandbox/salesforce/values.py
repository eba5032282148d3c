"""Field values: JSON in (writes), Python inside (store, SOQL) and JSON out (query results).

Inside the store a date is a `datetime.date`, a datetime an aware UTC `datetime` at millisecond
precision, numbers are float or int and everything text-like is `str`, so SOQL comparisons and
ORDER BY work on native values.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from smartseg.sandbox.salesforce.errors import SfError

__all__ = [
    "NUMERIC_TYPES",
    "TEXT_TYPES",
    "coerce_input",
    "format_datetime",
    "parse_date",
    "parse_datetime",
    "render",
]

TEXT_TYPES = frozenset({"string", "picklist", "textarea", "email", "url", "phone", "combobox"})
NUMERIC_TYPES = frozenset({"double", "currency", "percent", "int"})
_SOAP_NAMES = {
    "double": "double",
    "currency": "double",
    "percent": "double",
    "int": "int",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO datetime as Salesforce accepts it (Z, +hh:mm or +hhmm, optional fraction), in UTC."""
    found = _DATETIME.match(text)
    if not found:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    offset = dt.timedelta()
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=dt.timezone(offset),
        )
    except ValueError:
        return None
    value = value.astimezone(dt.UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def parse_date(text: str) -> dt.date | None:
    found = _DATE.match(text)
    if not found:
        return None
    try:
        return dt.date(*(int(part) for part in found.groups()))
    except ValueError:
        return None


def format_datetime(value: dt.datetime) -> str:
    """Salesforce's datetime wire form: 2026-01-31T10:00:00.000+0000."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def render(kind: str, value: Any) -> Any:
    """A stored value as the REST API's JSON shows it."""
    if value is None:
        return None
    if kind == "datetime":
        return format_datetime(value)
    if kind == "date":
        return value.isoformat()
    if kind in ("double", "currency", "percent"):
        return float(value)
    return value


def _parser_error(soap_type: str, value: Any) -> SfError:
    token = "VALUE_STRING" if isinstance(value, str) else f"VALUE_{type(value).__name__.upper()}"
    return SfError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {soap_type} from {token} value {value} "
        "or request may be missing a required field",
    )


def coerce_input(kind: str, name: str, value: Any, length: int = 0) -> Any:
    """A JSON value written to a field of type `kind`, converted for the store or rejected."""
    if value is None:
        return False if kind == "boolean" else None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _parser_error("boolean", value)
    if kind in NUMERIC_TYPES:
        return _coerce_number(kind, value)
    if kind == "date":
        parsed_date = parse_date(value) if isinstance(value, str) else None
        if parsed_date is None:
            raise _parser_error("date", value)
        return parsed_date
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise _parser_error("datetime", value)
        return parsed
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _parser_error("string", value)
    text = str(value)
    if kind == "multipicklist":
        text = ";".join(part.strip() for part in text.split(";") if part.strip())
    if text == "":
        return None
    if length and len(text) > length:
        raise SfError(
            "STRING_TOO_LONG",
            f"{name}: data value too large: {text[:60]} (max length={length})",
            [name],
        )
    if kind == "email" and not _EMAIL.match(text):
        raise SfError("INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {text}", [name])
    return text


def _coerce_number(kind: str, value: Any) -> Any:
    soap = _SOAP_NAMES[kind]
    if isinstance(value, bool):
        raise _parser_error(soap, value)
    number: float
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _parser_error(soap, value) from None
    else:
        raise _parser_error(soap, value)
    if kind == "int":
        if not number.is_integer():
            raise _parser_error(soap, value)
        return int(number)
    return number
