"""Salesforce record ids: 15 case-sensitive characters plus the 3-character checksum suffix.

Ids are built from a key prefix (001 Account, 003 Contact, ...) and a counter, so the same world
always gets the same ids and a created record never collides with a loaded one.
"""

from __future__ import annotations

import re

__all__ = ["is_valid_id", "make_id", "to_18"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Lookup tables: the load of a large world makes a million ids, so these are on the hot path.
_PAIRS = [a + b for a in _BASE62 for b in _BASE62]
_UPPER_BITS = str.maketrans({c: ("1" if c.isupper() else "0") for c in _BASE62})
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
# The "pod" part of a sandbox org's ids; loaded records and created ones use different series.
_LOADED, _CREATED = "5g0000", "5g000A"


def _base62(number: int) -> str:
    """Six base-62 digits, three table lookups."""
    if not 0 <= number < 62**6:
        raise ValueError("id counter overflow")
    high, rest = divmod(number, 3844 * 3844)
    return _PAIRS[high] + _PAIRS[rest // 3844] + _PAIRS[rest % 3844]


def to_18(id15: str) -> str:
    """Append the checksum: one character per 5-character chunk, from its upper-case bits."""
    bits = id15.translate(_UPPER_BITS)
    return id15 + "".join(_SUFFIX[int(bits[i : i + 5][::-1], 2)] for i in (0, 5, 10))


def make_id(prefix: str, number: int, *, created: bool = False) -> str:
    """The 18-character id of record `number` of an object with key `prefix`."""
    return to_18(prefix + (_CREATED if created else _LOADED) + _base62(number))


def is_valid_id(value: str) -> bool:
    """True for a well-formed 15- or 18-character id whose checksum (if any) is right."""
    if not _ID.match(value):
        return False
    return len(value) == 15 or to_18(value[:15]) == value
