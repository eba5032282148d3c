"""Pulling the fake Salesforce org with the real simple-salesforce: exact, incremental, safe."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from simple_salesforce import Salesforce
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors.pull import run_pull
from smartseg.connectors.runner import PullResult
from smartseg.sandbox import credentials
from smartseg.sandbox.http import FaultRule
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.store import make_engine, upgrade

STREAMS = ("User", "Account", "Contact", "Opportunity", "Case", "Task", "Event")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pull(engine: Engine, config: Config, **kwargs: Any) -> PullResult:
    return run_pull(engine, config, clock=_now, sleep=lambda seconds: None, **kwargs)


def _sf(server: SalesforceServer) -> Salesforce:
    session = requests.Session()
    session.trust_env = False
    assert server.tls is not None
    session.verify = str(server.tls.ca_file)
    return Salesforce(
        session_id=credentials.SALESFORCE_SESSION_ID, instance_url=server.url, session=session
    )


def _live(server: SalesforceServer, sobject: str) -> list[dict[str, Any]]:
    return [r for r in server.store.tables[sobject].values() if not r.get("IsDeleted")]


def _requests(server: SalesforceServer) -> dict[str, int]:
    return dict(server.request_counts()["by_route"])


def test_a_full_pull_stores_exactly_the_orgs_records(
    engine: Engine, sf_server: SalesforceServer, sf_config: Config
) -> None:
    result = _pull(engine, sf_config)
    assert result.ok, result.as_dict()
    with engine.connect() as connection:
        count = {
            t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("account", "contact", "opportunity", "ticket", "crm_user")
        }
        activities = connection.execute(sa.text("SELECT count(*) FROM activity")).scalar_one()
        stored = {
            row.external_key: row
            for row in connection.execute(
                sa.text(
                    "SELECT external_key, edition, renewal_date, domain, seats, status FROM account"
                )
            )
        }
    assert count["account"] == len(_live(sf_server, "Account"))
    assert count["contact"] == len(_live(sf_server, "Contact"))
    assert count["opportunity"] == len(_live(sf_server, "Opportunity"))
    assert count["ticket"] == len(_live(sf_server, "Case"))
    assert count["crm_user"] == len(_live(sf_server, "User"))
    assert activities == len(_live(sf_server, "Task")) + len(_live(sf_server, "Event"))
    for record in _live(sf_server, "Account"):
        row = stored[f"salesforce:{record['Id']}"]
        assert row.edition == record.get("Edition__c")
        assert str(row.renewal_date or "") == str(record.get("Renewal_Date__c") or "")
        assert row.seats == (
            int(record["Licensed_Seats__c"])
            if record.get("Licensed_Seats__c") is not None
            else None
        )


def test_every_contact_links_to_its_account(engine: Engine, sf_config: Config) -> None:
    result = _pull(engine, sf_config)
    with engine.connect() as connection:
        orphans = connection.execute(
            sa.text(
                "SELECT count(*) FROM contact WHERE account_ref IS NOT NULL AND account_id IS NULL"
            )
        ).scalar_one()
    assert orphans == 0
    assert result.unmatched == 0


def test_a_second_pull_makes_one_request_per_stream_and_changes_nothing(
    engine: Engine, sf_server: SalesforceServer, sf_config: Config, store_snapshot: Any
) -> None:
    _pull(engine, sf_config)
    before = store_snapshot(engine)
    requests.delete(
        f"{sf_server.url}/_sandbox/requests", verify=str(sf_server.tls.ca_file), timeout=10
    )  # type: ignore[union-attr]
    result = _pull(engine, sf_config)
    routes = _requests(sf_server)
    queries = sum(n for route, n in routes.items() if "/query" in route)
    assert queries == len(STREAMS)
    assert routes.get("POST /services/oauth2/token") == 1
    assert all(
        r.created == 0 and r.updated == 0 and r.deleted == 0 for r in result.streams.values()
    )
    assert store_snapshot(engine) == before


def test_edits_and_deletes_in_the_org_reach_the_store(
    engine: Engine, sf_server: SalesforceServer, sf_config: Config
) -> None:
    _pull(engine, sf_config)
    account = _live(sf_server, "Account")[0]
    contact = _live(sf_server, "Contact")[0]
    sf = _sf(sf_server)
    sf.Account.update(
        account["Id"], {"Edition__c": "Silver" if account.get("Edition__c") != "Silver" else "Gold"}
    )
    sf.Contact.delete(contact["Id"])
    result = _pull(engine, sf_config)
    assert result.streams["salesforce.Account"].updated == 1
    assert result.streams["salesforce.Contact"].deleted == 1
    with engine.connect() as connection:
        edition = connection.execute(
            sa.text("SELECT edition FROM account WHERE external_key = :k"),
            {"k": f"salesforce:{account['Id']}"},
        ).scalar_one()
        deleted_at = connection.execute(
            sa.text("SELECT deleted_at FROM contact WHERE external_key = :k"),
            {"k": f"salesforce:{contact['Id']}"},
        ).scalar_one()
    assert edition == sf.Account.get(account["Id"])["Edition__c"]
    assert deleted_at is not None


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(kind="429", path="*/query*", times=2, retry_after=0),
        FaultRule(kind="503", path="*/query*", times=2),
        FaultRule(kind="drop", path="*/query*", times=2),
        FaultRule(kind="expire", path="*/query*", times=1),
    ],
    ids=["429", "503", "dropped-connection", "expired-session"],
)
def test_a_pull_through_faults_ends_like_a_clean_pull(
    tmp_path: Path,
    sf_server: SalesforceServer,
    sf_config: Config,
    fault: FaultRule,
    store_snapshot: Any,
) -> None:
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    upgrade(clean)
    assert _pull(clean, sf_config).ok
    faulted = make_engine(f"sqlite:///{tmp_path / 'faulted.db'}")
    upgrade(faulted)
    sf_server.faults.set([fault])
    result = _pull(faulted, sf_config)
    assert result.ok, result.as_dict()
    assert fault.fired == fault.times
    assert store_snapshot(faulted) == store_snapshot(clean)


def test_a_pull_that_gives_up_resumes_next_run_with_nothing_lost(
    tmp_path: Path, sf_server: SalesforceServer, sf_config: Config, store_snapshot: Any
) -> None:
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    upgrade(clean)
    _pull(clean, sf_config)
    broken = make_engine(f"sqlite:///{tmp_path / 'broken.db'}")
    upgrade(broken)
    # Contacts fail for good this run (every retry answered 500); the other streams succeed.
    sf_server.faults.set([FaultRule(kind="500", path="*/queryAll", after=2, times=6)])
    first = _pull(broken, sf_config)
    assert not first.ok
    failed = [key for key, report in first.streams.items() if report.error]
    assert failed == ["salesforce.Contact"]
    assert "gave up after" in (first.streams["salesforce.Contact"].error or "")
    sf_server.faults.clear()
    assert _pull(broken, sf_config).ok
    assert store_snapshot(broken) == store_snapshot(clean)


def test_a_misspelt_field_in_the_field_map_is_a_config_error_naming_it(
    engine: Engine, tmp_path: Path, sf_server: SalesforceServer, make_sf_config: Any
) -> None:
    config = make_sf_config(tmp_path, sf_server, field_map={"account": {"edition": "Editon__c"}})
    result = _pull(engine, config, sources=["salesforce"])
    report = result.streams["salesforce.Account"]
    assert report.failure == "config"
    assert "Editon__c" in (report.error or "") and "field_map" in (report.error or "")


def test_wrong_client_secret_fails_every_stream_as_config(
    engine: Engine, tmp_path: Path, sf_server: SalesforceServer, make_sf_config: Any
) -> None:
    make_sf_config(tmp_path, sf_server)
    (tmp_path / "secrets" / "sf").write_text("not-the-secret")
    result = _pull(engine, load_config(tmp_path / "smartseg.yaml", env={}))
    assert {r.failure for r in result.streams.values()} == {"config"}
    assert "sources.salesforce.auth" in (result.streams["salesforce.Account"].error or "")
    assert "not-the-secret" not in str(result.as_dict())


def test_the_run_row_records_counts_and_api_calls(engine: Engine, sf_config: Config) -> None:
    result = _pull(engine, sf_config)
    with engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT status, counts, api_calls FROM run WHERE id = :i"), {"i": result.run_id}
        ).one()
    counts = row.counts if isinstance(row.counts, dict) else json.loads(row.counts)
    api_calls = row.api_calls if isinstance(row.api_calls, dict) else json.loads(row.api_calls)
    assert row.status == "succeeded"
    assert set(counts["streams"]) == {f"salesforce.{s}" for s in STREAMS}
    assert api_calls["salesforce"] == len(STREAMS) + 1  # one query per stream, one sign-in


def _cli(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    from smartseg.worker.cli import main

    monkeypatch.setenv("SMARTSEG_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("SMARTSEG_CONFIG", raising=False)
    config = ["--config", str(tmp_path / "smartseg.yaml")]
    assert main([*config, "db", "upgrade"]) == 0
    return main([*config, *args])


def test_pull_json_prints_one_object_with_every_stream(
    tmp_path: Path,
    sf_config: Config,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli(["pull", "--json"], tmp_path, monkeypatch) == 0
    payload = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(payload) == {"run_id", "streams", "unmatched"}
    account = payload["streams"]["salesforce.Account"]
    assert {"records", "created", "updated", "deleted", "api_calls"} <= set(account)
    assert account["created"] == account["records"] > 0


def test_pull_unmatched_lists_nothing_when_everything_links(
    tmp_path: Path,
    sf_config: Config,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli(["pull"], tmp_path, monkeypatch) == 0
    capsys.readouterr()
    assert _cli(["pull", "--unmatched", "--json"], tmp_path, monkeypatch) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {
        "total": 0,
        "by_table": {},
        "records": [],
    }


def test_pull_exits_2_when_a_stream_fails_for_a_config_reason(
    tmp_path: Path,
    sf_server: SalesforceServer,
    make_sf_config: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_sf_config(tmp_path, sf_server, field_map={"account": {"edition": "Editon__c"}})
    assert _cli(["pull"], tmp_path, monkeypatch) == 2


def test_odd_values_the_org_can_return_are_stored_as_they_are(
    engine: Engine, sf_server: SalesforceServer, sf_config: Config
) -> None:
    # Written straight into the org's table: an unrestricted picklist value, unicode, a long text.
    record = _live(sf_server, "Account")[0]
    record.update(Edition__c="Platinum", Name="Ünïcødé 株式会社 — Ω", Use_Case__c="x" * 20_000)
    result = _pull(engine, sf_config)
    report = result.streams["salesforce.Account"]
    assert report.error is None
    assert report.skipped == 1 and "use_case" in report.issues[0]["reason"]
    with engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT name, edition, use_case FROM account WHERE external_key = :k"),
            {"k": f"salesforce:{record['Id']}"},
        ).one()
    assert (row.name, row.edition) == ("Ünïcødé 株式会社 — Ω", "Platinum")
    assert len(row.use_case) == 10_000


def test_values_that_do_not_fit_their_column_are_stored_empty_and_reported(
    engine: Engine, sf_config: Config
) -> None:
    from smartseg.connectors.records import salesforce_spec

    assert sf_config.sources.salesforce is not None
    spec = salesforce_spec("Account", sf_config.sources.salesforce)
    good = {"Id": "001000000000001AAA", "Name": "Good", "Renewal_Date__c": "2026-12-31"}
    bad = {
        "Id": "001000000000002AAA",
        "Name": "Bad",
        "Renewal_Date__c": "31/12/2026",
        "Licensed_Seats__c": "lots",
        "Health_Score__c": "n/a",
    }
    nameless = {"Name": "no id"}
    with engine.begin() as connection:
        result = spec.write(connection, [good, bad, nameless], [], _now())
    assert result.upserted.inserted == 2
    reasons = {issue.source_id: issue.reason for issue in result.issues}
    assert set(reasons) == {"001000000000002AAA", "?"}
    assert all(
        c in reasons["001000000000002AAA"] for c in ("renewal_date", "seats", "health_score")
    )
    with engine.connect() as connection:
        rows = {
            r.name: r
            for r in connection.execute(
                sa.text("SELECT name, renewal_date, seats, custom FROM account")
            )
        }
    assert str(rows["Good"].renewal_date) == "2026-12-31"
    assert (rows["Bad"].renewal_date, rows["Bad"].seats) == (None, None)
    custom = (
        rows["Bad"].custom
        if isinstance(rows["Bad"].custom, dict)
        else json.loads(rows["Bad"].custom)
    )
    assert custom["_invalid"]["renewal_date"] == "31/12/2026"
