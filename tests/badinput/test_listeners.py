"""What smartseg exposes to the network: loopback unless told otherwise, read-only, non-root.

The sandbox (fake vendor APIs with well-known credentials) and the worker's /healthz and
/metrics bind to 127.0.0.1 by default; the Docker image opts into 0.0.0.0 for the health port
explicitly. smartseg takes no inbound webhooks: its only listener answers GET and nothing else,
so there are no signatures to verify. The image runs as a non-root user.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import requests
import typer.main

from smartseg.config import Config
from smartseg.sandbox.app import Sandbox
from smartseg.store import make_engine
from smartseg.worker.cli import app
from smartseg.worker.health import HealthServer, WorkerMetrics
from smartseg.worker.service import Worker

DOCKERFILE = Path(__file__).parents[2] / "Dockerfile"
LOOPBACK = "127.0.0.1"


def _option_default(command: str, option: str) -> object:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.main.TyperGroup)
    params = {p.name: p for p in group.commands[command].params}
    return params[option].default


def test_the_sandbox_listens_on_loopback_unless_told(tmp_path: Path) -> None:
    assert _option_default("sandbox", "host") == LOOPBACK
    with Sandbox(
        salesforce_port=0, hubspot_port=0, stripe_port=0, accounts=5, anchor=dt.date(2026, 6, 30),
        data_dir=tmp_path,
    ) as box:  # fmt: skip
        servers = (box.salesforce, box.hubspot, box.stripe)
        assert [s.url.split("//")[1].rsplit(":", 1)[0] for s in servers if s] == [LOOPBACK] * 3


def test_the_health_endpoint_listens_on_loopback_unless_told(tmp_path: Path) -> None:
    assert _option_default("run", "health_host") is None  # so worker.health_host decides
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    worker = Worker(Config(), engine, health_port=0)
    server = HealthServer(worker.health_host, 0, WorkerMetrics().registry, worker.health).start()
    try:
        assert (worker.health_host, server.host) == (LOOPBACK, LOOPBACK)
    finally:
        server.stop()
        engine.dispose()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_no_listener_accepts_a_webhook(method: str) -> None:
    server = HealthServer(LOOPBACK, 0, WorkerMetrics().registry, lambda: (True, {})).start()
    try:
        response = requests.request(method, server.url + "/webhooks/stripe", data=b"{}", timeout=5)
        assert response.status_code == 501  # http.server: unsupported method
    finally:
        server.stop()


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    lines = (line.strip() for line in joined.splitlines())
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def test_the_image_runs_as_a_non_root_user() -> None:
    steps = _instructions(DOCKERFILE.read_text())
    names = [name for name, _ in steps]
    start = max(i for i, name in enumerate(names) if name in ("CMD", "ENTRYPOINT"))
    users = [args for name, args in steps[:start] if name == "USER"]
    assert users, "no USER before CMD/ENTRYPOINT: the image would run as root"
    user = users[-1].split(":")[0]
    created = re.search(
        rf"useradd\b[^&;]*--uid (\d+)[^&;]*\b{re.escape(user)}\b", DOCKERFILE.read_text()
    )
    assert user not in ("root", "0") and created is not None and int(created.group(1)) > 0
