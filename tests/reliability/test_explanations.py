"""What a failed run says, for the faults the randomized runs found explained badly or not at
all: each is pinned here with the one fault that shows it, so it cannot come back unnoticed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smartseg.config import Config, load_config
from smartseg.connectors.pull import run_pull
from smartseg.connectors.retry import DEFAULT_POLICY
from smartseg.connectors.runner import PullResult
from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.http import FaultRule
from smartseg.store import make_engine, upgrade
from smartseg.worker.pipeline import pull_failure

from .harness import NOW, open_sandbox, write_config


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Config]]:
    folder = tmp_path_factory.mktemp("explanations")
    box = open_sandbox(folder / "data")
    try:
        path = write_config(folder / "config", box, f"sqlite:///{folder / 'unused.db'}")
        yield box, load_config(path, env={})
    finally:
        box.stop()


@pytest.fixture
def box(world: tuple[Sandbox, Config]) -> Iterator[Sandbox]:
    sandbox, _ = world
    yield sandbox
    for server in (sandbox.salesforce, sandbox.hubspot, sandbox.stripe):
        assert server is not None
        server.faults.clear()
    assert sandbox.hubspot is not None
    sandbox.hubspot.reset_token()


def _pull(world: tuple[Sandbox, Config], tmp_path: Path, source: str) -> PullResult:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    try:
        return run_pull(engine, world[1], clock=lambda: NOW, sources=[source], sleep=lambda s: None)
    finally:
        engine.dispose()


@pytest.mark.parametrize("status", ["429", "503"])
def test_a_busy_salesforce_sign_in_is_retried_not_blamed_on_the_credentials(
    world: tuple[Sandbox, Config], box: Sandbox, tmp_path: Path, status: str
) -> None:
    assert box.salesforce is not None
    box.salesforce.faults.set([FaultRule(status, method="POST", path="/services/oauth2/token",
                                         times=2, retry_after=0.01)])  # fmt: skip
    result = _pull(world, tmp_path, "salesforce")
    errors = {k: s.error for k, s in result.streams.items() if s.error}
    assert result.ok, errors
    assert box.salesforce.faults.snapshot()[0]["fired"] == 2


def test_a_retry_after_longer_than_smartseg_waits_says_so(
    world: tuple[Sandbox, Config], box: Sandbox, tmp_path: Path
) -> None:
    assert box.salesforce is not None
    wait = DEFAULT_POLICY.max_retry_after * 5
    box.salesforce.faults.set([FaultRule("429", path="*/queryAll", times=1, retry_after=wait)])
    result = _pull(world, tmp_path, "salesforce")
    errors = [s.error for s in result.streams.values() if s.error]
    assert len(errors) == 1, errors
    error = errors[0]
    assert f"asked to wait {wait:g}s" in error and "next run" in error, error
    assert "gave up after" not in error  # it gave up at once, not after six attempts


def test_a_failed_pull_step_names_the_reason_not_only_the_streams(
    world: tuple[Sandbox, Config], box: Sandbox, tmp_path: Path
) -> None:
    assert box.hubspot is not None
    box.hubspot.expire_sessions()  # the private app's token is revoked
    result = _pull(world, tmp_path, "hubspot")
    message = str(pull_failure(result))
    assert message.startswith("pull failed for hubspot.")
    assert "HubSpot refused the access token; check sources.hubspot.access_token" in message
    assert message.count("refused the access token") == 1  # once, not once per stream
