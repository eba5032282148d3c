"""Killing the worker at chosen points: a subprocess, a sandbox that holds one response until
the worker is dead, and kill points drawn from a seed.

A kill point inside a pull or a sync is a request: the sandbox applies the k-th request of a
route, then holds its answer while the test sends SIGKILL, so the worker dies exactly after the
CRM did something and before smartseg heard of it. Evaluation makes no requests; it is killed a
seeded fraction of a second after its run row appears.
"""

from __future__ import annotations

import fnmatch
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.http import ApiServer, Request, Response
from smartseg.store.models import Run, table_of

from .harness import NOW

__all__ = ["Hold", "KillPoint", "WorkerProcess", "draw_kill_points"]

_RUN = table_of(Run)
_DRIVER = Path(__file__).with_name("crash_worker.py")
WAIT = 180.0  # seconds a worker may take to reach a kill point or finish on a loaded machine


@dataclass(frozen=True, slots=True)
class KillPoint:
    """Where to kill: the k-th answer of `server`'s route (method, path), or, for evaluation,
    `delay` seconds into it."""

    step: str
    server: str = ""
    method: str = ""
    path: str = ""
    k: int = 0
    delay: float = 0.0

    def describe(self) -> str:
        if self.step == "evaluate":
            return f"evaluate +{self.delay:.2f}s"
        return f"{self.step}: {self.server} {self.method} {self.path} #{self.k}"


# Routes only the pull reads, and the writes of a sync (tasks first: the duplicate trap).
_PULL_ROUTES = (
    ("salesforce", "GET", "/services/data/{version}/queryAll"),
    ("hubspot", "GET", "/crm/v3/objects/{objectType}"),
    ("hubspot", "GET", "/crm/v3/owners"),
    ("stripe", "GET", "/v1/*"),
)
_SF = "/services/data/{version}"
SYNC_ROUTES = {
    "salesforce-task-upsert": (
        "salesforce",
        "PATCH",
        f"{_SF}/composite/sobjects/{{sobject}}/{{field}}",
    ),
    "hubspot-task-upsert": ("hubspot", "POST", "/crm/v3/objects/{objectType}/batch/upsert"),
    "hubspot-task-link": ("hubspot", "POST", "/crm/v4/associations/*/batch/create"),
    "salesforce-record-update": ("salesforce", "PATCH", f"{_SF}/composite/sobjects"),
    "hubspot-record-update": ("hubspot", "POST", "/crm/v3/objects/{objectType}/batch/update"),
}


def _count(routes: dict[str, dict[str, int]], server: str, method: str, path: str) -> int:
    return sum(
        n
        for route, n in routes.get(server, {}).items()
        if fnmatch.fnmatchcase(route, f"{method} {path}")
    )


def draw_kill_points(seed: int, routes: dict[str, dict[str, int]]) -> list[KillPoint]:
    """One kill point in each step, from `seed`; `routes` are a fault-free run's request counts
    per server and route, so every k drawn is one the run reaches."""
    rng = random.Random(seed)
    points = []
    for step, choices in (("pull", _PULL_ROUTES), ("sync", tuple(SYNC_ROUTES.values()))):
        server, method, path = rng.choice(
            [c for c in choices if _count(routes, *c) > 0]
        )  # fmt: skip
        k = rng.randint(1, _count(routes, server, method, path))
        points.append(KillPoint(step, server, method, path, k))
    points.insert(1, KillPoint("evaluate", delay=rng.uniform(0.0, 0.8)))
    return points


class Hold:
    """Hold the k-th answer of a route, after the server applied the request, until released.

    Done in the server's `decorate` hook, which runs between the handler and the reply."""

    def __init__(self, box: Sandbox, point: KillPoint) -> None:
        self.server: ApiServer = getattr(box, point.server)
        self.point = point
        self.reached = threading.Event()
        self._released = threading.Event()
        self._seen = 0
        self._lock = threading.Lock()

    def _decorate(self, request: Request, response: Response) -> None:
        type(self.server).decorate(self.server, request, response)
        method, _, template = request.route.partition(" ")
        if not (fnmatch.fnmatchcase(method, self.point.method)
                and fnmatch.fnmatchcase(template, self.point.path)):  # fmt: skip
            return
        with self._lock:
            self._seen += 1
            hit = self._seen == self.point.k
        if hit:
            self.reached.set()
            self._released.wait(WAIT)

    def __enter__(self) -> Hold:
        self.server.decorate = self._decorate  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.server.decorate  # back to the class's hook
        self._released.set()


@dataclass
class WorkerProcess:
    """The crash worker (`run --once pipeline` at NOW) as a subprocess; output to a log file."""

    config: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> WorkerProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSEG_")}
        command = [sys.executable, str(_DRIVER), str(self.config), "pipeline", NOW.isoformat(),
                   "crash-test"]  # fmt: skip
        with self.log_file.open("ab") as output:
            output.write(f"\n--- start {self.starts + 1}\n".encode())
            output.flush()
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=environ
            )
        self.starts += 1
        return self

    def log(self, tail: int = 6000) -> str:
        return self.log_file.read_text(errors="replace")[-tail:]

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def finish(self, where: str, timeout: float = WAIT) -> int:
        """Wait for the worker to exit; its exit code (0 when the job ended "ok")."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{where}: the worker did not finish in {timeout}s:\n{self.log()}"
            ) from None

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.running():
            self.kill()


def kill_at(
    worker: WorkerProcess, box: Sandbox, engine: Engine, point: KillPoint, where: str
) -> bool:
    """Start the worker and SIGKILL it at `point`; False if it finished before getting there.
    `where` (the test's seed and how to run it again) starts every failure message."""
    if point.step == "evaluate":
        return _kill_in_evaluation(worker.start(), engine, point.delay, where)
    with Hold(box, point) as hold:
        worker.start()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if hold.reached.wait(0.05):
                worker.kill()
                return True
            if not worker.running():
                return False
        worker.kill()
        raise AssertionError(f"{where}: {point.describe()} not reached in {WAIT}s:\n{worker.log()}")


def _kill_in_evaluation(worker: WorkerProcess, engine: Engine, delay: float, where: str) -> bool:
    with engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.max(_RUN.c.id))).scalar() or 0
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and worker.running():
        with engine.connect() as connection:
            started = connection.execute(
                sa.select(_RUN.c.id).where(
                    _RUN.c.id > before, _RUN.c.kind == "evaluate", _RUN.c.status == "running"
                )
            ).first()
        if started is not None:
            time.sleep(delay)
            landed = _evaluating(engine, int(started[0]))
            worker.kill()
            return landed
        time.sleep(0.02)
    if worker.running():
        worker.kill()
        raise AssertionError(f"{where}: no evaluation started in {WAIT}s:\n{worker.log()}")
    return False


def _evaluating(engine: Engine, run_id: int) -> bool:
    with engine.connect() as connection:
        status: Any = connection.execute(
            sa.select(_RUN.c.status).where(_RUN.c.id == run_id)
        ).scalar()
    return bool(status == "running")
