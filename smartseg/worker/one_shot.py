"""One-shot commands hold their step's lease, as the scheduled worker's jobs do.

`smartseg pull`, `evaluate` and `sync` run the same steps as the service. Run by hand while a
replica runs that step, they would race it: two evaluations would record the same entries
(the open-membership index then fails one), two syncs would race on the task ledger, two
pulls on a stream's cursor. So a command takes `step:<name>` for as long as it runs, under a
holder id of its own (`cli:host:pid`), renews it with the same heartbeat, and gives it back
at the end. A step already running elsewhere stops the command before it does anything,
with exit code 75 (EX_TEMPFAIL: try again later) and where the step runs.

Holding the lease also makes the command's run rows provably dead if it is killed: they record
the lease and the holder (`store.runs.owned_by`), and whoever takes the lease next settles
them as abandoned (abandoned.py), as it does for the service's rows. Taking the lease, the
command settles what a dead holder left, the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.config import Config
from smartseg.errors import SmartsegError
from smartseg.store.runs import RunOwner, owned_by
from smartseg.worker.abandoned import settle_taken_over
from smartseg.worker.lease import Heartbeat, Leases, default_replica_id

__all__ = ["StepBusy", "holding_step"]

log = logging.getLogger("smartseg.worker")


class StepBusy(SmartsegError):
    """The step is running elsewhere; nothing was done."""

    exit_code = 75


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def holding_step(
    engine: Engine,
    config: Config,
    step: str,
    *,
    clock: Callable[[], dt.datetime] = _utcnow,
    holder: str | None = None,
) -> Iterator[None]:
    """Run the block holding `step:<step>`; raise StepBusy if another holder has it."""
    holder = holder or f"cli:{default_replica_id()}"
    ttl = config.worker.lease_ttl
    leases = Leases(engine, holder, ttl=ttl, clock=clock)
    lease = f"step:{step}"
    attempt = leases.acquire(lease)
    if not attempt.acquired:
        until = (
            f" (its lease runs until {attempt.until:%Y-%m-%d %H:%M:%S})" if attempt.until else ""
        )
        raise StepBusy(
            f"the {step} step is running on {attempt.holder}{until}; nothing was done. "
            f"Run it again once that finishes (`smartseg status` shows the step's runs)"
        )
    owner = RunOwner(lease, holder)
    try:
        try:
            settle_taken_over(engine, owner, now=clock(), previous=attempt.previous)
        except sa.exc.SQLAlchemyError:  # bookkeeping: the step itself can still run
            log.warning("could not settle the runs left running under %s", lease, exc_info=True)
        with Heartbeat(leases, lease, every=max(ttl.total_seconds() / 3, 0.2)), owned_by(owner):
            yield
    finally:
        try:
            leases.release(lease)
        except Exception:  # it expires after lease_ttl anyway
            log.warning("could not release the lease on %s", lease, exc_info=True)
