"""pull -> evaluate -> sync against the whole sandbox: every member's CRM record carries its
tags, every playbook task exists once, a second sync writes nothing, crashes at any step and
API failures are repaired by the next run, and hand-added tag values survive."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors.pull import run_pull
from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.generator import ARCHETYPE_KEYS
from smartseg.sandbox.http import FaultRule
from smartseg.segmenter.evaluate import evaluate
from smartseg.segmenter.rules import RuleSet, load_rules
from smartseg.store import make_engine, upgrade
from smartseg.sync import run as sync_run
from smartseg.sync.plan import plan_sync
from smartseg.sync.playbooks import load_playbooks
from smartseg.sync.run import SyncResult, execute
from smartseg.sync.targets import split_tags
from smartseg.worker.sandbox_config import write_sandbox_config
from smartseg.worker.sync_commands import build_targets, crm_setup_targets

ANCHOR = dt.date(2026, 6, 30)
NOW = dt.datetime(2026, 6, 30, 7, 0, tzinfo=dt.UTC)
ACCOUNTS = len(ARCHETYPE_KEYS) + 5
SF_WRITES = (
    "PATCH /services/data/{version}/composite/sobjects",
    "PATCH /services/data/{version}/composite/sobjects/{sobject}/{field}",
)
HS_WRITES = (
    "POST /crm/v3/objects/{objectType}/batch/update",
    "POST /crm/v3/objects/{objectType}/batch/upsert",
)


def _box(data: Path) -> Sandbox:
    return Sandbox(
        salesforce_port=0,
        hubspot_port=0,
        stripe_port=0,
        accounts=ACCOUNTS,
        seed=13,
        anchor=ANCHOR,
        data_dir=data,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store pulled from the sandbox and evaluated once; each test copies it."""
    folder = tmp_path_factory.mktemp("template")
    with _box(folder / "data") as box:
        config = load_config(write_sandbox_config(folder / "config", box.info()), env={})
        engine = make_engine(f"sqlite:///{folder / 'store.db'}")
        upgrade(engine)
        run_pull(engine, config, clock=lambda: NOW, sleep=lambda s: None)
        evaluate(engine, load_rules(config.segments_dir), as_of=NOW)
        engine.dispose()
    return folder / "store.db"


@dataclass
class Env:
    box: Sandbox
    config: Config
    engine: Engine
    rules: RuleSet

    def sync(self, *, dry_run: bool = False) -> SyncResult:
        playbooks = load_playbooks(self.config.playbooks_dir, self.rules)
        plan = plan_sync(self.engine, self.config, self.rules, playbooks, now=NOW)
        targets = build_targets(self.config, sleep=lambda s: None)
        return execute(self.engine, plan, targets, now=NOW, dry_run=dry_run)

    def writes(self) -> dict[str, int]:
        assert self.box.salesforce and self.box.hubspot
        sf = self.box.salesforce.request_counts()["by_route"]
        hs = self.box.hubspot.request_counts()["by_route"]
        return {
            "salesforce": sum(sf.get(r, 0) for r in SF_WRITES),
            "hubspot": sum(hs.get(r, 0) for r in HS_WRITES),
        }

    def sf_records(self, sobject: str) -> list[dict[str, Any]]:
        assert self.box.salesforce is not None
        with self.box.salesforce.store.lock:
            table = self.box.salesforce.store.tables[sobject]
            return [dict(r) for r in table.values()]

    def hs_records(self, object_type: str) -> dict[int, dict[str, Any]]:
        assert self.box.hubspot is not None
        table = self.box.hubspot.state.tables[object_type]
        return {i: dict(r.props) for i, r in table.records.items() if r.archived_at is None}

    def query(self, sql: str) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.text(sql)))


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    with _box(tmp_path / "data") as box:
        config = load_config(write_sandbox_config(tmp_path / "config", box.info()), env={})
        shutil.copy(template, tmp_path / "store.db")
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        rules = load_rules(config.segments_dir)
        crm_setup_targets(config, rules, build_targets(config, sleep=lambda s: None))
        yield Env(box, config, engine, rules)
        engine.dispose()


def _expected_tags(env: Env, level: str, target: str) -> dict[str, set[str]]:
    """CRM record id -> the segment keys its entity is in (from the store)."""
    if target == "salesforce":
        table = "account" if level == "account" else "contact"
        ids = {
            r[0]: r[1].split(":", 1)[1]
            for r in env.query(
                f"SELECT id, external_key FROM {table} WHERE external_key LIKE 'salesforce:%'"
            )
        }
    else:
        column = "account_id" if level == "account" else "contact_id"
        obj = "company" if level == "account" else "contact"
        ids = {
            r[0]: r[1]
            for r in env.query(
                f"SELECT {column}, source_id FROM source_link WHERE source = 'hubspot' "
                f"AND object = '{obj}' AND {column} IS NOT NULL"
            )
        }
    out: dict[str, set[str]] = {record: set() for record in ids.values()}
    for entity, key in env.query(
        f"SELECT entity_id, segment_key FROM membership WHERE exited_at IS NULL "
        f"AND entity_type = '{level}'"
    ):
        if entity in ids:
            out[ids[entity]].add(key)
    return out


def test_sync_writes_every_members_tags_and_each_task_once(env: Env) -> None:
    first = env.sync()
    assert first.failed == 0 and first.records_updated > 0 and first.tasks_created > 0
    sf_accounts = {
        r["Id"]: set(split_tags(r.get("Smartseg_Segments__c"))) for r in env.sf_records("Account")
    }
    for record, keys in _expected_tags(env, "account", "salesforce").items():
        assert sf_accounts[record] == keys, record
    sf_contacts = {
        r["Id"]: set(split_tags(r.get("Smartseg_Segments__c"))) for r in env.sf_records("Contact")
    }
    for record, keys in _expected_tags(env, "contact", "salesforce").items():
        assert sf_contacts[record] == keys, record
    companies = env.hs_records("companies")
    for record, keys in _expected_tags(env, "account", "hubspot").items():
        assert set(split_tags(companies[int(record)].get("smartseg_segments"))) == keys, record
    # Every playbook task exists once, in each CRM the playbook names.
    sf_keys = Counter(t.get("Smartseg_Key__c") for t in env.sf_records("Task"))
    hs_keys = Counter(t.get("smartseg_key") for t in env.hs_records("tasks").values())
    ledger = env.query("SELECT target, marker FROM task_ledger WHERE state = 'created'")
    assert ledger and len(ledger) == first.tasks_created
    for target, key in ledger:
        assert (sf_keys if target == "salesforce" else hs_keys)[key] == 1
    before = env.writes()
    second = env.sync()
    assert (second.records_updated, second.tasks_created, second.failed) == (0, 0, 0)
    assert env.writes() == before


def test_dry_run_prints_the_plan_and_writes_nothing(env: Env) -> None:
    before = env.writes()
    planned = env.sync(dry_run=True)
    assert env.writes() == before
    assert env.query("SELECT count(*) FROM task_ledger")[0][0] == 0
    real = env.sync()
    assert (planned.records_updated, planned.tasks_created) == (
        real.records_updated,
        real.tasks_created,
    )
    assert planned.api_calls["salesforce"] >= real.api_calls["salesforce"] - 2


@pytest.mark.parametrize("step", ["before_call", "after_call", "after_records"])
def test_a_crash_at_any_step_then_a_rerun_leaves_one_task_per_episode(
    env: Env, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Killed(BaseException):
        """Stands for the process dying: nothing after it runs."""

    if step == "after_records":
        monkeypatch.setattr(sync_run, "_tasks", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    else:
        from smartseg.sync.salesforce_target import SalesforceTarget

        real = SalesforceTarget.upsert_tasks

        def crashing(self: SalesforceTarget, tasks: Any) -> Any:
            if step == "after_call":
                real(self, tasks)
            raise Killed()

        monkeypatch.setattr(SalesforceTarget, "upsert_tasks", crashing)
    with pytest.raises(Killed):
        env.sync()
    monkeypatch.undo()
    rerun = env.sync()
    assert rerun.failed == 0
    sf_keys = Counter(
        t.get("Smartseg_Key__c") for t in env.sf_records("Task") if t.get("Smartseg_Key__c")
    )
    ledger = env.query("SELECT marker, state FROM task_ledger WHERE target = 'salesforce'")
    assert {state for _, state in ledger} == {"created"}
    assert set(sf_keys) == {m for m, _ in ledger}
    assert set(sf_keys.values()) == {1}
    third = env.sync()
    assert (third.tasks_created, third.records_updated) == (0, 0)


def test_failed_records_are_reported_and_retried_next_run_nothing_else_touched(env: Env) -> None:
    assert env.box.salesforce and env.box.hubspot
    env.box.salesforce.faults.add(FaultRule("partial", path="*composite/sobjects", probability=0.2))
    env.box.salesforce.faults.add(
        FaultRule("429", path="*composite/sobjects", times=1, retry_after=0.01)
    )
    env.box.salesforce.faults.add(FaultRule("expire", path="*composite/sobjects", after=1, times=1))
    env.box.hubspot.faults.add(FaultRule("partial", path="*batch/update", probability=0.2))
    env.box.hubspot.faults.add(FaultRule("500", path="*batch/update", times=1))
    first = env.sync()
    assert first.failed > 0
    failing = env.query("SELECT target, record_id FROM pushed WHERE last_error IS NOT NULL")
    assert failing and len(failing) <= first.failed * 3
    env.box.salesforce.faults.clear()
    env.box.hubspot.faults.clear()
    second = env.sync()
    assert second.failed == 0
    # Only the failed records (and tasks) are sent again.
    assert 0 < second.records_updated <= len({r for r in failing})
    assert env.query("SELECT count(*) FROM pushed WHERE last_error IS NOT NULL")[0][0] == 0
    for record, keys in _expected_tags(env, "account", "salesforce").items():
        found = {r["Id"]: r for r in env.sf_records("Account")}[record]
        assert set(split_tags(found.get("Smartseg_Segments__c"))) == keys


def test_a_value_added_by_hand_survives(env: Env) -> None:
    env.sync()
    assert env.box.salesforce is not None
    # An admin adds a value of their own to the picklist and a CSM ticks it on one account.
    admin = build_targets(env.config, sleep=lambda s: None)["salesforce"]
    admin.ensure_tag_values("account", "Smartseg_Segments__c", ["vip_by_hand"])
    record = next(r for r in env.sf_records("Account") if r.get("Smartseg_Segments__c"))
    with env.box.salesforce.store.lock:
        stored = env.box.salesforce.store.tables["Account"][record["Id"]]
        stored["Smartseg_Segments__c"] = stored["Smartseg_Segments__c"] + ";vip_by_hand"
    entity = env.query(f"SELECT id FROM account WHERE external_key = 'salesforce:{record['Id']}'")[
        0
    ][0]
    # The account leaves one of its segments: smartseg rewrites the field.
    key = env.query(
        f"SELECT segment_key FROM membership WHERE entity_type = 'account' AND "
        f"entity_id = {entity} AND exited_at IS NULL LIMIT 1"
    )[0][0]
    with env.engine.begin() as connection:
        connection.execute(
            sa.text(
                f"UPDATE membership SET exited_at = '2026-06-30 07:00:00.000000' WHERE entity_id = "
                f"{entity} AND segment_key = '{key}' AND entity_type = 'account'"
            )
        )
    result = env.sync()
    assert result.records_updated >= 1 and result.failed == 0
    values = set(
        split_tags(
            next(r for r in env.sf_records("Account") if r["Id"] == record["Id"])[
                "Smartseg_Segments__c"
            ]
        )
    )
    assert "vip_by_hand" in values and key not in values


def test_write_calls_equal_the_batch_lower_bound(env: Env) -> None:
    """Every changed record costs its share of a full batch; schema calls at most two."""
    playbooks_dir = env.config.playbooks_dir
    for path in playbooks_dir.glob("*.yaml"):
        path.unlink()  # tasks are counted elsewhere; here only record writes
    result = env.sync()
    plan = result.plan
    assert plan is not None
    for target, size, routes in (("salesforce", 200, SF_WRITES), ("hubspot", 100, HS_WRITES)):
        expected = sum(
            math.ceil(len(plan.records_for(target, level)) / size)
            for level in ("account", "contact")
        )
        assert env.writes()[target] == expected, target
        del routes


def test_cli_sync_dry_run_then_real_run_report_as_json(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from smartseg.worker.cli import main

    url = env.engine.url.render_as_string(hide_password=False)
    path = write_sandbox_config(tmp_path / "cli", env.box.info(), database_url=url)
    assert main(["--config", str(path), "crm", "setup"]) == 0
    assert "salesforce:" in capsys.readouterr().out
    assert main(["--config", str(path), "sync", "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] is True and planned["records_updated"] > 0
    assert set(planned["api_calls"]) == {"salesforce", "hubspot"}
    assert main(["--config", str(path), "sync", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert {k: done[k] for k in ("records_updated", "tasks_created", "failed")} == {
        "records_updated": planned["records_updated"],
        "tasks_created": planned["tasks_created"],
        "failed": 0,
    }
    assert done["api_calls"]["salesforce"] > 0
    assert main(["--config", str(path), "sync", "--dry-run"]) == 0
    assert "Dry run: 0 record updates, 0 tasks to create" in capsys.readouterr().out


def test_leaving_closes_the_task_and_reentry_is_limited(env: Env) -> None:
    first = env.sync()
    assert first.tasks_created > 0
    (membership, entity, key), *_ = env.query(
        "SELECT membership_id, entity_id, marker FROM task_ledger WHERE target = 'salesforce' "
        "AND playbook_key = 'a02_demo_before_renewal' AND state = 'created'"
    )
    task = next(t for t in env.sf_records("Task") if t.get("Smartseg_Key__c") == key)
    csm, subject = env.query(f"SELECT csm_id, name FROM account WHERE id = {entity}")[0]
    assert task["OwnerId"] == csm and subject in task["Subject"]
    assert task["Status"] == "Not Started" and "smartseg key: " + key in task["Description"]
    assert "Why:" in task["Description"] and task["Priority"] == "High"
    # The account leaves the segment: its open task is closed, its comments kept.
    with env.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE membership SET exited_at = '2026-06-30 07:00:00.000000' WHERE id = :m"),
            {"m": membership},
        )
    closing = env.sync()
    assert closing.tasks_closed >= 1 and closing.failed == 0
    task = next(t for t in env.sf_records("Task") if t.get("Smartseg_Key__c") == key)
    assert task["Status"] == "Completed" and "smartseg key: " + key in task["Description"]
    # It comes back within 90 days: the playbook allows one task per 90 days, so none now.
    with env.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO membership (segment_key, entity_type, entity_id, entered_at, "
                "\"values\") VALUES ('a02_high_value_renewal_without_gold_features', 'account', "
                ":e, '2026-06-30 07:00:00.000000', '{}')"
            ),
            {"e": entity},
        )
    again = env.sync()
    assert again.failed == 0
    states = env.query(
        f"SELECT state FROM task_ledger WHERE entity_id = {entity} AND target = 'salesforce' "
        "AND playbook_key = 'a02_demo_before_renewal' ORDER BY id"
    )
    assert [s for (s,) in states] == ["closed", "suppressed"]
    tasks = [
        t
        for t in env.sf_records("Task")
        if t.get("WhatId") == task["WhatId"]
        and str(t.get("Subject", "")).startswith("Demo advanced reports")
    ]
    assert len(tasks) == 1
