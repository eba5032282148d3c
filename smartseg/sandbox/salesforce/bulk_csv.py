"""CSV as Bulk API 2.0 writes and reads it: the job's delimiter and line ending, every value
quoted, Salesforce's text forms for values, and `#N/A` / empty-cell semantics on upload."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from smartseg.sandbox.salesforce.errors import SfError

__all__ = [
    "DELIMITERS",
    "LINE_ENDINGS",
    "NULL_MARKER",
    "Dialect",
    "Upload",
    "format_value",
    "parse_upload",
]

DELIMITERS = {
    "BACKQUOTE": "`",
    "CARET": "^",
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "TAB": "\t",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
# An uploaded cell holding exactly this sets the field to null; an empty cell leaves it alone.
NULL_MARKER = "#N/A"


@dataclass(frozen=True, slots=True)
class Dialect:
    """A job's columnDelimiter and lineEnding, by their API names (COMMA, LF, ...)."""

    column_delimiter: str = "COMMA"
    line_ending: str = "LF"

    def line(self, cells: Iterable[str], quote_all: bool = True) -> str:
        """One CSV line (with its line ending); Salesforce quotes every value it writes."""
        buffer = io.StringIO()
        csv.writer(
            buffer,
            delimiter=DELIMITERS[self.column_delimiter],
            lineterminator=LINE_ENDINGS[self.line_ending],
            quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        ).writerow(cells)
        return buffer.getvalue()

    def results_header(self, sf_columns: Sequence[str], input_columns: Sequence[str]) -> str:
        """The header of a results file: quoted sf__ columns, then the upload's names as given."""
        ending = LINE_ENDINGS[self.line_ending]
        names = [f'"{name}"' for name in sf_columns]
        if input_columns:
            names.append(self.line(input_columns, quote_all=False).removesuffix(ending))
        return DELIMITERS[self.column_delimiter].join(names) + ending


@dataclass(frozen=True, slots=True)
class Upload:
    """Parsed job data: the header as uploaded and each row's cells, in file order."""

    header: list[str]
    rows: list[list[str]]


def parse_upload(data: bytes, dialect: Dialect) -> Upload:
    """Split uploaded CSV into header and rows; raises SfError for data that is not CSV text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SfError(
            "InvalidBatch", "InvalidBatch : Failed to parse CSV. Data must be UTF-8 encoded"
        ) from None
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=DELIMITERS[dialect.column_delimiter]
    )
    try:
        lines = [line for line in reader if line]
    except csv.Error as exc:
        raise SfError("InvalidBatch", f"InvalidBatch : Failed to parse CSV: {exc}") from None
    if not lines:
        raise SfError("InvalidBatch", "InvalidBatch : No header row found in the CSV data")
    return Upload(header=[name.strip() for name in lines[0]], rows=lines[1:])


def format_value(kind: str, value: Any) -> str:
    """A stored value as Bulk API CSV shows it: null empty, true/false, UTC datetimes with Z."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "datetime" and isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat()
    if kind in ("double", "currency", "percent"):
        return _java_double(float(value))
    return str(value)


def _java_double(number: float) -> str:
    """Java's Double.toString, which Salesforce uses: 80.0, 0.5, and 1.2E7 from ten million up."""
    if number == 0:
        return "0.0"
    if 1e-3 <= abs(number) < 1e7:
        text = repr(number)
        return text if "." in text or "e" in text else text + ".0"
    sign, digits, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)
    shown = "".join(map(str, digits))
    power = len(shown) - 1 + exponent
    mantissa = shown[0] + "." + (shown[1:] or "0")
    return ("-" if sign else "") + f"{mantissa}E{power}"
