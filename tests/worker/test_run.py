"""`smartseg run` as operators run it: a subprocess with second-level schedules.

One worker against the sandbox completes the pipeline, answers /healthz and /metrics, and exits
0 on SIGTERM. Two workers on one database (PostgreSQL, and a SQLite file) run each firing of a
job exactly once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.generator import ARCHETYPE_KEYS
from smartseg.store import make_engine, upgrade
from smartseg.store.models import Lease, Run, table_of
from smartseg.worker.cli import main
from smartseg.worker.sandbox_config import write_sandbox_config

from .conftest import edit_config, quick_config, wait_for

RUN = table_of(Run)
LEASE = table_of(Lease)
ANCHOR = dt.date(2026, 6, 30)


def _rows(engine: Engine, *conditions: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(RUN).where(*conditions)).mappings())


def _metric(text: str, name: str, **labels: str) -> float | None:
    """One sample from Prometheus text, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_run_completes_the_pipeline_serves_health_and_stops_on_sigterm(
    tmp_path: Path, start_worker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    with Sandbox(
        salesforce_port=0, hubspot_port=0, stripe_port=0, accounts=len(ARCHETYPE_KEYS) + 5,
        seed=13, anchor=ANCHOR, data_dir=tmp_path / "data",
    ) as box:  # fmt: skip
        config = write_sandbox_config(tmp_path / "config", box.info(), database_url=database)
        edit_config(
            config,
            schedules={"pipeline": {"interval": "2s"}},
            worker={"health_port": 0, "misfire_grace": "30s", "lease_ttl": "30s"},
        )
        # The CRM fields the sync writes exist before the worker starts (as in production).
        assert main(["--config", str(config), "crm", "setup", "--json"]) == 0
        capsys.readouterr()
        worker = start_worker(config, "w1")
        worker.wait_ready()
        engine = make_engine(database)
        try:
            job = wait_for(
                lambda: [r for r in _rows(engine, RUN.c.kind == "job", RUN.c.status != "running")],
                timeout=120,
                what="a finished pipeline run",
            )[0]
            assert job["job"] == "pipeline", job
            assert job["status"] == "ok", f"{job['error']}\n{worker.log()[-6000:]}"
            assert job["counts"]["steps"] == {"pull": "ok", "evaluate": "ok", "sync": "ok"}
            assert job["counts"]["records_pulled"] > 0 and job["counts"]["members"] > 0
            synced = _rows(engine, RUN.c.kind == "sync", RUN.c.status == "ok")
            assert synced and synced[0]["counts"]["records_updated"] > 0

            code, body = worker.get("/healthz")
            assert code == 200, body
            health = json.loads(body)
            assert health["scheduler"] == "running" and health["failing"] == []
            assert health["jobs"]["pipeline"]["last"]["status"] == "ok"
            assert health["replica"] == "w1"

            code, metrics = worker.get("/metrics")
            assert code == 200
            assert (_metric(metrics, "smartseg_runs_total", job="pipeline", status="ok") or 0) >= 1
            assert (_metric(metrics, "smartseg_run_seconds_count", job="pipeline") or 0) >= 1
            assert (_metric(metrics, "smartseg_records_pulled", source="salesforce") or 0) > 0
            assert "smartseg_segment_members{segment=" in metrics
            assert (_metric(metrics, "smartseg_api_calls_total", target="hubspot") or 0) > 0
            assert "smartseg_failures_total" in metrics

            assert worker.terminate(timeout=60) == 0, worker.log()
        finally:
            engine.dispose()
    log = worker.log()
    assert "received SIGTERM" in log and "worker w1 stopped" in log
    engine = make_engine(database)
    # Nothing left half-done: every job run has its outcome, no lease is held.
    assert not _rows(engine, RUN.c.kind == "job", RUN.c.finished_at.is_(None))
    with engine.connect() as connection:
        held = connection.execute(
            sa.select(LEASE.c.job).where(LEASE.c.acquired_until.is_not(None))
        ).all()
    assert held == []
    engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_workers_on_one_database_run_each_firing_once(
    tmp_path: Path, db_url: str, start_worker: Any
) -> None:
    interval = 2
    config = quick_config(
        tmp_path / "config",
        schedules={"evaluate": {"interval": f"{interval}s"}},
        worker={"health_port": 0, "misfire_grace": "10s", "lease_ttl": "30s"},
    )
    engine = make_engine(db_url)
    upgrade(engine)
    env = {"SMARTSEG_DATABASE_URL": db_url}
    workers = [start_worker(config, name, **env) for name in ("a", "b")]
    for worker in workers:
        worker.wait_ready()
    both_up = dt.datetime.now(dt.UTC)

    def firings_since_both_up() -> list[Any]:
        rows = _rows(engine, RUN.c.kind == "job", RUN.c.status != "running")
        return [r for r in rows if r["as_of"] > both_up]

    wait_for(lambda: len(firings_since_both_up()) >= 4, timeout=90, what="four firings")
    metrics = [worker.get("/metrics")[1] for worker in workers]
    for worker in workers:
        assert worker.terminate(timeout=30) == 0, worker.log()

    jobs = sorted(_rows(engine, RUN.c.kind == "job"), key=lambda r: r["as_of"])
    logs = "\n".join(f"--- {w.name}\n{w.log()[-4000:]}" for w in workers)
    fired = [r["as_of"] for r in jobs]
    assert len(fired) == len(set(fired)), f"a firing ran twice: {fired}\n{logs}"
    assert all(r["job"] == "evaluate" and r["status"] == "ok" for r in jobs), jobs
    # Every firing ran, in order, except one that came while the job was still running on
    # either replica (max_instances=1 holds across replicas): that one is skipped by both.
    step = dt.timedelta(seconds=interval)
    for before, after in itertools.pairwise(jobs):
        missed = before["as_of"] + step
        while missed < after["as_of"]:
            # (give or take the moment between recording the end and releasing the lease)
            ended = before["finished_at"] + dt.timedelta(seconds=0.5)
            assert ended > missed, f"firing {missed} did not run\n{logs}"
            missed += step
    # Each job run did exactly one evaluation.
    assert len(_rows(engine, RUN.c.kind == "evaluate")) == len(jobs)
    # Both replicas were there for the firings: one ran it, the other stood back.
    skipped = sum(
        sum(float(v) for v in re.findall(r"^smartseg_runs_skipped_total\{.*\} (\S+)$", text, re.M))
        for text in metrics
    )
    assert skipped >= 1, metrics
    by = {r["counts"]["replica"] for r in jobs}
    assert by <= {"a", "b"}
    engine.dispose()
