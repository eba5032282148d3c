"""Pull throughput against a bare loop over the same SDK calls, and peak memory at two sizes.

smartseg's pull maps every record, upserts it diff-only with its cursor in one transaction and
links records into customers; the bare loop makes the same SDK calls (simple-salesforce SOQL
pages, hubspot-api-client list pages, stripe list pages, same queries, page sizes and
parameters) and throws the results away. The ratio of their times is what the store costs on
top of the APIs. The sandbox runs in a child process with HubSpot's request cap lifted on both
sides, so neither loop waits on a rate limiter and the figure is work, not pacing. The bench
checks the two loops made the same requests, route by route.

Peak memory comes from `pull_memory.py`: a Salesforce pull at two sizes in a fresh process.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests
import stripe
import yaml
from simple_salesforce.api import Salesforce
from sqlalchemy.engine import Engine

from bench import pull_memory
from bench.logs import log
from bench.sandbox_process import SandboxProcess, requests_between
from smartseg.config import Config, load_config
from smartseg.connectors import hubspot_records
from smartseg.connectors.http import CallCounter
from smartseg.connectors.hubspot import LIST_LIMIT, HubSpotClient
from smartseg.connectors.pull import run_pull
from smartseg.connectors.runner import PullResult
from smartseg.connectors.salesforce import SalesforceClient, salesforce_streams
from smartseg.connectors.stripe_source import PAGE_SIZE, StripeClient, stripe_streams
from smartseg.sandbox.app import SandboxInfo
from smartseg.store import make_engine, upgrade
from smartseg.worker.sandbox_config import write_sandbox_config

__all__ = [
    "API_SOURCES",
    "PullOverhead",
    "PulledWorld",
    "bare_pull",
    "measure_memory",
    "measure_overhead",
    "pulled_world",
]

API_SOURCES = ("salesforce", "hubspot", "stripe")
NOW = dt.datetime(2026, 6, 30, 7, 0, tzinfo=dt.UTC)
UNCAPPED = 10**9  # HubSpot requests per window, on the server and in the client's limiter
# Signing in is the client's business, not a data call: the bare loop reuses the session.
_LOGIN = "POST /services/oauth2/token"


@dataclass(slots=True)
class PullOverhead:
    """One smartseg pull and one bare loop over the same world, records and seconds each."""

    accounts: int
    records: dict[str, int]  # per source, as the APIs served them
    smartseg_seconds: float
    bare_seconds: float
    smartseg_calls: int
    bare_calls: int
    stored: dict[str, int] = field(default_factory=dict)  # per source, as smartseg counted them

    @property
    def total(self) -> int:
        return sum(self.records.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "records": self.records,
            "stored": self.stored,
            "smartseg_seconds": round(self.smartseg_seconds, 3),
            "bare_seconds": round(self.bare_seconds, 3),
            "smartseg_records_per_second": round(self.total / self.smartseg_seconds),
            "bare_records_per_second": round(self.total / self.bare_seconds),
            "api_calls": {"smartseg": self.smartseg_calls, "bare": self.bare_calls},
        }


def api_config(
    directory: Path, info: SandboxInfo, *, database: Path, crm_only: bool = False
) -> Path:
    """The shipped config aimed at a sandbox, with HubSpot's request cap lifted; its path.
    `crm_only` keeps the CRM accounts and contacts (what a sync writes to) and drops Stripe."""
    path = write_sandbox_config(directory, info, database_url=f"sqlite:///{database}")
    document = yaml.safe_load(path.read_text())
    sources = document["sources"]
    sources["hubspot"]["rate_limit"] = {
        "burst": UNCAPPED,
        "window": "10s",
        "search_per_second": UNCAPPED,
    }
    if crm_only:
        sources["salesforce"]["objects"] = ["Account", "Contact"]
        sources["hubspot"]["objects"] = ["companies", "contacts"]
        sources["stripe"]["enabled"] = False
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@dataclass(slots=True)
class PulledWorld:
    """A sandbox world pulled once into a fresh SQLite store, as the pull and sync benches
    share it: the running sandbox, the config aimed at it, the store, and what the pull cost."""

    accounts: int
    box: SandboxProcess
    info: SandboxInfo
    config_path: Path
    engine: Engine
    result: PullResult
    seconds: float
    requests: dict[str, dict[str, int]]  # the pull's requests, per server and route


@contextmanager
def pulled_world(
    accounts: int, directory: Path, *, crm_only: bool = False
) -> Iterator[PulledWorld]:
    """A sandbox of `accounts` accounts (in a child process, HubSpot uncapped) and smartseg's
    first pull of Salesforce, HubSpot and Stripe from it, timed (`crm_only`: see `api_config`;
    such a world is for syncing, its pull is no throughput figure)."""
    box = SandboxProcess(accounts, directory / "sandbox-data", hubspot_burst=UNCAPPED)
    with box as info:
        path = api_config(
            directory / "config", info, database=directory / "store.db", crm_only=crm_only
        )
        config = load_config(path, env={})
        if not crm_only:
            bare_pull(config, info, limit_calls=1)  # warm each server's connection and caches
        engine = make_engine(config.database_url)
        upgrade(engine)
        before = box.requests()
        log(f"pull: smartseg, {accounts:,} accounts")
        started = time.perf_counter()
        sources = API_SOURCES[:2] if crm_only else API_SOURCES
        result = run_pull(engine, config, clock=lambda: NOW, sources=sources)
        seconds = time.perf_counter() - started
        if not result.ok:
            errors = {k: r.error for k, r in result.streams.items() if r.error}
            raise RuntimeError(f"the smartseg pull failed: {errors}")
        made = requests_between(before, box.requests())
        try:
            yield PulledWorld(accounts, box, info, path, engine, result, seconds, made)
        finally:
            engine.dispose()


def measure_overhead(world: PulledWorld) -> PullOverhead:
    """The bare loop over the world smartseg pulled, against smartseg's pull."""
    config = load_config(world.config_path, env={})
    log("pull: bare loop")
    before = world.box.requests()
    started = time.perf_counter()
    records = bare_pull(config, world.info)
    bare_seconds = time.perf_counter() - started
    ours = _data_calls(world.requests)
    theirs = _data_calls(requests_between(before, world.box.requests()))
    if ours != theirs:
        raise RuntimeError(
            "the bare loop did not make the same requests as smartseg's pull, so their times "
            f"cannot be compared: smartseg {ours}, bare loop {theirs}"
        )
    stored: dict[str, int] = {}
    for key, report in world.result.streams.items():
        source = key.split(".", 1)[0]
        stored[source] = stored.get(source, 0) + report.records + report.deleted
    return PullOverhead(
        world.accounts,
        records,
        world.seconds,
        bare_seconds,
        sum(sum(r.values()) for r in ours.values()),
        sum(sum(r.values()) for r in theirs.values()),
        stored,
    )


def _data_calls(calls: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {
        server: {route: n for route, n in routes.items() if route != _LOGIN}
        for server, routes in calls.items()
    }


def bare_pull(
    config: Config, info: SandboxInfo, *, limit_calls: int | None = None
) -> dict[str, int]:
    """The SDK calls of a first pull of every API source, results discarded; records seen per
    source. `limit_calls` stops each object after that many pages (a warm-up)."""
    sources = config.sources
    assert sources.salesforce and sources.hubspot and sources.stripe
    return {
        "salesforce": _salesforce(config, info, limit_calls),
        "hubspot": _hubspot(config, limit_calls),
        "stripe": _stripe(config, limit_calls),
    }


Page = tuple[int, str | None]  # records on a page, and the token of the next (None: last)


def _pages(fetch: Callable[[str | None], Page], limit: int | None) -> int:
    """Records over the pages `fetch(None)`, `fetch(token)`, ... (at most `limit` pages)."""
    seen, calls, token = 0, 0, None
    while True:
        records, token = fetch(token)
        seen, calls = seen + records, calls + 1
        if token is None or (limit is not None and calls >= limit):
            return seen


def _salesforce(config: Config, info: SandboxInfo, limit: int | None) -> int:
    source = config.sources.salesforce
    assert source is not None
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the sandbox's CA
    session.verify = info.ca_file
    sf = Salesforce(
        session_id=info.salesforce_session_id,
        instance_url=info.salesforce,
        session=session,
        version=source.api_version,
    )
    # The product's streams only to write the same SOQL; the client never signs in here.
    client = SalesforceClient(source, CallCounter())
    streams = salesforce_streams(source, client, lambda: NOW)
    return sum(
        _pages(partial(_soql_page, sf, s.soql(None), s.name, source.bulk_threshold), limit)
        for s in streams
    )


def _soql_page(sf: Salesforce, soql: str, name: str, threshold: int, locator: str | None) -> Page:
    if locator is None:
        response = sf.query(soql, include_deleted=True)
        if int(response.get("totalSize") or 0) > threshold:
            raise RuntimeError(
                f"{name} is over bulk_threshold: the bare loop reads REST pages only; bench a "
                "smaller world"
            )
    else:
        response = sf.query_more(locator, identifier_is_url=True, include_deleted=True)
    done = response.get("done", True)
    return len(response["records"]), None if done else response.get("nextRecordsUrl")


def _hubspot(config: Config, limit: int | None) -> int:
    source = config.sources.hubspot
    assert source is not None
    # The product's client only hands out the SDK's API objects (hubspot-api-client with
    # urllib3 retries off); every call below is the SDK's own.
    apis = HubSpotClient(source, CallCounter())
    seen = 0
    for name in hubspot_records.HUBSPOT_ORDER:
        if name in source.objects:
            spec = hubspot_records.hubspot_spec(name, source, primary=False)
            for archived in (False, True):
                seen += _pages(partial(_hubspot_page, apis, spec, archived), limit)
    return seen


def _hubspot_page(
    apis: HubSpotClient, spec: hubspot_records.HubSpotSpec, archived: bool, after: str | None
) -> Page:
    if spec.object_type == "owners":
        response = apis.api("owners", "owners_api").get_page(
            after=after, limit=LIST_LIMIT, archived=archived
        )
    else:
        response = apis.api(spec.object_type, "basic_api").get_page(
            limit=LIST_LIMIT,
            after=after,
            properties=list(spec.properties),
            associations=list(spec.associations) or None,
            archived=archived,
        )
    paging = getattr(response, "paging", None)
    following = getattr(paging, "next", None) if paging is not None else None
    return len(response.results), str(following.after) if following and following.after else None


def _stripe(config: Config, limit: int | None) -> int:
    source = config.sources.stripe
    assert source is not None
    sdk = stripe.StripeClient(
        source.api_key.get_secret_value(),
        base_addresses={"api": str(source.api_base).rstrip("/")},
        max_network_retries=0,
    )
    streams = stripe_streams(source, StripeClient(source, CallCounter()), lambda: NOW)
    return sum(
        _pages(partial(_stripe_page, getattr(sdk.v1, s.name), s.list_params), limit)
        for s in streams
    )


def _stripe_page(service: Any, params: Mapping[str, Any], after: str | None) -> Page:
    query = {**params, "limit": PAGE_SIZE}
    if after:
        query["starting_after"] = after
    listed = service.list(query)
    return len(listed.data), str(listed.data[-1]["id"]) if listed.has_more and listed.data else None


def measure_memory(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Peak RSS of a Salesforce pull at each size (accounts), from `pull_memory.py`."""
    results = []
    for accounts in sizes:
        log(f"pull memory: {accounts:,} accounts")
        results.append(pull_memory.measure(accounts))
    return results
