"""The HTTP(S) core shared by the three fake APIs: routing, TLS, request log and fault injection.

Built on the standard library's threading HTTP server rather than a web framework because fault
injection needs the raw socket: a "dropped connection" must send a status line, headers and half
a body, then close, exactly as a failing load balancer does. Connections are HTTP/1.1 keep-alive
so the SDKs' connection pools behave as they do in production.

An API subclasses `ApiServer`, registers handlers on `self.router`, and overrides the hooks that
give errors its vendor's shape (`error_response`) and check credentials (`authenticate`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import http
import json
import logging
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "ApiServer",
    "FaultRule",
    "Faults",
    "HttpError",
    "Request",
    "Response",
    "Router",
    "TlsFiles",
    "html_page",
    "json_response",
    "make_tls",
    "parse_fault_spec",
]

JsonObj = Any
log = logging.getLogger("smartseg.sandbox")

# Request-level faults, plus "partial" which batch handlers consult per item (Request.item_fails).
# "html" answers as a proxy in front of the API would (an HTML error page with `status`);
# "truncate" sends a complete HTTP response whose body is cut in half (JSON that ends early);
# "edit" passes the JSON body through the rule's `edit` function (a record missing a field, a
# value of the wrong type: what a vendor's bug or an API change looks like on the wire).
FAULT_KINDS = (
    "429", "500", "503", "slow", "drop", "expire", "partial", "html", "truncate", "edit",
)  # fmt: skip

_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    obj: JsonObj, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response; `obj` None with status 204 gives an empty body."""
    body = b"" if obj is None else json.dumps(obj, separators=(",", ":"), default=str).encode()
    merged = {"Content-Type": "application/json;charset=UTF-8"}
    merged.update(headers or {})
    return Response(status, body, merged)


def html_page(status: int) -> Response:
    """The HTML error page a load balancer or proxy answers with when the API behind it fails."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body = _HTML_PAGE.format(status=status, reason=reason).encode()
    return Response(status, body, {"Content-Type": "text/html", "Server": "nginx"})


class HttpError(Exception):
    """Raised by a handler to answer with `response` at once (validation errors, 404s)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    route: str = ""  # "METHOD /template", the key of the request log
    server: ApiServer | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> JsonObj:
        """The body as JSON; a body that is not JSON answers the API's own 400."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            assert self.server is not None
            raise HttpError(self.server.error_response(400, "malformed_json")) from None

    def form(self) -> dict[str, str]:
        """An x-www-form-urlencoded body as a flat dict (Stripe, OAuth)."""
        return {k: v[-1] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}

    def item_fails(self) -> bool:
        """True when a "partial" fault says this item of a batch must fail."""
        return self.server is not None and self.server.faults.partial(self.route)


Handler = Callable[[Request], Response]
_PARAM = re.compile(r"\{(\w+)\}")


class Router:
    """Maps "METHOD /path/{param}" templates to handlers; a param matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], str, Handler, bool]] = []

    def add(self, method: str, template: str, handler: Handler, *, internal: bool = False) -> None:
        """Register a handler. `internal` routes (/_sandbox) are not counted, faulted or authed."""
        pattern = (
            "^"
            + _PARAM.sub(
                r"(?P<\1>[^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
            )
            + "/?$"
        )
        self._routes.append((method, re.compile(pattern), template, handler, internal))

    def route(
        self, method: str, template: str, *, internal: bool = False
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, template, handler, internal=internal)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str], str, bool] | None:
        """The handler, path params, log key and internal flag; None if nothing matches."""
        for route_method, pattern, template, handler, internal in self._routes:
            if route_method != method:
                continue
            found = pattern.match(path)
            if found:
                params = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
                return handler, params, f"{method} {template}", internal
        return None

    def allows(self, path: str) -> bool:
        """True when some method serves this path (a 405 rather than a 404)."""
        return any(pattern.match(path) for _, pattern, _, _, _ in self._routes)


@dataclass(slots=True)
class FaultRule:
    """One switchable fault.

    kind: one of FAULT_KINDS. method/path: fnmatch globs on the request's method and route
    template (or raw path). It fires on matching requests after the first `after`, on every
    `every`-th one or with `probability`, at most `times` times (None: no limit). `status` is
    the status of the "html" kind's page; `edit` (in-process rules only) rewrites the parsed
    JSON body for the "edit" kind and returns what to send.
    """

    kind: str
    method: str = "*"
    path: str = "*"
    probability: float = 1.0
    every: int | None = None
    after: int = 0
    times: int | None = None
    retry_after: float = 1.0
    delay: float = 0.5
    status: int = 502
    edit: Callable[[JsonObj], JsonObj] | None = None
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}"
            )
        has_edit = self.edit is not None
        if (self.kind == "edit") != has_edit or (has_edit and not callable(self.edit)):
            raise ValueError('an "edit" fault needs an edit function, and only it takes one')
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability must be between 0 and 1, not {self.probability}")

    def matches(self, route: str) -> bool:
        method, _, template = route.partition(" ")
        return fnmatch.fnmatchcase(method, self.method) and fnmatch.fnmatchcase(template, self.path)

    def fire(self, rng: random.Random) -> bool:
        """Count one matching request; True if the fault applies to it."""
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        if self.every is not None and (self.seen - self.after) % self.every != 0:
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


def parse_fault_spec(spec: str) -> dict[str, list[FaultRule]]:
    """Parse the CLI form: comma-separated `server.kind[:key=value...]`, server '*' for all.

    Example: ``salesforce.429:probability=0.05:retry_after=1,hubspot.drop:every=50,*.500:times=2``.
    Keys are FaultRule's fields. Returns the rules per server name ('*' included).
    """
    rules: dict[str, list[FaultRule]] = {}
    for raw in filter(None, (part.strip() for part in spec.split(","))):
        head, *options = raw.split(":")
        server, dot, kind = head.partition(".")
        if not dot:
            raise ValueError(f"fault {raw!r}: expected SERVER.KIND, e.g. hubspot.429")
        kwargs: dict[str, Any] = {}
        for option in options:
            key, eq, value = option.partition("=")
            if (
                not eq
                or key not in FaultRule.__dataclass_fields__
                or key in ("kind", "edit", "seen", "fired")
            ):
                raise ValueError(f"fault {raw!r}: bad option {option!r}")
            kwargs[key] = _coerce_option(key, value)
        rules.setdefault(server, []).append(FaultRule(kind=kind, **kwargs))
    return rules


def _coerce_option(key: str, value: str) -> Any:
    if key in ("method", "path"):
        return value
    if key in ("every", "after", "times", "status"):
        return int(value)
    return float(value)


class Faults:
    """The fault rules of one server; thread-safe, seeded so a fault schedule can be replayed."""

    def __init__(self, rules: Iterable[FaultRule] = (), seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules = list(rules)
        self._rng = random.Random(seed)

    def set(self, rules: Iterable[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            if seed is not None:
                self._rng = random.Random(seed)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        self.set([])

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def pick(self, route: str) -> FaultRule | None:
        """The first request-level fault that fires for this request, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.kind != "partial" and rule.matches(route) and rule.fire(self._rng):
                    return rule
        return None

    def partial(self, route: str) -> bool:
        with self._lock:
            return any(
                r.kind == "partial" and r.matches(route) and r.fire(self._rng) for r in self._rules
            )


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A throwaway certificate authority and the server context it signed."""

    ca_file: Path
    context: ssl.SSLContext


def make_tls(directory: Path, hosts: Iterable[str] = ("127.0.0.1", "localhost", "::1")) -> TlsFiles:
    """Create a CA and a server certificate for `hosts`; the CA goes to directory/sandbox-ca.pem."""
    import trustme

    ca = trustme.CA(organization_name="smartseg sandbox")
    cert = ca.issue_cert(*dict.fromkeys(hosts))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "sandbox-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(ca_file=ca_file, context=context)


class ApiServer:
    """A threaded HTTP(S) server for one fake API. Subclasses register routes and override hooks."""

    name = "api"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: TlsFiles | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.tls = tls
        self.faults = faults or Faults()
        self.router = Router()
        self._counts: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.router.add("GET", "/_sandbox/requests", self._get_requests, internal=True)
        self.router.add("DELETE", "/_sandbox/requests", self._reset_requests, internal=True)
        self.router.add(
            "GET",
            "/_sandbox/faults",
            lambda r: json_response(self.faults.snapshot()),
            internal=True,
        )
        self.router.add("PUT", "/_sandbox/faults", self._put_faults, internal=True)
        self.router.add("DELETE", "/_sandbox/faults", self._clear_faults, internal=True)

    # Hooks for subclasses -------------------------------------------------------------------

    def error_response(
        self, status: int, reason: str, *, retry_after: float | None = None
    ) -> Response:
        """The vendor-shaped error body for a status (429, 500, 503, 400, 401, 404, 405)."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return json_response({"error": reason}, status, headers)

    def authenticate(self, request: Request) -> Response | None:
        """None when the request's credentials are good, otherwise the error to answer."""
        return None

    def expire_sessions(self) -> None:
        """Invalidate every current session token (the "expire" fault)."""

    def decorate(self, request: Request, response: Response) -> None:
        """Add per-response headers (e.g. Sforce-Limit-Info) before sending."""

    # Lifecycle --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> ApiServer:
        """Bind and serve in a daemon thread; returns once the socket accepts connections."""
        self._httpd = _Server(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Request log ------------------------------------------------------------------------------

    def request_counts(self) -> dict[str, Any]:
        with self._count_lock:
            return {
                "total": sum(self._counts.values()),
                "by_route": dict(sorted(self._counts.items())),
            }

    def _get_requests(self, request: Request) -> Response:
        return json_response(self.request_counts())

    def _reset_requests(self, request: Request) -> Response:
        with self._count_lock:
            self._counts.clear()
        return json_response(None, 204)

    def _put_faults(self, request: Request) -> Response:
        body = request.json()
        items = body.get("rules", []) if isinstance(body, dict) else body
        try:
            rules = [FaultRule(**item) for item in items]
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        self.faults.set(rules, seed=body.get("seed") if isinstance(body, dict) else None)
        return json_response(self.faults.snapshot())

    def _clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return json_response(None, 204)

    # Dispatch ---------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> tuple[Response, FaultRule | None]:
        """Route, count, inject faults, authenticate and run the handler."""
        request.server = self
        found = self.router.match(request.method, request.path)
        if found is None:
            status = 405 if self.router.allows(request.path) else 404
            with self._count_lock:
                self._counts[f"{request.method} (unmatched)"] += 1
            return self.error_response(
                status, "not_found" if status == 404 else "method_not_allowed"
            ), None
        handler, request.params, request.route, internal = found
        if internal:
            return self._run(handler, request), None
        with self._count_lock:
            self._counts[request.route] += 1
        fault = self.faults.pick(request.route)
        if fault is not None:
            if fault.kind == "429":
                return self.error_response(429, "rate_limited", retry_after=fault.retry_after), None
            if fault.kind in ("500", "503"):
                return self.error_response(int(fault.kind), "server_error"), None
            if fault.kind == "html":
                return html_page(fault.status), None
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "expire":
                self.expire_sessions()
        denied = self.authenticate(request)
        if denied is not None:
            return denied, None
        response = self._run(handler, request)
        self.decorate(request, response)
        if fault is not None and fault.kind == "truncate":
            response.body = response.body[: len(response.body) // 2]
        elif fault is not None and fault.kind == "edit" and fault.edit and response.body:
            edited = fault.edit(json.loads(response.body))
            response.body = json.dumps(edited, separators=(",", ":"), default=str).encode()
        return response, fault if fault is not None and fault.kind == "drop" else None

    def _run(self, handler: Handler, request: Request) -> Response:
        try:
            return handler(request)
        except HttpError as exc:
            return exc.response
        except Exception:  # a bug in a fake API must look like a vendor's 500, not a lost socket
            log.exception("%s sandbox: %s %s failed", self.name, request.method, request.path)
            return self.error_response(500, "server_error")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        if ":" in api.host:
            self.address_family = socket.AF_INET6
        super().__init__((api.host, api.requested_port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow client never
        # blocks accept() for everyone else.
        if self.api.tls is not None:
            try:
                request = self.api.tls.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers, adding ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the request log is /_sandbox/requests."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        response, drop = self.server.api.dispatch(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if drop is not None:
            # Promise the whole body, send half, and close: the client sees a truncated read.
            self.end_headers()
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may have gone already
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle
