"""Randomized fault runs: whatever a seed's faults do to a run, repeating the pipeline until it
succeeds ends in the fault-free run's state, and a run after that writes nothing.

Per seed: a fresh world and store, the seed's fault schedule on all three servers, the whole
pipeline (pull, evaluate, sync, at a fixed instant) repeated until a run succeeds, each failed
run explaining itself; then the CRMs compared with the reference's, one fault-free run that must
not write to either CRM, and the whole end state (store and CRMs) compared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from smartseg.connectors.retry import DEFAULT_POLICY
from smartseg.store.models import Run, table_of

from .conftest import Reference, reproduce, settle
from .harness import Stage, stage
from .schedule import Schedule, draw_schedule

# Each fault that fails a run is used up by it, and a schedule holds only a few of those; ten
# runs is far more than any seed needs, so needing more means something never heals.
MAX_RUNS = 10
_RUN = table_of(Run)


def _failed_runs_explain_themselves(s: Stage) -> list[str]:
    """Run rows that end with no outcome or fail without saying why."""
    with s.engine.connect() as connection:
        rows = connection.execute(
            sa.select(_RUN.c.id, _RUN.c.kind, _RUN.c.status, _RUN.c.error, _RUN.c.counts)
        ).all()
    problems = []
    for run_id, kind, status, error, counts in rows:
        if status == "running":
            problems.append(f"run {run_id} ({kind}) never recorded an outcome")
        elif status not in ("ok", "succeeded") and not error and not counts.get("failures"):
            problems.append(f"run {run_id} ({kind}) is {status} with no error or failures")
    return problems


def _waits_not_honoured(s: Stage, schedule: Schedule) -> list[str]:
    """429s whose Retry-After smartseg did not wait (the waits are recorded, not slept)."""
    # A 429 that was the last attempt of a call has no wait after it: skip routes where an
    # outage (a rule firing on every attempt) may have pushed it there.
    outages = {r.path for rules in schedule.rules.values() for r in rules
               if r.times == DEFAULT_POLICY.attempts}  # fmt: skip
    problems = []
    for server in ("salesforce", "hubspot"):  # Stripe sends no Retry-After
        for rule in schedule.rules[server]:
            if (rule.kind == "429" and rule.fired and rule.path not in outages
                    and rule.retry_after <= DEFAULT_POLICY.max_retry_after
                    and not any(wait >= rule.retry_after for wait in s.slept)):  # fmt: skip
                problems.append(f"{server} asked to wait {rule.retry_after:g}s ({rule.path}); "
                                f"the longest wait was {max(s.slept, default=0):g}s")  # fmt: skip
    return problems


def _converge(s: Stage, schedule: Schedule, where: str) -> list[str]:
    """Run until a run succeeds; the failures on the way, one line each."""
    failures: list[str] = []
    for _ in range(MAX_RUNS):
        try:
            result = s.run_pipeline()
        except Exception as exc:  # a step must turn every failure into its own error
            pytest.fail(f"{where}: a run raised {type(exc).__name__}: {exc}")
        if result.ok:
            return failures
        assert result.failed_step and result.error, f"{where}: a run failed without a reason"
        failures.append(f"{result.failed_step}: {result.error}")
        # An error the error table does not know is one smartseg cannot explain to anyone.
        assert "unexpected" not in result.error, f"{where}: unexplained failure: {result.error}"
        assert s.box.hubspot is not None
        if s.box.hubspot.token is None:
            # A revoked token is for a person to fix; smartseg must say that is what is wrong.
            assert "credentials" in result.error or "token" in result.error, (
                f"{where}: a revoked HubSpot token was reported as: {result.error}"
            )
            s.box.hubspot.reset_token()
    history = "\n  ".join(failures)
    pytest.fail(f"{where}: no run succeeded in {MAX_RUNS} (faults fired: {schedule.fired()}):"
                f"\n  {history}")  # fmt: skip


def test_faulted_runs_converge_to_the_fault_free_end_state(
    fault_seed: int,
    db_url: str,
    tmp_path: Path,
    reference: Reference,
    record_property: Callable[[str, object], None],
) -> None:
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    schedule = draw_schedule(fault_seed)
    where = (f"fault seed {fault_seed} on {backend} (reproduce: "
             f"{reproduce(fault_seed, backend, 'test_fault_runs.py')})")  # fmt: skip
    with stage(tmp_path, db_url) as s:
        s.install(schedule)
        failures = _converge(s, schedule, where)
        s.clear_faults()
        # For the soak's summary (--junitxml): how hard each seed was.
        record_property("failed_runs", len(failures))
        record_property("fired", schedule.fired())
        context = f"{where}\nschedule: {schedule.describe()}\nfailed runs: {failures}"

        crm = s.capture(store=False)
        assert not crm.problems, f"{context}\n" + "\n".join(crm.problems)
        diff = [line for line in crm.diff(reference.settled) if line.startswith("crm ")]
        assert not diff, f"{context}\nCRMs differ from the fault-free run's:\n" + "\n".join(diff)

        end = settle(s, where)
        diff = end.diff(reference.settled)
        assert not diff, f"{context}\nend state differs from the fault-free run's:\n" + "\n".join(
            diff
        )
        problems = _failed_runs_explain_themselves(s) + _waits_not_honoured(s, schedule)
        assert not problems, f"{context}\n" + "\n".join(problems)
