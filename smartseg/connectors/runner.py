"""The one loop that runs every stream: read pages, write each page and its cursor atomically.

Guarantees, whatever the source:
- a page's rows and the cursor that covers them commit in one transaction, so a crash or a
  failed call loses nothing and the next run resumes after the last committed page;
- the saved cursor never passes the run's start time, so rows written while a run reads are
  picked up by the next run, and each incremental read re-reads an `overlap` window that the
  diff-only upsert makes harmless;
- one stream failing does not stop the others; the run row says which failed and why.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from smartseg.connectors.errors import ConnectorError, Failure
from smartseg.connectors.files import InputError
from smartseg.connectors.http import CallCounter
from smartseg.connectors.stream import Page, ReadContext, Stream, WriteResult
from smartseg.logs import redact
from smartseg.store.database import refresh_statistics
from smartseg.store.models import StreamState, table_of
from smartseg.store.runs import finish_run, start_run

__all__ = ["PullResult", "StreamReport", "pull"]

log = logging.getLogger("smartseg.pull")
_STATE = table_of(StreamState)

Clock = Callable[[], dt.datetime]
Progress = Callable[[str, int], None]


@dataclass(slots=True)
class StreamReport:
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    api_calls: int = 0
    error: str | None = None
    failure: str | None = None
    issues: list[dict[str, str]] = field(default_factory=list)

    def add(self, page: Page, written: WriteResult) -> None:
        self.records += len(page.records)
        self.created += written.upserted.inserted
        self.updated += written.upserted.updated
        self.unchanged += written.upserted.unchanged
        self.deleted += written.deleted
        found = [*page.issues, *written.issues]
        self.skipped += len(found)
        # Keep the report readable: the first issues say what is wrong, the count says how much.
        room = max(0, 50 - len(self.issues))
        self.issues.extend({"id": i.source_id, "reason": i.reason} for i in found[:room])

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "api_calls": self.api_calls,
            **({"error": self.error, "failure": self.failure} if self.error else {}),
            **({"issues": self.issues} if self.issues else {}),
        }


@dataclass(slots=True)
class PullResult:
    run_id: int
    streams: dict[str, StreamReport]
    unmatched: int = 0

    @property
    def ok(self) -> bool:
        return all(report.error is None for report in self.streams.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "streams": {key: report.as_dict() for key, report in self.streams.items()},
            "unmatched": self.unmatched,
        }


def pull(
    engine: Engine,
    streams: Sequence[Stream],
    *,
    calls: CallCounter,
    clock: Clock,
    overlap: dt.timedelta = dt.timedelta(minutes=5),
    full: bool = False,
    after: Callable[[Connection], int] | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Pull every stream into the store; `after` runs once at the end (identity linking) and
    returns how many records are left unmatched."""
    started = clock()
    run_id = start_run(engine, "pull", started=started)
    result = PullResult(run_id=run_id, streams={})
    for stream in streams:
        result.streams[stream.key] = _pull_stream(
            engine, stream, run_id=run_id, started=started, calls=calls, overlap=overlap,
            full=full, progress=progress,
        )  # fmt: skip
    if after is not None:
        with engine.begin() as connection:
            result.unmatched = after(connection)
    if any(r.created or r.updated or r.deleted for r in result.streams.values()):
        _refresh_statistics(engine)
    errors = [f"{key}: {r.error}" for key, r in result.streams.items() if r.error]
    finish_run(
        engine,
        run_id,
        finished=clock(),
        status="succeeded" if not errors else "failed",
        counts=result.as_dict(),
        api_calls=calls.snapshot(),
        error="; ".join(errors) or None,
    )
    return result


def _refresh_statistics(engine: Engine) -> None:
    """The planner's statistics after rows changed (see `refresh_statistics`). Best effort:
    stale statistics make evaluation slower, never wrong, so a failure here is logged and the
    pull still succeeds."""
    try:
        analyzed = refresh_statistics(engine)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("could not refresh the query planner's statistics: %s", redact(str(exc)))
        return
    log.debug("planner statistics refreshed: %s", ", ".join(analyzed) or "none needed")


def _pull_stream(
    engine: Engine,
    stream: Stream,
    *,
    run_id: int,
    started: dt.datetime,
    calls: CallCounter,
    overlap: dt.timedelta,
    full: bool,
    progress: Progress | None,
) -> StreamReport:
    report = StreamReport()
    calls_before = calls.get(stream.source)
    cursor, state = _load_state(engine, stream)
    since = None if full or cursor is None else cursor - overlap
    context = ReadContext(run_started=started, since=since, state=state, full=full)
    try:
        for page in stream.read(context):
            with engine.begin() as connection:
                written = stream.write(connection, page)
                if page.cursor is not None:
                    reached = min(page.cursor, started)
                    cursor = reached if cursor is None or full else max(cursor, reached)
                if page.state is not None:
                    state = dict(page.state)
                _save_state(connection, stream, cursor, state, run_id, started)
            report.add(page, written)
            if progress is not None:
                progress(stream.key, len(page.records))
    except ConnectorError as exc:
        report.error = exc.decision.message
        report.failure = exc.decision.failure.value
        log.error("%s", exc)
    except InputError as exc:  # a file or query that cannot be read at all; the rest still runs
        report.error = str(exc)
        report.failure = Failure.DATA.value
        log.error("%s: %s", stream.key, exc)
    except Exception as exc:
        # A record no writer expected (or a bug) fails its stream, not the whole pull: the
        # other streams still run and the run row is finished. The traceback is for --debug.
        report.error = f"unexpected {type(exc).__name__}: {redact(str(exc))}"
        report.failure = Failure.TRANSIENT.value
        log.error("%s: %s", stream.key, report.error)
        log.debug("%s failed", stream.key, exc_info=True)
    report.api_calls = calls.get(stream.source) - calls_before
    return report


def _load_state(engine: Engine, stream: Stream) -> tuple[dt.datetime | None, dict[str, Any]]:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(_STATE.c.cursor, _STATE.c.state).where(
                _STATE.c.source == stream.source, _STATE.c.stream == stream.name
            )
        ).first()
    if row is None:
        return None, {}
    cursor = dt.datetime.fromisoformat(row.cursor) if row.cursor else None
    return cursor, dict(row.state or {})


def _save_state(
    connection: Connection,
    stream: Stream,
    cursor: dt.datetime | None,
    state: dict[str, Any],
    run_id: int,
    now: dt.datetime,
) -> None:
    values = {
        "cursor": cursor.isoformat() if cursor else None,
        "state": state,
        "run_id": run_id,
        "updated_at": now,
    }
    updated = connection.execute(
        sa.update(_STATE)
        .where(_STATE.c.source == stream.source, _STATE.c.stream == stream.name)
        .values(**values)
    ).rowcount
    if not updated:
        connection.execute(
            sa.insert(_STATE).values(source=stream.source, stream=stream.name, **values)
        )
