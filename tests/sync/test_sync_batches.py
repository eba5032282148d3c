"""A sync of more than 1,000 changed records costs exactly the batch lower bound in write calls
(ceil(n/200) on Salesforce, ceil(n/100) on HubSpot), plus at most two schema calls per CRM."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import pytest

from smartseg.config import load_config
from smartseg.connectors.pull import run_pull
from smartseg.sandbox.app import Sandbox
from smartseg.segmenter.evaluate import evaluate
from smartseg.segmenter.rules import load_rules
from smartseg.store import make_engine, upgrade
from smartseg.sync.plan import object_targets, plan_sync
from smartseg.sync.run import execute
from smartseg.worker.sandbox_config import write_sandbox_config
from smartseg.worker.sync_commands import build_targets

NOW = dt.datetime(2026, 6, 30, 7, 0, tzinfo=dt.UTC)
RULES = """segments:
  - {key: every_account, name: Every account, when: "name is not null"}
  - {key: every_contact, name: Every contact, level: contact, when: "email is not null"}
"""
SF_WRITES = ("PATCH /services/data/{version}/composite/sobjects",)
SF_SCHEMA = (
    "PATCH /services/data/{version}/tooling/sobjects/CustomField/{id}",
    "POST /services/data/{version}/tooling/sobjects/CustomField",
)
HS_WRITES = ("POST /crm/v3/objects/{objectType}/batch/update",)
HS_SCHEMA = (
    "PATCH /crm/v3/properties/{objectType}/{propertyName}",
    "POST /crm/v3/properties/{objectType}",
)


def _count(counts: dict[str, int], routes: tuple[str, ...]) -> int:
    return sum(counts.get(r, 0) for r in routes)


@pytest.mark.timeout(600)
def test_write_calls_for_over_1000_changed_records_are_the_batch_lower_bound(
    tmp_path: Path,
) -> None:
    box = Sandbox(
        salesforce_port=0,
        hubspot_port=0,
        stripe_port=0,
        accounts=230,
        seed=17,
        anchor=NOW.date(),
        data_dir=tmp_path / "data",
    )
    with box:
        path = write_sandbox_config(tmp_path / "config", box.info())
        shutil.rmtree(tmp_path / "config" / "playbooks")
        shutil.rmtree(tmp_path / "config" / "segments")
        (tmp_path / "config" / "segments").mkdir()
        (tmp_path / "config" / "segments" / "all.yaml").write_text(RULES)
        config = load_config(path, env={})
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        upgrade(engine)
        run_pull(engine, config, clock=lambda: NOW, sleep=lambda s: None)
        rules = load_rules(config.segments_dir)
        evaluate(engine, rules, as_of=NOW)
        # Fields exist; the segment values do not: the sync adds them (the schema calls).
        assert box.salesforce and box.hubspot
        setup = build_targets(config, sleep=lambda s: None)
        for obj in object_targets(config, rules):
            setup[obj.target].ensure_fields(obj.level, obj.field_specs(), create=True)  # type: ignore[arg-type]
        for target in setup.values():
            target.ensure_task_key(create=True)
            target.ensure_access()  # created fields are hidden from the API user until granted
        sf_before = dict(box.salesforce.request_counts()["by_route"])
        hs_before = dict(box.hubspot.request_counts()["by_route"])
        plan = plan_sync(engine, config, rules, [], now=NOW)
        changed = {
            t: len([r for r in plan.records if r.target == t]) for t in ("salesforce", "hubspot")
        }
        assert changed["salesforce"] >= 1000 and changed["hubspot"] >= 1000
        result = execute(engine, plan, build_targets(config, sleep=lambda s: None), now=NOW)
        assert result.failed == 0
        sf = {
            k: v - sf_before.get(k, 0)
            for k, v in box.salesforce.request_counts()["by_route"].items()
        }
        hs = {
            k: v - hs_before.get(k, 0) for k, v in box.hubspot.request_counts()["by_route"].items()
        }
        sf_bound = sum(
            math.ceil(len(plan.records_for("salesforce", lvl)) / 200)
            for lvl in ("account", "contact")
        )
        hs_bound = sum(
            math.ceil(len(plan.records_for("hubspot", lvl)) / 100) for lvl in ("account", "contact")
        )
        assert _count(sf, SF_WRITES) == sf_bound
        assert _count(hs, HS_WRITES) == hs_bound
        # One schema update per tags field, adding the new segment values.
        assert _count(sf, SF_SCHEMA) <= 2 and _count(hs, HS_SCHEMA) <= 2
        engine.dispose()
