"""The worker in-process: schedules and their validation, firing names, one job run through its
lease (with stand-in steps that write run rows like the real ones), metrics, health, `run --once`
and `status`, and runs whose worker died settled as `abandoned`."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from smartseg.config import Config, Schedule, load_config
from smartseg.errors import ConfigError
from smartseg.store.models import Run, table_of
from smartseg.store.runs import RunOwner, finish_run, owned_by, start_run
from smartseg.worker import commands, pipeline, service
from smartseg.worker.cli import main
from smartseg.worker.context import AppContext
from smartseg.worker.health import HealthServer, WorkerMetrics
from smartseg.worker.lease import Leases
from smartseg.worker.pipeline import StepFailed
from smartseg.worker.service import (
    JOB_RUN_KIND,
    Worker,
    fire_time,
    make_trigger,
    schedule_triggers,
)

from .conftest import FakeClock, edit_config, quick_config

T0 = dt.datetime(2026, 6, 30, 7, 0, 4, tzinfo=dt.UTC)
RUN = table_of(Run)
Step = Callable[[Engine, Config, Callable[[], dt.datetime]], dict[str, Any]]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return quick_config(
        tmp_path / "config",
        schedules={"pipeline": {"interval": "2s"}},
        worker={"health_port": 0, "lease_ttl": "30s", "misfire_grace": "10s"},
    )


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path, env={})


# -- schedules --------------------------------------------------------------------------------


def test_an_unknown_job_is_a_config_error_at_its_line(tmp_path: Path, config_path: Path) -> None:
    schedules = {"pipeline": {"interval": "15m"}, "nightly": {"cron": "0 2 * * *"}}
    edit_config(config_path, schedules=schedules)
    with pytest.raises(ConfigError) as caught:
        schedule_triggers(load_config(config_path, env={}))
    error = caught.value
    assert error.file == config_path and error.key == "schedules.nightly"
    lines = config_path.read_text().splitlines()
    assert error.line is not None and lines[error.line - 1].strip().startswith("nightly:")
    assert "unknown job 'nightly'" in str(error) and "pull.stripe" in str(error)


def test_a_source_job_needs_an_enabled_source(config_path: Path) -> None:
    edit_config(config_path, schedules={"pull.activities": {"interval": "5m"}})
    with pytest.raises(ConfigError, match="'activities' is not configured or not enabled"):
        schedule_triggers(load_config(config_path, env={}))
    edit_config(config_path, schedules={"pull.zendesk": {"interval": "5m"}})
    with pytest.raises(ConfigError, match="no source 'zendesk' to pull"):
        schedule_triggers(load_config(config_path, env={}))


def test_every_kind_of_job_is_accepted(config_path: Path) -> None:
    jobs = {"pipeline": "15m", "pull": "1h", "pull.stripe": "5m", "evaluate": "30m", "sync": "1h"}
    edit_config(config_path, schedules={k: {"interval": v} for k, v in jobs.items()})
    assert set(schedule_triggers(load_config(config_path, env={}))) == set(jobs)


def test_no_schedules_is_a_config_error(config_path: Path) -> None:
    edit_config(config_path, schedules={})
    with pytest.raises(ConfigError, match="no schedules") as caught:
        schedule_triggers(load_config(config_path, env={}))
    assert caught.value.key == "schedules"


def test_replicas_agree_on_interval_fire_times() -> None:
    # Made at different moments (as two replicas starting apart would), same fire times.
    first = make_trigger(Schedule(interval=dt.timedelta(seconds=2)), ZoneInfo("UTC"))
    second = make_trigger(Schedule(interval=dt.timedelta(seconds=2)), ZoneInfo("Europe/Berlin"))
    now = dt.datetime(2026, 6, 30, 7, 0, 3, 500_000, tzinfo=dt.UTC)
    assert first.get_next_fire_time(None, now) == second.get_next_fire_time(None, now)
    assert fire_time(first, now, dt.timedelta(minutes=1)) == now.replace(second=2, microsecond=0)
    exactly = dt.datetime(2026, 6, 30, 7, 0, 4, tzinfo=dt.UTC)
    assert fire_time(second, exactly, dt.timedelta(minutes=1)) == exactly
    quarter = make_trigger(Schedule(interval=dt.timedelta(minutes=15)), ZoneInfo("UTC"))
    assert fire_time(quarter, now, dt.timedelta(0)) == dt.datetime(2026, 6, 30, 7, 0, tzinfo=dt.UTC)


def test_cron_fire_times_in_the_configured_zone() -> None:
    trigger = make_trigger(Schedule(cron="*/5 6-8 * * *"), ZoneInfo("Europe/Berlin"))
    assert isinstance(trigger, CronTrigger)
    now = dt.datetime(2026, 6, 30, 5, 7, 30, tzinfo=dt.UTC)  # 07:07:30 in Berlin
    assert fire_time(trigger, now, dt.timedelta(minutes=6)) == dt.datetime(
        2026, 6, 30, 5, 5, tzinfo=dt.UTC
    )
    assert fire_time(trigger, now, dt.timedelta(minutes=1)) is None  # outside the window


# -- running a job ----------------------------------------------------------------------------


def _pull(records: dict[str, int], fail: str | None = None) -> Step:
    """A stand-in pull step that writes a run row shaped like the real one."""

    def step(engine: Engine, config: Config, clock: Callable[[], dt.datetime]) -> dict[str, Any]:
        run_id = start_run(engine, "pull", started=clock())
        streams = {
            key: {"records": n, "api_calls": 1, **({"error": "boom"} if key == fail else {})}
            for key, n in records.items()
        }
        calls = {key.split(".")[0]: 1 for key in records}
        finish_run(engine, run_id, finished=clock(), status="failed" if fail else "succeeded",
                   counts={"run_id": run_id, "streams": streams}, api_calls=calls)  # fmt: skip
        if fail:
            raise StepFailed(f"pull failed for {fail} (run {run_id})")
        return {"run_id": run_id, "streams": streams}

    return step


def _evaluate(members: dict[str, int]) -> Step:
    def step(engine: Engine, config: Config, clock: Callable[[], dt.datetime]) -> dict[str, Any]:
        run_id = start_run(engine, "evaluate", started=clock(), as_of=clock())
        counts = {"recorded": True, "segments": {k: [n, n, 0] for k, n in members.items()}}
        finish_run(engine, run_id, finished=clock(), status="ok", counts=counts, api_calls={})
        return {"run_id": run_id}

    return step


def _sync(failures: int = 0) -> Step:
    def step(engine: Engine, config: Config, clock: Callable[[], dt.datetime]) -> dict[str, Any]:
        run_id = start_run(engine, "sync", started=clock())
        counts = {"records_updated": 4, "tasks_created": 1, "failed": failures,
                  "failures": [{"target": "hubspot", "record": "1"}] * failures}  # fmt: skip
        finish_run(engine, run_id, finished=clock(), status="ok" if not failures else "partial",
                   counts=counts, api_calls={"salesforce": 2, "hubspot": 3})  # fmt: skip
        if failures:
            raise StepFailed(f"sync run {run_id}: {failures} records or tasks failed")
        return {"run_id": run_id, **counts}

    return step


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> dict[str, Step]:
    """Stand-in steps for pull, evaluate and sync; tests replace entries to change them."""
    monkeypatch.setitem(pipeline.STEPS, "pull", _pull({"salesforce.Account": 5, "stripe.x": 3}))
    monkeypatch.setitem(pipeline.STEPS, "evaluate", _evaluate({"at_risk": 3, "champions": 0}))
    monkeypatch.setitem(pipeline.STEPS, "sync", _sync())
    return pipeline.STEPS


def _worker(config: Config, engine: Engine, replica: str = "a", start: dt.datetime = T0) -> Worker:
    return Worker(config, engine, replica=replica, clock=FakeClock(start))


def _job_rows(engine: Engine, job: str) -> list[Any]:
    with engine.connect() as connection:
        query = sa.select(RUN).where(RUN.c.kind == JOB_RUN_KIND, RUN.c.job == job)
        return list(connection.execute(query.order_by(RUN.c.id)).mappings())


def _sample(worker: Worker, name: str, **labels: str) -> float | None:
    return worker.metrics.registry.get_sample_value(name, labels)


def test_a_pipeline_run_records_its_row_metrics_and_lease(
    engine: Engine, config: Config, steps: dict[str, Step]
) -> None:
    worker = _worker(config, engine)
    outcome = worker.run_job("pipeline", T0)
    assert outcome.status == "ok" and list(outcome.steps) == ["pull", "evaluate", "sync"]
    [row] = _job_rows(engine, "pipeline")
    assert row["status"] == "ok" and row["as_of"] == T0 and row["error"] is None
    assert row["counts"]["records_pulled"] == 8 and row["counts"]["members"] == 3
    assert row["counts"]["replica"] == "a" and row["counts"]["steps"]["sync"] == "ok"
    assert row["api_calls"] == {"salesforce": 3, "stripe": 1, "hubspot": 3}
    assert _sample(worker, "smartseg_runs_total", job="pipeline", status="ok") == 1
    assert _sample(worker, "smartseg_run_seconds_count", job="pipeline") == 1
    assert _sample(worker, "smartseg_records_pulled", source="salesforce") == 5
    assert _sample(worker, "smartseg_segment_members", segment="at_risk") == 3
    assert _sample(worker, "smartseg_segment_members", segment="champions") == 0
    assert _sample(worker, "smartseg_api_calls_total", target="hubspot") == 3
    state = worker.leases.state("pipeline")
    assert state is not None and not state.held(T0) and state.last_fired == T0


def test_a_failed_step_stops_the_chain_and_fails_health(
    engine: Engine, config: Config, steps: dict[str, Step], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(steps, "pull", _pull({"salesforce.Account": 2, "stripe.x": 0}, "stripe.x"))
    called: list[str] = []
    monkeypatch.setitem(steps, "evaluate", lambda *a: called.append("evaluate") or {})
    worker = _worker(config, engine)
    worker.triggers = schedule_triggers(config)
    outcome = worker.run_job("pipeline", T0)
    assert outcome.status == "failed" and called == []
    assert outcome.error is not None and outcome.error.startswith("pull: pull failed for stripe.x")
    [row] = _job_rows(engine, "pipeline")
    assert row["status"] == "failed" and "stripe.x" in row["error"]
    assert _sample(worker, "smartseg_failures_total", target="stripe") == 1
    assert _sample(worker, "smartseg_runs_total", job="pipeline", status="failed") == 1
    ok, body = worker.health()
    assert not ok and body["failing"] == ["pipeline"]
    assert body["jobs"]["pipeline"]["last"]["status"] == "failed"
    # Sync failures count per CRM.
    monkeypatch.setitem(steps, "pull", _pull({"salesforce.Account": 2}))
    monkeypatch.setitem(steps, "evaluate", _evaluate({}))
    monkeypatch.setitem(steps, "sync", _sync(failures=2))
    assert worker.run_job("pipeline", T0 + dt.timedelta(seconds=2)).status == "failed"
    assert _sample(worker, "smartseg_failures_total", target="hubspot") == 2


def test_an_unexpected_exception_fails_the_job_not_the_worker(
    engine: Engine, config: Config, steps: dict[str, Step], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(steps, "evaluate", broken)
    worker = _worker(config, engine)
    outcome = worker.run_job("pipeline", T0)
    assert outcome.status == "failed" and "RuntimeError: disk on fire" in (outcome.error or "")
    assert outcome.steps["pull"]["status"] == "ok" and "sync" not in outcome.steps
    state = worker.leases.state("pipeline")
    assert state is not None and not state.held(T0)


def test_a_second_replica_skips_a_firing_that_ran(
    engine: Engine, config: Config, steps: dict[str, Step]
) -> None:
    a, b = _worker(config, engine, "a"), _worker(config, engine, "b")
    assert a.run_job("evaluate", T0).status == "ok"
    late = b.run_job("evaluate", T0)
    assert late.status == "skipped" and late.reason is not None and "already ran" in late.reason
    assert _sample(b, "smartseg_runs_skipped_total", job="evaluate", reason="fired") == 1
    assert b.run_job("evaluate", T0 + dt.timedelta(seconds=2)).status == "ok"
    assert [r["as_of"] for r in _job_rows(engine, "evaluate")] == [T0, T0 + dt.timedelta(seconds=2)]


def test_stopping_lets_the_running_step_finish_and_skips_the_rest(
    engine: Engine, config: Config, steps: dict[str, Step], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(config, engine)
    pull = steps["pull"]

    def pull_then_sigterm(*args: Any) -> dict[str, Any]:
        worker.stop()  # what SIGTERM does, in the middle of the step
        return pull(*args)

    monkeypatch.setitem(steps, "pull", pull_then_sigterm)
    outcome = worker.run_job("pipeline", T0)
    assert outcome.status == "interrupted" and list(outcome.steps) == ["pull"]
    assert outcome.steps["pull"]["status"] == "ok"
    assert "evaluate and later steps did not run" in (outcome.error or "")
    state = worker.leases.state("pipeline")
    assert state is not None and not state.held(T0)
    worker.fire("pipeline")  # a firing after the stop starts nothing
    assert len(_job_rows(engine, "pipeline")) == 1


def test_a_source_job_pulls_only_that_source(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []

    def fake_run_pull(engine: Engine, config: Config, **kwargs: Any) -> Any:
        asked.append(list(kwargs["sources"]))
        step = _pull({"stripe.customers": 7})
        summary = step(engine, config, kwargs["clock"])

        class Result:
            ok = True
            run_id = summary["run_id"]
            streams: dict[str, Any] = {}

            def as_dict(self) -> dict[str, Any]:
                return summary

        return Result()

    monkeypatch.setattr(service, "run_pull", fake_run_pull)
    worker = _worker(config, engine)
    assert worker.run_job("pull.stripe", T0).status == "ok"
    assert asked == [["stripe"]]
    assert _sample(worker, "smartseg_records_pulled", source="stripe") == 7


# -- health endpoint --------------------------------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    response = requests.get(url, timeout=5)
    return response.status_code, response.text


def test_health_server_answers_healthz_and_metrics() -> None:
    metrics = WorkerMetrics()
    metrics.job_finished("pipeline", "ok", 1.5, 0)
    state = {"ok": True}
    server = HealthServer(
        "127.0.0.1", 0, metrics.registry, lambda: (state["ok"], {"status": "x"})
    ).start()
    try:
        assert server.port > 0
        assert _get(server.url + "/healthz") == (200, '{"status": "x"}')
        state["ok"] = False
        assert _get(server.url + "/healthz")[0] == 503
        code, text = _get(server.url + "/metrics")
        assert code == 200
        assert 'smartseg_runs_total{job="pipeline",status="ok"} 1.0' in text
        assert _get(server.url + "/nope")[0] == 404
    finally:
        server.stop()


def test_a_worker_whose_scheduler_is_not_running_is_unhealthy(
    engine: Engine, config: Config
) -> None:
    worker = _worker(config, engine)
    worker.triggers = schedule_triggers(config)
    ok, body = worker.health()
    assert not ok and body["scheduler"] == "stopped" and body["failing"] == []
    assert body["jobs"]["pipeline"]["last"] is None


# -- command line -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SMARTSEG_CONFIG", raising=False)
    monkeypatch.setenv("SMARTSEG_DATABASE_URL", db_url)
    return db_url


def test_run_once_runs_a_real_evaluation_then_status_shows_it(
    cli_env: str, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_path), "run", "--once", "evaluate", "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["status"] == "ok" and outcome["counts"]["segments"] > 0
    assert main(["--config", str(config_path), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    last = {(r["kind"], r["job"]): r for r in status["last"]}
    assert last[("job", "evaluate")]["status"] == "ok"
    assert last[("job", "evaluate")]["summary"]["segments"] == outcome["counts"]["segments"]
    assert last[("evaluate", None)]["summary"]["members"] == 0
    # The job's lease, and the step's (a step runs in one job at a time).
    leases = {lease["job"]: lease for lease in status["leases"]}
    assert sorted(leases) == ["evaluate", "step:evaluate"]
    assert all(lease["held"] is False and lease["holder"] for lease in leases.values())
    assert main(["--config", str(config_path), "status"]) == 0
    text = capsys.readouterr().out
    assert "last\tjob\tevaluate" in text and "segments" in text


def test_run_with_a_bad_job_name_exits_2_saying_where(
    cli_env: str, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_path), "run", "--once", "everything"]) == 2
    assert "unknown job 'everything'" in capsys.readouterr().err
    edit_config(config_path, schedules={"nightly": {"interval": "1d"}})
    assert main(["--config", str(config_path), "run"]) == 2
    err = capsys.readouterr().err
    assert str(config_path) in err and "key schedules.nightly" in err and "line" in err


def test_a_step_runs_in_one_job_at_a_time_across_jobs_and_replicas(
    engine: Engine, config: Config, steps: dict[str, Step], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _worker(config, engine, "a"), _worker(config, engine, "b")
    evaluate = steps["evaluate"]
    meanwhile: dict[str, Any] = {}

    def evaluate_while_others_try(*args: Any) -> dict[str, Any]:
        # While the pipeline evaluates, the `evaluate` job fires on this replica and another.
        meanwhile["a"] = a.run_job("evaluate", T0)
        meanwhile["b"] = b.run_job("evaluate", T0 + dt.timedelta(seconds=1))
        return evaluate(*args)

    monkeypatch.setitem(steps, "evaluate", evaluate_while_others_try)
    outcome = a.run_job("pipeline", T0)
    assert outcome.status == "ok" and list(outcome.steps) == ["pull", "evaluate", "sync"]
    assert meanwhile["a"].status == "interrupted" and not meanwhile["a"].steps
    assert meanwhile["a"].error == (
        "the evaluate step is running in another job of this replica: "
        "evaluate and later steps did not run"
    )
    assert meanwhile["b"].status == "interrupted"
    assert meanwhile["b"].error is not None
    assert meanwhile["b"].error.startswith("the evaluate step is running on replica a")
    # A busy step is recorded as interrupted, not failed, and the step is free afterwards.
    monkeypatch.setitem(steps, "evaluate", evaluate)
    assert b.run_job("evaluate", T0 + dt.timedelta(seconds=2)).status == "ok"
    rows = _job_rows(engine, "evaluate")
    assert [r["status"] for r in rows] == ["interrupted", "interrupted", "ok"]


# -- runs whose worker died -------------------------------------------------------------------


def _runs(engine: Engine) -> dict[int, Any]:
    with engine.connect() as connection:
        return {row["id"]: row for row in connection.execute(sa.select(RUN)).mappings()}


def _status(config_path: Path, now: dt.datetime) -> dict[int, dict[str, Any]]:
    """`smartseg status --json` as of `now`: its recent runs by id."""
    result = commands.status(AppContext(config_path=config_path), limit=100, now=now)
    return {run["id"]: run for run in result["runs"]}


def test_runs_a_killed_worker_left_running_are_abandoned_once_another_replica_takes_over(
    engine: Engine, config: Config, config_path: Path, steps: dict[str, Step], cli_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # What a worker SIGKILLed inside the pull step of its `pull` job leaves behind: both leases
    # held until T0 + 30s, and its two rows `running`. And `smartseg pull` runs by hand.
    dead = _worker(config, engine, "a")
    assert dead.leases.acquire("pull", T0).acquired and dead.leases.acquire("step:pull").acquired
    job_run = start_run(engine, JOB_RUN_KIND, started=T0, job="pull", as_of=T0,
                        owner=RunOwner("pull", "a"))  # fmt: skip
    with owned_by(RunOwner("step:pull", "a")):
        pull_run = start_run(engine, "pull", started=T0)
    one_shot = start_run(engine, "pull", started=T0)
    # Inside the lease's TTL the job is still a's: nothing can be proved, nothing is settled.
    assert _worker(config, engine, "b", T0 + dt.timedelta(seconds=10)).run_job("pull").ran is False
    assert {r["status"] for r in _status(config_path, T0 + dt.timedelta(seconds=10)).values()} == {
        "running"
    }
    later = T0 + dt.timedelta(seconds=31)
    taker = _worker(config, engine, "b", later)
    assert taker.run_job("pull").status == "ok"
    assert _sample(taker, "smartseg_runs_total", job="pull", status="abandoned") == 1
    assert _sample(taker, "smartseg_runs_total", job="pull", status="ok") == 1
    runs = _runs(engine)
    assert (runs[job_run]["status"], runs[job_run]["finished_at"]) == ("abandoned", later)
    assert runs[job_run]["error"] == (
        "the worker running this pull job (replica a) stopped without finishing: its lease on "
        "pull expired at 2026-06-30T07:00:34+00:00 (last heartbeat 2026-06-30T07:00:04+00:00), "
        "and replica b took it over at 2026-06-30T07:00:35+00:00. The next firing runs its "
        "steps, each carrying on from its own checkpoints."
    )
    assert runs[pull_run]["status"] == "abandoned"
    assert runs[pull_run]["error"].startswith(
        "the worker running this pull (replica a) stopped without finishing: its lease on "
        "step:pull expired at 2026-06-30T07:00:34+00:00"
    )
    assert runs[pull_run]["error"].endswith(
        "The next pull carries on from the saved stream cursors."
    )
    # Nothing proves a one-shot command dead: it holds no lease. It is never touched.
    assert (runs[one_shot]["status"], runs[one_shot]["error"]) == ("running", None)
    shown = _status(config_path, later)
    assert shown[pull_run]["status"] == "abandoned" and shown[pull_run]["replica"] == "a"
    assert shown[pull_run]["error"] == runs[pull_run]["error"]
    assert shown[one_shot]["status"] == "running" and shown[one_shot]["note"] is None
    assert main(["--config", str(config_path), "status"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"{pull_run}\t"))
    assert "\tabandoned\t" in line and line.endswith("saved stream cursors.")


def test_a_run_whose_worker_still_holds_the_lease_is_never_settled(
    engine: Engine, config: Config, config_path: Path, steps: dict[str, Step], cli_env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    clock = FakeClock(T0)
    a, b = (Worker(config, engine, replica=name, clock=clock) for name in ("a", "b"))
    inside, go_on = threading.Event(), threading.Event()

    def long_pull(engine: Engine, config: Config, clock: Callable[[], dt.datetime]) -> Any:
        run_id = start_run(engine, "pull", started=clock())
        inside.set()
        assert go_on.wait(30)
        finish_run(engine, run_id, finished=clock(), status="succeeded", counts={}, api_calls={})
        return {"run_id": run_id}

    monkeypatch.setitem(steps, "pull", long_pull)
    outcomes: list[Any] = []
    running = threading.Thread(target=lambda: outcomes.append(a.run_job("pull", T0)))
    running.start()
    try:
        assert inside.wait(30)
        clock.advance(seconds=10)
        # Another replica comes for the same step, through another job: the step is a's.
        assert b.run_job("pipeline").status == "interrupted"
        assert {r["status"] for r in _runs(engine).values() if r["job"] != "pipeline"} == {
            "running"
        }
        assert all(r["note"] is None for r in _status(config_path, clock()).values())
        # a's lease has run out by this clock and nobody took over: that proves nothing (a may
        # only be cut off from the database), so status says so and leaves the run alone.
        shown = _status(config_path, T0 + dt.timedelta(minutes=5))
        quiet = [r for r in shown.values() if r["status"] == "running"]
        assert len(quiet) == 2 and all(
            r["note"].startswith("no heartbeat from replica a since 2026-06-30T07:00:04+00:00")
            for r in quiet
        )
    finally:
        go_on.set()
        running.join(30)
    assert outcomes[0].status == "ok"
    assert {r["status"] for r in _runs(engine).values()} == {"ok", "succeeded", "interrupted"}


def test_status_settles_a_run_whose_step_gave_its_lease_back_without_finishing(
    engine: Engine, config: Config, config_path: Path, steps: dict[str, Step], cli_env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def sync_losing_its_database(engine: Engine, config: Config, clock: Any) -> Any:
        start_run(engine, "sync", started=clock())
        raise sa.exc.OperationalError("UPDATE run", {}, Exception("server closed the connection"))

    monkeypatch.setitem(steps, "sync", sync_losing_its_database)
    assert _worker(config, engine).run_job("sync", T0).status == "failed"
    [sync_run] = [r for r in _runs(engine).values() if r["kind"] == "sync"]
    assert sync_run["status"] == "running"
    shown = _status(config_path, T0 + dt.timedelta(seconds=1))[sync_run["id"]]
    assert shown["status"] == "abandoned"
    assert shown["error"] == (
        "the worker running this sync (replica a) stopped without finishing: it gave step:sync "
        "back at 2026-06-30T07:00:04+00:00 without recording how the run ended, so it is not "
        "running. The next sync carries on from the ledgers of what was written, writing "
        "nothing twice."
    )


def test_a_one_shot_command_holds_its_step_and_stops_if_the_step_runs_elsewhere(
    engine: Engine, cli_env: str, config: Config, config_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    replica = Leases(engine, "a", ttl=config.worker.lease_ttl, clock=lambda: now)
    assert replica.acquire("step:evaluate").acquired
    evaluate = ["--config", str(config_path), "evaluate", "--json"]
    assert main(evaluate) == 75  # EX_TEMPFAIL: try again later
    err = capsys.readouterr().err
    assert "the evaluate step is running on a (its lease runs until" in err
    assert "nothing was done" in err and "Traceback" not in err
    assert [r for r in _runs(engine).values() if r["kind"] == "evaluate"] == []
    assert replica.release("step:evaluate")
    assert main(evaluate) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    row = _runs(engine)[run_id]
    assert (row["status"], row["lease"]) == ("ok", "step:evaluate")
    assert row["holder"].startswith("cli:")  # a killed command's row can be settled too
    state = replica.state("step:evaluate")
    assert state is not None and not state.held(dt.datetime.now(dt.UTC))  # given back
