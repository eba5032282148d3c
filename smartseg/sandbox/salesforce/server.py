"""The fake Salesforce org: REST API v59.0 (any vNN.N) over HTTPS, for simple-salesforce.

`SalesforceServer` owns the schema, the store and the sessions; the route handlers live in
`rest.py` (query, sObjects, limits), `composite.py` (sObject Collections), `tooling.py`
(CustomField) and `bulk.py` (Bulk API 2.0), each registering itself on this server;
`permissions.py` decides which fields the API user may see and write.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Callable
from typing import Any

from smartseg.sandbox import credentials
from smartseg.sandbox.http import (
    ApiServer,
    Faults,
    Request,
    Response,
    TlsFiles,
    json_response,
)
from smartseg.sandbox.salesforce import bulk, composite, permissions, rest, tooling
from smartseg.sandbox.salesforce.errors import SfError, error_body
from smartseg.sandbox.salesforce.load import LoadedIds, add_integration_user, load_world
from smartseg.sandbox.salesforce.objects import build_schema
from smartseg.sandbox.salesforce.query import QueryEngine, render_record
from smartseg.sandbox.salesforce.store import Clock, Store, utc_now
from smartseg.sandbox.world import World

__all__ = ["SalesforceServer"]

_DATA_PATH = re.compile(r"^/services/data/(v\d{2,3}\.\d)(?:/|$)")
_UNAUTHENTICATED = ("/services/oauth2/", "/_sandbox/")
_FAULT_ERRORS = {
    400: ("JSON_PARSER_ERROR", "Unexpected character in JSON request body at [line:1, column:1]"),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    405: ("METHOD_NOT_ALLOWED", "HTTP Method not allowed for this resource"),
    429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if "
        "you contact support: 1781412355-52071 (-1282385431)",
    ),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable; please try again later."),
}

SfHandler = Callable[[Request], Response]


class SalesforceServer(ApiServer):
    """A stateful Salesforce org seeded from a World; start() it, then point the SDK at `url`."""

    name = "salesforce"
    ORG_ID = "00D5g000004SANDBOX"
    DEFAULT_CLIENT_ID = credentials.SALESFORCE_CLIENT_ID
    DEFAULT_CLIENT_SECRET = credentials.SALESFORCE_CLIENT_SECRET
    DEFAULT_SESSION_ID = credentials.SALESFORCE_SESSION_ID
    DEFAULT_USERNAME = credentials.SALESFORCE_USERNAME
    DEFAULT_PASSWORD = credentials.SALESFORCE_PASSWORD
    DEFAULT_SECURITY_TOKEN = credentials.SALESFORCE_SECURITY_TOKEN

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles,
        faults: Faults | None = None,
        api_limit: int = 100_000,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(host, port, tls=tls, faults=faults)
        self.api_limit = api_limit
        self.api_used = 0
        self.bulk_query_jobs = 0
        self.bulk_batches = 0
        self.schema = build_schema()
        self.store = Store(self.schema, clock)
        self.queries = QueryEngine(self.store, self.schema)
        self.ids = LoadedIds()
        add_integration_user(self.store, self.ids)
        self._sessions = {self.DEFAULT_SESSION_ID}
        self._session_lock = threading.Lock()
        self._issued = 0
        self.tooling = tooling.Tooling(self)
        self.router.add("POST", "/services/oauth2/token", self._token)
        rest.register(self)
        composite.register(self)
        self.bulk = bulk.register(self)
        self.tooling.register()
        self.field_security = permissions.FieldSecurity(self)
        self.field_security.register()
        self.router.add("GET", "/services/oauth2/userinfo", self._userinfo)
        self.router.add("GET", "/_sandbox/records/{sobject}", self._records, internal=True)
        if world is not None:
            self.load(world)

    # World --------------------------------------------------------------------------------------

    def load(self, world: World) -> None:
        """Replace nothing, add everything: Users, Accounts, Contacts, ... from the world."""
        with self.store.lock:
            self.store.tables["User"].pop(self.ids.integration_user, None)
            self.ids = load_world(self.store, world)

    def salesforce_id(self, kind: str, idx: int) -> str:
        """The id of a world entity: kind is rep, company, person, opportunity, activity, ticket."""
        return self.ids.of(kind, idx)

    # Routing helpers ----------------------------------------------------------------------------

    def add_route(self, method: str, template: str, handler: SfHandler) -> None:
        """Register a handler under /services/data/{version}; SfError becomes an error response."""

        def run(request: Request) -> Response:
            try:
                return handler(request)
            except SfError as exc:
                return exc.response()

        self.router.add(method, "/services/data/{version}" + template, run)

    # Hooks --------------------------------------------------------------------------------------

    def error_response(
        self, status: int, reason: str, *, retry_after: float | None = None
    ) -> Response:
        code, message = _FAULT_ERRORS.get(status, ("UNKNOWN_EXCEPTION", reason))
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return error_body(status, [{"message": message, "errorCode": code, "fields": []}], headers)

    def authenticate(self, request: Request) -> Response | None:
        if (
            request.path.startswith(_UNAUTHENTICATED)
            or request.path.rstrip("/") == "/services/data"
        ):
            return None
        if request.path.startswith("/services/data/") and not _DATA_PATH.match(request.path):
            return self.error_response(404, "not_found")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._session_lock:
            valid = scheme.lower() in ("bearer", "oauth") and token.strip() in self._sessions
            if not valid:
                return self.error_response(401, "invalid_session")
            if self.api_used >= self.api_limit:
                return error_body(
                    403,
                    [
                        {
                            "message": "TotalRequests Limit exceeded.",
                            "errorCode": "REQUEST_LIMIT_EXCEEDED",
                            "fields": [],
                        }
                    ],
                )
            self.api_used += 1
        return None

    def expire_sessions(self) -> None:
        with self._session_lock:
            self._sessions.clear()

    def decorate(self, request: Request, response: Response) -> None:
        if request.path.startswith("/services/data/"):
            with self._session_lock:
                response.headers["Sforce-Limit-Info"] = (
                    f"api-usage={self.api_used}/{self.api_limit}"
                )

    def usage(self) -> tuple[int, int]:
        """(API calls used, daily limit)."""
        with self._session_lock:
            return self.api_used, self.api_limit

    # OAuth --------------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = request.form()
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            form.setdefault("client_id", client_id)
            form.setdefault("client_secret", secret)
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "password"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if (form.get("client_id"), form.get("client_secret")) != (
            self.DEFAULT_CLIENT_ID,
            self.DEFAULT_CLIENT_SECRET,
        ):
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "password" and (
            form.get("username") != self.DEFAULT_USERNAME
            or form.get("password") not in (self.DEFAULT_PASSWORD + self.DEFAULT_SECURITY_TOKEN,)
        ):
            return _oauth_error("invalid_grant", "authentication failure")
        with self._session_lock:
            self._issued += 1
            token = f"{self.ORG_ID}!sandbox-oauth-{self._issued:06d}"
            self._sessions.add(token)
        issued_at = str(int(self.store.clock().timestamp() * 1000))
        signature = base64.b64encode(hashlib.sha256(f"{token}{issued_at}".encode()).digest())
        return json_response(
            {
                "access_token": token,
                "instance_url": self.url,
                "id": f"{self.url}/id/{self.ORG_ID}/{self.ids.integration_user}",
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature.decode(),
            }
        )

    def _userinfo(self, request: Request) -> Response:
        """OpenID Connect UserInfo: who the bearer token belongs to (always the API user)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._session_lock:
            valid = scheme.lower() in ("bearer", "oauth") and token.strip() in self._sessions
        if not valid:
            return Response(403, b"Bad_OAuth_Token", {"Content-Type": "text/plain"})
        return json_response(
            {
                "sub": f"{self.url}/id/{self.ORG_ID}/{self.ids.integration_user}",
                "user_id": self.ids.integration_user,
                "organization_id": self.ORG_ID,
                "preferred_username": self.DEFAULT_USERNAME,
                "active": True,
            }
        )

    # Inspection ---------------------------------------------------------------------------------

    def _records(self, request: Request) -> Response:
        obj = self.schema.get(request.params["sobject"])
        if obj is None:
            return self.error_response(404, "not_found")
        with self.store.lock:
            rows: list[dict[str, Any]] = [
                render_record(obj, r, None, "v59.0") for r in self.store.tables[obj.name].values()
            ]
        return json_response(rows)


def _oauth_error(error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, 400)
