"""A PostgreSQL server for the evaluation bench: the one named in the environment, or our own.

`SMARTSEG_BENCH_POSTGRES_URL` (a URL whose user may create databases) wins. Without it the
bench starts a server of its own when the distribution's PostgreSQL binaries are installed, as
`.ci/run` does: a cluster under the bench's cache folder (kept, so a loaded scale is reused
next time), loopback only, a free port, fsync off, run as the `postgres` user when we are root
because initdb refuses root. The server is stopped when the bench ends. Without either, the
PostgreSQL figures are reported as skipped, with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.logs import log

__all__ = ["ENV_URL", "Postgres", "postgres_server"]

ENV_URL = "SMARTSEG_BENCH_POSTGRES_URL"
_PG_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True, slots=True)
class Postgres:
    """An admin URL to a running server, or why there is none."""

    url: str | None
    origin: str  # where the server came from, for the report
    skipped: str | None = None


def _bin_dir() -> Path | None:
    found = sorted(
        (p for p in _PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server(cache_dir: Path) -> Iterator[Postgres]:
    """The server the PostgreSQL figures run on (see the module docstring)."""
    url = os.environ.get(ENV_URL)
    if url:
        yield Postgres(url, f"{ENV_URL}")
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        yield Postgres(
            None,
            "none",
            f"no PostgreSQL binaries under {_PG_ROOT}: install the distribution's postgresql "
            f"package or set {ENV_URL} to a server's admin URL",
        )
        return
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None or _uid("postgres") is None:
            yield Postgres(
                None,
                "none",
                "running as root, and initdb refuses root: create a `postgres` user (the "
                f"distribution's package does) or set {ENV_URL}",
            )
            return
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = cache_dir / "postgres-cluster"
    sockets = Path(tempfile.mkdtemp(prefix="smartseg-bench-pg-"))
    for path in (cache_dir, sockets):
        path.mkdir(parents=True, exist_ok=True)
    if as_user:
        shutil.chown(sockets, "postgres")
        cluster.mkdir(exist_ok=True)
        shutil.chown(cluster, "postgres")
        cluster.chmod(0o700)

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *args], capture_output=True, text=True, check=False)

    try:
        if not (cluster / "PG_VERSION").exists():
            log(f"postgres: initdb {cluster}")
            done = pg(str(bin_dir / "initdb"), "-D", str(cluster), "-A", "trust", "-U", "postgres")
            if done.returncode:
                yield Postgres(None, "none", f"initdb failed: {done.stderr.strip()[-400:]}")
                return
        if pg(str(bin_dir / "pg_ctl"), "-D", str(cluster), "status").returncode == 0:
            # A bench that was killed left its server running on the cluster; it is ours.
            log(f"postgres: stopping the server an earlier bench left running on {cluster}")
            pg(str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop")
        port = _free_port()
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = pg(
            str(bin_dir / "pg_ctl"), "-D", str(cluster), "-w", "-t", "120",
            "-l", str(cluster / "server.log"), "-o", options, "start",
        )  # fmt: skip
        if started.returncode:
            yield Postgres(
                None,
                "none",
                f"the bench's PostgreSQL server did not start: {started.stderr.strip()[-400:]} "
                f"(see {cluster / 'server.log'})",
            )
            return
        log(f"postgres: started {bin_dir.parent.name} on port {port} ({cluster})")
        try:
            yield Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", "started by bench")
        finally:
            pg(str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "fast", "stop")
            log("postgres: stopped")
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _uid(user: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None
