"""One small sandbox world, a store and the config that joins them, for runs that are compared.

Every stage starts from the same world (seed, size, anchor) and evaluates at the same instant,
so two stages that end well must end equal. Waiting is made cheap in two ways, neither of which
changes what smartseg does: retry waits go through the `sleep` the pull and the CRM targets
already accept (a no-op here, as in the other integration tests), and the sandbox's HubSpot
portal allows more searches and requests per window than the real one, with the config's
client-side pace raised to match, so a run takes seconds instead of waiting on pacing (tested
on its own in tests/connectors and tests/sync).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors.pull import run_pull
from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.generator import ARCHETYPE_KEYS
from smartseg.store import make_engine, upgrade
from smartseg.worker import pipeline
from smartseg.worker.pipeline import PipelineResult
from smartseg.worker.sandbox_config import write_sandbox_config
from smartseg.worker.segments import rules_for
from smartseg.worker.sync_commands import build_targets, crm_setup_targets

from .endstate import EndState, capture
from .schedule import SERVERS, Schedule

__all__ = ["ANCHOR", "NOW", "Stage", "open_sandbox", "stage", "write_config"]

ANCHOR = dt.date(2026, 6, 30)
NOW = dt.datetime(2026, 6, 30, 7, 0, tzinfo=dt.UTC)
# Every archetype once, plus a few random accounts: enough for two HubSpot contact pages.
ACCOUNTS = len(ARCHETYPE_KEYS) + 5
WORLD_SEED = 13
_FAST = 100_000

# Requests that change something in a CRM. A few POSTs only read (sign-in, search, batch read).
_READ_POSTS = ("/services/oauth2/token", "/search", "/batch/read")


def open_sandbox(data_dir: Path) -> Sandbox:
    """The reliability tests' world, started, with HubSpot's pacing limits out of the way."""
    box = Sandbox(
        salesforce_port=0, hubspot_port=0, stripe_port=0, accounts=ACCOUNTS, seed=WORLD_SEED,
        anchor=ANCHOR, data_dir=data_dir, hubspot_burst=_FAST,
    )  # fmt: skip
    box.start()
    assert box.hubspot is not None
    box.hubspot.searches.limit = _FAST
    return box


def write_config(directory: Path, box: Sandbox, database_url: str) -> Path:
    """The shipped config aimed at `box` and `database_url`, with HubSpot's pace raised."""
    path = write_sandbox_config(directory, box.info(), database_url=database_url)
    document = yaml.safe_load(path.read_text())
    document["sources"]["hubspot"]["rate_limit"] = {"burst": _FAST, "window": "10s",
                                                    "search_per_second": _FAST}  # fmt: skip
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def crm_writes(box: Sandbox) -> dict[str, int]:
    """Requests so far that could change a CRM, per server."""
    out: dict[str, int] = {}
    for name in ("salesforce", "hubspot"):
        server = getattr(box, name)
        routes = server.request_counts()["by_route"]
        out[name] = sum(
            n
            for route, n in routes.items()
            if not route.startswith("GET ") and not any(p in route for p in _READ_POSTS)
        )
    return out


@dataclass
class Stage:
    """A started sandbox, a migrated store and the config joining them."""

    box: Sandbox
    config_path: Path
    config: Config
    engine: Engine
    slept: list[float] = field(default_factory=list)

    def nap(self, seconds: float) -> None:
        """What retries and pacing wait, recorded instead of slept."""
        self.slept.append(seconds)

    def run_pipeline(self) -> PipelineResult:
        """smartseg's pull -> evaluate -> sync at NOW, waits recorded instead of slept."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pipeline, "run_pull", functools.partial(run_pull, sleep=self.nap))
            patch.setattr(pipeline, "build_targets", functools.partial(build_targets,
                                                                       sleep=self.nap))  # fmt: skip
            return pipeline.run_pipeline(self.engine, self.config, lambda: NOW)

    def install(self, schedule: Schedule) -> None:
        for index, server in enumerate(SERVERS):
            getattr(self.box, server).faults.set(schedule.rules[server], seed=schedule.seed + index)

    def clear_faults(self) -> None:
        for server in SERVERS:
            getattr(self.box, server).faults.clear()

    def writes(self) -> dict[str, int]:
        return crm_writes(self.box)

    def capture(self, *, store: bool = True) -> EndState:
        return capture(self.engine, self.box, store=store)


@contextmanager
def stage(directory: Path, database_url: str) -> Iterator[Stage]:
    """A fresh world and an empty store at `database_url`, with the CRM fields set up."""
    box = open_sandbox(directory / "data")
    engine = make_engine(database_url)
    try:
        path = write_config(directory / "config", box, database_url)
        config = load_config(path, env={})
        upgrade(engine)
        # `smartseg crm setup` comes before the first run, as in production.
        crm_setup_targets(config, rules_for(config), build_targets(config))
        yield Stage(box, path, config, engine)
    finally:
        engine.dispose()
        box.stop()
