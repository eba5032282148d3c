"""The Stripe sandbox's state: one table per resource, kept in Stripe's list order.

Records are compact dicts holding only what varies between objects; `objects.py` renders the
full wire shape on the way out, which keeps a 100,000-customer load fast and small. Records are
copy-on-write: an update replaces nested values rather than mutating them, so an event's
snapshot (a shallow copy taken when the event is emitted) never changes afterwards.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["PREFIXES", "IdMaker", "Store", "Table"]

Record = dict[str, Any]
Filter = Callable[[Record], bool]

# Resource name -> id prefix, as Stripe mints them. Coupons take 8-character ids without one.
PREFIXES = {
    "customer": "cus",
    "product": "prod",
    "price": "price",
    "coupon": "",
    "discount": "di",
    "subscription": "sub",
    "subscription_item": "si",
    "invoice": "in",
    "line_item": "il",
    "event": "evt",
    "request": "req",
}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHUNK = 62**3
_TAIL = _CHUNK * _CHUNK  # the varying last six characters: 56 billion ids per prefix
_TRIPLES: list[str] = []  # every 3-character base-62 string, built on first use
# Odd and coprime to 31, hence a bijection modulo 62**6: ids never collide, yet look random.
_MULTIPLIER = 3_512_512_509


class IdMaker:
    """Deterministic Stripe-looking ids: the n-th id of a prefix is fixed by (seed, prefix, n).

    An id is a per-prefix stem drawn from the seed plus six characters that permute the
    counter; cheap enough to mint a million ids a second during a world load.
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._counters: dict[str, int] = {}
        self._stems: dict[tuple[str, int], tuple[str, int]] = {}
        if not _TRIPLES:
            _TRIPLES.extend(a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET)

    def new(self, prefix: str, length: int = 14) -> str:
        count = self._counters.get(prefix, 0)
        self._counters[prefix] = count + 1
        stem_salt = self._stems.get((prefix, length))
        if stem_salt is None:
            stem_salt = self._stems[(prefix, length)] = self._stem(prefix, length)
        stem, salt = stem_salt
        tail = (count * _MULTIPLIER + salt) % _TAIL
        body = stem + _TRIPLES[tail // _CHUNK] + _TRIPLES[tail % _CHUNK]
        return f"{prefix}_{body}" if prefix else body[-8:]

    def _stem(self, prefix: str, length: int) -> tuple[str, int]:
        number = hash_text(f"{self._seed}:{prefix}:{length}")
        chars = []
        for _ in range(max(0, length - 6)):
            number, digit = divmod(number * 6364136223846793005 + 1, 62)
            chars.append(_ALPHABET[digit])
        return "".join(chars), number % _TAIL


def hash_text(text: str) -> int:
    """A hash of `text` that, unlike hash(), is the same in every process."""
    return zlib.crc32(text.encode()) * 2654435761 + len(text)


class Table:
    """The records of one resource, indexed newest-first by (created, insertion order)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows: dict[str, Record] = {}
        self._keys: list[tuple[int, int]] = []  # ascending; lists read it backwards
        self._ids: list[str] = []
        self._key_of: dict[str, tuple[int, int]] = {}
        self._seq = 0
        self._sorted = True

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, record: Record, *, bulk: bool = False) -> Record:
        """Insert a record; `bulk` appends unsorted (call `reindex` once afterwards)."""
        self._seq += 1
        key = (int(record["created"]), self._seq)
        self.rows[record["id"]] = record
        self._key_of[record["id"]] = key
        if bulk:
            self._keys.append(key)
            self._ids.append(record["id"])
            self._sorted = False
        else:
            at = bisect.bisect_left(self._keys, key)
            self._keys.insert(at, key)
            self._ids.insert(at, record["id"])
        return record

    def reindex(self) -> None:
        if not self._sorted:
            order = sorted(range(len(self._keys)), key=self._keys.__getitem__)
            self._keys = [self._keys[i] for i in order]
            self._ids = [self._ids[i] for i in order]
            self._sorted = True

    def unlist(self, object_id: str) -> None:
        """Drop a record from lists but keep it retrievable (deleted customers)."""
        key = self._key_of.pop(object_id)
        at = bisect.bisect_left(self._keys, key)
        del self._keys[at]
        del self._ids[at]

    def remove(self, object_id: str) -> None:
        self.unlist(object_id)
        del self.rows[object_id]

    def listed(self, object_id: str) -> bool:
        return object_id in self._key_of

    def newest_first(self) -> Iterator[Record]:
        return (self.rows[i] for i in reversed(self._ids))

    def page(
        self,
        *,
        limit: int,
        keep: Filter | None = None,
        created: dict[str, int] | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[Record], bool]:
        """One page in Stripe's order (newest first) and whether more match beyond it."""
        lo, hi = self._created_bounds(created or {})
        if starting_after is not None:
            hi = min(hi, bisect.bisect_left(self._keys, self._key_of[starting_after]))
        if ending_before is not None:
            lo = max(lo, bisect.bisect_right(self._keys, self._key_of[ending_before]))
            # Paging backwards: the page is the `limit` oldest items newer than the cursor.
            found = self._scan(range(lo, hi), keep, limit + 1)
            return list(reversed(found[:limit])), len(found) > limit
        found = self._scan(range(hi - 1, lo - 1, -1), keep, limit + 1)
        return found[:limit], len(found) > limit

    def _scan(self, positions: range, keep: Filter | None, wanted: int) -> list[Record]:
        found: list[Record] = []
        for at in positions:
            record = self.rows[self._ids[at]]
            if keep is None or keep(record):
                found.append(record)
                if len(found) == wanted:
                    break
        return found

    def _created_bounds(self, created: dict[str, int]) -> tuple[int, int]:
        lo, hi = 0, len(self._keys)
        if "gt" in created:
            lo = max(lo, bisect.bisect_left(self._keys, (created["gt"] + 1, -1)))
        if "gte" in created:
            lo = max(lo, bisect.bisect_left(self._keys, (created["gte"], -1)))
        if "lt" in created:
            hi = min(hi, bisect.bisect_left(self._keys, (created["lt"], -1)))
        if "lte" in created:
            hi = min(hi, bisect.bisect_left(self._keys, (created["lte"] + 1, -1)))
        return lo, max(lo, hi)


class Store:
    """All tables of one sandbox account, plus the id maker and an index from id to resource."""

    KINDS = (
        "customer",
        "product",
        "price",
        "coupon",
        "discount",
        "subscription",
        "invoice",
        "event",
    )

    def __init__(self, seed: int = 0) -> None:
        self.ids = IdMaker(seed)
        self.tables: dict[str, Table] = {kind: Table(kind) for kind in self.KINDS}
        self.lookup_keys: dict[str, str] = {}  # price lookup_key -> price id

    def __getitem__(self, kind: str) -> Table:
        return self.tables[kind]

    def new_id(self, kind: str) -> str:
        if kind == "event":
            return self.ids.new(PREFIXES[kind], 24)
        return self.ids.new(PREFIXES[kind])

    def find(self, object_id: str) -> tuple[str, Record] | None:
        """The (kind, record) an id names, by its prefix; coupons are looked up last."""
        prefix = object_id.partition("_")[0]
        for kind, kind_prefix in PREFIXES.items():
            if kind_prefix == prefix and kind in self.tables:
                record = self.tables[kind].rows.get(object_id)
                return (kind, record) if record is not None else None
        record = self.tables["coupon"].rows.get(object_id)
        return ("coupon", record) if record is not None else None

    def reindex(self) -> None:
        for table in self.tables.values():
            table.reindex()

    def emit(
        self,
        event_type: str,
        kind: str,
        record: Record,
        created: int,
        *,
        previous: dict[str, Any] | None = None,
        request: tuple[str | None, str | None] = (None, None),
        bulk: bool = False,
    ) -> Record:
        """Record an event with a snapshot of `record` as it is now; `request` is (id, key)."""
        event = {
            "id": self.new_id("event"),
            "created": created,
            "type": event_type,
            "kind": kind,
            "snapshot": dict(record),
            "previous": previous,
            "request_id": request[0],
            "idempotency_key": request[1],
        }
        return self.tables["event"].add(event, bulk=bulk)
