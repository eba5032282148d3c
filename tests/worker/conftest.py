"""Helpers for the worker tests: starter configs with second-level schedules, a settable clock,
and `smartseg run` as a subprocess that says where its health endpoint is."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from smartseg.worker.commands import init_config

# Rules kept by `quick_config`: enough for a real evaluation that takes a fraction of a second.
QUICK_SEGMENTS = ("basics.yaml", "metrics.yaml")


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def edit_config(path: Path, **keys: Any) -> Path:
    """Replace top-level keys of a config file."""
    document = yaml.safe_load(path.read_text())
    document.update(keys)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def quick_config(directory: Path, **keys: Any) -> Path:
    """The starter config with only a few segment rules and no playbooks, plus `keys`."""
    for _ in init_config(directory):
        pass
    for rules in (directory / "segments").glob("*.yaml"):
        if rules.name not in QUICK_SEGMENTS:
            rules.unlink()
    for playbook in (directory / "playbooks").glob("*.yaml"):
        playbook.unlink()
    return edit_config(directory / "smartseg.yaml", **keys)


@dataclass
class WorkerProcess:
    """One `smartseg run` subprocess; its output goes to a file (a pipe could fill and block)."""

    name: str
    process: subprocess.Popen[bytes]
    ready_file: Path
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                info: dict[str, Any] = json.loads(self.ready_file.read_text())
                return info
            if self.process.poll() is not None:
                pytest.fail(f"worker {self.name} exited {self.process.returncode}:\n{self.log()}")
            time.sleep(0.05)
        pytest.fail(f"worker {self.name} not ready after {timeout}s:\n{self.log()}")

    @property
    def url(self) -> str:
        return str(json.loads(self.ready_file.read_text())["health_url"])

    def get(self, path: str) -> tuple[int, str]:
        response = requests.get(self.url + path, timeout=5)
        return response.status_code, response.text

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (failing the test if it takes longer than `timeout`)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"worker {self.name} ignored SIGTERM for {timeout}s:\n{self.log()}")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    """Start `smartseg run` subprocesses; any still running at the end are killed."""
    started: list[WorkerProcess] = []

    def start(config: Path, name: str = "w1", **env: str) -> WorkerProcess:
        ready = tmp_path / f"{name}.ready.json"
        log_file = tmp_path / f"{name}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSEG_")}
        environ.update(env)
        command = [
            sys.executable, "-m", "smartseg", "--config", str(config), "run",
            "--health-port", "0", "--ready-file", str(ready), "--replica-id", name,
        ]  # fmt: skip
        with log_file.open("wb") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=environ, cwd=tmp_path
            )
        worker = WorkerProcess(name, process, ready, log_file)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")
