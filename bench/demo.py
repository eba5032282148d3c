"""The demo end to end: `smartseg demo --json` as a new user runs it, in a subprocess.

The whole pipeline against the built-in sandbox (200 synthetic accounts): start the sandbox,
pull from the three APIs and the usage and NPS files, evaluate the shipped rules, create the
CRM fields, write tags and tasks back. The figures are its wall time (the process included,
as a user waits for it) and the API calls it reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.logs import log
from bench.sandbox_process import REPO

__all__ = ["run_demo"]


def run_demo(directory: Path) -> dict[str, Any]:
    """`smartseg demo --json` in `directory`: its summary plus the wall time around it."""
    log("demo: smartseg demo --json")
    command = [sys.executable, "-m", "smartseg", "demo", "--dir", str(directory), "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"smartseg demo exited {done.returncode}: {done.stderr.strip()[-600:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    summary.pop("segments", None)  # 123 sizes; the evaluation section has the figures
    return {"wall_seconds": round(seconds, 2), **summary}
