"""Job leases: one replica at a time runs a scheduled job, and each firing of it runs once.

Several `smartseg run` replicas may share one database; each has the same schedules, so every
firing reaches all of them. Before running a job a replica takes the job's row in the `lease`
table: it becomes the `holder` until `acquired_until` (now + `worker.lease_ttl`), renews that
while the job runs (`Heartbeat`) and clears it when done. A replica that dies keeps the job only
until the lease expires; then another may take it.

A lease alone does not stop a late replica from running a firing the first one already finished
(the lease is free again by then), so the row also keeps `last_fired`, the scheduled fire time of
the latest claimed firing. A firing is claimed together with the lease, in the same statement or
transaction, and a replica skips any firing at or before `last_fired`. Claiming (rather than
marking the firing done at the end) makes each firing run at most once: if the holder crashes
mid-run, that firing is not retried by another replica; the next firing resumes from the steps'
own checkpoints (stream cursors, the sync ledger).

How the row is taken, per database:

* PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` in a short transaction, then the checks
  (free or expired or ours; firing not yet claimed) and the UPDATE. A replica that finds the row
  locked is racing another one for the same firing, which is deciding it; it skips.
* SQLite has no row locks, but it has a single writer: an UPDATE holds the database's write lock
  from evaluating its WHERE clause to writing the row, so one conditional
  `UPDATE lease SET holder = ?, ... WHERE job = ? AND (acquired_until IS NULL OR acquired_until
  <= now OR holder = ?) AND (last_fired IS NULL OR last_fired < firing)` is an atomic
  compare-and-set: of two replicas, exactly one sees the old row and changes one row, the other
  changes none. That is what the row lock plus the checks give on PostgreSQL.

Times come from an injected clock (the replicas' clocks are assumed to agree to well within the
lease TTL, which is minutes).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from smartseg.store.models import Lease, table_of

__all__ = ["Attempt", "Heartbeat", "LeaseState", "Leases", "default_replica_id"]

log = logging.getLogger("smartseg.worker.lease")

Clock = Callable[[], dt.datetime]
Refusal = Literal["held", "fired", "locked"]

_LEASE = table_of(Lease)


def default_replica_id() -> str:
    """host:pid, unique per process; SMARTSEG_REPLICA_ID or --replica-id may name it instead."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class LeaseState:
    """One row of the lease table, as read."""

    job: str
    holder: str | None
    acquired_at: dt.datetime | None
    acquired_until: dt.datetime | None
    heartbeat_at: dt.datetime | None
    last_fired: dt.datetime | None

    def held(self, now: dt.datetime) -> bool:
        """Whether some replica holds the job at `now`."""
        return self.acquired_until is not None and self.acquired_until > now

    def as_json(self, now: dt.datetime) -> dict[str, Any]:
        def iso(moment: dt.datetime | None) -> str | None:
            return moment.isoformat(timespec="seconds") if moment else None

        return {
            "job": self.job,
            "held": self.held(now),
            "holder": self.holder,
            "acquired_at": iso(self.acquired_at),
            "acquired_until": iso(self.acquired_until),
            "heartbeat_at": iso(self.heartbeat_at),
            "last_fired": iso(self.last_fired),
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of `Leases.acquire`: acquired, or why not.

    `reason` is "held" (another replica holds an unexpired lease), "fired" (this firing was
    already claimed) or "locked" (PostgreSQL: another replica is taking the row right now).
    `previous` is the row as it was before an acquisition, to say whom the job was taken from
    (exact on PostgreSQL, where it is read under the row lock; read just before the atomic
    update on SQLite, so only informative there).
    """

    job: str
    acquired: bool
    reason: Refusal | None = None
    holder: str | None = None
    until: dt.datetime | None = None
    previous: LeaseState | None = None

    def describe(self) -> str:
        if self.acquired:
            return f"{self.job}: acquired until {self.until}"
        return {
            "held": f"{self.job} is running on replica {self.holder} (lease until {self.until})",
            "fired": f"{self.job}: this firing already ran (on replica {self.holder})",
            "locked": f"{self.job}: another replica is taking this firing",
            None: f"{self.job}: not acquired",
        }[self.reason]


class Leases:
    """The lease table seen by one replica (`holder`)."""

    def __init__(self, engine: Engine, holder: str, *, ttl: dt.timedelta, clock: Clock) -> None:
        if ttl <= dt.timedelta(0):
            raise ValueError("lease ttl must be above zero")
        self.engine = engine
        self.holder = holder
        self.ttl = ttl
        self.clock = clock

    def acquire(self, job: str, firing: dt.datetime | None = None) -> Attempt:
        """Take `job` for this replica, and claim `firing` (a scheduled fire time) with it.

        Without `firing` (a run started by hand) no firing is claimed or checked.
        """
        now = self.clock()
        self._ensure_row(job)
        if self.engine.dialect.name == "postgresql":
            return self._acquire_locked(job, firing, now)
        return self._acquire_conditional(job, firing, now)

    def renew(self, job: str) -> bool:
        """Extend a lease this replica holds; False when another replica took it meanwhile."""
        now = self.clock()
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(_LEASE)
                .where(
                    _LEASE.c.job == job,
                    _LEASE.c.holder == self.holder,
                    _LEASE.c.acquired_until.is_not(None),
                )
                .values(acquired_until=now + self.ttl, heartbeat_at=now)
            )
        return result.rowcount == 1

    def release(self, job: str) -> bool:
        """Give the job back; `holder` stays as the replica that ran it last."""
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(_LEASE)
                .where(_LEASE.c.job == job, _LEASE.c.holder == self.holder)
                .values(acquired_until=None, heartbeat_at=self.clock())
            )
        return result.rowcount == 1

    def release_all(self) -> int:
        """Give back every job this replica still holds (on shutdown); returns how many."""
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(_LEASE)
                .where(_LEASE.c.holder == self.holder, _LEASE.c.acquired_until.is_not(None))
                .values(acquired_until=None, heartbeat_at=self.clock())
            )
        return int(result.rowcount)

    def state(self, job: str) -> LeaseState | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(_LEASE).where(_LEASE.c.job == job)).first()
        return _state(row._mapping) if row is not None else None

    # -- taking the row -----------------------------------------------------------------------

    def _ensure_row(self, job: str) -> None:
        insert = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert
        with self.engine.begin() as connection:
            connection.execute(
                insert(_LEASE).values(job=job).on_conflict_do_nothing(index_elements=["job"])
            )

    def _claim(
        self, connection: Connection, job: str, firing: dt.datetime | None, now: dt.datetime,
        conditions: tuple[sa.ColumnElement[bool], ...] = (),
    ) -> int:  # fmt: skip
        values: dict[str, Any] = {
            "holder": self.holder,
            "acquired_at": now,
            "acquired_until": now + self.ttl,
            "heartbeat_at": now,
        }
        if firing is not None:
            values["last_fired"] = firing
        result = connection.execute(
            sa.update(_LEASE).where(_LEASE.c.job == job, *conditions).values(**values)
        )
        return int(result.rowcount)

    def _acquire_locked(self, job: str, firing: dt.datetime | None, now: dt.datetime) -> Attempt:
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(_LEASE).where(_LEASE.c.job == job).with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return Attempt(job, acquired=False, reason="locked")
            state = _state(row._mapping)
            refusal = self._refusal(state, firing, now)
            if refusal is not None:
                return Attempt(job, False, refusal, state.holder, state.acquired_until)
            self._claim(connection, job, firing, now)
        return Attempt(job, True, holder=self.holder, until=now + self.ttl, previous=state)

    def _acquire_conditional(
        self, job: str, firing: dt.datetime | None, now: dt.datetime
    ) -> Attempt:
        free = sa.or_(
            _LEASE.c.acquired_until.is_(None),
            _LEASE.c.acquired_until <= now,
            _LEASE.c.holder == self.holder,
        )
        conditions: tuple[sa.ColumnElement[bool], ...] = (free,)
        if firing is not None:
            conditions += (sa.or_(_LEASE.c.last_fired.is_(None), _LEASE.c.last_fired < firing),)
        before = self.state(job)  # only to say whom it was taken from; the update decides
        with self.engine.begin() as connection:
            changed = self._claim(connection, job, firing, now, conditions)
        if changed == 1:
            return Attempt(job, True, holder=self.holder, until=now + self.ttl, previous=before)
        # Only to say why: the decision above was atomic, this read is not part of it.
        state = self.state(job)
        if state is None:  # pragma: no cover - the row was inserted just before
            return Attempt(job, acquired=False, reason="locked")
        refusal = self._refusal(state, firing, now) or "held"
        return Attempt(job, False, refusal, state.holder, state.acquired_until)

    def _refusal(
        self, state: LeaseState, firing: dt.datetime | None, now: dt.datetime
    ) -> Refusal | None:
        if state.held(now) and state.holder != self.holder:
            return "held"
        if firing is not None and state.last_fired is not None and state.last_fired >= firing:
            return "fired"
        return None


def _state(row: Any) -> LeaseState:
    return LeaseState(
        job=row["job"],
        holder=row["holder"],
        acquired_at=row["acquired_at"],
        acquired_until=row["acquired_until"],
        heartbeat_at=row["heartbeat_at"],
        last_fired=row["last_fired"],
    )


class Heartbeat:
    """Renews a held lease every `every` seconds on a background thread, while a job runs.

    `lost` is set when a renewal finds another replica holding the job (this one stalled past
    the TTL): the job should stop at its next step boundary.
    """

    def __init__(self, leases: Leases, job: str, *, every: float) -> None:
        self.leases = leases
        self.job = job
        self.every = every
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"smartseg-lease-{job}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.every):
            try:
                if not self.leases.renew(self.job):
                    log.warning(
                        "lost the lease on %s: another replica holds it now; stopping after the "
                        "current step",
                        self.job,
                    )
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: keep trying until the lease runs out
                log.warning("could not renew the lease on %s", self.job, exc_info=True)
