"""Activities (emails, calls, meetings, QBRs) from exported files, as `activity` rows.

Rows carry source "activity:file" and a `source_id`: the export's activity id, or, when the file
has none, a hash of the fields that identify the activity (not its status or duration, which
change as a meeting happens), so re-reading a file upserts the same rows. Kinds and statuses are
mapped onto the words the CRM connectors use, so rules read the same whatever the source. The
account is named by workspace id (`workspace:<id>`) or, failing that, by website domain
(`domain:<domain>`); the contact by email (`email:<address>`); the link step resolves them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

from smartseg.config.sources import FileInput
from smartseg.connectors.files import (
    Column,
    FileChunk,
    InputError,
    Piece,
    Reject,
    block_records,
    convert_records,
    read_blocks,
    read_exports,
)
from smartseg.connectors.mapping import normalize_domain
from smartseg.connectors.row_values import BadValue, parse_number, parse_text, parse_timestamp

__all__ = [
    "ACTIVITY_SOURCE",
    "MAX_SUBJECT_CHARS",
    "ActivityChunk",
    "ActivityFileError",
    "read_activities",
]

ACTIVITY_SOURCE = "activity:file"
MAX_SUBJECT_CHARS = 1_000

_COLUMNS = (
    Column("activity_id", ("activity_id", "id", "engagement_id", "event_id"), required=False),
    Column("kind", ("kind", "type", "activity_type", "activity_kind", "engagement_type")),
    Column("status", ("status", "outcome", "activity_status", "meeting_outcome")),
    Column("occurred_at", ("occurred_at", "timestamp", "start_time", "activity_date", "date")),
    Column("duration_minutes", ("duration_minutes", "duration", "minutes"), required=False),
    # Long subjects are truncated, not rejected: the activity itself is still good.
    Column("subject", ("subject", "title", "name"), required=False, max_chars=None),
    Column("owner_email", ("owner_email", "owner", "user_email", "rep_email"), required=False),
    Column("workspace_id", ("workspace_id", "workspace", "account_key"), required=False),
    Column("account_domain", ("account_domain", "domain", "company_domain", "website"), False),
    Column("contact_email", ("contact_email", "email", "attendee_email"), required=False),
)
# A file needs one of these two columns to say whose activities it holds.
_WORKSPACE, _DOMAIN = (
    [c.name for c in _COLUMNS].index(name) for name in ("workspace_id", "account_domain")
)

_KINDS = {
    "email": "email", "e mail": "email", "mail": "email", "inbound email": "email",
    "outbound email": "email", "call": "call", "phone": "call", "phone call": "call",
    "log a call": "call", "meeting": "meeting", "event": "meeting", "video meeting": "meeting",
    "qbr": "qbr", "quarterly business review": "qbr", "business review": "qbr",
}  # fmt: skip
_STATUSES = {
    "completed": "completed", "complete": "completed", "done": "completed", "held": "completed",
    "sent": "completed", "cancelled": "cancelled", "canceled": "cancelled",
    "no show": "cancelled", "noshow": "cancelled", "scheduled": "scheduled",
    "planned": "scheduled", "rescheduled": "scheduled", "upcoming": "scheduled",
}  # fmt: skip
_WORD_BREAKS_RE = re.compile(r"[\s\-_]+")


class ActivityFileError(InputError):
    """An activity export that cannot be read: the message says which file and why."""


# Up to `chunk_rows` activity rows and the rejects met while reading them.
ActivityChunk: TypeAlias = FileChunk


def read_activities(spec: FileInput, *, chunk_rows: int = 10_000) -> Iterator[ActivityChunk]:
    """Read every activity export `spec.path` matches (sorted), yielding validated rows.

    Raises ActivityFileError for a file that cannot be read at all; bad rows become rejects.
    """
    return read_exports(spec, chunk_rows, error=ActivityFileError, pieces=_pieces)


def _pieces(path: Path, spec: FileInput, chunk_rows: int) -> Iterator[Piece]:
    # Activity exports are small: every row goes through the row-by-row checks.
    for item in read_blocks(path, spec.format, _COLUMNS, error=ActivityFileError):
        if isinstance(item, Reject):
            yield [], [item]
            continue
        if item.arrays[_WORKSPACE] is None and item.arrays[_DOMAIN] is None:
            # Otherwise every row would be rejected one by one for the same reason.
            raise ActivityFileError(
                f"{path} has no 'workspace_id' column and no 'account_domain' column, so no "
                "activity names its account. To fix: export one of them.",
                file=path,
            )
        records = block_records(item, _COLUMNS, path)
        yield from convert_records(records, _row, file=path, piece_rows=chunk_rows)


def _word(value: object, column: str, table: dict[str, str]) -> str:
    text = parse_text(value, column, required=True)
    found = table.get(_WORD_BREAKS_RE.sub(" ", text.lower()).strip())
    if found is None:
        accepted = ", ".join(sorted(set(table.values())))
        raise BadValue(f"unknown {column}: expected one of {accepted}", text)
    return found


def _row(values: tuple[object, ...]) -> dict[str, Any]:
    ident, kind, status, occurred, duration, subject, owner, workspace, domain, contact = values
    occurred_at = parse_timestamp(occurred, "occurred_at")
    workspace_id = parse_text(workspace, "workspace_id", required=False)
    site = normalize_domain(parse_text(domain, "account_domain", required=False))
    if workspace_id:
        account_ref = f"workspace:{workspace_id}"
    elif site:
        account_ref = f"domain:{site}"
    else:
        raise BadValue("no workspace_id and no account_domain: the account is unknown")
    row_kind = _word(kind, "kind", _KINDS)
    mail = parse_text(contact, "contact_email", required=False).lower()
    owner_email = parse_text(owner, "owner_email", required=False).lower()
    title = parse_text(subject, "subject", required=False)[:MAX_SUBJECT_CHARS]
    source_id = parse_text(ident, "activity_id", required=False)
    if not source_id:
        parts = (row_kind, occurred_at.isoformat(), account_ref, mail, owner_email, title)
        source_id = "h:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    # An empty duration is unknown, not zero minutes.
    timed = bool(parse_text(duration, "duration_minutes", required=False))
    return {
        "source": ACTIVITY_SOURCE,
        "source_id": source_id,
        "kind": row_kind,
        "status": _word(status, "status", _STATUSES),
        "occurred_at": occurred_at,
        "duration_minutes": float(parse_number(duration, "duration_minutes")) if timed else None,
        "subject": title or None,
        "owner_id": owner_email or None,
        "account_ref": account_ref,
        "contact_ref": f"email:{mail}" if mail else None,
    }
