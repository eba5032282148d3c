"""Run rows: every pull, evaluation and sync records when it ran, what it did and how it ended."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.logs import redact
from smartseg.store.models import Run, table_of

__all__ = ["finish_run", "start_run"]

_RUN = table_of(Run)


def start_run(
    engine: Engine,
    kind: str,
    *,
    started: dt.datetime,
    job: str | None = None,
    as_of: dt.datetime | None = None,
) -> int:
    """Insert a `running` row in its own transaction, so it is visible while the work goes on."""
    with engine.begin() as connection:
        result = connection.execute(
            sa.insert(_RUN).values(
                kind=kind,
                job=job,
                status="running",
                started_at=started,
                as_of=as_of,
                counts={},
                api_calls={},
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_run(
    engine: Engine,
    run_id: int,
    *,
    finished: dt.datetime,
    status: str,
    counts: dict[str, Any],
    api_calls: dict[str, int],
    error: str | None = None,
) -> None:
    """Record the outcome; error text passes the redactor first."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(_RUN)
            .where(_RUN.c.id == run_id)
            .values(
                status=status,
                finished_at=finished,
                counts=counts,
                api_calls=api_calls,
                error=redact(error)[:4000] if error else None,
            )
        )
