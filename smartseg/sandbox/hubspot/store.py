"""The in-memory portal: records per object type, unique-value indexes, associations and owners.

Built for a 600,000-record portal: records live in dicts in id order (ids only grow), a sorted id
list answers `after` cursors by bisection, and a last-modified index (built on first use, then
append-only, since every write's stamp is later than the one before) lets incremental searches
skip old records. System properties (id, create and modify dates) are integers on the record,
rendered when read, so loading never formats a timestamp.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from .catalog import OBJECT_TYPES, ObjectType, assoc_type
from .properties import PropertyDef, iso_ms
from .seed import seed_schema

__all__ = ["AssociationStore", "ObjectTable", "Owner", "PortalState", "Record"]

_A = TypeVar("_A")
_R = TypeVar("_R")


class Record:
    """One CRM object. `props` holds written values; system dates are epoch ms.

    A loaded record may start with a builder instead of a dict: its properties are made on first
    read, so loading a million records costs only their ids, dates and index entries.
    """

    __slots__ = ("_builder", "_props", "archived_at", "created", "id", "updated")

    def __init__(
        self,
        id_: int,
        props: dict[str, str] | None,
        created: int,
        updated: int,
        builder: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.id = id_
        self._props = props
        self._builder = builder
        self.created = created
        self.updated = updated
        self.archived_at: int | None = None

    @property
    def props(self) -> dict[str, str]:
        props = self._props
        if props is None:
            assert self._builder is not None, "a record needs properties or a builder"
            props = self._props = self._builder()
            self._builder = None
        return props


@dataclass(slots=True)
class Owner:
    """A HubSpot user who can own records (a world Rep)."""

    id: int
    user_id: int
    email: str
    first_name: str
    last_name: str
    archived: bool
    created: int
    updated: int


class ObjectTable:
    """All records of one object type, with the indexes its API calls need."""

    def __init__(self, otype: ObjectType, schema: dict[str, PropertyDef]) -> None:
        self.type = otype
        self.schema = schema
        self.records: dict[int, Record] = {}
        self.ids: list[int] = []  # ascending; archived records stay (archived=true lists them)
        self.next_id = otype.id_base + 1
        self.unique: dict[str, dict[str, int]] = {}  # property -> value -> id
        # (updated ms, id) ascending, stale pairs skipped; None until a search first needs it.
        self._modified: list[tuple[int, int]] | None = []
        for name in self.unique_properties():
            self.unique[name] = {}

    def unique_properties(self) -> list[str]:
        """Properties whose values identify one record (idProperty candidates)."""
        names = [p.name for p in self.schema.values() if p.has_unique_value]
        if self.type.natural_key:
            names.append(self.type.natural_key)
        return names

    def index_unique(self, name: str) -> None:
        """Start indexing a property newly marked unique."""
        self.unique[name] = {
            rec.props[name].lower(): rec.id
            for rec in self.records.values()
            if rec.archived_at is None and rec.props.get(name)
        }

    def insert(self, rec: Record, unique: dict[str, str] | None = None) -> None:
        """Add a new record; its id must be above every existing one.

        `unique` gives a lazily built record's unique values (so indexing does not build it) and
        marks a bulk load: its historical stamps invalidate the last-modified index.
        """
        self.records[rec.id] = rec
        self.ids.append(rec.id)
        if rec.id >= self.next_id:
            self.next_id = rec.id + 1
        values = rec.props if unique is None else unique
        for name, index in self.unique.items():
            value = values.get(name)
            if value:
                index[value.lower()] = rec.id
        if unique is not None:
            self._modified = None
        elif self._modified is not None:
            self._modified.append((rec.updated, rec.id))

    @property
    def modified(self) -> list[tuple[int, int]]:
        if self._modified is None:
            self._modified = sorted((r.updated, r.id) for r in self.records.values())
        return self._modified

    def touched(self, rec: Record, old_props: dict[str, str]) -> None:
        """Re-index a record after a write (its stamp is later than any before it)."""
        for name, index in self.unique.items():
            old, new = old_props.get(name), rec.props.get(name)
            if old and index.get(old.lower()) == rec.id:
                del index[old.lower()]
            if new and rec.archived_at is None:
                index[new.lower()] = rec.id
        if self._modified is not None:
            self._modified.append((rec.updated, rec.id))
            if len(self._modified) > 2 * len(self.records) + 1000:
                self._modified = None  # mostly stale pairs: rebuild on next use

    def find_unique(self, name: str, value: str) -> Record | None:
        found = self.unique.get(name, {}).get(value.lower())
        return self.records.get(found) if found is not None else None

    def live(self, id_: int) -> Record | None:
        rec = self.records.get(id_)
        return rec if rec is not None and rec.archived_at is None else None

    def page_after(self, after: int, archived: bool) -> Iterator[Record]:
        """Records with id > after, in id order, archived or live as asked."""
        ids = self.ids
        for i in range(bisect.bisect_right(ids, after), len(ids)):
            rec = self.records[ids[i]]
            if (rec.archived_at is not None) == archived:
                yield rec

    def modified_since(self, since_ms: int) -> Iterator[Record]:
        """Live records whose last write is at or after `since_ms`, oldest write first."""
        index = self.modified
        for i in range(bisect.bisect_left(index, (since_ms, -1)), len(index)):
            stamp, id_ = index[i]
            rec = self.records[id_]
            if rec.updated == stamp and rec.archived_at is None:
                yield rec

    def value(self, rec: Record, name: str) -> str | None:
        """A property's value as the API returns it (system properties rendered here)."""
        if name == "hs_object_id":
            return str(rec.id)
        if name in ("hs_lastmodifieddate", "lastmodifieddate"):
            return iso_ms(rec.updated)
        if name in ("createdate", "hs_createdate"):
            return iso_ms(rec.created)
        return rec.props.get(name)


@dataclass(slots=True)
class AssociationStore:
    """Typed links between records, kept in both directions.

    links[(source, target)][source_id][target_id] is the list of type ids from source to target.
    """

    links: dict[tuple[str, str], dict[int, dict[int, list[int]]]] = field(default_factory=dict)

    def add(self, source: str, source_id: int, target: str, target_id: int, type_id: int) -> None:
        """Link two records with one type (and its inverse); adding twice changes nothing."""
        kind = assoc_type(source, target, type_id)
        assert kind is not None, f"no association type {type_id} from {source} to {target}"
        self._put(source, source_id, target, target_id, type_id)
        self._put(target, target_id, source, source_id, kind.inverse_id)

    def add_many(
        self, source: str, target: str, pairs: list[tuple[int, int]], type_ids: tuple[int, ...]
    ) -> None:
        """Link many (source id, target id) pairs with the same types; for loading a portal."""
        kinds = [assoc_type(source, target, tid) for tid in type_ids]
        assert all(kinds), f"unknown association types {type_ids} from {source} to {target}"
        inverse = [k.inverse_id for k in kinds if k is not None]
        forward_map = self.links.setdefault((source, target), {})
        backward_map = self.links.setdefault((target, source), {})
        for source_id, target_id in pairs:
            have = forward_map.setdefault(source_id, {}).setdefault(target_id, [])
            have += [t for t in type_ids if t not in have] if have else type_ids
            back = backward_map.setdefault(target_id, {}).setdefault(source_id, [])
            back += [t for t in inverse if t not in back] if back else inverse

    def _put(self, source: str, source_id: int, target: str, target_id: int, type_id: int) -> None:
        types = self.links.setdefault((source, target), {}).setdefault(source_id, {})
        have = types.setdefault(target_id, [])
        if type_id not in have:
            have.append(type_id)

    def remove(
        self,
        source: str,
        source_id: int,
        target: str,
        target_id: int,
        type_ids: list[int] | None = None,
    ) -> None:
        """Unlink (only `type_ids`, or every type) in both directions."""
        forward = self.links.get((source, target), {}).get(source_id, {})
        for tid in list(forward.get(target_id, [])):
            if type_ids is None or tid in type_ids:
                kind = assoc_type(source, target, tid)
                self._drop(source, source_id, target, target_id, tid)
                if kind is not None:
                    self._drop(target, target_id, source, source_id, kind.inverse_id)

    def _drop(self, source: str, source_id: int, target: str, target_id: int, tid: int) -> None:
        by_source = self.links.get((source, target), {})
        have = by_source.get(source_id, {}).get(target_id)
        if have and tid in have:
            have.remove(tid)
            if not have:
                del by_source[source_id][target_id]

    def of(self, source: str, source_id: int, target: str) -> dict[int, list[int]]:
        """Target id -> type ids, for one record, in the order the links were made."""
        return self.links.get((source, target), {}).get(source_id, {})


class PortalState:
    """Everything one fake HubSpot portal holds, behind one lock, with its write clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.schema = seed_schema()
        self.tables = {name: ObjectTable(t, self.schema[name]) for name, t in OBJECT_TYPES.items()}
        self.assocs = AssociationStore()
        self.owners: dict[int, Owner] = {}
        self._last_stamp = 0

    def serialized(self, handler: Callable[[_A], _R]) -> Callable[[_A], _R]:
        """`handler` run under the portal lock: requests see and leave the portal consistent."""

        def run(arg: _A) -> _R:
            with self.lock:
                return handler(arg)

        return run

    def stamp(self) -> int:
        """The current time in epoch ms, strictly later than any stamp given before."""
        now = int(self.clock() * 1000)
        self._last_stamp = max(now, self._last_stamp + 1)
        return self._last_stamp

    def note_stamp(self, ms: int) -> None:
        """Keep later write stamps above a loaded record's historical stamp."""
        self._last_stamp = max(self._last_stamp, ms)
