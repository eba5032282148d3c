"""Sync write calls against the batch lower bound, and a second sync with nothing changed.

A pulled sandbox world gets two segments that hold every account and every contact, so a
first sync changes every CRM record smartseg can reach: the world's size sets how many records
change. The bench counts the requests the sandbox served per route and sets the record writes
against the fewest the APIs allow for that many records: ⌈n/200⌉ sObject Collections calls on
Salesforce (above `bulk_threshold` one Bulk API 2.0 job, at least create, upload, close and one
status read), ⌈n/100⌉ batch updates on HubSpot. A second sync right after must make no call.

The sync runs with the shipped client-side rate limits (HubSpot 90 requests per 10 seconds),
so its time is what a user waits, pacing included.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.logs import log
from bench.pull import NOW, PulledWorld
from bench.sandbox_process import REPO, requests_between
from smartseg.config import load_config
from smartseg.segmenter.evaluate import evaluate
from smartseg.segmenter.rules import load_rules
from smartseg.sync.plan import SyncPlan, plan_sync
from smartseg.sync.run import execute
from smartseg.worker.sync_commands import build_targets, crm_setup_targets

__all__ = ["RECORDS_PER_ACCOUNT", "SyncFigures", "measure_sync"]

EVERYONE = """segments:
  - {key: bench_every_account, name: Every account, when: "name is not null"}
  - {key: bench_every_contact, name: Every contact, level: contact, when: "email is not null"}
"""
# CRM records a sync changes per sandbox account with the segments above (both CRMs, accounts
# and contacts), measured on the sandbox's generator; it sizes the world for a target count.
RECORDS_PER_ACCOUNT = 11.0
BATCH = {"salesforce": 200, "hubspot": 100}
BULK_JOB_CALLS = 4  # create, upload, close, one status read
_RECORD_WRITES = {
    "salesforce": (
        "PATCH /services/data/{version}/composite/sobjects",
        "/jobs/ingest",  # every request of a Bulk API 2.0 ingest job
    ),
    "hubspot": ("POST /crm/v3/objects/{objectType}/batch/update",),
}


@dataclass(slots=True)
class SyncFigures:
    """One first sync of a world (everything changed) and a second one (nothing changed)."""

    accounts: int
    changed: dict[str, int]  # records the first sync changed, per CRM
    writes: dict[str, int]  # record-write requests, per CRM
    lower_bound: dict[str, int]  # the fewest record-write requests for those records
    requests: dict[str, dict[str, int]]  # every request of the first sync, per CRM and route
    seconds: float
    unchanged_requests: int  # every request of the second sync
    unchanged_seconds: float

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "changed_records": self.changed,
            "record_writes": self.writes,
            "lower_bound": self.lower_bound,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "unchanged": {
                "requests": self.unchanged_requests,
                "seconds": round(self.unchanged_seconds, 2),
            },
        }


def accounts_for(records: int) -> int:
    """The sandbox accounts whose first sync changes about `records` records."""
    return max(1, round(records / RECORDS_PER_ACCOUNT))


def _sync_config(world: PulledWorld, directory: Path) -> Path:
    """The world's config with the two segments above, no playbooks and the shipped HubSpot
    rate limit (the pull ran uncapped)."""
    (directory / "segments").mkdir(parents=True, exist_ok=True)
    (directory / "segments" / "everyone.yaml").write_text(EVERYONE)
    (directory / "playbooks").mkdir(exist_ok=True)
    document = yaml.safe_load(world.config_path.read_text())
    shipped = yaml.safe_load((REPO / "config" / "smartseg.yaml").read_text())
    document["sources"]["hubspot"]["rate_limit"] = shipped["sources"]["hubspot"]["rate_limit"]
    document["segments_dir"] = str(directory / "segments")
    document["playbooks_dir"] = str(directory / "playbooks")
    path = world.config_path.with_name("sync.yaml")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def measure_sync(world: PulledWorld, directory: Path) -> SyncFigures:
    """Evaluate the two segments, create the CRM fields, then sync twice."""
    config = load_config(_sync_config(world, directory), env={})
    rules = load_rules(config.segments_dir)
    evaluate(world.engine, rules, as_of=NOW)
    crm_setup_targets(config, rules, build_targets(config))
    log(f"sync: first sync of the {world.accounts:,}-account world")
    before = world.box.requests()
    started = time.perf_counter()
    plan = plan_sync(world.engine, config, rules, [], now=NOW)
    result = execute(world.engine, plan, build_targets(config), now=NOW)
    seconds = time.perf_counter() - started
    made = requests_between(before, world.box.requests())
    if result.failed:
        raise RuntimeError(f"the sync failed for {result.failed} records: {result.failures[:3]}")
    log("sync: again, nothing changed")
    before = world.box.requests()
    started = time.perf_counter()
    again = plan_sync(world.engine, config, rules, [], now=NOW + dt.timedelta(minutes=1))
    execute(world.engine, again, build_targets(config), now=NOW + dt.timedelta(minutes=1))
    unchanged_seconds = time.perf_counter() - started
    unchanged = requests_between(before, world.box.requests())
    crms = ("salesforce", "hubspot")
    return SyncFigures(
        world.accounts,
        {t: sum(len(plan.records_for(t, o.level)) for o in _objects(plan, t)) for t in crms},
        {t: _writes(t, made.get(t, {})) for t in crms},
        {t: _lower_bound(plan, t, config.targets) for t in crms},
        {t: made.get(t, {}) for t in crms},
        seconds,
        sum(sum(routes.values()) for routes in unchanged.values()),
        unchanged_seconds,
    )


def _objects(plan: SyncPlan, target: str) -> list[Any]:
    return [o for o in plan.objects if o.target == target]


def _writes(target: str, routes: dict[str, int]) -> int:
    return sum(n for route, n in routes.items() if any(w in route for w in _RECORD_WRITES[target]))


def _lower_bound(plan: SyncPlan, target: str, targets: Any) -> int:
    """The fewest record-write requests the API allows for the plan's records."""
    bound = 0
    for obj in _objects(plan, target):
        n = len(plan.records_for(target, obj.level))
        if target == "salesforce" and n > targets.salesforce.bulk_threshold:
            bound += BULK_JOB_CALLS  # one job: these uploads are far below its 100 MB
        else:
            bound += math.ceil(n / BATCH[target])
    return bound
