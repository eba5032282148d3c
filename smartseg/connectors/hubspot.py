"""HubSpot: companies, contacts, deals, tickets, calls, meetings, emails and owners.

Full pulls list pages of 100 (associations inline) and then the archived records; the `after`
token goes into the stream state so an interrupted full pull resumes where it stopped.
Incremental pulls search on the last-modified property, oldest first, and fetch the changed
records' associations in v4 batch reads. Search never returns archived records and the archived
list cannot be filtered by time, so archived records are swept on every full pull and at most
once per `sweep_every` (a day by default) on incremental ones: deletions reach the store within a
day while a pull with nothing changed costs one search per stream.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from sqlalchemy.engine import Connection

from smartseg.config import HubSpotSource
from smartseg.connectors import hubspot_records as records
from smartseg.connectors.errors import Action, ConnectorError, Decision, Failure, MalformedResponse
from smartseg.connectors.http import CallCounter
from smartseg.connectors.retry import DEFAULT_POLICY, RetryPolicy, call
from smartseg.connectors.stream import Page, ReadContext, RecordIssue, WriteResult

__all__ = ["HubSpotClient", "HubSpotStream", "RateLimiter", "hubspot_streams"]

SOURCE = records.SOURCE
LIST_LIMIT = 100
SEARCH_LIMIT = 200
SEARCH_CAP = 10_000  # HubSpot answers 400 to any search paged to `after` >= 10,000
ASSOCIATION_BATCH = 1_000  # v4 batch read inputs per call
DEFAULT_SWEEP_EVERY = dt.timedelta(days=1)
_ENGAGEMENTS = ("calls", "meetings", "emails")

Record = dict[str, Any]


class _Window:
    """At most `limit` events in any `window` seconds (the rule HubSpot's own limiter applies)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        return 0.0 if len(self.times) < self.limit else self.times[0] + self.window - now


class RateLimiter:
    """A thread-safe client-side limiter: `burst` requests per `window`, and searches per second.

    Set below HubSpot's limits (config `rate_limit`), so a pull waits a little instead of
    spending requests on 429s; the retry policy still handles a 429 if one comes.
    """

    def __init__(
        self,
        burst: int,
        window: float,
        search_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        searches = max(1, int(search_per_second))
        self._all = _Window(burst, window)
        # A whole number of searches per window keeps the rate exact for fractional settings.
        self._search = _Window(searches, searches / search_per_second)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def acquire(self, *, search: bool = False) -> None:
        """Block until one more request (a search, if `search`) is within the limits."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._all.wait(now)
                if search:
                    wait = max(wait, self._search.wait(now))
                if wait <= 0:
                    self._all.times.append(now)
                    if search:
                        self._search.times.append(now)
                    return
            self._sleep(wait)


@dataclass(frozen=True, slots=True)
class ListPage:
    records: list[Record]
    after: str | None


class HubSpotClient:
    """hubspot-api-client with its own retries off: every call is paced, counted and retried here.

    Each SDK call is one request (no auto-pagers), so a failed page is retried on its own.
    """

    def __init__(
        self,
        config: HubSpotSource,
        calls: CallCounter,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.calls = calls
        self.policy = policy
        self.sleep = sleep
        self.timeout = config.timeout.total_seconds()
        limits = config.rate_limit
        self.limiter = limiter or RateLimiter(
            limits.burst, limits.window.total_seconds(), limits.search_per_second
        )
        # Retry(0): urllib3 must not retry on its own (it would skip POSTs and hide attempts).
        self._sdk = HubSpot(
            access_token=config.access_token.get_secret_value(),
            host=str(config.base_url).rstrip("/"),
            retry=urllib3.Retry(0, raise_on_status=False),
        )
        self._apis: dict[tuple[str, str], Any] = {}

    def _api(self, object_type: str, kind: str) -> Any:
        # Each discovery attribute builds a new ApiClient and connection pool; keep one per API.
        key = (object_type, kind)
        if key not in self._apis:
            crm = self._sdk.crm
            if object_type == "owners":
                self._apis[key] = crm.owners.owners_api
            elif object_type == "associations":
                self._apis[key] = crm.associations.v4.batch_api
            else:
                parent = crm.objects if object_type in _ENGAGEMENTS else crm
                self._apis[key] = getattr(getattr(parent, object_type), kind)
        return self._apis[key]

    def api(self, object_type: str, kind: str) -> Any:
        """The SDK's `crm.<object_type>.<kind>` API (e.g. "objects", "batch_api"), built once."""
        return self._api(object_type, kind)

    def call(self, fn: Callable[[], Any], stream: str, *, search: bool = False) -> Any:
        """Run one SDK request paced, counted and retried; ConnectorError when it fails for good."""
        return self._call(fn, stream, search=search)

    def _call(self, fn: Callable[[], Any], stream: str, *, search: bool = False) -> Any:
        def attempt() -> Any:
            self.limiter.acquire(search=search)
            self.calls.add(SOURCE)
            return fn()

        if self.sleep is None:
            return call(attempt, source=SOURCE, stream=stream, policy=self.policy)
        return call(attempt, source=SOURCE, stream=stream, policy=self.policy, sleep=self.sleep)

    def _read(self, fetch: Callable[[], Any], stream: str, *, search: bool = False) -> Any:
        """`_call` for reads: the response must carry the `results` list every page and batch
        read documents. The SDK turns a body it cannot parse (cut short, an HTML page) into a
        model of Nones, which would otherwise read as "no records"."""

        def checked() -> Any:
            response = fetch()
            if not isinstance(getattr(response, "results", None), list):
                raise MalformedResponse(
                    "HubSpot answered without its list of results (a cut-off or non-JSON body)"
                )
            return response

        return self._call(checked, stream, search=search)

    def list_page(
        self,
        object_type: str,
        *,
        after: str | None,
        properties: list[str],
        associations: list[str],
        archived: bool,
    ) -> ListPage:
        """One page of live (or archived) records, with associations inline."""
        if object_type == "owners":
            response = self._read(
                lambda: self._api("owners", "owners_api").get_page(
                    after=after, limit=LIST_LIMIT, archived=archived,
                    _request_timeout=self.timeout,
                ),
                object_type,
            )  # fmt: skip
            return ListPage([_owner(o) for o in response.results], _next(response))
        response = self._read(
            lambda: self._api(object_type, "basic_api").get_page(
                limit=LIST_LIMIT, after=after, properties=properties,
                associations=associations or None, archived=archived,
                _request_timeout=self.timeout,
            ),
            object_type,
        )  # fmt: skip
        return ListPage([_record(o) for o in response.results], _next(response))

    def search_modified(
        self, object_type: str, prop: str, since_ms: int, after: str | None, properties: list[str]
    ) -> ListPage:
        """Records modified at or after `since_ms`, oldest first, one page of 200."""
        body = {
            "filterGroups": [{"filters": [
                {"propertyName": prop, "operator": "GTE", "value": str(since_ms)}]}],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": SEARCH_LIMIT,
            "after": after or "0",
        }  # fmt: skip
        response = self._read(
            lambda: self._api(object_type, "search_api").do_search(
                public_object_search_request=body, _request_timeout=self.timeout
            ),
            object_type,
            search=True,
        )
        return ListPage([_record(o) for o in response.results], _next(response))

    def associations(
        self, from_type: str, to_type: str, ids: list[str], stream: str
    ) -> dict[str, list[tuple[str, bool]]]:
        """Per record id, its associated `to_type` ids with a primary flag (v4 batch read)."""
        found: dict[str, list[tuple[str, bool]]] = {}
        for start in range(0, len(ids), ASSOCIATION_BATCH):
            chunk = ids[start : start + ASSOCIATION_BATCH]
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in chunk]
            )

            def read(body: Any = body) -> Any:
                return self._api("associations", "batch_api").get_page(
                    from_type, to_type, body, _request_timeout=self.timeout
                )

            # Records without associations come back as 207 errors: they simply have none.
            response = self._read(read, stream)
            for result in response.results:
                found[str(result._from.id)] = [
                    (str(to.to_object_id),
                     any((t.label or "") == "Primary" for t in to.association_types or []))
                    for to in result.to or []
                ]  # fmt: skip
        return found


def _next(response: Any) -> str | None:
    paging = getattr(response, "paging", None)
    following = getattr(paging, "next", None) if paging is not None else None
    return str(following.after) if following is not None and following.after else None


def _record(obj: Any) -> Record:
    associations: dict[str, list[tuple[str, bool]]] = {}
    for target, collection in (getattr(obj, "associations", None) or {}).items():
        associations[target] = [
            (str(a.id), a.type in records.PRIMARY_V3_TYPES) for a in collection.results or []
        ]
    return {
        "id": "" if obj.id is None else str(obj.id),
        "properties": dict(obj.properties or {}),
        "updated_at": obj.updated_at,
        "archived_at": obj.archived_at if obj.archived else None,
        "associations": associations,
    }


def _owner(obj: Any) -> Record:
    return {
        "id": str(obj.id),
        "properties": {"email": obj.email, "firstname": obj.first_name,
                       "lastname": obj.last_name},
        "updated_at": obj.updated_at,
        "archived_at": None,
        "archived": bool(obj.archived),
        "associations": {},
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class HubSpotStream:
    """One HubSpot object type pulled into the store (see `hubspot_records.py` for the mapping)."""

    client: HubSpotClient
    spec: records.HubSpotSpec
    clock: Callable[[], dt.datetime]
    sweep_every: dt.timedelta = DEFAULT_SWEEP_EVERY
    source: str = SOURCE

    @property
    def name(self) -> str:
        return self.spec.object_type

    @property
    def key(self) -> str:
        return f"{self.source}.{self.name}"

    def read(self, context: ReadContext) -> Iterator[Page]:
        state = {k: v for k, v in context.state.items() if k != "full"}
        if context.since is None:
            yield from self._full(context, state)
        elif self.spec.modified_property is None:
            # Owners have no search: every pull lists the live ones, and the archived ones (kept
            # as inactive users) only when the sweep is due.
            if self._sweep_due(context):
                yield from self._full(context, state)
            else:
                done = (context.run_started, state)
                yield from self._pages(False, None, lambda more: (None, state) if more else done)
        else:
            yield from self._changed(context.since, state)
            if self._sweep_due(context):
                swept = {**state, "swept_at": context.run_started.isoformat()}
                yield from self._pages(True, None, lambda more: (None, state if more else swept))

    def write(self, connection: Connection, page: Page) -> WriteResult:
        records = [r for r in page.records if r["id"]]
        result = self.spec.write(connection, records, self.clock())
        result.issues.extend(
            RecordIssue("?", f"a {self.name} record without an id was skipped")
            for _ in range(len(page.records) - len(records))
        )
        return result

    def _sweep_due(self, context: ReadContext) -> bool:
        swept = context.state.get("swept_at")
        if swept is None:
            return True
        return context.run_started - dt.datetime.fromisoformat(swept) >= self.sweep_every

    # Full pulls -------------------------------------------------------------------------------

    def _full(self, context: ReadContext, state: dict[str, Any]) -> Iterator[Page]:
        """Live pages, then archived ones; resumable from the saved `after` token."""
        # A resumed full pull keeps the start time of the run that began it: records changed
        # after that moment may sit on pages read before the interruption, so the cursor it
        # finally saves must not be later than that start.
        progress = dict(context.state.get("full") or {})
        started = (
            dt.datetime.fromisoformat(progress["started"])
            if progress.get("started")
            else context.run_started
        )

        def at(phase: str, after: str | None) -> dict[str, Any]:
            full = {"phase": phase, "after": after, "started": started.isoformat()}
            return {**state, "full": full}

        after = progress.get("after")
        if progress.get("phase", "live") == "live":
            yield from self._pages(
                False,
                after,
                lambda more: (None, at("live", more) if more else at("archived", None)),
            )
            after = None
        done = (started, {**state, "swept_at": started.isoformat()})
        yield from self._pages(
            True, after, lambda more: (None, at("archived", more)) if more else done
        )

    def _pages(
        self,
        archived: bool,
        after: str | None,
        position: Callable[[str | None], tuple[dt.datetime | None, Mapping[str, Any]]],
    ) -> Iterator[Page]:
        """List pages from `after`; `position(next token)` gives each page's cursor and state."""
        while True:
            page = self.client.list_page(
                self.spec.object_type,
                after=after,
                properties=list(self.spec.properties),
                associations=list(self.spec.associations),
                archived=archived,
            )
            cursor, state = position(page.after)
            yield Page(records=page.records, cursor=cursor, state=state)
            if page.after is None:
                return
            after = page.after

    # Incremental pulls ------------------------------------------------------------------------

    def _changed(self, since: dt.datetime, state: Mapping[str, Any]) -> Iterator[Page]:
        """Changed records in pages of up to 1,000 (one association read per target per page)."""
        buffer: list[Record] = []
        for results in self._search(int(since.timestamp() * 1000)):
            buffer.extend(results)
            if len(buffer) > ASSOCIATION_BATCH - SEARCH_LIMIT:
                yield self._page(buffer, state)
                buffer = []
        if buffer:
            yield self._page(buffer, state)

    def _search(self, since_ms: int) -> Iterator[list[Record]]:
        # HubSpot's search refuses to page past 10,000 results (a 400 at after=10000), so a
        # window with more changes than that is read by restarting the filter from the last
        # modified time seen, not by paging on. Records sharing that boundary time are read
        # again by the new filter; their ids are remembered so each is handed on once.
        prop = self.spec.modified_property
        assert prop is not None
        floor, after = since_ms, None
        skip: set[str] = set()
        top, at_top = -1, set[str]()
        while True:
            page = self.client.search_modified(
                self.spec.object_type, prop, floor, after, list(self.spec.properties)
            )
            fresh = [r for r in page.records if r["id"] not in skip]
            for record in fresh:
                stamp = _ms(record["updated_at"])
                if stamp > top:
                    top, at_top = stamp, {record["id"]}
                elif stamp == top:
                    at_top.add(record["id"])
            yield fresh
            if page.after is None:
                return
            if int(page.after) < SEARCH_CAP:
                after = page.after
                continue
            if top <= floor:
                raise ConnectorError(SOURCE, self.name, Decision(
                    Action.FAIL, Failure.DATA,
                    f"more than {SEARCH_CAP} {self.name} share one last-modified time; "
                    "run a full pull (smartseg pull --full) to read them",
                ))  # fmt: skip
            floor, after, skip = top, None, set(at_top)

    def _page(self, rows: list[Record], state: Mapping[str, Any]) -> Page:
        ids = [r["id"] for r in rows if r["id"]]
        for target in self.spec.associations:
            links = self.client.associations(self.spec.object_type, target, ids, self.name)
            for record in rows:
                record["associations"][target] = links.get(record["id"], [])
        cursor = max((r["updated_at"] for r in rows if r["updated_at"]), default=None)
        return Page(records=rows, cursor=cursor, state=dict(state))


def _ms(moment: dt.datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else -1


def hubspot_streams(
    config: HubSpotSource,
    client: HubSpotClient,
    clock: Callable[[], dt.datetime],
    *,
    primary: bool,
    sweep_every: dt.timedelta = DEFAULT_SWEEP_EVERY,
) -> list[HubSpotStream]:
    """The configured objects in link order; `primary` when HubSpot is the only CRM."""
    return [
        HubSpotStream(
            client=client,
            spec=records.hubspot_spec(name, config, primary=primary),
            clock=clock,
            sweep_every=sweep_every,
        )
        for name in records.HUBSPOT_ORDER
        if name in config.objects
    ]
