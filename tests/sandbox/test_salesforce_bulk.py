"""Bulk API 2.0 in the fake Salesforce org, driven through the real `sf.bulk2` over HTTPS."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from smartseg.sandbox.http import FaultRule, TlsFiles, make_tls
from smartseg.sandbox.salesforce import SalesforceServer

# simple-salesforce's attribute access (sf.bulk2.Account) is typed as a union mypy cannot narrow.
Client = Any
JOBS = "/services/data/v59.0/jobs"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("sf-bulk-tls"))


@pytest.fixture
def server(tls: TlsFiles) -> Iterator[SalesforceServer]:
    with SalesforceServer(tls=tls) as running:
        yield running  # type: ignore[misc]


def _session(tls: TlsFiles) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
    session.verify = str(tls.ca_file)
    return session


@pytest.fixture
def sf(server: SalesforceServer, tls: TlsFiles) -> Client:
    return Salesforce(
        session_id=server.DEFAULT_SESSION_ID, instance_url=server.url, session=_session(tls)
    )


@pytest.fixture
def raw(server: SalesforceServer, tls: TlsFiles) -> requests.Session:
    """A plain HTTPS session with the org's bearer token, for calls sf.bulk2 does not make."""
    session = _session(tls)
    session.headers["Authorization"] = f"Bearer {server.DEFAULT_SESSION_ID}"
    return session


def _accounts(sf: Client, count: int, **fields: Any) -> list[str]:
    records = [
        {"attributes": {"type": "Account"}, "Name": f"Acme {i:03d}", **fields} for i in range(count)
    ]
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    return [r["id"] for r in results]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _counts(server: SalesforceServer) -> dict[str, int]:
    return {
        route.replace("/services/data/{version}", ""): n
        for route, n in server.request_counts()["by_route"].items()
    }


def test_query_pages_yield_every_row_exactly_once(sf: Client, server: SalesforceServer) -> None:
    ids = _accounts(sf, 25)
    pages = list(sf.bulk2.Account.query("SELECT Id, Name FROM Account", max_records=10, wait=0))
    rows = [row for page in pages for row in _rows(page)]
    assert [len(_rows(page)) for page in pages] == [10, 10, 5]
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    assert _counts(server)["GET /jobs/query/{id}/results"] == 3


def test_query_result_page_headers_and_csv_format(
    sf: Client, raw: requests.Session, server: SalesforceServer
) -> None:
    _accounts(sf, 1, Health_Score__c=80, Strategic__c=True, Renewal_Date__c="2026-03-01")
    job = sf.bulk2.Account._client.create_job(
        "query",
        "SELECT Name, Health_Score__c, Strategic__c, Renewal_Date__c, Website, "
        "CreatedDate FROM Account",
    )
    page = raw.get(f"{server.url}{JOBS}/query/{job['id']}/results", params={"maxRecords": 5})
    header, line = page.text.splitlines()
    assert page.headers["Content-Type"] == "text/csv"
    assert page.headers["Sforce-Locator"] == "null"
    assert page.headers["Sforce-NumberOfRecords"] == "1"
    assert (
        header
        == '"Name","Health_Score__c","Strategic__c","Renewal_Date__c","Website","CreatedDate"'
    )
    assert line.startswith('"Acme 000","80.0","true","2026-03-01","","')
    assert re.search(r',"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$', line)


def test_query_all_includes_deleted_record(sf: Client) -> None:
    kept, gone = _accounts(sf, 2)
    sf.Account.delete(gone)
    soql = "SELECT Id, IsDeleted FROM Account"
    live = [r for page in sf.bulk2.Account.query(soql, wait=0) for r in _rows(page)]
    everything = {
        r["Id"]: r["IsDeleted"]
        for page in sf.bulk2.Account.query_all(soql, wait=0)
        for r in _rows(page)
    }
    assert [r["Id"] for r in live] == [kept]
    assert everything == {kept: "false", gone: "true"}


def test_invalid_soql_is_refused_with_the_query_error(sf: Client) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        list(sf.bulk2.Account.query("SELECT Id, Nope__c FROM Account", wait=0))
    content: Any = error.value.content  # the parsed JSON error array
    assert content[0]["errorCode"] == "INVALID_FIELD"


def test_query_jobs_are_counted_in_limits(sf: Client, server: SalesforceServer) -> None:
    for _ in range(2):
        list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))
    limits = sf.limits()
    assert server.bulk_query_jobs == 2
    assert limits["DailyBulkV2QueryJobs"] == {"Max": 10000, "Remaining": 9998}


def test_update_changes_records_and_reports_counts(sf: Client) -> None:
    ids = _accounts(sf, 3)
    results = sf.bulk2.Account.update(
        records=[{"Id": i, "Health_Score__c": str(10 * n)} for n, i in enumerate(ids)], wait=0
    )
    assert results == [
        {
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": 3,
            "numberRecordsTotal": 3,
            "job_id": results[0]["job_id"],
        }
    ]
    assert [sf.Account.get(i)["Health_Score__c"] for i in ids] == [0.0, 10.0, 20.0]


def test_restricted_picklist_row_fails_while_the_others_succeed(sf: Client) -> None:
    good, bad = _accounts(sf, 2)
    records = [{"Id": good, "Edition__c": "Gold"}, {"Id": bad, "Edition__c": "Platinum"}]
    [result] = sf.bulk2.Account.update(records=records, wait=0)
    failed = _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    succeeded = _rows(sf.bulk2.Account.get_successful_records(result["job_id"]))
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (2, 1)
    assert [(r["sf__Id"], r["Edition__c"]) for r in failed] == [(bad, "Platinum")]
    assert failed[0]["sf__Error"] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Edition: bad value for restricted picklist "
        "field: Platinum:Edition__c --"
    )
    assert [(r["sf__Id"], r["sf__Created"]) for r in succeeded] == [(good, "false")]
    assert sf.Account.get(good)["Edition__c"] == "Gold"
    assert sf.Account.get(bad)["Edition__c"] is None


def test_upsert_on_external_id_creates_and_updates(sf: Client) -> None:
    [existing] = _accounts(sf, 1, Workspace_Id__c="ws-1")
    records = [
        {"Workspace_Id__c": "ws-1", "Name": "Renamed"},
        {"Workspace_Id__c": "ws-2", "Name": "Brand New"},
    ]
    [result] = sf.bulk2.Account.upsert(records=records, external_id_field="Workspace_Id__c", wait=0)
    done = {
        r["Workspace_Id__c"]: r
        for r in _rows(sf.bulk2.Account.get_successful_records(result["job_id"]))
    }
    assert result["numberRecordsFailed"] == 0
    assert (done["ws-1"]["sf__Id"], done["ws-1"]["sf__Created"]) == (existing, "false")
    assert done["ws-2"]["sf__Created"] == "true"
    assert sf.Account.get(existing)["Name"] == "Renamed"
    assert sf.Account.get_by_custom_id("Workspace_Id__c", "ws-2")["Name"] == "Brand New"


def test_empty_cell_leaves_a_value_and_na_sets_it_null(sf: Client) -> None:
    [account] = _accounts(sf, 1, Website="acme.test", Region__c="EMEA")
    data = f"Id,Website,Region__c\n{account},,#N/A\n"
    job = sf.bulk2.Account._client.create_job("update")
    sf.bulk2.Account._client.upload_job_data(job["id"], data)
    sf.bulk2.Account._client.close_job(job["id"])
    record = sf.Account.get(account)
    assert (record["Website"], record["Region__c"]) == ("acme.test", None)


def test_partial_fault_fails_single_rows_with_unable_to_lock_row(
    sf: Client, server: SalesforceServer
) -> None:
    ids = _accounts(sf, 4)
    server.faults.add(FaultRule("partial", every=2))
    [result] = sf.bulk2.Account.update(
        records=[{"Id": i, "Health_Score__c": "1"} for i in ids], wait=0
    )
    failed = _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (4, 2)
    assert [r["sf__Id"] for r in failed] == [ids[1], ids[3]]
    assert failed[0]["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:unable to obtain exclusive")


def test_request_log_counts_a_handful_of_calls_per_job(
    sf: Client, server: SalesforceServer
) -> None:
    sf.bulk2.Account.insert(records=[{"Name": f"Bulk {i}"} for i in range(500)], wait=0)
    counts = _counts(server)
    assert sum(counts.values()) <= 5
    assert counts["POST /jobs/ingest"] == 1
    assert counts["PUT /jobs/ingest/{id}/batches"] == 1
    assert server.bulk_batches == 1
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 500


def test_batch_size_splits_an_upload_into_jobs(sf: Client) -> None:
    results = sf.bulk2.Account.insert(
        records=[{"Name": f"Bulk {i}"} for i in range(5)], batch_size=2, wait=0
    )
    assert [r["numberRecordsProcessed"] for r in results] == [2, 2, 1]
    assert len({r["job_id"] for r in results}) == 3


def test_unknown_header_field_fails_the_job(
    sf: Client, raw: requests.Session, server: SalesforceServer
) -> None:
    job = sf.bulk2.Account._client.create_job("insert")
    sf.bulk2.Account._client.upload_job_data(job["id"], "Name,Nope__c\nAcme,1\n")
    sf.bulk2.Account._client.close_job(job["id"])
    info = sf.bulk2.Account._client.get_job(job["id"], False)
    unprocessed = raw.get(f"{server.url}{JOBS}/ingest/{job['id']}/unprocessedrecords")
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Nope__c"
    assert unprocessed.text.splitlines() == ["Name,Nope__c", '"Acme","1"']


def test_upload_twice_or_after_close_is_refused(
    sf: Client, raw: requests.Session, server: SalesforceServer
) -> None:
    job = sf.bulk2.Account._client.create_job("insert")
    url = f"{server.url}{JOBS}/ingest/{job['id']}/batches"
    headers = {"Content-Type": "text/csv"}
    first = raw.put(url, data=b"Name\nA\n", headers=headers)
    second = raw.put(url, data=b"Name\nB\n", headers=headers)
    sf.bulk2.Account._client.close_job(job["id"])
    third = raw.put(url, data=b"Name\nC\n", headers=headers)
    assert first.status_code == 201
    assert (second.status_code, second.json()[0]["errorCode"]) == (400, "BULK_API_ERROR")
    assert (third.status_code, third.json()[0]["errorCode"]) == (400, "INVALIDJOBSTATE")


def test_unknown_job_id_is_404_not_found(raw: requests.Session, server: SalesforceServer) -> None:
    response = raw.get(f"{server.url}{JOBS}/ingest/7505g000000000AAAA")
    assert response.status_code == 404
    assert response.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND", "fields": []}
    ]


def test_sdk_job_info_on_unknown_id_raises_not_found(sf: Client) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.bulk2.Account._client.get_job("7505g000000000AAAA", True)


def test_delete_and_hard_delete_jobs(
    sf: Client, raw: requests.Session, server: SalesforceServer
) -> None:
    soft, hard = _accounts(sf, 2)
    [deleted] = sf.bulk2.Account.delete(records=[{"Id": soft}], wait=0)
    sf.bulk2.Account.hard_delete(records=[{"Id": hard}], wait=0)
    everything = [
        r for p in sf.bulk2.Account.query_all("SELECT Id FROM Account", wait=0) for r in _rows(p)
    ]
    removed = raw.delete(f"{server.url}{JOBS}/ingest/{deleted['job_id']}")
    listed = raw.get(f"{server.url}{JOBS}/ingest").json()
    assert [r["Id"] for r in everything] == [soft]
    assert removed.status_code == 204
    assert deleted["job_id"] not in {j["id"] for j in listed["records"]}
    assert len(listed["records"]) == 1


def test_multi_select_values_are_separated_by_semicolons(
    sf: Client, server: SalesforceServer
) -> None:
    metadata = {
        "label": "Tags",
        "type": "MultiselectPicklist",
        "visibleLines": 4,
        "valueSet": {
            "restricted": True,
            "valueSetDefinition": {"value": [{"fullName": v, "label": v} for v in ("A", "B")]},
        },
    }
    sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        data={"FullName": "Account.Tags__c", "Metadata": metadata},
    )
    server.field_security.grant_by_hand("Account.Tags__c")
    [account] = _accounts(sf, 1)
    sf.bulk2.Account.update(records=[{"Id": account, "Tags__c": "A;B"}], wait=0)
    assert sf.Account.get(account)["Tags__c"] == "A;B"


def test_pipe_delimiter_and_crlf_line_endings_round_trip(sf: Client) -> None:
    sf.bulk2.Account.insert(
        records=[{"Name": "Pipe | Co", "Website": "p.test"}],
        column_delimiter="PIPE",
        line_ending="CRLF",
        wait=0,
    )
    [page] = sf.bulk2.Account.query(
        "SELECT Name, Website FROM Account", column_delimiter="PIPE", line_ending="CRLF", wait=0
    )
    assert page == '"Name"|"Website"\r\n"Pipe | Co"|"p.test"\r\n'


def test_aborted_job_reports_its_rows_as_unprocessed(
    sf: Client, raw: requests.Session, server: SalesforceServer
) -> None:
    job = sf.bulk2.Account._client.create_job("insert")
    sf.bulk2.Account._client.upload_job_data(job["id"], "Name\nNever\n")
    aborted = sf.bulk2.Account._client.abort_job(job["id"], False)
    again = raw.patch(f"{server.url}{JOBS}/ingest/{job['id']}", json={"state": "Aborted"})
    unprocessed = sf.bulk2.Account.get_unprocessed_records(job["id"])
    assert aborted["state"] == "Aborted"
    assert (again.status_code, again.json()[0]["errorCode"]) == (400, "INVALIDJOBSTATE")
    assert unprocessed.splitlines() == ["Name", '"Never"']
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
