"""The fake Salesforce org, driven through the real simple-salesforce over HTTPS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from smartseg.sandbox.http import FaultRule, TlsFiles, make_tls
from smartseg.sandbox.salesforce import SalesforceServer
from smartseg.sandbox.world import Activity, Company, Opportunity, Person, Rep, Ticket, World

ANCHOR = dt.date(2026, 1, 31)
# simple-salesforce's attribute access (sf.Account) is typed as a union mypy cannot narrow.
Client = Any
BULK = 4500  # accounts in the paging world: more than two 2,000-row pages


def _company(idx: int, **overrides: object) -> Company:
    values: dict[str, object] = dict(
        idx=idx,
        name=f"Company {idx:05d}",
        domain=f"c{idx}.example.com",
        workspace_id=f"ws-{idx:05d}",
        industry="Software",
        region="EMEA",
        country="Germany",
        employees=50 + idx,
        status="Customer",
        edition="Gold",
        product="Analytics",
        contract_type="Annual",
        opt_out_clause=False,
        start_date=dt.date(2024, 3, 1),
        renewal_date=dt.date(2026, 3, 1),
        trial_end_date=None,
        churn_date=None,
        churn_reason=None,
        seats=25,
        csm_sentiment="Green",
        product_fit="Good",
        lifecycle_stage="Adoption",
        onboarding_status="Completed",
        onboarding_step=5,
        use_case="Reporting",
        purchase_benefit="Save Time",
        benefit_achieved_date=None,
        growth_potential="High",
        health_score=80,
        reference_account=False,
        strategic=idx == 1,
        owner_rep=0,
        csm_rep=1,
        billing_interval="year",
        unit_amount_cents=12000,
        discount_percent=None,
        subscription_status="active",
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=idx),
    )
    values.update(overrides)
    return Company(**values)  # type: ignore[arg-type]


def small_world(accounts: int = 3) -> World:
    """Two reps, a few companies with contacts, a deal, activities and a ticket."""
    reps = [
        Rep(0, "Ada", "Exec", "ada@vendor.test", "AE"),
        Rep(1, "Cy", "Success", "cy@vendor.test", "CSM"),
    ]
    companies = [_company(i) for i in range(accounts)]
    companies.append(_company(accounts, status="Churned", in_salesforce=False))
    people = [
        Person(
            i,
            i % accounts,
            f"First{i}",
            f"Last{i}",
            f"p{i}@c{i % accounts}.example.com",
            "VP",
            "Decision Maker" if i == 0 else "User",
            True,
        )
        for i in range(accounts * 2)
    ]
    at = dt.datetime(2026, 1, 20, 15, tzinfo=dt.UTC)
    return World(
        seed=1,
        anchor=ANCHOR,
        reps=reps,
        companies=companies,
        people=people,
        opportunities=[
            Opportunity(
                0,
                0,
                "Renewal 2026",
                "Renewal",
                "Negotiation",
                30000.0,
                dt.date(2026, 3, 1),
                0,
                referred_by=1,
            )
        ],
        activities=[
            Activity(0, 0, 0, "email", "completed", at, 0, 1, "Check-in"),
            Activity(1, 0, 0, "qbr", "cancelled", at, 60, 1, "Q1 QBR"),
        ],
        tickets=[
            Ticket(
                0,
                0,
                0,
                "Bug",
                "High",
                "Closed",
                "dashboards",
                "Broken chart",
                at - dt.timedelta(days=3),
                at,
            )
        ],
        nps=[],
    )


@pytest.fixture(scope="module")
def sf_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("sf-tls"))


def _session(tls: TlsFiles) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tls.ca_file)
    return session


def _client(server: SalesforceServer, tls: TlsFiles, session_id: str | None = None) -> Client:
    return Salesforce(
        session_id=session_id or server.DEFAULT_SESSION_ID,
        instance_url=server.url,
        session=_session(tls),
    )


@pytest.fixture(scope="module")
def sf_server(sf_tls: TlsFiles) -> Iterator[SalesforceServer]:
    with SalesforceServer(small_world(), tls=sf_tls) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def sf_fresh(sf_tls: TlsFiles) -> Iterator[SalesforceServer]:
    """A server of its own, for tests that change sessions, limits or faults."""
    with SalesforceServer(small_world(), tls=sf_tls) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def sf(sf_server: SalesforceServer, sf_tls: TlsFiles) -> Client:
    return _client(sf_server, sf_tls)


def _first_error(exc: Exception) -> dict[str, Any]:
    """The first {message, errorCode} of a simple-salesforce exception's parsed body."""
    content: Any = getattr(exc, "content", None)
    return dict(content[0])


def _requests(server: SalesforceServer) -> dict[str, int]:
    return dict(server.request_counts()["by_route"])


def test_query_all_iter_pages_past_2000_rows_with_exact_count(sf_tls: TlsFiles) -> None:
    with SalesforceServer(small_world(BULK), tls=sf_tls) as server:
        sf = _client(server, sf_tls)  # type: ignore[arg-type]
        rows = list(sf.query_all_iter("SELECT Id, Name FROM Account ORDER BY Name"))
        counts = _requests(server)  # type: ignore[arg-type]
    assert len(rows) == BULK
    assert len({r["Id"] for r in rows}) == BULK
    assert [r["Name"] for r in rows] == sorted(r["Name"] for r in rows)
    assert counts["GET /services/data/{version}/query"] == 1
    assert counts["GET /services/data/{version}/query/{locator}"] == 2


def test_batch_size_header_sets_the_page_size(sf: Client) -> None:
    page = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
    assert page["totalSize"] == 6 and page["done"] is True


def test_where_on_system_modstamp_with_datetime_literal_finds_new_writes(
    sf: Client, sf_server: SalesforceServer
) -> None:
    before = sf.query("SELECT Id FROM Account WHERE SystemModstamp > 2026-01-30T00:00:00Z")
    account_id = sf_server.salesforce_id("company", 2)
    sf.Account.update(account_id, {"Health_Score__c": 42})
    after = sf.query(
        "SELECT Id, Health_Score__c, SystemModstamp FROM Account "
        "WHERE SystemModstamp > 2026-01-30T00:00:00.000+00:00"
    )
    assert before["totalSize"] == 0
    assert [r["Id"] for r in after["records"]] == [account_id]
    assert after["records"][0]["Health_Score__c"] == 42.0
    assert after["records"][0]["SystemModstamp"].endswith("+0000")


def test_query_all_returns_deleted_record_with_is_deleted(sf: Client) -> None:
    created = sf.Contact.create({"LastName": "Gone", "Email": "gone@c0.example.com"})
    sf.Contact.delete(created["id"])
    live = sf.query(f"SELECT Id FROM Contact WHERE Id = '{created['id']}'")
    everything = sf.query(
        f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{created['id']}'", include_deleted=True
    )
    assert live["totalSize"] == 0
    assert everything["records"][0]["IsDeleted"] is True


def test_collection_of_201_records_is_refused_and_nothing_written(
    sf: Client, sf_server: SalesforceServer
) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": f"Bulk {i}"} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
        )
    assert _first_error(error.value)["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk %'")["totalSize"] == 0


def test_partial_fault_gives_per_record_results_in_200_record_collection(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    sf = _client(sf_fresh, sf_tls)
    ids = [sf_fresh.salesforce_id("company", i) for i in range(3)]
    records = [
        {"attributes": {"type": "Account"}, "Id": ids[i % 3], "Health_Score__c": i}
        for i in range(200)
    ]
    sf_fresh.faults.add(FaultRule("partial", every=50))
    results = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
    )
    failed = [i for i, r in enumerate(results) if not r["success"]]
    assert len(results) == 200
    assert failed == [49, 99, 149, 199]
    assert results[49]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"


def test_all_or_none_rolls_back_every_record(sf: Client) -> None:
    records = [
        {"attributes": {"type": "Account"}, "Name": "Atomic 1"},
        {"attributes": {"type": "Account"}, "Name": "Atomic 2", "Edition__c": "Platinum"},
    ]
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    ]
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Atomic%'")["totalSize"] == 0


def test_unknown_field_raises_invalid_field(sf: Client) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query("SELECT Id, Foo__c FROM Account")
    assert _first_error(error.value)["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo__c' on entity 'Account'" in _first_error(error.value)["message"]


def test_mixing_and_with_or_without_parentheses_is_malformed(sf: Client) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'")
    assert _first_error(error.value)["errorCode"] == "MALFORMED_QUERY"


def test_expired_session_raises_and_oauth_issues_a_working_one(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    sf = _client(sf_fresh, sf_tls)
    sf_fresh.faults.add(FaultRule("expire", times=1))
    with pytest.raises(SalesforceExpiredSession) as error:
        sf.query("SELECT Id FROM Account")
    token = (
        _session(sf_tls)
        .post(
            f"{sf_fresh.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sf_fresh.DEFAULT_CLIENT_ID,
                "client_secret": sf_fresh.DEFAULT_CLIENT_SECRET,
            },
        )
        .json()
    )
    fresh = _client(sf_fresh, sf_tls, token["access_token"])
    assert _first_error(error.value)["errorCode"] == "INVALID_SESSION_ID"
    assert token["token_type"] == "Bearer" and token["instance_url"] == sf_fresh.url
    assert fresh.query("SELECT COUNT() FROM Account")["totalSize"] == 3


def test_oauth_password_grant_rejects_a_wrong_password(
    sf_server: SalesforceServer, sf_tls: TlsFiles
) -> None:
    response = _session(sf_tls).post(
        f"{sf_server.url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": sf_server.DEFAULT_CLIENT_ID,
            "client_secret": sf_server.DEFAULT_CLIENT_SECRET,
            "username": sf_server.DEFAULT_USERNAME,
            "password": "wrong",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_restricted_picklist_write_is_rejected(sf: Client, sf_server: SalesforceServer) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Account.update(sf_server.salesforce_id("company", 0), {"Edition__c": "Platinum"})
    assert _first_error(error.value)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_read_only_field_write_is_rejected(sf: Client, sf_server: SalesforceServer) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Account.update(
            sf_server.salesforce_id("company", 0), {"SystemModstamp": "2026-01-01T00:00:00Z"}
        )
    assert _first_error(error.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_tooling_custom_field_create_and_new_value_show_in_describe(
    sf: Client, sf_server: SalesforceServer
) -> None:
    metadata = {
        "label": "Smartseg Segments",
        "type": "MultiselectPicklist",
        "visibleLines": 4,
        "valueSet": {
            "restricted": True,
            "valueSetDefinition": {
                "sorted": False,
                "value": [{"fullName": "ICP", "label": "ICP", "default": False}],
            },
        },
    }
    created = sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        data={"FullName": "Account.Smartseg_Segments__c", "Metadata": metadata},
    )
    sf_server.field_security.grant_by_hand("Account.Smartseg_Segments__c")
    metadata["valueSet"]["valueSetDefinition"]["value"].append(  # type: ignore[index]
        {"fullName": "AtRisk", "label": "AtRisk", "default": False}
    )
    sf.toolingexecute(
        f"sobjects/CustomField/{created['id']}", method="PATCH", data={"Metadata": metadata}
    )
    found = sf.toolingexecute(
        "query/?q=SELECT+Id,Metadata+FROM+CustomField+WHERE+DeveloperName='Smartseg_Segments'"
    )
    field = next(f for f in sf.Account.describe()["fields"] if f["name"] == "Smartseg_Segments__c")
    assert created["success"] is True
    assert found["records"][0]["Id"] == created["id"]
    assert field["type"] == "multipicklist" and field["restrictedPicklist"] is True
    assert [v["value"] for v in field["picklistValues"]] == ["ICP", "AtRisk"]


def test_multi_select_includes_treats_semicolon_as_and(
    sf: Client, sf_server: SalesforceServer
) -> None:
    metadata = {
        "label": "Tags",
        "type": "MultiselectPicklist",
        "visibleLines": 4,
        "valueSet": {
            "restricted": True,
            "valueSetDefinition": {"value": [{"fullName": v, "label": v} for v in ("A", "B", "C")]},
        },
    }
    sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        data={"FullName": "Account.Tags__c", "Metadata": metadata},
    )
    sf_server.field_security.grant_by_hand("Account.Tags__c")
    first, second = (sf_server.salesforce_id("company", i) for i in (0, 1))
    sf.Account.update(first, {"Tags__c": "A;B"})
    sf.Account.update(second, {"Tags__c": "A"})
    both = sf.query("SELECT Id FROM Account WHERE Tags__c INCLUDES ('A;B')")
    either = sf.query("SELECT Id FROM Account WHERE Tags__c INCLUDES ('B', 'A')")
    assert [r["Id"] for r in both["records"]] == [first]
    assert either["totalSize"] == 2


def test_sforce_limit_info_is_parsed_into_api_usage(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    sf = _client(sf_fresh, sf_tls)
    sf.query("SELECT Id FROM Account")
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == 2
    assert sf.api_usage["api-usage"].total == 100_000


def test_api_limit_exhausted_refuses_with_request_limit_exceeded(sf_tls: TlsFiles) -> None:
    with SalesforceServer(small_world(), tls=sf_tls, api_limit=1) as server:
        sf = _client(server, sf_tls)  # type: ignore[arg-type]
        sf.limits()
        with pytest.raises(SalesforceRefusedRequest) as error:
            sf.limits()
    assert _first_error(error.value)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_upsert_on_external_id_creates_then_updates(sf: Client) -> None:
    first = sf.Account.upsert("Workspace_Id__c/ws-new-1", {"Name": "Upserted"})
    second = sf.Account.upsert("Workspace_Id__c/ws-new-1", {"Name": "Upserted again"})
    rows = sf.query("SELECT Name FROM Account WHERE Workspace_Id__c = 'WS-NEW-1'")["records"]
    assert (first, second) == (201, 200)
    assert [r["Name"] for r in rows] == ["Upserted again"]


def test_loaded_world_maps_activities_and_cases(sf: Client, sf_server: SalesforceServer) -> None:
    task = sf.query("SELECT TaskSubtype, Status, IsClosed, AccountId FROM Task")["records"][0]
    event = sf.query("SELECT Type, Meeting_Status__c FROM Event")["records"][0]
    case = sf.query("SELECT Type, IsClosed, ClosedDate FROM Case")["records"][0]
    assert task["TaskSubtype"] == "Email" and task["IsClosed"] is True
    assert task["AccountId"] == sf_server.salesforce_id("company", 0)
    assert (event["Type"], event["Meeting_Status__c"]) == ("QBR", "Cancelled")
    assert case["IsClosed"] is True and case["ClosedDate"] == "2026-01-20T15:00:00.000+0000"


def test_same_world_gives_same_ids(sf_tls: TlsFiles, sf_server: SalesforceServer) -> None:
    other = SalesforceServer(small_world(), tls=sf_tls)
    assert other.salesforce_id("company", 1) == sf_server.salesforce_id("company", 1)
    assert sf_server.salesforce_id("company", 1).startswith("001")
    assert len(sf_server.salesforce_id("company", 1)) == 18


def test_date_function_literal_matches_a_range(sf: Client) -> None:
    recent = sf.query("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:7")
    old = sf.query(
        "SELECT Id FROM Account WHERE CreatedDate < LAST_N_DAYS:7 "
        "AND CreatedDate < 2025-01-01T00:00:00Z"
    )
    assert old["totalSize"] >= 3
    assert all(r["Id"] not in {o["Id"] for o in old["records"]} for r in recent["records"])


def test_records_inspection_route_lists_deleted_records(
    sf: Client, sf_server: SalesforceServer, tmp_path: Path
) -> None:
    created = sf.Opportunity.create(
        {"Name": "Temp", "StageName": "Prospecting", "CloseDate": "2026-02-01"}
    )
    sf.Opportunity.delete(created["id"])
    rows = _session_rows(sf_server, "Opportunity")
    assert any(r["Id"] == created["id"] and r["IsDeleted"] for r in rows)


def _session_rows(server: SalesforceServer, sobject: str) -> Any:
    session = requests.Session()
    session.trust_env = False
    assert server.tls is not None
    return session.get(
        f"{server.url}/_sandbox/records/{sobject}", verify=str(server.tls.ca_file)
    ).json()


# Field-level security ---------------------------------------------------------------------------

_TEXT_FIELD = {"label": "Plan Note", "type": "Text", "length": 40}


def _new_field(sf: Client, full_name: str) -> None:
    sf.toolingexecute(
        "sobjects/CustomField", method="POST", data={"FullName": full_name, "Metadata": _TEXT_FIELD}
    )


def _grant(sf: Client, user: str, field: str, *, edit: bool) -> str:
    """Through the API, as an integration would: a permission set, its assignment, the row."""
    parent = sf.PermissionSet.create({"Name": "Plan_Notes", "Label": "Plan notes"})["id"]
    sf.PermissionSetAssignment.create({"AssigneeId": user, "PermissionSetId": parent})
    row = {"ParentId": parent, "SobjectType": field.partition(".")[0], "Field": field,
           "PermissionsRead": True, "PermissionsEdit": edit}  # fmt: skip
    return str(sf.FieldPermissions.create(row)["id"])


def _names(sf: Client, sobject: str) -> set[str]:
    return {f["name"] for f in getattr(sf, sobject).describe()["fields"]}


def test_a_field_created_through_tooling_is_hidden_until_a_permission_set_grants_it(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    sf = _client(sf_fresh, sf_tls)
    account = sf_fresh.salesforce_id("company", 0)
    _new_field(sf, "Account.Plan_Note__c")

    assert "Plan_Note__c" not in _names(sf, "Account")
    assert "Edition__c" in _names(sf, "Account")  # shipped fields stay visible
    with pytest.raises(SalesforceMalformedRequest) as query:
        sf.query("SELECT Id, Plan_Note__c FROM Account")
    with pytest.raises(SalesforceMalformedRequest) as write:
        sf.Account.update(account, {"Plan_Note__c": "x"})
    assert _first_error(query.value)["errorCode"] == "INVALID_FIELD"
    assert _first_error(write.value)["errorCode"] == "INVALID_FIELD"

    user = sf_fresh.ids.integration_user
    row = _grant(sf, user, "Account.Plan_Note__c", edit=False)
    assert "Plan_Note__c" in _names(sf, "Account")
    assert sf.query("SELECT Plan_Note__c FROM Account")["totalSize"] == 3
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Account.update(account, {"Plan_Note__c": "x"})
    assert _first_error(read_only.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"

    sf.FieldPermissions.update(row, {"PermissionsEdit": True})
    sf.Account.update(account, {"Plan_Note__c": "renewal at risk"})
    assert sf.Account.get(account)["Plan_Note__c"] == "renewal at risk"


def test_a_task_field_granted_as_task_is_the_one_activity_field(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    sf = _client(sf_fresh, sf_tls)
    _new_field(sf, "Activity.Plan_Note__c")
    assert "Plan_Note__c" not in _names(sf, "Task") | _names(sf, "Event")
    _grant(sf, sf_fresh.ids.integration_user, "Task.Plan_Note__c", edit=True)
    assert "Plan_Note__c" in _names(sf, "Task") & _names(sf, "Event")


def test_field_permissions_follow_salesforces_rules(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    sf = _client(sf_fresh, sf_tls)
    _new_field(sf, "Account.Plan_Note__c")
    parent = sf.PermissionSet.create({"Name": "Notes", "Label": "Notes"})["id"]
    row = {"ParentId": parent, "SobjectType": "Account", "PermissionsRead": True}
    bad = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "FieldPermissions"}, **row, "Field": "Account.Plan_Note__c",
         "PermissionsRead": False, "PermissionsEdit": True},
        {"attributes": {"type": "FieldPermissions"}, **row, "Field": "Account.No_Such__c"},
        {"attributes": {"type": "FieldPermissions"}, **row, "Field": "Account.Id"},
        {"attributes": {"type": "FieldPermissions"}, **row, "Field": "Account.Plan_Note__c"},
        {"attributes": {"type": "FieldPermissions"}, **row, "Field": "Account.plan_note__c"},
    ]})  # fmt: skip
    codes = [r["errors"][0]["statusCode"] if r["errors"] else "ok" for r in bad]
    assert codes == [
        "FIELD_INTEGRITY_EXCEPTION",  # Edit needs Read
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",  # Id has no field-level security
        "ok",
        "DUPLICATE_VALUE",
    ]
    with pytest.raises(SalesforceMalformedRequest) as twice:
        sf.PermissionSet.create({"Name": "Notes", "Label": "Notes again"})
    assert _first_error(twice.value)["errorCode"] == "DUPLICATE_VALUE"
    found = sf.query(
        "SELECT Id, Name FROM PermissionSet WHERE Name IN ('Notes', 'CSM_Access', 'Nope')"
    )
    assert sorted(r["Name"] for r in found["records"]) == ["CSM_Access", "Notes"]


def test_without_the_permission_setup_objects_refuse_writes(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    sf = _client(sf_fresh, sf_tls)
    session = _session(sf_tls)
    switch = f"{sf_fresh.url}/_sandbox/permissions"
    assert session.put(switch, json={"manage_permission_sets": False}, timeout=30).ok
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.PermissionSet.create({"Name": "Mine", "Label": "Mine"})
    assert _first_error(refused.value)["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert sf.query("SELECT Id FROM PermissionSet")["totalSize"] == 2  # reading still works
    assert session.get(switch, timeout=30).json() == {"manage_permission_sets": False}


def test_the_token_and_userinfo_name_the_integration_user(
    sf_fresh: SalesforceServer, sf_tls: TlsFiles
) -> None:
    session = _session(sf_tls)
    token = session.post(f"{sf_fresh.url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": sf_fresh.DEFAULT_CLIENT_ID,
        "client_secret": sf_fresh.DEFAULT_CLIENT_SECRET,
    }, timeout=30).json()  # fmt: skip
    user = sf_fresh.ids.integration_user
    assert token["id"].endswith(f"/id/{sf_fresh.ORG_ID}/{user}")
    info = session.get(
        f"{sf_fresh.url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=30,
    )
    assert info.json()["user_id"] == user
    refused = session.get(
        f"{sf_fresh.url}/services/oauth2/userinfo",
        headers={"Authorization": "Bearer nope"},
        timeout=30,
    )
    assert refused.status_code == 403
