"""`smartseg run`: the unattended worker. Schedules jobs, runs each firing once across replicas.

Jobs are named in `schedules` in the config, each with a cron line or an interval:

* `pipeline`: pull -> evaluate -> sync, a step running only when the one before succeeded;
* `pull`, `evaluate`, `sync`: one step on its own;
* `pull.<source>`: the pull of one source (e.g. `pull.stripe` every 5 minutes).

An APScheduler 3 `BlockingScheduler` fires them (`max_instances=1`, coalescing missed firings
into one, `worker.misfire_grace`). Intervals are counted from the Unix epoch rather than from
the start of the process, so every replica computes the same fire times: a firing is identified
by its scheduled time, and the lease table (`lease.py`) lets exactly one replica run it.
Different jobs share steps (`pipeline` and `evaluate` both evaluate), so each step also takes
a lease of its own (`step:evaluate`) and an in-process lock: a step runs in one job at a time,
and a job that finds its step busy stops there as `interrupted`, not failed.

Each run of a job writes a `run` row of kind `job` (job name, scheduled time as `as_of`, outcome,
counts summed over its steps, error); the steps write their own rows as always. `/healthz`
reads the latest finished job rows, so every replica reports the same failing jobs. Every row
records the lease it ran under and this replica; whoever takes that lease next settles a row
still `running` under it as `abandoned`, since its worker must have died (abandoned.py).

SIGTERM or SIGINT stops the scheduler from starting anything new; a running job finishes the
step it is in (steps commit their work in transactions and checkpoints, so stopping between
steps loses nothing) and skips the rest; then leases are released and the process exits 0.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from smartseg import entry
from smartseg.config import Config, Schedule
from smartseg.config.yamlfile import read_yaml
from smartseg.connectors.pull import AVAILABLE_SOURCES, run_pull
from smartseg.errors import ConfigError, SmartsegError
from smartseg.logs import redact
from smartseg.store import upgrade
from smartseg.store.models import Run, table_of
from smartseg.store.runs import RunOwner, finish_run, start_run
from smartseg.worker.abandoned import holding, settle_after_taking
from smartseg.worker.commands import summarize_counts
from smartseg.worker.health import HealthServer, WorkerMetrics
from smartseg.worker.lease import Heartbeat, Leases, default_replica_id
from smartseg.worker.pipeline import STEPS, pull_failure

__all__ = [
    "JOB_RUN_KIND",
    "JobOutcome",
    "Worker",
    "check_job",
    "default_replica_id",
    "fire_time",
    "last_job_runs",
    "make_trigger",
    "prepare_database",
    "schedule_triggers",
]

log = logging.getLogger("smartseg.worker")

Clock = Callable[[], dt.datetime]
Step = Callable[[Engine, Config, Clock], dict[str, Any]]

JOB_RUN_KIND = "job"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_RUN = table_of(Run)
_RUN_ID = re.compile(r"\brun (\d+)\b")
# pg_advisory_lock key serializing `db upgrade` between replicas starting together ("smsg").
_MIGRATION_LOCK = 0x736D7367


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- jobs and their schedules ------------------------------------------------------------------


def _job_names(config: Config) -> list[str]:
    enabled = config.sources.enabled_names()
    return ["pipeline", *STEPS, *(f"pull.{s}" for s in AVAILABLE_SOURCES if s in enabled)]


def check_job(config: Config, name: str, key_path: tuple[str, ...] | None = None) -> None:
    """Raise a ConfigError for a job name the worker cannot run, located at `key_path` in the
    config file when the name comes from there (a name typed on the command line has none)."""
    if name in _job_names(config):
        return
    if name.startswith("pull."):
        source = name.removeprefix("pull.")
        problem = (
            f"no source {source!r} to pull; sources with a connector: "
            f"{', '.join(AVAILABLE_SOURCES)}"
            if source not in AVAILABLE_SOURCES
            else f"source {source!r} is not configured or not enabled under sources"
        )
    else:
        problem = f"unknown job {name!r}"
    message = f"{problem}. Jobs: {', '.join(_job_names(config))}"
    if key_path is None:
        raise ConfigError(message, expected="a job name")
    raise _located(config, message, key_path)


def _located(config: Config, message: str, key_path: tuple[str, ...]) -> ConfigError:
    line = None
    if config.path is not None and config.path.is_file():
        try:
            line, _ = read_yaml(config.path).position(key_path)
        except ConfigError:  # the file changed under us; the key path still says where
            line = None
    return ConfigError(message, file=config.path, line=line, key=".".join(key_path))


def make_trigger(schedule: Schedule, tz: dt.tzinfo) -> BaseTrigger:
    """The APScheduler trigger of a schedule; intervals count from the epoch (see module doc)."""
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone=tz)
    assert schedule.interval is not None
    return IntervalTrigger(
        seconds=int(schedule.interval.total_seconds()), start_date=EPOCH, timezone=tz
    )


def schedule_triggers(config: Config) -> dict[str, BaseTrigger]:
    """Every scheduled job with its trigger; a bad job name is a located ConfigError."""
    if not config.schedules:
        raise _located(
            config,
            "no schedules: `smartseg run` needs at least one job, e.g. "
            "schedules: {pipeline: {interval: 15m}}",
            ("schedules",),
        )
    for name in config.schedules:
        check_job(config, name, ("schedules", name))
    return {name: make_trigger(s, config.tz) for name, s in config.schedules.items()}


def fire_time(trigger: BaseTrigger, now: dt.datetime, window: dt.timedelta) -> dt.datetime | None:
    """The latest fire time of `trigger` at or before `now`, at most `window` back (UTC).

    APScheduler does not hand a job its scheduled time; every replica derives it from the same
    trigger instead, which is what makes it a shared name for the firing.
    """
    if isinstance(trigger, IntervalTrigger):
        start: dt.datetime = trigger.start_date
        if now < start:
            return None
        return (start + trigger.interval * ((now - start) // trigger.interval)).astimezone(dt.UTC)
    latest = None
    moment = trigger.get_next_fire_time(None, now - window)
    while moment is not None and moment <= now:
        latest = moment
        moment = trigger.get_next_fire_time(moment, moment + dt.timedelta(microseconds=1))
    return latest.astimezone(dt.UTC) if latest is not None else None


def _pull_source(source: str) -> Step:
    def pull_one(engine: Engine, config: Config, clock: Clock) -> dict[str, Any]:
        result = run_pull(engine, config, clock=clock, sources=[source])
        if not result.ok:
            raise pull_failure(result)
        return result.as_dict()

    return pull_one


def _steps(job: str) -> list[tuple[str, Step]]:
    if job == "pipeline":
        return list(STEPS.items())
    if job in STEPS:
        return [(job, STEPS[job])]
    return [("pull", _pull_source(job.removeprefix("pull.")))]


# -- the database -----------------------------------------------------------------------------


def prepare_database(engine: Engine) -> str | None:
    """Migrate to head; on PostgreSQL under an advisory lock, as replicas may start together."""
    if engine.dialect.name != "postgresql":
        return upgrade(engine)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        try:
            return upgrade(engine)
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()


def last_job_runs(engine: Engine, jobs: list[str]) -> dict[str, dict[str, Any]]:
    """The latest finished `job` run row per job name (jobs that never finished are absent)."""
    latest = (
        sa.select(sa.func.max(_RUN.c.id))
        .where(_RUN.c.kind == JOB_RUN_KIND, _RUN.c.job.in_(jobs), _RUN.c.finished_at.is_not(None))
        .group_by(_RUN.c.job)
    )
    with engine.connect() as connection:
        rows = connection.execute(sa.select(_RUN).where(_RUN.c.id.in_(latest))).mappings().all()
    return {
        row["job"]: {
            "run_id": row["id"],
            "status": row["status"],
            "fired_at": _iso(row["as_of"]),
            "started_at": _iso(row["started_at"]),
            "finished_at": _iso(row["finished_at"]),
            "error": row["error"],
        }
        for row in rows
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


# -- running jobs -----------------------------------------------------------------------------


@dataclass(slots=True)
class JobOutcome:
    """One firing of a job on this replica: run, skipped (and why), failed or interrupted."""

    job: str
    status: str
    firing: dt.datetime | None = None
    run_id: int | None = None
    reason: str | None = None
    error: str | None = None
    seconds: float = 0.0
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return self.status != "skipped"

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "status": self.status,
            "fired_at": self.firing.isoformat() if self.firing else None,
            "run_id": self.run_id,
            "reason": self.reason,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "counts": self.counts,
            "api_calls": self.api_calls,
        }


class Worker:
    """The scheduled jobs of one replica, its leases, metrics and health."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        replica: str | None = None,
        clock: Clock = _utcnow,
        metrics: WorkerMetrics | None = None,
        health_host: str | None = None,
        health_port: int | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.replica = replica or default_replica_id()
        self.clock = clock
        self.metrics = metrics or WorkerMetrics()
        self.health_host = health_host or config.worker.health_host
        self.health_port = config.worker.health_port if health_port is None else health_port
        self.leases = Leases(engine, self.replica, ttl=config.worker.lease_ttl, clock=clock)
        self.triggers: dict[str, BaseTrigger] = {}
        self._window = config.worker.misfire_grace + dt.timedelta(minutes=1)
        self._cond = threading.Condition()
        self._stopping = False
        self._running: dict[str, str] = {}  # job -> the step it is in
        self._scheduler: BlockingScheduler | None = None
        self._scheduler_lock = threading.Lock()
        # Jobs are leased by name, but different jobs share steps (`pipeline` and `evaluate`
        # both evaluate): a step runs in one job at a time, across threads and replicas.
        self._step_locks = {name: threading.Lock() for name in STEPS}
        self.server: HealthServer | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- one job ------------------------------------------------------------------------------

    def run_job(self, job: str, firing: dt.datetime | None = None) -> JobOutcome:
        """Run `job` now if this replica gets its lease (and, with `firing`, claims it)."""
        check_job(self.config, job)
        attempt = self.leases.acquire(job, firing)
        if not attempt.acquired:
            reason = attempt.reason or "held"
            self.metrics.job_skipped(job, reason)
            log.info("skipped %s: %s", job, attempt.describe())
            return JobOutcome(job, "skipped", firing, reason=attempt.describe())
        try:
            # Rows under a job's lease are that job's runs (abandoned.py settles them).
            if settled := settle_after_taking(self.leases, attempt):
                self.metrics.job_abandoned(job, len(settled))
            return self._run_leased(job, firing)
        finally:
            try:
                self.leases.release(job)
            except Exception:  # it expires after lease_ttl anyway
                log.warning("could not release the lease on %s", job, exc_info=True)

    def _run_leased(self, job: str, firing: dt.datetime | None) -> JobOutcome:
        started = self.clock()
        begun = time.perf_counter()
        outcome = JobOutcome(job, "ok", firing)
        outcome.run_id = start_run(
            self.engine, JOB_RUN_KIND, started=started, job=job, as_of=firing or started,
            owner=RunOwner(job, self.replica),
        )  # fmt: skip
        log.info("running %s (run %s, fired %s)", job, outcome.run_id, _iso(firing) or "by hand")
        try:
            with Heartbeat(self.leases, job, every=self._beat_every) as heartbeat:
                for name, step in _steps(job):
                    if self._stopping or heartbeat.lost.is_set():
                        why = "the worker is stopping" if self._stopping else "lease lost"
                        outcome.status = "interrupted"
                        outcome.error = f"{why}: {name} and later steps did not run"
                        break
                    with self._exclusive(name) as busy:
                        if busy is not None:
                            outcome.status = "interrupted"
                            outcome.error = f"{busy}: {name} and later steps did not run"
                            break
                        with self._cond:
                            self._running[job] = name
                        if not self._run_step(outcome, name, step):
                            outcome.status = "failed"
                            break
        except BaseException as exc:  # recording the outcome must not hide the cause
            outcome.status, outcome.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            outcome.seconds = time.perf_counter() - begun
            self._record(outcome, started)
        level = logging.INFO if outcome.status == "ok" else logging.WARNING
        log.log(level, "%s %s in %.1fs%s", job, outcome.status, outcome.seconds,
                f": {redact(outcome.error)}" if outcome.error else "")  # fmt: skip
        return outcome

    @property
    def _beat_every(self) -> float:
        return max(self.config.worker.lease_ttl.total_seconds() / 3, 0.2)

    @contextlib.contextmanager
    def _exclusive(self, step: str) -> Iterator[str | None]:
        """Hold `step` (pull, evaluate or sync) while it runs: yields None, or why it is busy.

        Two evaluations at once would both record the same entries (the open-membership index
        then fails one with a constraint error), two syncs would race on the task ledger, and
        two pulls of a source on its cursor. A busy step is not a failure: the job stops there
        and the next firing carries on from the steps' checkpoints.
        """
        lock = self._step_locks[step]
        if not lock.acquire(blocking=False):
            yield f"the {step} step is running in another job of this replica"
            return
        try:
            with holding(self.leases, f"step:{step}", every=self._beat_every) as attempt:
                yield (
                    None
                    if attempt.acquired
                    else (f"the {step} step is running on replica {attempt.holder}")
                )
        finally:
            lock.release()

    def _run_step(self, outcome: JobOutcome, name: str, step: Step) -> bool:
        begun = time.perf_counter()
        summary: dict[str, Any] | None = None
        error: str | None = None
        try:
            summary = step(self.engine, self.config, self.clock)
        except SmartsegError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("%s step of %s failed unexpectedly", name, outcome.job)
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - begun
        run_id = summary.get("run_id") if summary else _run_id_in(error)
        counts, api_calls = self._step_row(run_id)
        self.metrics.step_run(name, seconds, counts, api_calls)
        for key, value in summarize_counts(name, counts).items():
            if isinstance(value, int):
                outcome.counts[key] = outcome.counts.get(key, 0) + value
        for target, calls in api_calls.items():
            if isinstance(calls, int):
                outcome.api_calls[target] = outcome.api_calls.get(target, 0) + calls
        outcome.steps[name] = {
            "status": "ok" if error is None else "failed",
            "run_id": run_id,
            "seconds": round(seconds, 3),
            **({"error": redact(error)} if error else {}),
        }
        if error is not None:
            outcome.error = f"{name}: {error}"
        return error is None

    def _step_row(self, run_id: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        if run_id is None:
            return {}, {}
        try:
            with self.engine.connect() as connection:
                row = connection.execute(
                    sa.select(_RUN.c.counts, _RUN.c.api_calls).where(_RUN.c.id == run_id)
                ).first()
        except sa.exc.SQLAlchemyError:
            log.warning("could not read run %s for metrics", run_id, exc_info=True)
            return {}, {}
        return (dict(row.counts or {}), dict(row.api_calls or {})) if row else ({}, {})

    def _record(self, outcome: JobOutcome, started: dt.datetime) -> None:
        finished = self.clock()
        counts: dict[str, Any] = {
            **outcome.counts,
            "replica": self.replica,
            "steps": {k: v["status"] for k, v in outcome.steps.items()},
        }
        if outcome.run_id is not None:
            finish_run(
                self.engine, outcome.run_id, finished=finished, status=outcome.status,
                counts=counts, api_calls=outcome.api_calls, error=outcome.error,
            )  # fmt: skip
        self.metrics.job_finished(outcome.job, outcome.status, outcome.seconds,
                                  finished.timestamp())  # fmt: skip

    def run_once(self, job: str) -> JobOutcome:
        """`smartseg run --once JOB`: migrate, then run `job` now through its lease."""
        check_job(self.config, job)
        prepare_database(self.engine)
        return self.run_job(job)

    # -- the scheduler ------------------------------------------------------------------------

    def fire(self, job: str) -> None:
        """What the scheduler calls: name the firing, then run it through the lease."""
        with self._cond:
            if self._stopping:
                return
            self._running[job] = "lease"
        try:
            now = self.clock()
            firing = fire_time(self.triggers[job], now, self._window)
            if firing is None:  # pragma: no cover - the scheduler fired it, so a time exists
                log.warning("no scheduled time for %s at %s; running it unclaimed", job, now)
            self.run_job(job, firing)
        except Exception:
            log.exception("job %s could not run", job)
            self.metrics.job_skipped(job, "error")
        finally:
            with self._cond:
                self._running.pop(job, None)
                self._cond.notify_all()

    def serve(self, *, ready_file: Path | None = None, handle_signals: bool = True) -> int:
        """Run the schedules until SIGTERM/SIGINT (or `stop()`); returns the exit code, 0."""
        self.triggers = schedule_triggers(self.config)
        # From here on a signal stops gracefully, even during the migration below.
        previous = self._install_signals() if handle_signals else {}
        if handle_signals and entry.stop_requested():  # a SIGTERM while the process started
            log.info("received SIGTERM while starting")
            self.stop()
        try:
            prepare_database(self.engine)
            self._serve(ready_file)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info("worker %s stopped", self.replica)
        return 0

    def _serve(self, ready_file: Path | None) -> None:
        grace = int(self.config.worker.misfire_grace.total_seconds())
        scheduler = BlockingScheduler(
            timezone=self.config.tz,
            executors={"default": ThreadPoolExecutor(max_workers=max(len(self.triggers), 1))},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": grace},
        )
        for job, trigger in self.triggers.items():
            scheduler.add_job(self.fire, trigger, args=[job], id=job, name=job)
        with self._scheduler_lock:
            self._scheduler = scheduler
        server = self.server = HealthServer(
            self.health_host, self.health_port, self.metrics.registry, self.health
        ).start()
        log.info("worker %s: /healthz and /metrics on %s", self.replica, server.url)

        def started(event: SchedulerEvent) -> None:
            for job in scheduler.get_jobs():
                log.info("scheduled %s: %s, next at %s", job.id, job.trigger, job.next_run_time)
            if ready_file is not None:
                self._write_ready(ready_file)
            if self._stopping:  # a signal came before the scheduler ran
                self._shutdown_scheduler()

        scheduler.add_listener(started, EVENT_SCHEDULER_STARTED)
        try:
            if not self._stopping:
                scheduler.start()  # blocks until stop()
        finally:
            self._drain()
            released = self.leases.release_all()
            if released:
                log.info("released %d lease(s)", released)
            server.stop()

    def stop(self) -> None:
        """Start nothing new; the running step finishes, then `serve` returns."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            running = dict(self._running)
        log.info(
            "stopping%s",
            "; finishing " + ", ".join(f"{j} ({s})" for j, s in running.items()) if running else "",
        )
        # shutdown() takes the scheduler's locks; never do that inside the signal handler.
        threading.Thread(target=self._shutdown_scheduler, name="smartseg-stop").start()

    def _shutdown_scheduler(self) -> None:
        with self._scheduler_lock:
            if self._scheduler is None:
                return
            # Not started yet: the start listener shuts it down then.
            with contextlib.suppress(SchedulerNotRunningError):
                self._scheduler.shutdown(wait=False)

    def _install_signals(self) -> dict[int, Any]:
        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stop()

        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handle)
        return previous

    def _drain(self) -> None:
        with self._cond:
            while self._running:
                log.info(
                    "waiting for %s to finish",
                    ", ".join(f"{j} ({s})" for j, s in self._running.items()),
                )
                self._cond.wait(timeout=10)

    def _write_ready(self, path: Path) -> None:
        assert self.server is not None
        payload = {
            "replica": self.replica,
            "pid": os.getpid(),
            "health_url": self.server.url,
            "port": self.server.port,
            "jobs": sorted(self.triggers),
        }
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(payload))
        partial.replace(path)

    # -- health -------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body): the scheduler runs and no job's latest finished run failed."""
        scheduler = self._scheduler
        if self._stopping:
            state = "stopping"
        elif scheduler is not None and scheduler.running:
            state = "running"
        else:
            state = "stopped"
        jobs = sorted(self.triggers)
        last = last_job_runs(self.engine, jobs)
        with self._cond:
            running = dict(self._running)
        report: dict[str, dict[str, Any]] = {}
        for job in jobs:
            scheduled = scheduler.get_job(job) if scheduler is not None else None
            next_run = getattr(scheduled, "next_run_time", None)
            report[job] = {
                "last": last.get(job),
                "running": running.get(job),
                "next_run": next_run.isoformat(timespec="seconds") if next_run else None,
            }
        failing = [job for job, run in last.items() if run["status"] == "failed"]
        ok = state == "running" and not failing
        body = {
            "status": "ok" if ok else ("failing" if failing else state),
            "replica": self.replica,
            "scheduler": state,
            "failing": sorted(failing),
            "jobs": report,
        }
        return ok, body


def _run_id_in(error: str | None) -> int | None:
    match = _RUN_ID.search(error or "")
    return int(match.group(1)) if match else None
