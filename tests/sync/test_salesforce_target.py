"""SalesforceTarget against the sandbox org, through the real simple-salesforce: the calls each
operation costs (counted by the server), per-record outcomes, retries and re-signing, the
Tooling API field and picklist setup, idempotent task upserts and the Bulk API 2.0 path."""

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
from smartseg.sandbox import credentials
from smartseg.sandbox.generator import generate
from smartseg.sandbox.http import FaultRule, TlsFiles, make_tls
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.sandbox.world import World
from smartseg.sync.salesforce_target import RateLimiter, SalesforceTarget, is_salesforce_id
from smartseg.sync.targets import FieldSpec, RecordWrite, TaskWrite

ANCHOR = dt.date(2026, 6, 30)
REPO_CONFIG = Path(__file__).parents[2] / "config" / "smartseg.yaml"
TAGS = "Smartseg_Segments__c"
MRR = "Smartseg_MRR__c"
KEY = "Smartseg_Key__c"
API = "/services/data/{version}"
COLLECTION = f"PATCH {API}/composite/sobjects"
TASK_UPSERT = f"PATCH {API}/composite/sobjects/{{sobject}}/{{field}}"
FIELDS = [FieldSpec(TAGS, "tags", "Smartseg Segments"), FieldSpec(MRR, "number", "Smartseg MRR")]


# Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    """Over a thousand live Accounts, so one update can take 1,000 of them."""
    return generate(seed=3, accounts=1150, anchor=ANCHOR)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(world: World, tls: TlsFiles) -> Iterator[SalesforceServer]:
    """A fresh org per test: tests write to it and fault it."""
    with SalesforceServer(world, tls=tls) as org:
        yield org  # type: ignore[misc]


def load(directory: Path, server: SalesforceServer, **target: Any) -> Config:
    """The shipped Salesforce source pointed at `server`, and a Salesforce target."""
    shipped = yaml.safe_load(REPO_CONFIG.read_text())
    section = dict(shipped["sources"]["salesforce"])
    assert server.tls is not None
    section.update(instance_url=server.url, login_url=server.url, ca_file=str(server.tls.ca_file))
    section["auth"] = {"flow": "client_credentials", "client_id": credentials.SALESFORCE_CLIENT_ID,
                       "client_secret": {"file": "secrets/sf"}}  # fmt: skip
    (directory / "secrets").mkdir(exist_ok=True)
    (directory / "secrets" / "sf").write_text(credentials.SALESFORCE_CLIENT_SECRET)
    salesforce = {
        "objects": {
            "account": {"object": "Account", "tags_field": TAGS, "fields": {MRR: "mrr"}},
            "contact": {"object": "Contact", "tags_field": TAGS},
        },
        "task_key_field": KEY,
        "rate_limit": {"per_second": 1000},
        **target,
    }
    document = {"sources": {"salesforce": section}, "targets": {"salesforce": salesforce}}
    path = directory / "smartseg.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_config(path, env={})


class Sleeps:
    """A sleep that only moves its own clock forward, and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make_target(
    directory: Path, server: SalesforceServer, sleep: Sleeps | None = None, **target: Any
) -> SalesforceTarget:
    config = load(directory, server, **target)
    assert config.sources.salesforce is not None and config.targets.salesforce is not None
    sleep = sleep or Sleeps()
    return SalesforceTarget(
        config.sources.salesforce,
        config.targets.salesforce,
        CallCounter(),
        sleep=sleep,
        clock=sleep.clock,
    )


@pytest.fixture
def target(tmp_path: Path, server: SalesforceServer) -> SalesforceTarget:
    return make_target(tmp_path, server)


@pytest.fixture
def ready(target: SalesforceTarget, server: SalesforceServer) -> SalesforceTarget:
    """The target with smartseg's fields created and granted, and the request log cleared."""
    set_up(target)
    target.ensure_tag_values("account", TAGS, ["ICP", "Expansion", "AtRisk"])
    reset(server)
    return target


# Helpers ----------------------------------------------------------------------------------------


def set_up(target: SalesforceTarget) -> None:
    """What `crm setup` does for the config of `load`: create smartseg's fields, which start
    hidden from the integration user, then grant it access to them."""
    target.ensure_fields("account", FIELDS, create=True)
    target.ensure_fields("contact", FIELDS[:1], create=True)
    target.ensure_task_key(create=True)
    target.ensure_access()


def reset(server: SalesforceServer) -> None:
    _sandbox(server, "DELETE", "requests")


def routes(server: SalesforceServer) -> dict[str, int]:
    return dict(_sandbox(server, "GET", "requests").json()["by_route"])


def records(server: SalesforceServer, sobject: str) -> dict[str, dict[str, Any]]:
    """Every record of the object, as the sandbox's inspection endpoint renders it."""
    rows = _sandbox(server, "GET", f"records/{sobject}").json()
    return {row["Id"]: row for row in rows if not row.get("IsDeleted")}


def _sandbox(server: SalesforceServer, method: str, path: str) -> requests.Response:
    assert server.tls is not None
    response = requests.request(
        method, f"{server.url}/_sandbox/{path}", verify=str(server.tls.ca_file), timeout=30
    )
    response.raise_for_status()
    return response


def account_ids(server: SalesforceServer, n: int) -> list[str]:
    ids = sorted(records(server, "Account"))
    assert len(ids) >= n
    return ids[:n]


def task(key: str, server: SalesforceServer, **changes: Any) -> TaskWrite:
    values: dict[str, Any] = {
        "key": key,
        "subject": f"Follow up {key}",
        "body": "Usage dropped 40% in 30 days.",
        "due": dt.date(2026, 7, 15),
        "priority": "High",
        "owner_id": server.salesforce_id("rep", 0),
        "account_record_id": server.salesforce_id("company", 0),
        "contact_record_id": None,
    }
    values.update(changes)
    return TaskWrite(**values)


# Updates ----------------------------------------------------------------------------------------


def test_updating_1000_records_costs_five_calls_and_every_record_lands(
    ready: SalesforceTarget, server: SalesforceServer
) -> None:
    ids = account_ids(server, 1000)
    writes = [RecordWrite(i, {TAGS: "ICP;Expansion", MRR: float(n)}) for n, i in enumerate(ids)]
    before = ready.calls()

    outcomes = ready.update("account", writes)

    assert [o.record_id for o in outcomes] == ids
    assert all(o.ok and o.error is None for o in outcomes)
    assert routes(server) == {COLLECTION: 5}
    assert ready.calls() - before == 5
    stored = records(server, "Account")
    for n, record_id in enumerate(ids):
        assert stored[record_id][TAGS] == "ICP;Expansion"
        assert stored[record_id][MRR] == float(n)

    reset(server)
    tags = ready.read_tags("account", TAGS, ids)
    assert tags == dict.fromkeys(ids, "ICP;Expansion")
    assert routes(server) == {f"GET {API}/query": 5}


def test_none_clears_a_field(ready: SalesforceTarget, server: SalesforceServer) -> None:
    record_id = account_ids(server, 1)[0]
    ready.update("account", [RecordWrite(record_id, {TAGS: "ICP", MRR: 12.5})])
    outcomes = ready.update("account", [RecordWrite(record_id, {TAGS: "", MRR: None})])
    assert outcomes[0].ok
    assert records(server, "Account")[record_id][TAGS] is None
    assert records(server, "Account")[record_id][MRR] is None
    assert ready.read_tags("account", TAGS, [record_id]) == {record_id: ""}


def test_invalid_records_fail_with_the_apis_message_and_the_others_land(
    ready: SalesforceTarget, server: SalesforceServer
) -> None:
    good = account_ids(server, 5)
    writes = [
        RecordWrite(good[0], {TAGS: "ICP"}),
        RecordWrite("001xx", {TAGS: "ICP"}),  # not an id
        RecordWrite(good[1], {TAGS: "ICP;NotATag"}),  # not a value of the restricted picklist
        RecordWrite(good[2], {"Region__c": "Mars"}),
        RecordWrite(good[3], {TAGS: "AtRisk"}),
        RecordWrite(good[4], {MRR: float("nan")}),  # refused before sending
    ]
    outcomes = ready.update("account", writes)

    assert [o.ok for o in outcomes] == [True, False, False, False, True, False]
    assert outcomes[1].error is not None and outcomes[1].error.startswith("MALFORMED_ID: ")
    assert outcomes[2].error == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: "
        "Smartseg Segments: bad value for restricted picklist field: NotATag"
    )
    assert "Mars" in (outcomes[3].error or "")
    assert "not a number" in (outcomes[5].error or "")
    stored = records(server, "Account")
    assert stored[good[0]][TAGS] == "ICP"
    assert stored[good[3]][TAGS] == "AtRisk"
    assert stored[good[1]][TAGS] is None
    assert routes(server) == {COLLECTION: 1}


def test_an_unknown_field_is_a_configuration_error(
    ready: SalesforceTarget, server: SalesforceServer
) -> None:
    writes = [RecordWrite(i, {"Nope__c": "x"}) for i in account_ids(server, 300)]
    with pytest.raises(ConnectorError) as raised:
        ready.update("account", writes)
    assert raised.value.decision.failure is Failure.CONFIG
    assert "INVALID_FIELD" in str(raised.value)
    assert routes(server) == {COLLECTION: 1}  # stopped at the first chunk


def test_429_500_and_an_expired_session_are_retried_and_everything_lands_once(
    tmp_path: Path, server: SalesforceServer
) -> None:
    sleeps = Sleeps()
    target = make_target(tmp_path, server, sleep=sleeps)
    set_up(target)
    target.ensure_tag_values("account", TAGS, ["ICP"])
    ids = account_ids(server, 1000)
    path = f"{API}/composite/sobjects"
    server.faults.set([
        FaultRule("429", method="PATCH", path=path, after=1, times=1, retry_after=7),
        FaultRule("500", method="PATCH", path=path, after=2, times=1),
        FaultRule("expire", method="PATCH", path=path, after=4, times=1),
    ])  # fmt: skip
    reset(server)

    outcomes = target.update("account", [RecordWrite(i, {TAGS: "ICP", MRR: 1.0}) for i in ids])

    assert all(o.ok for o in outcomes)
    # Five chunks, plus one refused attempt for each fault: no chunk was sent twice.
    assert routes(server) == {COLLECTION: 8, "POST /services/oauth2/token": 1}
    # A backoff before retrying the 429 (as long as its Retry-After asked) and the 500 (the
    # other waits are the 1 ms pace); signing in again retries at once.
    assert len([w for w in sleeps.waits if w >= 0.5]) == 2
    assert max(sleeps.waits) >= 7
    stored = records(server, "Account")
    assert all(stored[i][TAGS] == "ICP" and stored[i][MRR] == 1.0 for i in ids)


def test_a_request_failing_for_good_fails_only_its_own_records(
    ready: SalesforceTarget, server: SalesforceServer
) -> None:
    ids = account_ids(server, 1000)
    server.faults.set([FaultRule("500", method="PATCH", path=f"{API}/composite/sobjects", after=1)])

    outcomes = ready.update("account", [RecordWrite(i, {TAGS: "ICP"}) for i in ids])

    assert all(o.ok for o in outcomes[:200])
    assert not any(o.ok for o in outcomes[200:])
    assert "Salesforce answered 500 (gave up after 6 attempts)" in (outcomes[500].error or "")
    assert routes(server) == {COLLECTION: 1 + 4 * 6}


def test_the_rate_limit_paces_every_call() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(20, clock=lambda: now[0], sleep=sleep)
    starts = []
    for _ in range(5):
        limiter.wait()
        starts.append(now[0])
    assert starts == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    now[0] += 10  # an idle second later, the next call starts at once
    limiter.wait()
    assert len(slept) == 4


def test_updates_are_paced_by_rate_limit(tmp_path: Path, server: SalesforceServer) -> None:
    sleeps = Sleeps()
    target = make_target(tmp_path, server, sleep=sleeps, rate_limit={"per_second": 0.5})
    ids = account_ids(server, 600)
    outcomes = target.update("account", [RecordWrite(i, {"Region__c": "EMEA"}) for i in ids])
    assert all(o.ok for o in outcomes)
    # Three calls two seconds apart (the sign-in is not paced).
    assert sleeps.waits == [2.0, 2.0]


# Bulk API 2.0 ------------------------------------------------------------------------------------


def test_above_bulk_threshold_one_bulk_job_writes_everything(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, bulk_threshold=100)
    set_up(target)
    target.ensure_tag_values("account", TAGS, ["ICP", "AtRisk"])
    ids = account_ids(server, 300)
    target.update("account", [RecordWrite(ids[0], {MRR: 99.0})])  # one record: Collections
    reset(server)
    writes = [RecordWrite(i, {TAGS: "ICP;AtRisk", MRR: 1234.5}) for i in ids[1:]]
    writes += [
        RecordWrite(ids[0], {TAGS: "ICP", MRR: None}),  # None clears
        RecordWrite("001xx", {TAGS: "ICP"}),
        RecordWrite(ids[5], {TAGS: "Bogus"}),  # a later write to the same record wins
    ]

    outcomes = target.update("account", writes)

    failed = {o.record_id: o.error for o in outcomes if not o.ok}
    assert set(failed) == {"001xx", ids[5]}
    assert (failed["001xx"] or "").startswith("MALFORMED_ID:")
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in (failed[ids[5]] or "")
    assert len(outcomes) == len(writes)
    counts = routes(server)
    assert COLLECTION not in counts
    assert counts == {
        f"POST {API}/jobs/ingest": 1,
        f"PUT {API}/jobs/ingest/{{id}}/batches": 1,
        f"PATCH {API}/jobs/ingest/{{id}}": 1,
        f"GET {API}/jobs/ingest/{{id}}": 1,
        f"GET {API}/jobs/ingest/{{id}}/failedResults": 1,
    }
    stored = records(server, "Account")
    assert stored[ids[0]][TAGS] == "ICP" and stored[ids[0]][MRR] is None
    assert all(stored[i][TAGS] == "ICP;AtRisk" and stored[i][MRR] == 1234.5 for i in ids[6:])


def test_a_bulk_job_without_failures_reads_no_results(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, bulk_threshold=10)
    ids = account_ids(server, 50)
    reset(server)
    outcomes = target.update("account", [RecordWrite(i, {"Region__c": "APAC"}) for i in ids])
    assert all(o.ok for o in outcomes)
    assert sum(routes(server).values()) == 5  # sign-in, create, upload, close, poll
    stored = records(server, "Account")
    assert all(stored[i]["Region__c"] == "APAC" for i in ids)


# Fields and picklist values ---------------------------------------------------------------------


def test_missing_fields_raise_without_create_and_are_created_with_it(
    tmp_path: Path, server: SalesforceServer
) -> None:
    renewal = "Smartseg_Renewal__c"
    account = {"object": "Account", "tags_field": TAGS, "fields": {MRR: "mrr", renewal: "x"}}
    target = make_target(tmp_path, server, objects={"account": account})
    specs = [*FIELDS, FieldSpec(renewal, "date", "Smartseg Renewal")]
    with pytest.raises(ConfigError) as raised:
        target.ensure_fields("account", specs, create=False)
    message = str(raised.value)
    assert all(f"Account.{s.name}" in message for s in specs)
    assert "smartseg crm setup" in message

    reset(server)
    lines = target.ensure_fields("account", specs, create=True)
    assert lines == [
        f"Account.{TAGS}: created (MultiselectPicklist)",
        f"Account.{MRR}: created (Number(18,2))",
        "Account.Smartseg_Renewal__c: created (Date)",
    ]
    assert routes(server) == {
        f"GET {API}/sobjects/{{sobject}}/describe": 1,
        f"POST {API}/tooling/sobjects/CustomField": 3,
    }
    described = {f.name: f for f in server.schema.objects["account"].fields.values()}
    assert described[TAGS].type == "multipicklist" and described[TAGS].restricted
    assert described[TAGS].visible_lines == 4
    assert (described[MRR].type, described[MRR].precision, described[MRR].scale) == (
        "double",
        18,
        2,
    )
    assert described["Smartseg_Renewal__c"].type == "date"

    target.ensure_task_key(create=True)
    target.ensure_access()
    reset(server)
    assert target.ensure_fields("account", specs, create=False) == [
        f"Account.{s.name}: exists" for s in specs
    ]
    assert routes(server) == {f"GET {API}/sobjects/{{sobject}}/describe": 1}


def test_a_field_of_the_wrong_type_is_reported(target: SalesforceTarget) -> None:
    with pytest.raises(ConfigError, match="Health_Score__c is a double field"):
        target.ensure_fields("account", [FieldSpec("Health_Score__c", "tags", "Tags")], create=True)


def test_the_task_key_is_created_once_as_a_unique_external_id(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, objects={})
    with pytest.raises(ConfigError, match=f"Task.{KEY}.*smartseg crm setup"):
        target.ensure_task_key(create=False)
    assert target.ensure_task_key(create=True) == [
        f"Task.{KEY}: created (Text(80) External ID Unique)"
    ]
    key = server.schema.objects["task"].get(KEY)
    assert key is not None and key.external_id and key.unique and key.length == 80
    target.ensure_access()
    assert target.ensure_task_key(create=False) == [f"Task.{KEY}: exists"]


def test_missing_tag_values_are_added_in_one_update_and_none_when_nothing_is_missing(
    target: SalesforceTarget, server: SalesforceServer
) -> None:
    set_up(target)
    reset(server)
    before = target.calls()

    added = target.ensure_tag_values("account", TAGS, ["ICP", "Expansion", "ICP", " AtRisk "])

    assert added == ["ICP", "Expansion", "AtRisk"]
    assert routes(server) == {
        f"GET {API}/tooling/query": 1,
        f"PATCH {API}/tooling/sobjects/CustomField/{{id}}": 1,
    }
    assert target.calls() - before == 2

    reset(server)
    assert target.ensure_tag_values("account", TAGS, ["Expansion", "icp"]) == []
    assert routes(server) == {f"GET {API}/tooling/query": 1}
    reset(server)
    assert target.ensure_tag_values("account", TAGS, []) == []
    assert routes(server) == {}

    record_id = account_ids(server, 1)[0]
    outcomes = target.update(
        "account",
        [RecordWrite(record_id, {TAGS: "ICP;AtRisk"}), RecordWrite("001xx", {TAGS: "ICP"})],
    )
    assert outcomes[0].ok
    assert target.read_tags("account", TAGS, [record_id]) == {record_id: "ICP;AtRisk"}


def test_tag_values_need_the_field(target: SalesforceTarget) -> None:
    with pytest.raises(ConfigError, match="smartseg crm setup"):
        target.ensure_tag_values("account", TAGS, ["ICP"])
    with pytest.raises(ConfigError, match="no ';'"):
        target.ensure_tag_values("account", TAGS, ["A;B"])


# Reading tags -----------------------------------------------------------------------------------


def test_read_tags_never_sends_text_that_is_not_an_id(
    ready: SalesforceTarget, server: SalesforceServer
) -> None:
    ids = account_ids(server, 3)
    ready.update("account", [RecordWrite(ids[0], {TAGS: "ICP"})])
    reset(server)
    injected = "001' OR Name != '"
    result = ready.read_tags("account", TAGS, [ids[0], ids[1][:15], injected, "001xx"])
    assert result == {ids[0]: "ICP", ids[1][:15]: ""}
    assert routes(server) == {f"GET {API}/query": 1}
    assert is_salesforce_id(ids[0]) and is_salesforce_id(ids[0][:15])
    assert not is_salesforce_id(ids[0][:17] + ("A" if ids[0][17] != "A" else "B"))


# Tasks ------------------------------------------------------------------------------------------


def test_upserting_the_same_keys_twice_keeps_one_task_per_key(
    target: SalesforceTarget, server: SalesforceServer
) -> None:
    set_up(target)
    before = len(records(server, "Task"))
    contact = server.salesforce_id("person", 0)
    tasks = [
        task("rule-1:acct-1:2026-07", server),
        task("rule-2:acct-1:2026-07", server, contact_record_id=contact, priority="Low"),
        task("rule-3:acct-2:2026-07", server, owner_id=None, subject="x" * 300, completed=True),
    ]
    reset(server)

    first = target.upsert_tasks(tasks)
    again = task("RULE-3:acct-2:2026-07", server, subject="y" * 300, completed=True)
    second = target.upsert_tasks([*tasks[:2], again])

    assert all(o.ok and o.task_id for o in first + second)
    assert [o.task_id for o in first] == [o.task_id for o in second]
    assert [o.key for o in second][2] == "RULE-3:acct-2:2026-07"
    assert routes(server) == {TASK_UPSERT: 2}
    stored = records(server, "Task")
    assert len(stored) == before + 3
    mine = {r[KEY]: r for r in stored.values() if r.get(KEY)}
    assert len(mine) == 3
    one = mine["rule-1:acct-1:2026-07"]
    assert (one["Subject"], one["ActivityDate"], one["Priority"], one["Status"]) == (
        "Follow up rule-1:acct-1:2026-07", "2026-07-15", "High", "Not Started",
    )  # fmt: skip
    assert one["WhatId"] == server.salesforce_id("company", 0) and one["WhoId"] is None
    assert mine["rule-2:acct-1:2026-07"]["WhoId"] == contact
    third = mine["rule-3:acct-2:2026-07"]
    assert third["Subject"] == "y" * 255 and third["Priority"] == "High"
    assert third["Status"] == "Completed" and third["OwnerId"] is not None


def test_the_same_key_twice_in_one_call_is_one_task(
    target: SalesforceTarget, server: SalesforceServer
) -> None:
    set_up(target)
    outcomes = target.upsert_tasks(
        [task("k-1", server), task("k-1", server, subject="Newer"), task("k-2", server)]
    )
    assert all(o.ok for o in outcomes)
    assert outcomes[0].task_id == outcomes[1].task_id != outcomes[2].task_id
    mine = [r for r in records(server, "Task").values() if r.get(KEY) == "k-1"]
    assert len(mine) == 1 and mine[0]["Subject"] == "Newer"


def test_a_bad_task_fails_alone(target: SalesforceTarget, server: SalesforceServer) -> None:
    set_up(target)
    outcomes = target.upsert_tasks(
        [task("ok", server), task("bad", server, account_record_id="001xx")]
    )
    assert outcomes[0].ok and outcomes[0].task_id
    assert not outcomes[1].ok and outcomes[1].task_id is None
    assert "MALFORMED_ID" in (outcomes[1].error or "")


def test_tasks_without_the_key_field_raise(
    target: SalesforceTarget, server: SalesforceServer
) -> None:
    with pytest.raises(ConnectorError) as raised:
        target.upsert_tasks([task("k", server)])
    assert raised.value.decision.failure is Failure.CONFIG


def test_a_bulk_close_whose_answer_is_lost_is_not_repeated(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, bulk_threshold=10)
    ids = account_ids(server, 50)
    server.faults.set([
        FaultRule("500", method="PUT", path=f"{API}/jobs/ingest/{{id}}/batches", times=1),
        FaultRule("drop", method="PATCH", path=f"{API}/jobs/ingest/{{id}}", times=1),
    ])  # fmt: skip
    reset(server)
    outcomes = target.update("account", [RecordWrite(i, {"Region__c": "LATAM"}) for i in ids])
    assert all(o.ok for o in outcomes)
    counts = routes(server)
    assert counts[f"POST {API}/jobs/ingest"] == 1  # one job, its upload and close retried
    assert counts[f"PUT {API}/jobs/ingest/{{id}}/batches"] == 2
    assert counts[f"PATCH {API}/jobs/ingest/{{id}}"] == 2
    stored = records(server, "Account")
    assert all(stored[i]["Region__c"] == "LATAM" for i in ids)


# Field-level security ---------------------------------------------------------------------------

OWNED = [f"Account.{TAGS}", f"Account.{MRR}", f"Contact.{TAGS}", f"Task.{KEY}"]
CREATE = f"POST {API}/composite/sobjects"


def create_fields(target: SalesforceTarget) -> None:
    """The first half of `crm setup`: smartseg's fields, created but not granted."""
    target.ensure_fields("account", FIELDS, create=True)
    target.ensure_fields("contact", FIELDS[:1], create=True)
    target.ensure_task_key(create=True)


def field_permissions(
    server: SalesforceServer, permission_set: str
) -> dict[str, tuple[bool, bool]]:
    """Field -> (read, edit) of the named permission set, as stored in the org."""
    [parent] = [
        i for i, r in records(server, "PermissionSet").items() if r["Name"] == permission_set
    ]
    return {
        r["Field"]: (r["PermissionsRead"], r["PermissionsEdit"])
        for r in records(server, "FieldPermissions").values()
        if r["ParentId"] == parent
    }


def set_switch(server: SalesforceServer, allowed: bool) -> None:
    assert server.tls is not None
    requests.put(f"{server.url}/_sandbox/permissions", json={"manage_permission_sets": allowed},
                 verify=str(server.tls.ca_file), timeout=30).raise_for_status()  # fmt: skip


def test_created_fields_are_hidden_until_setup_grants_them_then_readable_and_writable(
    target: SalesforceTarget, server: SalesforceServer
) -> None:
    create_fields(target)
    record_id = account_ids(server, 1)[0]
    with pytest.raises(ConfigError, match="missing smartseg's fields"):  # describe hides them
        target.ensure_fields("account", FIELDS, create=False)
    with pytest.raises(ConnectorError, match=r"INVALID_FIELD.*smartseg crm setup") as write:
        target.update("account", [RecordWrite(record_id, {MRR: 1.0})])
    with pytest.raises(ConnectorError, match="INVALID_FIELD") as read:
        target.read_tags("account", TAGS, [record_id])
    assert write.value.decision.failure is read.value.decision.failure is Failure.CONFIG

    reset(server)
    lines = target.ensure_access()

    assert lines == [
        "permission set smartseg_fields: created",
        "permission set smartseg_fields: assigned to the integration user",
        "permission set smartseg_fields: granted read and edit on 4 fields",
    ]
    assert field_permissions(server, "smartseg_fields") == {f: (True, True) for f in OWNED}
    [own] = [r for r in records(server, "PermissionSet").values() if r["Name"] == "smartseg_fields"]
    assert own["Label"] == "smartseg fields"
    # One create each for the set and its assignment, and one for all four field permissions.
    assert routes(server)[CREATE] == 3
    target.ensure_tag_values("account", TAGS, ["ICP"])
    assert target.update("account", [RecordWrite(record_id, {TAGS: "ICP", MRR: 2.5})])[0].ok
    assert target.read_tags("account", TAGS, [record_id]) == {record_id: "ICP"}
    assert target.upsert_tasks([task("fls-1", server)])[0].ok


def test_grant_read_to_gives_existing_permission_sets_read_only_access(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, grant_read_to=["CSM_Access"])
    create_fields(target)
    lines = target.ensure_access()
    assert "permission set CSM_Access: granted read on 4 fields" in lines
    assert field_permissions(server, "CSM_Access") == {f: (True, False) for f in OWNED}
    assert field_permissions(server, "smartseg_fields") == {f: (True, True) for f in OWNED}


def test_a_permission_set_that_does_not_exist_is_named_with_a_suggestion(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, grant_read_to=["CSM_Acess"])
    create_fields(target)
    with pytest.raises(ConfigError, match=r"'CSM_Acess'.*did you mean 'CSM_Access'") as raised:
        target.ensure_access()
    assert raised.value.key == "targets.salesforce.grant_read_to"
    assert "smartseg_fields" not in {r["Name"] for r in records(server, "PermissionSet").values()}


def test_a_second_setup_with_nothing_to_change_only_reads(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, grant_read_to=["CSM_Access"])
    set_up(target)
    reset(server)

    again = make_target(tmp_path, server, grant_read_to=["CSM_Access"])
    create_fields(again)
    lines = again.ensure_access()

    assert lines == ["field-level security: up to date (smartseg_fields, CSM_Access)"]
    assert routes(server) == {
        "POST /services/oauth2/token": 1,  # the new target signs in
        f"GET {API}/sobjects/{{sobject}}/describe": 3,  # Account, Contact, Task: all exist
        f"GET {API}/query": 3,  # the permission sets, the assignment, the field permissions
    }


def test_without_permission_to_manage_permission_sets_setup_says_what_to_grant_and_a_rerun_finishes(
    target: SalesforceTarget, server: SalesforceServer
) -> None:
    set_switch(server, False)
    create_fields(target)
    with pytest.raises(ConfigError) as raised:
        target.ensure_access()
    message = str(raised.value)
    assert "INSUFFICIENT_ACCESS_OR_READONLY" in message
    assert '"Manage Profiles and Permission Sets"' in message
    assert "permission_set to null" in message and f"Account.{TAGS}" in message
    assert raised.value.key == "targets.salesforce.permission_set"
    assert {r["Name"] for r in records(server, "PermissionSet").values()} == {
        "CSM_Access",
        "Sales_Operations",
    }

    set_switch(server, True)
    lines = target.ensure_fields("account", FIELDS, create=True)
    assert lines == [f"Account.{s.name}: exists, not yet visible to the integration user"
                     for s in FIELDS]  # fmt: skip
    target.ensure_access()
    assert target.ensure_fields("account", FIELDS, create=False) == [
        f"Account.{s.name}: exists" for s in FIELDS
    ]
    assert target.ensure_task_key(create=True) == [f"Task.{KEY}: exists"]


def test_with_permission_set_null_setup_makes_no_grant_and_errors_name_the_manual_fix(
    tmp_path: Path, server: SalesforceServer
) -> None:
    target = make_target(tmp_path, server, permission_set=None)
    reset(server)
    create_fields(target)
    assert target.ensure_access() == []
    counts = routes(server)
    assert set(counts) == {
        "POST /services/oauth2/token",
        f"GET {API}/sobjects/{{sobject}}/describe",
        f"POST {API}/tooling/sobjects/CustomField",
    }
    record_id = account_ids(server, 1)[0]
    with pytest.raises(ConnectorError) as raised:
        target.update("account", [RecordWrite(record_id, {MRR: 1.0})])
    assert "permission_set is null" in str(raised.value)
    assert "Set Field-Level Security" in str(raised.value)
    with pytest.raises(ConfigError, match=r"cannot see it.*permission_set is null"):
        target.ensure_fields("account", FIELDS, create=True)


def test_signed_in_with_a_session_id_setup_asks_userinfo_who_the_integration_user_is(
    tmp_path: Path, server: SalesforceServer
) -> None:
    load(tmp_path, server)
    document = yaml.safe_load((tmp_path / "smartseg.yaml").read_text())
    document["sources"]["salesforce"]["auth"] = {
        "flow": "session",
        "session_id": {"file": "secrets/session"},
    }
    (tmp_path / "secrets" / "session").write_text(server.DEFAULT_SESSION_ID)
    (tmp_path / "smartseg.yaml").write_text(yaml.safe_dump(document))
    config = load_config(tmp_path / "smartseg.yaml", env={})
    assert config.sources.salesforce is not None and config.targets.salesforce is not None
    target = SalesforceTarget(config.sources.salesforce, config.targets.salesforce, CallCounter())
    reset(server)
    set_up(target)
    assert routes(server)["GET /services/oauth2/userinfo"] == 1
    assignments = records(server, "PermissionSetAssignment").values()
    assert [a["AssigneeId"] for a in assignments] == [server.ids.integration_user]
