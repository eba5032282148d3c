"""Peak memory of a Salesforce pull at two sizes: it must not grow with the record count.

    python -m bench.pull_memory [--accounts 10000 50000] [--json FILE]

For each size, a fake Salesforce org is started in its own process (so its memory is not
counted), then a full pull into a fresh SQLite file runs in a second process; that process
reports its peak resident set size, the records pulled and the time taken.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ANCHOR = dt.date(2026, 6, 30)


def serve(accounts: int, directory: Path) -> None:
    """Child process: run a fake org of `accounts` accounts; print its URL and CA, then wait."""
    from smartseg.sandbox.generator import generate
    from smartseg.sandbox.http import make_tls
    from smartseg.sandbox.salesforce.server import SalesforceServer

    tls = make_tls(directory)
    server = SalesforceServer(
        generate(seed=7, accounts=accounts, anchor=ANCHOR), tls=tls, api_limit=10**9
    )
    server.start()
    print(json.dumps({"url": server.url, "ca_file": str(tls.ca_file)}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin


def pull(url: str, ca_file: str, directory: Path) -> None:
    """Child process: one full pull into a fresh SQLite store; print what it measured."""
    import yaml

    from smartseg.config import load_config
    from smartseg.connectors.pull import run_pull
    from smartseg.sandbox import credentials
    from smartseg.store import make_engine, upgrade

    shipped = yaml.safe_load((REPO / "config" / "smartseg.yaml").read_text())
    section = shipped["sources"]["salesforce"]
    section.update(instance_url=url, login_url=url, ca_file=ca_file)
    section["auth"]["client_secret"] = {"file": "secret"}
    (directory / "secret").write_text(credentials.SALESFORCE_CLIENT_SECRET)
    (directory / "smartseg.yaml").write_text(yaml.safe_dump({"sources": {"salesforce": section}}))
    config = load_config(directory / "smartseg.yaml", env={})
    engine = make_engine(f"sqlite:///{directory / 'store.db'}")
    upgrade(engine)
    started = time.perf_counter()
    result = run_pull(engine, config, clock=lambda: dt.datetime.now(dt.UTC))
    seconds = time.perf_counter() - started
    records = sum(r.records for r in result.streams.values())
    peak_kb = _peak_rss_kb()
    print(
        json.dumps(
            {
                "records": records,
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "ok": result.ok,
                "api_calls": sum(r.api_calls for r in result.streams.values()),
            }
        )
    )


def _peak_rss_kb() -> int:
    """This process's peak resident set size. Linux's ru_maxrss carries the high-water mark of
    the process that forked us across exec (a bench that forks us from 250 MB would read 250
    MB at any size), so read the current address space's own mark, VmHWM, where there is one."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(accounts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.pull_memory", "--serve", str(accounts), tmp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert server.stdout is not None
            info = json.loads(server.stdout.readline())
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.pull_memory",
                    "--pull",
                    info["url"],
                    info["ca_file"],
                    tmp,
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            return {"accounts": accounts, **json.loads(out.stdout.strip().splitlines()[-1])}
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--pull", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    if args.pull:
        pull(args.pull[0], args.pull[1], Path(args.pull[2]))
        return
    results = [measure(n) for n in args.accounts]
    report = {
        "benchmark": "pull_memory",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "database": "sqlite",
        "results": results,
    }
    print(f"{'accounts':>9} {'records':>10} {'seconds':>8} {'rec/s':>8} {'peak RSS MB':>12}")
    for r in results:
        print(
            f"{r['accounts']:>9,} {r['records']:>10,} {r['seconds']:>8} "
            f"{r['records'] / max(r['seconds'], 0.001):>8,.0f} {r['peak_rss_mb']:>12}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
