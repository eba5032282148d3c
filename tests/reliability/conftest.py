"""Seeds for the fault and crash tests, and the fault-free reference they are compared with.

A handful of seeds run in the default suite; `pytest -m soak tests/reliability` runs
`--soak-seeds` of them (200 unless told). `--fault-seed N` (or SMARTSEG_FAULT_SEEDS=N,M) runs
exactly those seeds, unmarked, which is what every failure message tells you to type.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .endstate import EndState
from .harness import Stage, stage
from .schedule import SERVERS

# The default suite's seeds: (backend, seed). Cheap enough for every run of `make test`; crash
# seed 1 kills its sync in the Salesforce task window (see killer.draw_kill_points).
FAST_FAULT_SEEDS = (("sqlite", 1), ("sqlite", 2), ("sqlite", 3), ("postgresql", 5))
FAST_CRASH_SEEDS = (("sqlite", 1),)
SOAK_BASE = 1000


def explicit_seeds(config: pytest.Config) -> list[int]:
    seeds = list(config.getoption("--fault-seed"))
    raw = os.environ.get("SMARTSEG_FAULT_SEEDS", "")
    seeds += [int(s) for s in raw.replace(" ", "").split(",") if s]
    return seeds


def _param(backend: str, seed: int, *marks: pytest.MarkDecorator) -> Any:
    if backend == "postgresql":
        marks = (*marks, pytest.mark.postgres)
    return pytest.param(backend, seed, marks=marks, id=f"{backend}-seed{seed}")


def seed_params(
    config: pytest.Config, fast: Sequence[tuple[str, int]], soak_every: int = 1
) -> list[Any]:
    """(db_url, seed) parameters: the explicit seeds, or the fast set plus the soak set."""
    chosen = explicit_seeds(config)
    if chosen:
        return [_param(b, s) for s in chosen for b in ("sqlite", "postgresql")]
    count = config.getoption("--soak-seeds")
    soak = [_param("sqlite", s, pytest.mark.soak)
            for s in range(SOAK_BASE, SOAK_BASE + count, soak_every)]  # fmt: skip
    # PostgreSQL takes one soak seed in ten: the backends differ in the store, not the faults.
    soak += [_param("postgresql", s, pytest.mark.soak)
             for s in range(SOAK_BASE, SOAK_BASE + count, 10 * soak_every)]  # fmt: skip
    return [_param(b, s) for b, s in fast] + soak


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # As a parametrize mark, added before pytest reads the marks: that is how a test's own
    # backends take precedence over the params of the shared `db_url` fixture.
    # A crashed run costs five worker starts, so the soak kills at one seed in ten.
    for name, fast, every in (("fault_seed", FAST_FAULT_SEEDS, 1),
                              ("crash_seed", FAST_CRASH_SEEDS, 10)):  # fmt: skip
        if name in metafunc.fixturenames:
            params = seed_params(metafunc.config, fast, every)
            metafunc.definition.add_marker(
                pytest.mark.parametrize(("db_url", name), params, indirect=["db_url"])
            )


def reproduce(seed: int, backend: str, test: str) -> str:
    """The one-line command that runs this seed again."""
    return f"pytest tests/reliability/{test} --fault-seed {seed} -k {backend}"


@dataclass(frozen=True, slots=True)
class Reference:
    """The fault-free run's end state, after one more run pulled back what it wrote."""

    settled: EndState
    tasks: int
    records: int
    routes: dict[str, dict[str, int]]  # its requests per server and route (kill points)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Reference:
    """The fault-free reference, computed once per test session and shared by xdist's workers
    through a file (as pytest-xdist's documentation does it): each costs two pipeline runs."""
    if worker_id == "master":
        return _reference(tmp_path_factory.mktemp("reference"))
    shared = tmp_path_factory.getbasetemp().parent
    with (shared / "reference.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = shared / "reference.pickle"
        if cache.exists():
            # Written a moment ago by another worker of this session, in its own temp folder.
            loaded: Reference = pickle.loads(cache.read_bytes())  # noqa: S301
            return loaded
        made = _reference(tmp_path_factory.mktemp("reference"))
        cache.write_bytes(pickle.dumps(made))
        return made


def _reference(folder: Path) -> Reference:
    """One fault-free pipeline run on SQLite, then a second that must write nothing."""
    with stage(folder, f"sqlite:///{folder / 'store.db'}") as s:
        first = s.run_pipeline()
        assert first.ok, f"the fault-free reference run failed: {first.error}"
        routes = {name: getattr(s.box, name).request_counts()["by_route"] for name in SERVERS}
        settled = settle(s, "the fault-free reference")
        sync = first.steps["sync"]
        # A reference with nothing in it would make every comparison pass.
        assert sync["tasks_created"] >= 4 and sync["records_updated"] > 100, sync
        assert settled.count("crm", "hubspot tasks") and settled.count("crm", "salesforce Task")
        return Reference(settled, sync["tasks_created"], sync["records_updated"], routes)


def settle(s: Stage, what: str) -> EndState:
    """One more run, which must succeed and write nothing, then the end state it leaves."""
    before = s.writes()
    again = s.run_pipeline()
    assert again.ok, f"{what}: the run after it failed: {again.error}"
    after = s.writes()
    assert after == before, (
        f"{what}: the run after it wrote to the CRMs ({before} -> {after} write calls): "
        f"{again.steps.get('sync')}"
    )
    end = s.capture()
    assert not end.problems, f"{what}: " + "\n".join(end.problems)
    return end
