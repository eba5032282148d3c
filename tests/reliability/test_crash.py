"""Crash tests: `run --once pipeline` in a subprocess, SIGKILLed inside a step, restarted, and
ending where a run that was never killed ends (the same store, the same CRM records, one task
per entry episode).

The first test aims at the classic duplicate trap: the CRM has created the task, the worker
dies before the ledger hears of it, and the restarted worker must find that task rather than
make a second one (or leave it unlinked). It checks that the kill really landed in that window.
The second kills once inside each step (pull, evaluate, sync) at points drawn from a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from smartseg.store.models import TaskLedger, table_of
from smartseg.worker.commands import status
from smartseg.worker.context import AppContext

from .conftest import Reference, reproduce, settle
from .endstate import crm_task_keys
from .harness import Stage, stage
from .killer import SYNC_ROUTES, KillPoint, WorkerProcess, draw_kill_points, kill_at


def _window_params() -> list[Any]:
    # By default: the HubSpot task upsert on PostgreSQL (the Salesforce one is the sync kill of
    # crash seed 1, which runs by default too); every other write soaks.
    out = []
    for index, (name, route) in enumerate(SYNC_ROUTES.items()):
        backend = ("sqlite", "postgresql")[index % 2]
        marks = [pytest.mark.postgres] if backend == "postgresql" else []
        if name != "hubspot-task-upsert":
            marks.append(pytest.mark.soak)
        out.append(pytest.param(backend, route, marks=marks, id=f"{backend}-{name}"))
    return out


def _writes_tasks(point: KillPoint) -> bool:
    return point.path.endswith(("{field}", "upsert", "create"))


def _assert_in_the_task_window(s: Stage, server: str, where: str) -> None:
    """The kill landed where it matters: the CRM holds a task whose ledger row says "intent"."""
    made = crm_task_keys(s.box)[server]
    ledger = table_of(TaskLedger)
    with s.engine.connect() as connection:
        intents = (
            connection.execute(
                sa.select(ledger.c.marker).where(
                    ledger.c.target == server, ledger.c.state == "intent"
                )
            )
            .scalars()
            .all()
        )
    assert any(made[m] == 1 for m in intents), (
        f"{where}: not in the window (CRM tasks {dict(made)}, intents {intents})"
    )


def _finish_and_compare(
    s: Stage, w: WorkerProcess, reference: Reference, where: str, killed: list[str]
) -> None:
    """Restart the worker, let it finish, settle, and compare with the reference; `killed`
    names the steps a kill landed in."""
    w.start()
    assert w.finish(where) == 0, f"{where}: the restarted worker failed:\n{w.log()}"
    end = settle(s, where)
    diff = end.diff(reference.settled)
    assert not diff, f"{where}: end state differs from the fault-free run's:\n" + "\n".join(diff)
    _assert_the_killed_runs_are_abandoned(s, where, killed)


def _assert_the_killed_runs_are_abandoned(s: Stage, where: str, killed: list[str]) -> None:
    """`smartseg status` shows no run `running` once the restarted worker took the steps over:
    a run a kill cut short is `abandoned`, saying what happened; every other one finished."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SMARTSEG_DATABASE_URL", raising=False)  # the stage's database, not another
        runs = status(AppContext(config_path=s.config_path), limit=1000)["runs"]
    seen = [(run["id"], run["kind"], run["status"], run["error"]) for run in runs]
    assert not [run for run in seen if run[2] == "running"], f"{where}: {seen}"
    cut_short = [run for run in seen if run[2] == "abandoned"]
    kinds = [kind for _, kind, _, _ in cut_short]
    # Each landed kill cut short one run of the killed worker's pipeline job and one of its step.
    assert kinds.count("job") >= len(killed) and set(killed) <= set(kinds), f"{where}: {seen}"
    for _, kind, _, error in cut_short:
        lease = "pipeline" if kind == "job" else f"step:{kind}"
        said = "(replica crash-test) stopped without finishing: replica crash-test was started "
        said += f"again and took {lease} back at"
        assert said in error, f"{where}: {error}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("db_url", "route"), _window_params(), indirect=["db_url"])
def test_a_kill_after_the_crm_wrote_but_before_the_ledger_knew_duplicates_nothing(
    db_url: str, route: tuple[str, str, str], tmp_path: Path, reference: Reference
) -> None:
    point = KillPoint("sync", *route, k=1)
    where = f"kill at {point.describe()}"
    with stage(tmp_path, db_url) as s, WorkerProcess(s.config_path, tmp_path / "w.log") as w:
        assert kill_at(w, s.box, s.engine, point, where), f"{where}: never reached\n{w.log()}"
        if _writes_tasks(point):
            _assert_in_the_task_window(s, point.server, where)
        _finish_and_compare(s, w, reference, where, killed=["sync"])


@pytest.mark.timeout(900)
def test_a_worker_killed_in_each_step_converges_to_the_fault_free_end_state(
    crash_seed: int,
    db_url: str,
    tmp_path: Path,
    reference: Reference,
    record_property: Callable[[str, object], None],
) -> None:
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    points = draw_kill_points(crash_seed, reference.routes)
    where = (f"crash seed {crash_seed} on {backend}, kills at "
             f"{', '.join(p.describe() for p in points)} (reproduce: "
             f"{reproduce(crash_seed, backend, 'test_crash.py')})")  # fmt: skip
    with stage(tmp_path, db_url) as s, WorkerProcess(s.config_path, tmp_path / "w.log") as w:
        landed = []
        for point in points:
            landed.append(kill_at(w, s.box, s.engine, point, where))
            if landed[-1] and _writes_tasks(point):
                _assert_in_the_task_window(s, point.server, where)
        record_property("landed", dict(zip((p.step for p in points), landed, strict=True)))
        # The pull's kill point is always reached: the first start pulls everything.
        assert landed[0], f"{where}: the pull was never killed\n{w.log()}"
        killed = [point.step for point, hit in zip(points, landed, strict=True) if hit]
        _finish_and_compare(s, w, reference, f"{where} (landed: {landed})", killed)
