"""What sync asks of a CRM: the few operations every target implements, with plain values.

`plan.py` decides what should change; a `CrmTarget` (Salesforce, HubSpot) makes it so with the
fewest calls its API allows and reports the outcome per record, so one failing record never
hides the others and is retried on the next run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "CrmTarget",
    "FieldSpec",
    "RecordWrite",
    "TaskOutcome",
    "TaskWrite",
    "WriteOutcome",
    "join_tags",
    "split_tags",
]

Level = Literal["account", "contact"]
FieldKind = Literal["tags", "text", "number", "date"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field (Salesforce) or property (HubSpot) smartseg owns and may create."""

    name: str
    kind: FieldKind
    label: str


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """New values for one CRM record; tags are already merged and joined with ';'."""

    record_id: str
    values: Mapping[str, str | float | None]


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    record_id: str
    ok: bool
    error: str | None = None  # the API's own message, for the operator and the retry


@dataclass(frozen=True, slots=True)
class TaskWrite:
    """One follow-up task, created or updated by its idempotency key."""

    key: str
    subject: str
    body: str
    due: dt.date
    priority: Literal["High", "Normal", "Low"]
    owner_id: str | None
    account_record_id: str | None  # Salesforce WhatId / HubSpot company id
    contact_record_id: str | None  # Salesforce WhoId / HubSpot contact id
    completed: bool = False
    # Closing: a completed task with an empty body updates only its status, so the subject,
    # the comments a CSM wrote and everything else in the CRM stay as they are.
    retry: bool = False
    # An earlier attempt may have saved the task (its ledger row is an intent or a failure):
    # a target that links tasks in a second call must link it again, not only when it is new.


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    key: str
    ok: bool
    task_id: str | None = None
    error: str | None = None


class CrmTarget(Protocol):
    """One CRM smartseg writes to. Every method counts its calls in `calls()`.

    Transient failures (429 with Retry-After, 5xx, dropped connections, an expired session)
    are retried inside; what still fails comes back per record, never as an exception, except
    for configuration problems (missing permission, unknown object), which raise.
    """

    name: str

    def calls(self) -> int:
        """API calls made so far."""
        ...

    def ensure_fields(
        self, level: Level, fields: Sequence[FieldSpec], *, create: bool
    ) -> list[str]:
        """Check the fields exist; create the missing ones when `create`, else raise a
        ConfigError naming them and `smartseg crm setup`. Returns what it did, one line each."""
        ...

    def ensure_task_key(self, *, create: bool) -> list[str]:
        """The same for the task field/property holding smartseg's key (unique, external id)."""
        ...

    def ensure_access(self) -> list[str]:
        """Let the API user (and whoever config names) read and write smartseg's fields and task
        key where the CRM has field-level security; reads only when all is granted already.
        Returns what it did, one line each ([] for a CRM without field-level security)."""
        ...

    def ensure_tag_values(self, level: Level, field: str, values: Iterable[str]) -> list[str]:
        """Add the values missing from the tags field's options (at most two calls: read
        the options, then one update with all missing values). Returns the values added."""
        ...

    def read_tags(self, level: Level, field: str, record_ids: Sequence[str]) -> dict[str, str]:
        """The current raw value of the tags field for each record (';'-joined, '' if empty),
        read in the largest batches the API allows."""
        ...

    def update(self, level: Level, writes: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """Write the values in the largest batches the API allows; one outcome per record."""
        ...

    def upsert_tasks(self, tasks: Sequence[TaskWrite]) -> list[TaskOutcome]:
        """Create or update tasks by key, idempotently: the same key twice is one task."""
        ...


def split_tags(value: str | None) -> list[str]:
    """A multi-select value as its list of values (both CRMs join them with ';')."""
    return [v.strip() for v in (value or "").split(";") if v.strip()]


def join_tags(values: Iterable[str]) -> str:
    return ";".join(values)
