"""A SIGTERM while `smartseg` is still importing: the service stops cleanly, a command as always.

The signal is sent as soon as the process catches SIGTERM (its `SigCgt` mask in /proc), which
is the entry point's first statement, well before the CLI's imports are done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.worker.conftest import quick_config

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc"
)


def _catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _term_while_starting(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Start `python -m smartseg ARGS`, SIGTERM it the moment it catches the signal; its exit
    code and output."""
    config = quick_config(tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'store.db'}")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSEG_")}
    log = tmp_path / "out.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "smartseg", "--config", str(config), *args],
            stdout=output, stderr=subprocess.STDOUT, env=environ, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _catches_sigterm(process.pid):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the process never caught SIGTERM"
            time.sleep(0.002)
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, log.read_text(errors="replace")


def test_the_service_stops_cleanly_on_a_sigterm_while_starting(tmp_path: Path) -> None:
    code, output = _term_while_starting(tmp_path, "run", "--health-port", "0")
    assert code == 0, output
    assert "received SIGTERM while starting" in output
    assert "Traceback" not in output
    # Nothing ran: no job started, no run row, and no scheduler.
    assert "scheduled " not in output and "pipeline:" not in output


def test_a_one_shot_command_still_ends_on_a_sigterm_while_starting(tmp_path: Path) -> None:
    code, output = _term_while_starting(tmp_path, "evaluate")
    assert code == -signal.SIGTERM, output
    assert not (tmp_path / "store.db").exists(), "the command went on to open the store"
