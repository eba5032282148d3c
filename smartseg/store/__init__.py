"""The local store: SQLModel tables, engines, bulk upserts and migrations."""

from __future__ import annotations

from smartseg.store.database import (
    DEFAULT_DATABASE_URL,
    database_url,
    make_engine,
    redacted_url,
    refresh_statistics,
    session_scope,
)
from smartseg.store.migrate import current_revision, head_revision, schema_drift, upgrade
from smartseg.store.models import (
    Account,
    Activity,
    Contact,
    Membership,
    NpsResponse,
    Pushed,
    Run,
    Segment,
    SourceLink,
    StreamState,
    Subscription,
    TaskLedger,
    Ticket,
    UsageDaily,
    table_of,
)
from smartseg.store.upsert import UpsertResult, upsert

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Account",
    "Activity",
    "Contact",
    "Membership",
    "NpsResponse",
    "Pushed",
    "Run",
    "Segment",
    "SourceLink",
    "StreamState",
    "Subscription",
    "TaskLedger",
    "Ticket",
    "UpsertResult",
    "UsageDaily",
    "current_revision",
    "database_url",
    "head_revision",
    "make_engine",
    "redacted_url",
    "refresh_statistics",
    "schema_drift",
    "session_scope",
    "table_of",
    "upgrade",
    "upsert",
]
