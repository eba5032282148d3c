"""Whole-column checks in Arrow: the fast path for clean blocks of a usage or NPS file.

Each function returns the column normalised (string, date32, int64 or float64) when every value
is clean and unambiguous, or None, in which case the reader re-reads the block row by row with
`row_values` and names each bad row. The fast path accepts a subset of what the row-by-row path
accepts and gives identical values, so which path ran never changes a result.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "count_column",
    "day_column",
    "number_column",
    "python_values",
    "text_column",
    "utc_day_column",
]

_DIGITS = r"^[0-9]{1,18}$"
_DECIMAL = r"^[0-9]{1,15}(\.[0-9]{1,15})?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Timestamp layouts parsed in Arrow; anything else (offsets, fractions) goes row by row.
_TIME_FORMATS = (
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", "%Y-%m-%dT%H:%M:%SZ"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$", "%Y-%m-%dT%H:%M:%S"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$", "%Y-%m-%d %H:%M:%S"),
)


def python_values(array: pa.Array) -> list[object]:
    """The column as Python values (dates, str, int, float), much faster than to_pylist."""
    values: list[object] = array.to_numpy(zero_copy_only=False).tolist()
    return values


def text_column(
    array: pa.Array, *, required: bool, max_chars: int | None, emails: bool = False
) -> pa.Array | None:
    """Clean text: UTF-8, no NUL, no surrounding spaces, not too long, non-empty if required.

    With `emails`, values holding an @ are lower-cased (ASCII only, as Python would).
    """
    text = _strings(array)
    if text is None:
        return None
    if len(text) == 0:
        return text
    lengths = pc.utf8_length(text)
    if required and pc.min(lengths).as_py() == 0:
        return None
    if max_chars is not None and pc.max(lengths).as_py() > max_chars:
        return None
    if pc.any(pc.match_substring(text, "\x00")).as_py():
        return None
    if not pc.all(pc.equal(pc.utf8_trim_whitespace(text), text)).as_py():
        return None
    if emails:
        if not pc.all(pc.string_is_ascii(text)).as_py():
            return None
        text = pc.if_else(pc.match_substring(text, "@"), pc.ascii_lower(text), text)
    return text


def day_column(array: pa.Array) -> pa.Array | None:
    """Days from a date32 column or from text that is exactly YYYY-MM-DD and a real date."""
    if pa.types.is_date32(array.type):
        return array if array.null_count == 0 else None
    text = _strings(array)
    if text is None or not _all_match(text, _DATE):
        return None
    return _parsed(text, "%Y-%m-%d", "%Y-%m-%d")


def utc_day_column(array: pa.Array) -> pa.Array | None:
    """The UTC day of each timestamp: text in a few ISO 8601 layouts (naive = UTC)."""
    text = _strings(array)
    if text is None:
        return None
    for pattern, layout in _TIME_FORMATS:
        if _all_match(text, pattern):
            return _parsed(text, layout, layout)
    return None


def count_column(array: pa.Array) -> pa.Array | None:
    """Non-negative whole numbers as int64, from integer columns or digit-only text."""
    if pa.types.is_integer(array.type):
        ints = array.cast(pa.int64())
    else:
        text = _strings(array)
        if text is None or not _all_match(text, _DIGITS):
            return None
        ints = text.cast(pa.int64())
    if ints.null_count or (len(ints) and pc.min(ints).as_py() < 0):
        return None
    return ints


def number_column(array: pa.Array | None, length: int) -> pa.Array | None:
    """Non-negative finite numbers: int64 for whole-number text or integer columns, float64
    for float columns or decimal text; an absent column is all zeros."""
    if array is None:
        return pa.array([0] * length, pa.int64())
    if pa.types.is_floating(array.type):
        floats = array.cast(pa.float64())
        if floats.null_count or not pc.all(pc.is_finite(floats)).as_py():
            return None
        return floats if not len(floats) or pc.min(floats).as_py() >= 0 else None
    ints = count_column(array)
    if ints is not None:
        return ints
    text = _strings(array)
    if text is None or not _all_match(text, _DECIMAL):
        return None
    return text.cast(pa.float64())


def _strings(array: pa.Array) -> pa.Array | None:
    """The column as valid UTF-8 strings without nulls, or None."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        try:
            array = array.cast(pa.string())
        except pa.ArrowInvalid:  # bytes that are not UTF-8: row by row names the rows
            return None
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    if not pa.types.is_string(array.type) or array.null_count:
        return None
    return array


def _all_match(text: pa.Array, pattern: str) -> bool:
    return len(text) == 0 or bool(pc.all(pc.match_substring_regex(text, pattern)).as_py())


def _parsed(text: pa.Array, layout: str, back: str) -> pa.Array | None:
    """Parse, then print back: Arrow rolls 2026-02-30 over to March, Python refuses it."""
    if len(text) == 0:
        return pa.array([], pa.date32())
    moments = pc.strptime(text, format=layout, unit="s", error_is_null=True)
    if moments.null_count or not pc.all(pc.equal(pc.strftime(moments, format=back), text)).as_py():
        return None
    return moments.cast(pa.date32())
