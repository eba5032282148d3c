"""`HubSpotTarget` against the fake HubSpot portal: exact call counts, 207s, retries, idempotency.

Every test gets an empty portal (HubSpot's seeded schema, no records) and builds the records it
needs straight into the portal's state, so the request log holds only the target's own calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from smartseg.config import Config, load_config
from smartseg.connectors.errors import ConnectorError, Failure
from smartseg.connectors.http import CallCounter
from smartseg.errors import ConfigError
from smartseg.sandbox.http import FaultRule
from smartseg.sandbox.hubspot import HubSpotServer
from smartseg.sandbox.hubspot.objects import create
from smartseg.sandbox.hubspot.properties import Option
from smartseg.sandbox.hubspot.store import Owner
from smartseg.sync.hubspot_target import PLACEHOLDER_OPTION, HubSpotTarget, write_limiter
from smartseg.sync.targets import FieldSpec, RecordWrite, TaskWrite

UPDATE = "POST /crm/v3/objects/{objectType}/batch/update"
UPSERT = "POST /crm/v3/objects/{objectType}/batch/upsert"
READ = "POST /crm/v3/objects/{objectType}/batch/read"
LINK = "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create"
GET_PROPERTY = "GET /crm/v3/properties/{objectType}/{propertyName}"
LIST_PROPERTIES = "GET /crm/v3/properties/{objectType}"
CREATE_PROPERTY = "POST /crm/v3/properties/{objectType}"
PATCH_PROPERTY = "PATCH /crm/v3/properties/{objectType}/{propertyName}"

TAGS = "smartseg_segments"
MRR = "smartseg_mrr"
ACCOUNT_FIELDS = [
    FieldSpec(TAGS, "tags", "Smartseg segments"),
    FieldSpec(MRR, "number", "Smartseg MRR"),
    FieldSpec("smartseg_renewal", "date", "Smartseg renewal"),
    FieldSpec("smartseg_plan", "text", "Smartseg plan"),
]


def _config(directory: Path, server: HubSpotServer) -> Config:
    """A config with HubSpot as the only source and target, pointed at `server`."""
    (directory / "secrets").mkdir(exist_ok=True)
    (directory / "secrets" / "hubspot").write_text(server.DEFAULT_TOKEN)
    document = {
        "sources": {
            "hubspot": {"base_url": server.url, "access_token": {"file": "secrets/hubspot"},
                        "objects": ["companies", "contacts"]},
            "usage": {"enabled": False},
            "nps": {"enabled": False},
        },
        "targets": {
            "hubspot": {
                "objects": {
                    "company": {"object": "companies", "tags_property": TAGS,
                                "properties": {MRR: "mrr"}},
                    "contact": {"object": "contacts", "tags_property": TAGS},
                },
                "task_key_property": "smartseg_key",
                "rate_limit": {"per_second": 1000},  # pacing has its own test
            }
        },
    }  # fmt: skip
    (directory / "smartseg.yaml").write_text(yaml.safe_dump(document))
    return load_config(directory / "smartseg.yaml", env={})


class Sleeps:
    """A no-op `sleep` that remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def portal() -> Iterator[HubSpotServer]:
    with HubSpotServer() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, portal: HubSpotServer) -> Config:
    return _config(tmp_path, portal)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def target(config: Config, sleeps: Sleeps) -> HubSpotTarget:
    assert config.sources.hubspot is not None and config.targets.hubspot is not None
    return HubSpotTarget(
        config.sources.hubspot, config.targets.hubspot, CallCounter(), sleep=sleeps
    )


@pytest.fixture
def ready(target: HubSpotTarget, portal: HubSpotServer) -> HubSpotTarget:
    """The target with smartseg's company properties and two tag values in place."""
    target.ensure_fields("account", ACCOUNT_FIELDS, create=True)
    target.ensure_tag_values("account", TAGS, ["icp", "expansion"])
    _reset(portal)
    return target


def _reset(server: HubSpotServer) -> None:
    """Empty the request log and the portal's rate-limit windows."""
    requests.delete(f"{server.url}/_sandbox/requests", timeout=10)
    server.reset_limits()


def _routes(server: HubSpotServer) -> dict[str, int]:
    return dict(server.request_counts()["by_route"])


def _records(server: HubSpotServer, object_type: str, n: int, **props: str) -> list[str]:
    """Create `n` records directly in the portal; their ids."""
    state = server.state
    label = "name" if object_type == "companies" else "firstname"
    with state.lock:
        table = state.tables[object_type]
        return [
            str(create(state, table, {"properties": {**props, label: f"{object_type} {i}"}}).id)
            for i in range(n)
        ]


def _props(server: HubSpotServer, object_type: str, record_id: str) -> dict[str, str]:
    return dict(server.state.tables[object_type].records[int(record_id)].props)


def _live_tasks(server: HubSpotServer) -> list[Any]:
    return [r for r in server.state.tables["tasks"].records.values() if r.archived_at is None]


# Updates --------------------------------------------------------------------------------------


def test_updating_1000_records_costs_10_calls_and_every_record_carries_its_value(
    ready: HubSpotTarget, portal: HubSpotServer
) -> None:
    ids = _records(portal, "companies", 1000)
    before = ready.calls()
    writes = [
        RecordWrite(rid, {MRR: float(i) * 1.5, TAGS: "icp;expansion" if i % 2 else "icp"})
        for i, rid in enumerate(ids)
    ]
    outcomes = ready.update("account", writes)
    assert [o.record_id for o in outcomes] == ids
    assert all(o.ok and o.error is None for o in outcomes)
    assert _routes(portal) == {UPDATE: 10}
    assert ready.calls() - before == 10
    for i, rid in enumerate(ids):
        props = _props(portal, "companies", rid)
        assert float(props[MRR]) == i * 1.5
        assert props[TAGS] == ("icp;expansion" if i % 2 else "icp")


def test_a_207_fails_only_the_refused_records_with_hubspots_message(
    ready: HubSpotTarget, portal: HubSpotServer
) -> None:
    ids = _records(portal, "companies", 150)
    writes = [RecordWrite(rid, {TAGS: "icp", MRR: 10.0}) for rid in ids]
    writes[3] = RecordWrite(ids[3], {TAGS: "icp;no_such_segment"})
    writes.append(RecordWrite("20000999999", {TAGS: "icp"}))
    outcomes = {o.record_id: o for o in ready.update("account", writes)}
    assert _routes(portal) == {UPDATE: 2}
    bad_option = outcomes[ids[3]]
    assert not bad_option.ok
    assert bad_option.error is not None
    assert "no_such_segment was not one of the allowed options" in bad_option.error
    missing = outcomes["20000999999"]
    assert not missing.ok and missing.error is not None
    assert "Could not get some COMPANY objects" in missing.error
    good = [rid for rid in ids if rid != ids[3]]
    assert all(outcomes[rid].ok for rid in good)
    assert all(_props(portal, "companies", rid)[TAGS] == "icp" for rid in good)
    assert TAGS not in _props(portal, "companies", ids[3])  # refused inputs change nothing


def test_none_clears_a_property_and_repeated_records_are_merged(
    ready: HubSpotTarget, portal: HubSpotServer
) -> None:
    [rid] = _records(portal, "companies", 1, smartseg_mrr="12")
    outcomes = ready.update(
        "account", [RecordWrite(rid, {MRR: None}), RecordWrite(rid, {TAGS: "expansion"})]
    )
    assert [o.ok for o in outcomes] == [True, True]
    assert _routes(portal) == {UPDATE: 1}
    props = _props(portal, "companies", rid)
    assert MRR not in props and props[TAGS] == "expansion"


def test_a_429_and_a_500_mid_run_are_retried_and_everything_lands_once(
    ready: HubSpotTarget, portal: HubSpotServer, sleeps: Sleeps
) -> None:
    ids = _records(portal, "companies", 1000)
    portal.faults.add(FaultRule("429", method="POST", path=UPDATE.split(" ")[1], after=2,
                                times=1, retry_after=7))  # fmt: skip
    portal.faults.add(FaultRule("500", method="POST", path=UPDATE.split(" ")[1], after=4, times=1))
    before = ready.calls()
    outcomes = ready.update("account", [RecordWrite(rid, {TAGS: "expansion"}) for rid in ids])
    assert all(o.ok for o in outcomes)
    assert _routes(portal) == {UPDATE: 12}  # 10 batches, 2 of them twice
    assert ready.calls() - before == 12
    assert 7 in sleeps.waits  # HubSpot's Retry-After was honoured (through the no-op sleep)
    assert all(_props(portal, "companies", rid)[TAGS] == "expansion" for rid in ids)


def test_a_batch_that_keeps_failing_fails_its_records_without_raising(
    ready: HubSpotTarget, portal: HubSpotServer
) -> None:
    ids = _records(portal, "companies", 120)
    # The second batch (20 records) answers 500 on every attempt.
    portal.faults.add(FaultRule("500", method="POST", path=UPDATE.split(" ")[1], after=1))
    outcomes = ready.update("account", [RecordWrite(rid, {TAGS: "icp"}) for rid in ids])
    assert all(o.ok for o in outcomes[:100])
    failed = outcomes[100:]
    assert len(failed) == 20 and not any(o.ok for o in failed)
    assert all(o.error and "HubSpot answered 500" in o.error for o in failed)
    assert _routes(portal) == {UPDATE: 1 + 6}  # the retry policy's 6 attempts


def test_configuration_problems_raise(ready: HubSpotTarget, portal: HubSpotServer) -> None:
    [rid] = _records(portal, "companies", 1)
    with pytest.raises(ConnectorError, match="no property smartseg_unknown") as unknown:
        ready.update("account", [RecordWrite(rid, {"smartseg_unknown": "x"})])
    assert unknown.value.decision.failure is Failure.CONFIG
    assert "smartseg crm setup" in str(unknown.value)
    portal.token = "pat-revoked"
    with pytest.raises(ConnectorError, match="access token") as refused:
        ready.update("account", [RecordWrite(rid, {TAGS: "icp"})])
    assert refused.value.decision.failure is Failure.CONFIG


def test_writes_keep_to_the_configured_pace(config: Config, portal: HubSpotServer) -> None:
    now = [0.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    assert config.sources.hubspot is not None and config.targets.hubspot is not None
    limiter = write_limiter(2, clock=lambda: now[0], sleep=advance)
    target = HubSpotTarget(
        config.sources.hubspot, config.targets.hubspot, CallCounter(), limiter=limiter
    )
    target.ensure_fields("account", ACCOUNT_FIELDS[1:2], create=True)  # 1 write
    ids = _records(portal, "companies", 1000)
    target.update("account", [RecordWrite(rid, {MRR: 1.0}) for rid in ids])  # 10 writes
    assert now[0] >= 4.5  # 11 writes at 2 per second span at least 5 seconds of windows


# Reading tags -----------------------------------------------------------------------------------


def test_read_tags_reads_100_ids_per_call(ready: HubSpotTarget, portal: HubSpotServer) -> None:
    tagged = _records(portal, "companies", 120, smartseg_segments="icp;expansion")
    plain = _records(portal, "companies", 30)
    tags = ready.read_tags("account", TAGS, [*tagged, *plain, "20000999999"])
    assert _routes(portal) == {READ: 2}
    assert all(tags[rid] == "icp;expansion" for rid in tagged)
    assert all(tags[rid] == "" for rid in plain)
    assert tags["20000999999"] == ""


# Properties -------------------------------------------------------------------------------------


def test_ensure_tag_values_adds_the_missing_ones_in_one_update_and_keeps_hand_added_ones(
    ready: HubSpotTarget, portal: HubSpotServer
) -> None:
    prop = portal.state.schema["companies"][TAGS]
    prop.options.append(Option("VIP (by hand)", "vip", 10))
    added = ready.ensure_tag_values("account", TAGS, ["icp", "vip", "churn_risk", "new_logo"])
    assert added == ["churn_risk", "new_logo"]
    assert _routes(portal) == {GET_PROPERTY: 1, PATCH_PROPERTY: 1}
    labels = {o.value: o.label for o in prop.options}
    assert labels == {PLACEHOLDER_OPTION.value: PLACEHOLDER_OPTION.label, "icp": "icp",
                      "expansion": "expansion", "vip": "VIP (by hand)",
                      "churn_risk": "churn_risk", "new_logo": "new_logo"}  # fmt: skip
    _reset(portal)
    assert ready.ensure_tag_values("account", TAGS, ["icp", "vip", "new_logo"]) == []
    assert _routes(portal) == {GET_PROPERTY: 1}
    assert ready.ensure_tag_values("account", TAGS, []) == []
    assert _routes(portal) == {GET_PROPERTY: 1}


def test_ensure_tag_values_on_a_missing_property_says_to_run_setup(target: HubSpotTarget) -> None:
    with pytest.raises(ConfigError, match="smartseg crm setup"):
        target.ensure_tag_values("contact", TAGS, ["icp"])


def test_ensure_fields_creates_missing_properties_only_when_asked(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    with pytest.raises(ConfigError, match="smartseg crm setup") as missing:
        target.ensure_fields("account", ACCOUNT_FIELDS, create=False)
    assert all(f.name in str(missing.value) for f in ACCOUNT_FIELDS)
    assert TAGS not in portal.state.schema["companies"]
    _reset(portal)
    lines = target.ensure_fields("account", ACCOUNT_FIELDS, create=True)
    assert len(lines) == 4 and all("created" in line for line in lines)
    assert _routes(portal) == {LIST_PROPERTIES: 1, CREATE_PROPERTY: 4}
    schema = portal.state.schema["companies"]
    shapes = {f.name: (schema[f.name].type, schema[f.name].field_type) for f in ACCOUNT_FIELDS}
    assert shapes == {TAGS: ("enumeration", "checkbox"), MRR: ("number", "number"),
                      "smartseg_renewal": ("date", "date"),
                      "smartseg_plan": ("string", "text")}  # fmt: skip
    assert schema[TAGS].group_name == "companyinformation"
    _reset(portal)
    again = target.ensure_fields("account", ACCOUNT_FIELDS, create=False)
    assert all(line.endswith(": exists") for line in again)
    assert _routes(portal) == {LIST_PROPERTIES: 1}
    target.ensure_fields("contact", ACCOUNT_FIELDS[:1], create=True)
    assert portal.state.schema["contacts"][TAGS].group_name == "contactinformation"


def test_ensure_task_key_creates_a_unique_task_property(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    with pytest.raises(ConfigError, match="smartseg_key"):
        target.ensure_task_key(create=False)
    assert target.ensure_task_key(create=True) == ["tasks.smartseg_key: created (string/text)"]
    prop = portal.state.schema["tasks"]["smartseg_key"]
    assert prop.has_unique_value and prop.type == "string"
    assert target.ensure_task_key(create=False) == ["tasks.smartseg_key: exists"]


# Tasks ------------------------------------------------------------------------------------------


def _task(key: str, company: str | None, contact: str | None, **changes: Any) -> TaskWrite:
    values: dict[str, Any] = {
        "key": key, "subject": f"Call about {key}", "body": "Renewal is near.",
        "due": dt.date(2026, 7, 15), "priority": "High", "owner_id": None,
        "account_record_id": company, "contact_record_id": contact,
    }  # fmt: skip
    values.update(changes)
    return TaskWrite(**values)


def test_upserting_tasks_twice_keeps_one_task_per_key_linked_to_company_and_contact(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    target.ensure_task_key(create=True)
    [company] = _records(portal, "companies", 1)
    [contact] = _records(portal, "contacts", 1)
    tasks = [_task("k1", company, contact), _task("k2", company, None), _task("k3", None, None)]
    _reset(portal)
    first = target.upsert_tasks(tasks)
    assert all(o.ok and o.task_id for o in first), first
    assert _routes(portal) == {UPSERT: 1, LINK: 2}  # links: task->company, task->contact
    _reset(portal)
    second = target.upsert_tasks(
        [_task("k1", company, contact, subject="Call again", completed=True, priority="Low"),
         *tasks[1:]]
    )  # fmt: skip
    assert [o.task_id for o in second] == [o.task_id for o in first]
    assert _routes(portal) == {UPSERT: 1}  # nothing new, nothing to link
    live = _live_tasks(portal)
    assert sorted(r.props["smartseg_key"] for r in live) == ["k1", "k2", "k3"]
    k1 = next(r for r in live if r.props["smartseg_key"] == "k1")
    assert k1.props["hs_task_subject"] == "Call again"
    assert k1.props["hs_task_status"] == "COMPLETED"
    assert k1.props["hs_task_priority"] == "LOW"
    assert k1.props["hs_task_type"] == "TODO"
    assert k1.props["hs_timestamp"].startswith("2026-07-15T00:00:00")
    assocs = portal.state.assocs
    assert assocs.of("tasks", k1.id, "companies") == {int(company): [192]}
    assert assocs.of("tasks", k1.id, "contacts") == {int(contact): [204]}
    k2 = next(r for r in live if r.props["smartseg_key"] == "k2")
    assert assocs.of("tasks", k2.id, "companies") == {int(company): [192]}
    assert not assocs.of("tasks", k2.id, "contacts")


def test_a_key_given_twice_in_one_call_is_one_task(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    target.ensure_task_key(create=True)
    outcomes = target.upsert_tasks([_task("dup", None, None), _task("dup", None, None)])
    assert outcomes[0] == outcomes[1] and outcomes[0].ok
    assert len(_live_tasks(portal)) == 1


def test_a_lost_upsert_answer_still_makes_one_linked_task(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    target.ensure_task_key(create=True)
    [company] = _records(portal, "companies", 1)
    # The portal creates the task, then the connection drops halfway through the answer.
    portal.faults.add(FaultRule("drop", method="POST", path=UPSERT.split(" ")[1], times=1))
    [outcome] = target.upsert_tasks([_task("k1", company, None)])
    assert outcome.ok
    [task] = _live_tasks(portal)
    assert str(task.id) == outcome.task_id
    assert portal.state.assocs.of("tasks", task.id, "companies") == {int(company): [192]}


def test_a_refused_task_fails_alone_and_owners_are_written(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    target.ensure_task_key(create=True)
    portal.state.owners[501] = Owner(501, 9501, "rep@example.com", "Rep", "One", False, 0, 0)
    outcomes = target.upsert_tasks(
        [_task("ok", None, None, owner_id="501"), _task("bad", None, None, owner_id="777")]
    )
    assert outcomes[0].ok
    assert not outcomes[1].ok and outcomes[1].error is not None
    assert "777 is not a valid owner id" in outcomes[1].error
    [task] = _live_tasks(portal)
    assert task.props["hubspot_owner_id"] == "501"


def test_a_task_whose_link_fails_reports_it_with_its_id(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    target.ensure_task_key(create=True)
    [company] = _records(portal, "companies", 1)
    outcomes = target.upsert_tasks([_task("k1", company, None), _task("k2", "20000999999", None)])
    assert outcomes[0].ok
    assert not outcomes[1].ok and outcomes[1].task_id is not None
    assert outcomes[1].error is not None
    assert "linking it to companies 20000999999 failed" in outcomes[1].error
    assert len(_live_tasks(portal)) == 2


def test_a_retried_task_whose_link_failed_is_linked_on_the_next_run(
    target: HubSpotTarget, portal: HubSpotServer
) -> None:
    target.ensure_task_key(create=True)
    [company] = _records(portal, "companies", 1)
    # Every attempt of the first run's link call fails: the task is saved, unlinked.
    portal.faults.add(FaultRule("500", method="POST", path=LINK.split(" ")[1], times=10))
    [failed] = target.upsert_tasks([_task("k1", company, None)])
    assert not failed.ok and failed.task_id is not None
    assert failed.error is not None and "linking it to companies" in failed.error
    [task] = _live_tasks(portal)
    assert not portal.state.assocs.of("tasks", task.id, "companies")
    portal.faults.clear()
    # The ledger marks the retry; the upsert finds the task and links it this time.
    [outcome] = target.upsert_tasks([_task("k1", company, None, retry=True)])
    assert outcome.ok and outcome.task_id == failed.task_id
    assert len(_live_tasks(portal)) == 1
    assert portal.state.assocs.of("tasks", task.id, "companies") == {int(company): [192]}
