"""Salesforce: Account, Contact, Opportunity, Case, Task, Event and User, incremental on
SystemModstamp.

Every read goes through queryAll ordered by (SystemModstamp, Id), so one pass brings both the
changed and the deleted records (IsDeleted = true) and each page's last SystemModstamp is a safe
cursor. Pages are fetched one call at a time (query, then query_more) so a failed call is retried
on its own instead of restarting the stream; an expired session signs in again once and resumes.
A first (or full) pull of an object over `bulk_threshold` records goes through Bulk API 2.0
instead (`salesforce_bulk.py`): a few calls per job rather than one per 2,000 rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceGeneralError
from sqlalchemy.engine import Connection

from smartseg.config import SalesforceSource
from smartseg.config.sources import SalesforceClientCredentials, SalesforcePassword
from smartseg.connectors import records
from smartseg.connectors.errors import Action, ConnectorError, Decision, Failure, MalformedResponse
from smartseg.connectors.http import CallCounter, PinnedSession
from smartseg.connectors.retry import DEFAULT_POLICY, RetryPolicy, call
from smartseg.connectors.salesforce_bulk import read_bulk, split_records
from smartseg.connectors.stream import Page, ReadContext, WriteResult

__all__ = ["SalesforceClient", "SalesforceStream", "salesforce_streams"]

SOURCE = "salesforce"
T = TypeVar("T")
log = logging.getLogger("smartseg.connectors")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SalesforceClient:
    """A signed-in simple-salesforce client whose calls are counted, retried and re-signed."""

    def __init__(
        self,
        config: SalesforceSource,
        calls: CallCounter,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.policy = policy
        self.sleep = sleep
        self.session = PinnedSession(
            source=SOURCE,
            counter=calls,
            timeout=config.timeout.total_seconds(),
            ca_file=config.ca_file,
        )
        self._sf: Salesforce | None = None
        self._user_id: str | None = None

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self.login()
        assert self._sf is not None
        return self._sf

    def login(self) -> None:
        """Sign in with the configured flow (OAuth, or a given session id)."""
        auth = self.config.auth
        if isinstance(auth, SalesforceClientCredentials | SalesforcePassword):
            token, instance, identity = self._oauth()
            # The identity URL ends in the signed-in user's id: .../id/<org id>/<user id>.
            self._user_id = identity.rstrip("/").rpartition("/")[2] or None
        else:
            token, instance = auth.session_id.get_secret_value(), self.config.instance_url
        self._sf = Salesforce(
            session_id=token,
            instance_url=instance,
            session=self.session,
            version=self.config.api_version,
        )

    def user_id(self) -> str:
        """The integration user's id: from the sign-in's identity URL, else (a given session id)
        from one call to the OpenID Connect UserInfo endpoint."""
        sf = self.sf
        if self._user_id is None:

            def userinfo() -> str:
                url = f"https://{sf.sf_instance}/services/oauth2/userinfo"
                response = self.session.get(
                    url, headers={"Authorization": f"Bearer {sf.session_id}"}
                )
                if response.status_code == 429 or response.status_code >= 500:
                    raise SalesforceGeneralError(url, response.status_code, "userinfo", b"")
                user = _json(response).get("user_id")
                if response.status_code != 200 or not user:
                    raise ConnectorError(SOURCE, "userinfo", Decision(
                        Action.FAIL, Failure.CONFIG,
                        f"Salesforce did not say who the integration user is (UserInfo answered "
                        f"HTTP {response.status_code}); sign in with client_credentials or "
                        "password instead of a session id",
                        status=response.status_code,
                    ))  # fmt: skip
                return str(user)

            self._user_id = self.run(userinfo, "userinfo")
        return self._user_id

    def _oauth(self) -> tuple[str, str, str]:
        auth = self.config.auth
        form: dict[str, str]
        if isinstance(auth, SalesforceClientCredentials):
            form = {
                "grant_type": "client_credentials",
                "client_id": auth.client_id,
                "client_secret": auth.client_secret.get_secret_value(),
            }
        else:
            assert isinstance(auth, SalesforcePassword)
            token = auth.security_token.get_secret_value() if auth.security_token else ""
            form = {
                "grant_type": "password",
                "username": auth.username,
                "password": auth.password.get_secret_value() + token,
                "client_id": auth.client_id or "",
                "client_secret": auth.client_secret.get_secret_value()
                if auth.client_secret
                else "",
            }
        url = f"{self.config.login_url}/services/oauth2/token"

        def post() -> requests.Response:
            response = self.session.post(url, data=form)
            if response.status_code == 429 or response.status_code >= 500:
                # As simple-salesforce would raise it, so the error table retries it (honouring
                # Retry-After). requests' own HTTPError is not in that table: a 503 at sign-in
                # failed the run at once as an "unexpected HTTPError", and a 429 was reported
                # as bad credentials.
                error = SalesforceGeneralError(url, response.status_code, "login", response.content)
                error.retry_after = response.headers.get("Retry-After")  # type: ignore[attr-defined]
                raise error
            return response

        response = call(post, source=SOURCE, stream="login", policy=self.policy, **self._sleep())
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            reason = (
                body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
            )
            raise ConnectorError(
                SOURCE,
                "login",
                Decision(
                    Action.FAIL,
                    Failure.CONFIG,
                    f"sign-in to {self.config.login_url} failed ({reason}); check "
                    "sources.salesforce.auth",
                    status=response.status_code,
                ),
            )
        return (
            str(body["access_token"]),
            str(body.get("instance_url") or self.config.instance_url),
            str(body.get("id") or ""),
        )

    def run(self, fn: Callable[[], T], stream: str) -> T:
        """One API call through the retry table; on an expired session, sign in and retry."""

        def attempt() -> T:
            try:
                return fn()
            except SalesforceError as exc:
                # simple-salesforce's exceptions carry no headers: attach the Retry-After
                # the session saw, so a 429 waits as long as Salesforce asked.
                exc.retry_after = self.session.last_retry_after  # type: ignore[attr-defined]
                raise

        return call(
            attempt,
            source=SOURCE,
            stream=stream,
            policy=self.policy,
            reauth=self.login,
            **self._sleep(),
        )

    def query(self, soql: str, stream: str) -> dict[str, Any]:
        return self.run(lambda: _query_page(self.sf.query(soql, include_deleted=True)), stream)

    def query_more(self, locator: str, stream: str) -> dict[str, Any]:
        return self.run(
            lambda: _query_page(
                self.sf.query_more(locator, identifier_is_url=True, include_deleted=True)
            ),
            stream,
        )

    def pause(self, seconds: float) -> None:
        """Wait between polls of an asynchronous job (the injected sleep, so tests need not)."""
        (self.sleep or time.sleep)(seconds)

    def _sleep(self) -> dict[str, Any]:
        return {"sleep": self.sleep} if self.sleep is not None else {}


def _query_page(response: Any) -> dict[str, Any]:
    """A query page, once it holds the list of records every page documents (else retried)."""
    if not isinstance(response, dict) or not isinstance(response.get("records"), list):
        raise MalformedResponse("Salesforce answered a query without its list of records")
    return response


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True, slots=True)
class SalesforceStream:
    """One sObject pulled with SOQL into one store table (see `records.py` for the mapping)."""

    client: SalesforceClient
    name: str
    fields: tuple[str, ...]
    writer: Callable[[Connection, list[Mapping[str, Any]], list[str]], WriteResult]
    source: str = SOURCE

    @property
    def key(self) -> str:
        return f"{self.source}.{self.name}"

    def soql(self, since: dt.datetime | None, *, ordered: bool = True) -> str:
        """The stream's query; identifiers are checked, the only literal is a formatted time."""
        for name in (self.name, *self.fields):
            if not _IDENTIFIER.match(name):
                raise ConnectorError(SOURCE, self.name, Decision(
                    Action.FAIL, Failure.CONFIG,
                    f"{name!r} is not a Salesforce API name; check sources.salesforce.field_map",
                ))  # fmt: skip
        where = f" WHERE SystemModstamp >= {_soql_datetime(since)}" if since else ""
        order = " ORDER BY SystemModstamp, Id" if ordered else ""
        return f"SELECT {', '.join(self.fields)} FROM {self.name}{where}{order}"

    def read(self, context: ReadContext) -> Iterator[Page]:
        response = self.client.query(self.soql(context.since), self.name)
        if context.since is not None:
            log.info("salesforce %s: incremental since %s, over REST", self.name, context.since)
            yield from self._rest(response)
            return
        # The first page's totalSize is the query's size, so a first pull learns whether it is
        # large at no extra cost; only a pull that goes to Bulk pays for one unused page.
        size, threshold = int(response.get("totalSize") or 0), self.client.config.bulk_threshold
        if size <= threshold:
            log.info("salesforce %s: first pull of %d records, within bulk_threshold %d: REST",
                     self.name, size, threshold)  # fmt: skip
            yield from self._rest(response)
            return
        log.info("salesforce %s: first pull of %d records, over bulk_threshold %d: Bulk API 2.0",
                 self.name, size, threshold)  # fmt: skip
        del response
        # Bulk results are unordered whatever the query says, and ORDER BY only slows the job.
        yield from read_bulk(self.client, self.name, self.soql(None, ordered=False))

    def _rest(self, response: dict[str, Any]) -> Iterator[Page]:
        while True:
            yield _page(response["records"])
            locator = response.get("nextRecordsUrl")
            if response.get("done", True) or not locator:
                return
            response = self.client.query_more(locator, self.name)

    def write(self, connection: Connection, page: Page) -> WriteResult:
        return self.writer(connection, list(page.records), list(page.deleted))


def _page(rows: list[dict[str, Any]]) -> Page:
    live, deleted, cursor = split_records(rows)
    return Page(records=live, cursor=cursor, deleted=deleted)


def _soql_datetime(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _writer(
    spec: records.ObjectSpec, clock: Callable[[], dt.datetime]
) -> Callable[[Connection, list[Mapping[str, Any]], list[str]], WriteResult]:
    def write(
        connection: Connection, rows: list[Mapping[str, Any]], deleted: list[str]
    ) -> WriteResult:
        return spec.write(connection, rows, deleted, clock())

    return write


def salesforce_streams(
    config: SalesforceSource, client: SalesforceClient, clock: Callable[[], dt.datetime]
) -> list[SalesforceStream]:
    """The configured objects, in link order (accounts before what points at them)."""
    streams = []
    for sobject in records.SALESFORCE_ORDER:
        if sobject not in config.objects:
            continue
        spec = records.salesforce_spec(sobject, config)
        streams.append(
            SalesforceStream(
                client=client,
                name=sobject,
                fields=spec.fields,
                writer=_writer(spec, clock),
            )
        )
    return streams
