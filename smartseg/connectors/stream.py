"""What a stream declares, and what it hands the shared loop.

A connector is a handful of `Stream`s. A stream knows how to read its source in pages from a
cursor and how to write a page into the store; the loop in `runner.py` owns everything else
(cursor state, transactions, overlap, counts, run rows), so no connector re-implements it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from smartseg.store import UpsertResult

__all__ = ["Page", "ReadContext", "RecordIssue", "Stream", "WriteResult"]


@dataclass(frozen=True, slots=True)
class RecordIssue:
    """A record that could not be stored as it came, and why (kept for the run's report)."""

    source_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReadContext:
    """Where a read starts. `since` already includes the overlap; None means a full read."""

    run_started: dt.datetime
    since: dt.datetime | None
    state: Mapping[str, Any]
    full: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One page of source records and the position reached after it.

    `cursor` is the highest cursor value in the page (the loop caps it at the run's start);
    `state` is any extra position the stream needs to resume (a paging token, file
    fingerprints) and replaces the saved state when the page is committed; `issues` are
    records the read itself had to set aside (a malformed row in a file).
    """

    records: Sequence[Mapping[str, Any]]
    cursor: dt.datetime | None = None
    deleted: Sequence[str] = ()
    state: Mapping[str, Any] | None = None
    issues: Sequence[RecordIssue] = ()


@dataclass(slots=True)
class WriteResult:
    upserted: UpsertResult = field(default_factory=UpsertResult)
    deleted: int = 0
    issues: list[RecordIssue] = field(default_factory=list)

    def merge(self, other: WriteResult) -> None:
        self.upserted = self.upserted + other.upserted
        self.deleted += other.deleted
        self.issues.extend(other.issues)


class Stream(Protocol):
    """A source object pulled into the store (e.g. salesforce.Account)."""

    @property
    def source(self) -> str:
        """The source's name, as config and run rows know it ("salesforce")."""
        ...

    @property
    def name(self) -> str:
        """The object's name within the source ("Account")."""
        ...

    @property
    def key(self) -> str:
        """`source.name`, the name runs and cursor state use."""
        ...

    def read(self, context: ReadContext) -> Iterator[Page]:
        """Pages from `context.since` (or everything), in cursor order where the source allows."""
        ...

    def write(self, connection: Connection, page: Page) -> WriteResult:
        """Map and upsert one page, inside the transaction that also saves the cursor."""
        ...
