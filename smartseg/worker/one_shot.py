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

from sqlalchemy.engine import Engine

from smartseg.config import Config
from smartseg.errors import SmartsegError
from smartseg.worker.abandoned import holding
from smartseg.worker.lease import Leases, default_replica_id

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
    every = max(ttl.total_seconds() / 3, 0.2)
    with holding(leases, f"step:{step}", every=every) as attempt:
        if not attempt.acquired:
            until = f" (its lease runs until {attempt.until:%Y-%m-%d %H:%M:%S})"
            raise StepBusy(
                f"the {step} step is running on {attempt.holder}{until if attempt.until else ''}; "
                "nothing was done. Run it again once that finishes (`smartseg status` shows the "
                "step's runs)"
            )
        yield
