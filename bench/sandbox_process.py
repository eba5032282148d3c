"""The sandbox in a child process, so the fake APIs' work is not timed as the client's.

The pull and sync benchmarks time API clients. With the sandbox's servers in the same process
they would share its interpreter lock and one core with the client being measured; in a child
process they run beside it, as a real API would. The parent learns the URLs and credentials
from one JSON line and reads request counts over HTTP (`GET /_sandbox/requests`).

    python -m bench.sandbox_process '{"accounts": 500, "data_dir": "...", ...}'
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from smartseg.sandbox.app import Sandbox, SandboxInfo

__all__ = ["ANCHOR", "REPO", "SandboxProcess", "requests_between"]

REPO = Path(__file__).resolve().parents[1]
ANCHOR = dt.date(2026, 6, 30)  # the synthetic world's "today": the same data on every run


class SandboxProcess:
    """`with SandboxProcess(...) as info:` runs a sandbox of `accounts` accounts until the block
    ends. `hubspot_burst` is the HubSpot server's requests per 10 seconds."""

    def __init__(
        self, accounts: int, data_dir: Path, *, seed: int = 7, hubspot_burst: int = 100
    ) -> None:
        self.spec = {
            "accounts": accounts,
            "data_dir": str(data_dir),
            "seed": seed,
            "anchor": ANCHOR.isoformat(),
            "hubspot_burst": hubspot_burst,
        }
        self.info: SandboxInfo | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SandboxInfo:
        command = [sys.executable, "-m", "bench.sandbox_process", json.dumps(self.spec)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait(timeout=30)
            raise RuntimeError(f"the sandbox process exited ({code}) before it was ready")
        self.info = SandboxInfo(**json.loads(line))
        return self.info

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process = self._process
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()  # the child serves until its stdin closes
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def requests(self) -> dict[str, dict[str, int]]:
        """API requests served so far, per server and route."""
        assert self.info is not None, "the sandbox is not running"
        out: dict[str, dict[str, int]] = {}
        for server in ("salesforce", "hubspot", "stripe"):
            url = getattr(self.info, server) + "/_sandbox/requests"
            response = requests.get(url, timeout=30, verify=self.info.ca_file)
            response.raise_for_status()
            out[server] = dict(response.json()["by_route"])
        return out


def requests_between(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """The requests served between two `requests()` snapshots, per server and route."""
    out: dict[str, dict[str, int]] = {}
    for server, routes in after.items():
        earlier = before.get(server, {})
        changed = {r: n - earlier.get(r, 0) for r, n in routes.items() if n != earlier.get(r, 0)}
        out[server] = changed
    return out


def _serve(spec: dict[str, Any]) -> None:
    box = Sandbox(
        salesforce_port=0,
        hubspot_port=0,
        stripe_port=0,
        accounts=int(spec["accounts"]),
        seed=int(spec["seed"]),
        anchor=dt.date.fromisoformat(spec["anchor"]),
        data_dir=Path(spec["data_dir"]),
        hubspot_burst=int(spec["hubspot_burst"]),
    )
    with box:
        print(json.dumps(box.info().as_dict()), flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
