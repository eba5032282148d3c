"""Salesforce first pulls through Bulk API 2.0: one queryAll job, its CSV read a page at a time.

A large first pull over REST costs one call per 2,000 rows; a Bulk 2.0 query job costs a handful
(describe, create, poll, one call per page of `PAGE_ROWS`). The SDK's `sf.bulk2.<T>.query_all`
generator cannot resume a page after a failed call, so this drives its job client directly, one
call at a time through the retry table, re-reading `client.sf` on every attempt so a re-signed
session is picked up. Each CSV value is typed from the object's describe so records match what
REST returns field for field (booleans, numbers, `+0000` date-times), custom JSON included.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation, SFBulk2Handler, _Bulk2Client

from smartseg.connectors.errors import Action, ConnectorError, Decision, Failure
from smartseg.connectors.mapping import parse_datetime
from smartseg.connectors.stream import Page

if TYPE_CHECKING:
    from smartseg.connectors.salesforce import SalesforceClient

__all__ = ["PAGE_ROWS", "read_bulk", "split_records"]

_SOURCE = "salesforce"

# Rows per results page: small enough that one page's CSV and records stay tens of megabytes
# for wide objects, large enough that a million rows cost about a hundred calls (REST: 500).
PAGE_ROWS = 10_000
# A query job that has not finished after this much polling is given up on; the next run retries.
JOB_WAIT_SECONDS = 2 * 60 * 60.0
_POLL_FIRST, _POLL_CAP = 0.5, 10.0

_INT = frozenset({"int", "long"})
_FLOAT = frozenset({"double", "currency", "percent"})


def read_bulk(client: SalesforceClient, sobject: str, soql: str) -> Iterator[Page]:
    """Pages of a Bulk 2.0 queryAll job running `soql`; only the last page carries the cursor.

    Bulk results come in no guaranteed order, so no page before the last covers a safe cursor:
    the last one carries the newest SystemModstamp of the whole job (the loop caps it at the
    run's start). A run that fails midway keeps the pages written and no cursor, so the next
    run pulls in full again.
    """
    types = _field_types(client, sobject)
    job = client.run(
        lambda: _jobs(client.sf, sobject).create_job(Operation.query_all, soql), sobject
    )
    job_id = str(job["id"])
    _wait(client, sobject, job_id)
    newest: dt.datetime | None = None
    locator = ""
    while True:
        result = _results(client, sobject, job_id, locator)
        locator = str(result["locator"] or "")
        rows = _records(client, sobject, str(result["records"]), types)
        del result  # the page's CSV text is not needed once parsed
        live, deleted, page_newest = split_records(rows)
        if page_newest is not None and (newest is None or page_newest > newest):
            newest = page_newest
        yield Page(records=live, deleted=deleted, cursor=None if locator else newest)
        if not locator:
            return


def _jobs(sf: Salesforce, sobject: str) -> _Bulk2Client:
    """The SDK's Bulk 2.0 job client, on the signed-in session (so its calls are counted too)."""
    handler = SFBulk2Handler(sf.session_id, sf.bulk2_url, session=sf.session)
    return _Bulk2Client(sobject, handler.bulk2_url, handler.headers, handler.session)


def _results(client: SalesforceClient, sobject: str, job_id: str, locator: str) -> dict[str, Any]:
    """One page of the job's results: CSV text and the locator of the next page ("" at the end)."""
    return dict(
        client.run(
            lambda: _jobs(client.sf, sobject).get_query_results(job_id, locator, PAGE_ROWS),
            sobject,
        )
    )


def _field_types(client: SalesforceClient, sobject: str) -> dict[str, str]:
    """API name -> Salesforce field type, from one describe call."""
    describe = client.run(lambda: getattr(client.sf, sobject).describe(), sobject)
    return {str(f["name"]): str(f["type"]) for f in describe.get("fields", [])}


def _wait(client: SalesforceClient, sobject: str, job_id: str) -> None:
    """Poll the job until it completes, backing off up to `_POLL_CAP` seconds between polls."""
    waited, delay = 0.0, _POLL_FIRST
    while True:
        info = client.run(lambda: _jobs(client.sf, sobject).get_job(job_id, True), sobject)
        state = str(info.get("state"))
        if state == "JobComplete":
            return
        if state in ("Failed", "Aborted"):
            reason = info.get("errorMessage") or "no reason given"
            raise _failure(sobject, f"Bulk API query job {job_id} ended {state}: {reason}")
        if waited >= JOB_WAIT_SECONDS:
            raise _failure(
                sobject,
                f"Bulk API query job {job_id} still {state} after {waited / 60:.0f} minutes; "
                "the next run starts a new one",
            )
        client.pause(delay)
        waited += delay
        delay = min(_POLL_CAP, delay * 2)


def _records(
    client: SalesforceClient, sobject: str, text: str, types: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One results page as REST-shaped records: empty cells are None, values typed by field."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        kinds = [types.get(name, "string") for name in header]
        return [
            {name: _value(kind, cell) for name, kind, cell in zip(header, kinds, row, strict=True)}
            for row in reader
            if row
        ]
    except (csv.Error, ValueError) as exc:
        raise _failure(
            sobject, f"a Bulk API results page could not be read as CSV ({exc})"
        ) from exc


def _value(kind: str, cell: str) -> Any:
    """A CSV cell as REST's JSON would give it; a cell that does not parse stays text, so the
    row mapping reports it exactly as it reports a bad value arriving over REST."""
    if cell == "":
        return None  # Bulk CSV writes null and empty text alike, and Salesforce stores no ""
    if kind == "boolean" and cell in ("true", "false"):
        return cell == "true"
    try:
        if kind in _INT:
            return int(cell)
        if kind in _FLOAT:
            return float(cell)
    except ValueError:
        return cell
    if kind == "datetime" and cell.endswith("Z"):
        return cell[:-1] + "+0000"
    return cell


def split_records(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[str], dt.datetime | None]:
    """Live records, ids of deleted ones, and the newest SystemModstamp among all of them."""
    live = [r for r in rows if not r.get("IsDeleted")]
    deleted = [str(r["Id"]) for r in rows if r.get("IsDeleted") and r.get("Id")]
    stamps = [parse_datetime(r["SystemModstamp"]) for r in rows if r.get("SystemModstamp")]
    return live, deleted, max(stamps, default=None)


def _failure(sobject: str, message: str) -> ConnectorError:
    return ConnectorError(_SOURCE, sobject, Decision(Action.FAIL, Failure.TRANSIENT, message))
