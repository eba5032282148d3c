"""`smartseg demo`: the whole product on one machine in one command.

Starts the sandbox in-process on free ports, writes the shipped config pointed at it, and runs
the pipeline on a fresh SQLite file: pull from all three APIs and the usage and NPS files,
evaluate every shipped segment, create the CRM fields, write tags and playbook tasks to both
CRMs. Then it prints what happened, with the API calls and the time each step took.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from smartseg.config import load_config
from smartseg.connectors.pull import run_pull
from smartseg.sandbox.app import Sandbox
from smartseg.segmenter.evaluate import evaluate
from smartseg.store import make_engine, upgrade
from smartseg.sync.plan import plan_sync
from smartseg.sync.playbooks import load_playbooks
from smartseg.sync.run import execute
from smartseg.worker.sandbox_config import write_sandbox_config
from smartseg.worker.segments import rules_for
from smartseg.worker.sync_commands import build_targets, crm_setup_targets

__all__ = ["DemoSummary", "print_summary", "run_demo"]


@dataclass(slots=True)
class DemoSummary:
    directory: str
    accounts: int
    seconds: dict[str, float] = field(default_factory=dict)
    pulled: dict[str, int] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    tags_written: int = 0
    tasks_created: int = 0
    failed: int = 0
    pull_calls: dict[str, int] = field(default_factory=dict)
    sync_calls: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "accounts": self.accounts,
            "records_pulled": self.pulled,
            "segments": self.segments,
            "tags_written": self.tags_written,
            "tasks_created": self.tasks_created,
            "failed": self.failed,
            "api_calls": {"pull": self.pull_calls, "sync": self.sync_calls},
            "seconds": self.seconds,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def _step(summary: DemoSummary, name: str, console: Console | None) -> Iterator[None]:
    started = time.perf_counter()
    if console is not None:
        with console.status(f"{name}..."):
            yield
    else:
        yield
    summary.seconds[name] = round(time.perf_counter() - started, 2)
    if console is not None:
        console.print(f"[green]done[/] {name} ({summary.seconds[name]:.1f}s)")


def run_demo(directory: Path, *, accounts: int = 200, progress: bool = True) -> DemoSummary:
    """Run the demo in `directory` (recreated: a fresh sandbox needs a fresh store)."""
    console = Console(stderr=True) if progress and sys.stderr.isatty() else None
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "demo.db"
    for stale in (database, directory / "demo.db-wal", directory / "demo.db-shm"):
        stale.unlink(missing_ok=True)
    summary = DemoSummary(str(directory), accounts)
    started = time.perf_counter()
    box = Sandbox(
        salesforce_port=0,
        hubspot_port=0,
        stripe_port=0,
        accounts=accounts,
        data_dir=directory / "sandbox-data",
    )
    with _step(summary, "start the sandbox", console):
        box.start()
    try:
        path = write_sandbox_config(
            directory / "config", box.info(), database_url=f"sqlite:///{database}"
        )
        config = load_config(path, env={})
        engine = make_engine(config.database_url)
        upgrade(engine)
        with _step(summary, "pull", console):
            pulled = run_pull(engine, config, clock=_now)
        for key, report in pulled.streams.items():
            source = key.split(".", 1)[0]
            summary.pulled[source] = summary.pulled.get(source, 0) + report.records
            summary.pull_calls[source] = summary.pull_calls.get(source, 0) + report.api_calls
        rules = rules_for(config)
        with _step(summary, "evaluate", console):
            result = evaluate(engine, rules, as_of=_now(), tz=config.tz)
        summary.segments = {k: r.members for k, r in result.segments.items()}
        targets = build_targets(config)
        with _step(summary, "crm setup", console):
            crm_setup_targets(config, rules, targets)
        with _step(summary, "sync", console):
            playbooks = load_playbooks(config.playbooks_dir, rules)
            now = _now()
            plan = plan_sync(engine, config, rules, playbooks, now=now)
            synced = execute(engine, plan, targets, now=now)
        summary.tags_written = synced.records_updated
        summary.tasks_created = synced.tasks_created
        summary.failed = synced.failed
        summary.sync_calls = {name: target.calls() for name, target in targets.items()}
        engine.dispose()
    finally:
        box.stop()
    summary.seconds["total"] = round(time.perf_counter() - started, 2)
    return summary


def print_summary(summary: DemoSummary) -> None:
    console = Console()
    console.print(f"\nsmartseg demo: {summary.accounts} synthetic accounts, in {summary.directory}")
    pulled = Table("source", "records pulled", "API calls", box=None)
    for source, records in summary.pulled.items():
        pulled.add_row(source, f"{records:,}", str(summary.pull_calls.get(source, "-")))
    console.print(pulled)
    sizes = sorted(summary.segments.items(), key=lambda kv: -kv[1])
    filled = sum(1 for _, n in sizes if n)
    console.print(f"\n{len(sizes)} segments evaluated, {filled} with members. Largest:")
    table = Table("segment", "members", box=None)
    for key, members in sizes[:10]:
        table.add_row(key, f"{members:,}")
    console.print(table)
    writes = ", ".join(f"{k} {v}" for k, v in summary.sync_calls.items())
    console.print(
        f"\nCRM records tagged: {summary.tags_written:,}; tasks created: "
        f"{summary.tasks_created:,}; failed: {summary.failed}. API calls to write it all back "
        f"(field setup included): {writes}."
    )
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items())
    console.print(f"Time: {steps}.")
    console.print(
        "\nLook around: smartseg --config "
        f"{summary.directory}/config/smartseg.yaml segments list | segments preview KEY | "
        "segments explain KEY ID | status"
    )
