"""Run rows: every pull, evaluation and sync records when it ran, what it did and how it ended.

A row started under a step or job lease also records that lease and its holder (`RunOwner`),
which is what later proves the run dead if its process is killed (worker/abandoned.py). The
steps (pull, evaluate, sync) know nothing of leases, so whoever holds one (the scheduled worker,
or a one-shot command: worker/one_shot.py) names the owner around a step with `owned_by`, a
context variable read here. Rows started with no owner (the demo) record none.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.logs import redact
from smartseg.store.models import Run, table_of

__all__ = ["RunOwner", "finish_run", "owned_by", "start_run"]

_RUN = table_of(Run)


@dataclass(frozen=True, slots=True)
class RunOwner:
    """The lease the worker holds while it runs something (`step:pull`, `pipeline`), and who."""

    lease: str
    holder: str


# A context variable belongs to its thread: the owner set around a step reaches the step's own
# code and nothing running in other threads. A thread the step itself started would record no
# owner, which is the safe side: an ownerless row is never settled as abandoned.
_OWNER: ContextVar[RunOwner | None] = ContextVar("smartseg_run_owner", default=None)


@contextlib.contextmanager
def owned_by(owner: RunOwner) -> Iterator[None]:
    """Run rows started inside this block, in this thread, record `owner`."""
    token = _OWNER.set(owner)
    try:
        yield
    finally:
        _OWNER.reset(token)


def start_run(
    engine: Engine,
    kind: str,
    *,
    started: dt.datetime,
    job: str | None = None,
    as_of: dt.datetime | None = None,
    owner: RunOwner | None = None,
) -> int:
    """Insert a `running` row in its own transaction, so it is visible while the work goes on.

    `owner` defaults to the one `owned_by` set around this call, if any."""
    owner = owner or _OWNER.get()
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
                lease=owner.lease if owner else None,
                holder=owner.holder if owner else None,
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
