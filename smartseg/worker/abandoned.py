"""Runs whose worker died: proving a `running` row dead, and settling it as `abandoned`.

A worker killed outright (the OOM killer, a lost node) never records how its run ended, so its
run rows would say `running` forever. How long a run has taken cannot tell a dead run from a
slow one; the leases can. The scheduled worker runs each job under the job's lease and each
step under `step:pull`, `step:evaluate` or `step:sync` (service.py), and every run row it starts
records that lease and the replica holding it (`run.lease`, `run.holder`, set through
`store.runs.owned_by`).

The rule, applied by a replica right after it takes lease L and before it starts any work under
it: every row still `running` under L is dead. L has one holder at a time, so whoever started
such a row holds L no longer: its lease expired after `worker.lease_ttl` without a heartbeat,
or it gave L back without recording the end (it failed while saving it), or it was an earlier
process under this replica's name, restarted since. Nor can the row be this process's own:
a replica runs each step in one thread at a time (the step's lock) and each job once at a time
(APScheduler's `max_instances=1`), and it settles before it starts. Such rows become
`abandoned`, with `finished_at` and an error that says what happened and what the next run
does about it.

`smartseg status` applies the same proof to what it reads: a row `running` under a lease that
has since been taken by another replica, or given back, ran in a holding that is over. A lease
that merely expired, with nobody taking it yet, proves nothing: a worker cut off from the
database renews it when it is back. Status leaves such rows `running` with a note instead.

One-shot commands (`smartseg pull`, `evaluate`, `sync`) hold their step's lease under a holder
of their own (one_shot.py), so the same rule covers them. Rows written with no owner (the demo,
direct calls of the steps) are never touched: nothing proves them dead.

Two limits, both the lease's own. A replica that stalls past its TTL and then wakes up was
rightly replaced, but its step may still be running; when it finishes, `finish_run` writes its
real outcome over `abandoned`. And two live processes sharing one replica id defeat the lease
and this rule with it: replica ids must be unique (the default, host:pid, is).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.store.models import Lease, Run, table_of
from smartseg.store.runs import RunOwner, owned_by
from smartseg.worker.lease import Attempt, Heartbeat, Leases, LeaseState

__all__ = [
    "ABANDONED",
    "holding",
    "lapsed_notes",
    "settle_after_taking",
    "settle_proven",
    "settle_taken_over",
]

log = logging.getLogger("smartseg.worker")

ABANDONED = "abandoned"

_RUN = table_of(Run)
_LEASE = table_of(Lease)

# What each kind of run is called, and what the next run does about the one that died.
_WHAT = {"pull": "pull", "evaluate": "evaluation", "evaluate-past": "evaluation", "sync": "sync"}
_NEXT = {
    "pull": "The next pull carries on from the saved stream cursors.",
    "evaluate": "It committed nothing; the next evaluation records every change.",
    "evaluate-past": "It wrote nothing.",
    "sync": "The next sync carries on from the ledgers of what was written, writing nothing twice.",
    "job": "The next firing runs its steps, each carrying on from its own checkpoints.",
}


def settle_taken_over(
    engine: Engine, owner: RunOwner, *, now: dt.datetime, previous: LeaseState | None
) -> list[int]:
    """Settle every row still `running` under `owner.lease`, which `owner.holder` has just
    taken (see the module doc); `previous` is the lease as it was before, for the message.
    Returns the ids settled.

    Each update checks again that this replica holds the lease: if it lost it in between, the
    new holder's rows are not ours to judge."""
    held = sa.exists().where(
        _LEASE.c.job == owner.lease,
        _LEASE.c.holder == owner.holder,
        _LEASE.c.acquired_until > now,
    )
    settled = []
    with engine.begin() as connection:
        rows = connection.execute(
            sa.select(_RUN.c.id, _RUN.c.kind, _RUN.c.job, _RUN.c.holder).where(
                _RUN.c.status == "running", _RUN.c.lease == owner.lease
            )
        ).mappings()
        for row in list(rows):
            why = _taken_over(row["holder"], owner, now, previous)
            if _settle(connection, row, why, now, held):
                settled.append(int(row["id"]))
    return settled


def _running_under_leases(*lease_columns: Any) -> sa.Select[Any]:
    """Rows still `running` that name a lease, with what a message needs and `lease_columns`
    from that lease's row."""
    return (
        sa.select(_RUN.c.id, _RUN.c.kind, _RUN.c.job, _RUN.c.holder, _RUN.c.lease, *lease_columns)
        .join(_LEASE, _LEASE.c.job == _RUN.c.lease)
        .where(_RUN.c.status == "running")
    )


def settle_after_taking(leases: Leases, attempt: Attempt) -> list[int]:
    """What a holder does right after taking `attempt.job`, before any work under it: settle
    the rows a dead holder left running there. Best effort (bookkeeping: the work can still go
    ahead, and the next holder settles them); returns the ids settled."""
    owner = RunOwner(attempt.job, leases.holder)
    try:
        settled = settle_taken_over(
            leases.engine, owner, now=leases.clock(), previous=attempt.previous
        )
    except sa.exc.SQLAlchemyError:
        log.warning("could not settle the runs left running under %s; the next holder to "
                    "take it does", attempt.job, exc_info=True)  # fmt: skip
        return []
    if settled:
        log.warning(
            "run %s under %s settled as abandoned: the worker running it stopped without "
            "finishing", ", ".join(map(str, settled)), attempt.job,
        )  # fmt: skip
    return settled


@contextlib.contextmanager
def holding(leases: Leases, lease: str, *, every: float) -> Iterator[Attempt]:
    """Take `lease` for the block: settle what a dead holder left under it, renew it every
    `every` seconds, record it as the owner of the run rows started inside, and give it back.

    Yields the attempt; one not acquired means another holder has the lease, and nothing is
    held (the caller says so in its own terms)."""
    attempt = leases.acquire(lease)
    if not attempt.acquired:
        yield attempt
        return
    try:
        settle_after_taking(leases, attempt)
        with Heartbeat(leases, lease, every=every), owned_by(RunOwner(lease, leases.holder)):
            yield attempt
    finally:
        try:
            leases.release(lease)
        except Exception:  # it expires after lease_ttl anyway
            log.warning("could not release the lease on %s", lease, exc_info=True)


def settle_proven(engine: Engine, *, now: dt.datetime) -> list[int]:
    """Settle the rows `running` under a lease that another replica has taken since, or that
    was given back: what `smartseg status` can be sure of. Returns the ids settled.

    Writes only when there is something to settle, so a status read does not queue behind a
    long evaluation's write lock on SQLite."""
    moved_on = sa.or_(_LEASE.c.acquired_until.is_(None), _LEASE.c.holder != _RUN.c.holder)
    candidates = _running_under_leases(
        _LEASE.c.holder.label("taker"), _LEASE.c.acquired_at, _LEASE.c.heartbeat_at
    ).where(moved_on)
    with engine.connect() as connection:
        rows = list(connection.execute(candidates).mappings())
    if not rows:
        return []
    # The proof again, inside each update: it holds at the moment of writing, not of reading.
    still = sa.exists().where(_LEASE.c.job == _RUN.c.lease, moved_on)
    settled = []
    with engine.begin() as connection:
        for row in rows:
            if _settle(connection, row, _moved_on(row), now, still):
                settled.append(int(row["id"]))
    return settled


def lapsed_notes(engine: Engine, *, now: dt.datetime) -> dict[int, str]:
    """For each row `running` under a lease that expired with nobody taking it over yet: a
    note that its worker has gone quiet, and what settles it (by run id)."""
    query = _running_under_leases(_LEASE.c.acquired_until, _LEASE.c.heartbeat_at).where(
        _LEASE.c.holder == _RUN.c.holder, _LEASE.c.acquired_until <= now
    )
    with engine.connect() as connection:
        rows = list(connection.execute(query).mappings())
    return {
        int(row["id"]): (
            f"no heartbeat from replica {row['holder']} since {_at(row['heartbeat_at'])}: its "
            f"lease on {row['lease']} expired at {_at(row['acquired_until'])}. If that worker "
            f"is gone, this {_what(row)} is settled as abandoned when the next run takes "
            f"{row['lease']}; a worker only cut off from the database carries on."
        )
        for row in rows
    }


def _settle(
    connection: sa.Connection,
    row: sa.RowMapping,
    why: str,
    now: dt.datetime,
    proof: sa.ColumnElement[bool],
) -> bool:
    error = (
        f"the worker running this {_what(row)} (replica {row['holder']}) stopped without "
        f"finishing: {why}. {_NEXT.get(row['kind'], '')}"
    ).strip()
    result = connection.execute(
        sa.update(_RUN)
        .where(_RUN.c.id == row["id"], _RUN.c.status == "running", proof)
        .values(status=ABANDONED, finished_at=now, error=error)
    )
    return result.rowcount == 1


def _taken_over(
    holder: str | None, owner: RunOwner, now: dt.datetime, previous: LeaseState | None
) -> str:
    lease, taker = owner.lease, owner.holder
    if holder == taker:
        return f"replica {taker} was started again and took {lease} back at {_at(now)}"
    if previous is not None and previous.holder == holder:
        if previous.acquired_until is None:
            return (
                f"it gave {lease} back without recording how the run ended, and replica "
                f"{taker} took it at {_at(now)}"
            )
        beat = f" (last heartbeat {_at(previous.heartbeat_at)})" if previous.heartbeat_at else ""
        return (
            f"its lease on {lease} expired at {_at(previous.acquired_until)}{beat}, and replica "
            f"{taker} took it over at {_at(now)}"
        )
    return f"replica {taker} has since taken {lease} over (at {_at(now)}), so it is not running"


def _moved_on(row: sa.RowMapping) -> str:
    lease = row["lease"]
    if row["taker"] != row["holder"]:
        return (
            f"replica {row['taker']} has since taken {lease} over (at "
            f"{_at(row['acquired_at'])}), so it is not running"
        )
    return (
        f"it gave {lease} back at {_at(row['heartbeat_at'])} without recording how the run "
        "ended, so it is not running"
    )


def _what(row: sa.RowMapping) -> str:
    if row["kind"] == "job":
        return f"{row['job']} job"
    return _WHAT.get(row["kind"], str(row["kind"]))


def _at(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "an unknown time"
