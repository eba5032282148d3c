"""The fake Stripe API: routes, API-key auth, Stripe's errors, idempotency keys and headers.

`StripeServer` speaks the v1 REST API at the version stripe-python 16.1.0 pins, for the calls
smartseg makes through `stripe.StripeClient(key, base_addresses={"api": server.url})`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartseg.sandbox import credentials
from smartseg.sandbox.http import ApiServer, Faults, Request, Response, TlsFiles, json_response
from smartseg.sandbox.stripe_api import catalog, subscriptions
from smartseg.sandbox.stripe_api.context import Ctx
from smartseg.sandbox.stripe_api.errors import StripeError, error_body, redact_key
from smartseg.sandbox.stripe_api.forms import decode, validate
from smartseg.sandbox.stripe_api.objects import API_VERSION, list_object, render
from smartseg.sandbox.stripe_api.params import SPECS
from smartseg.sandbox.stripe_api.store import IdMaker, Store
from smartseg.sandbox.world import World

__all__ = ["StripeServer"]

Json = dict[str, Any]
Handler = Callable[[Ctx, dict[str, Any], str | None], Json]
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")
_MAX_IDEMPOTENCY_KEY = 255
_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
_RESOURCES = {
    "customers": "customer", "products": "product", "prices": "price", "coupons": "coupon",
    "discounts": "discount", "subscriptions": "subscription", "invoices": "invoice",
    "events": "event",
}  # fmt: skip
# (method, path, handler): the path's {id} reaches the handler as its third argument.
_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/customers", catalog.create_customer),
    ("GET", "/v1/customers", catalog.list_customers),
    ("GET", "/v1/customers/search", catalog.search_customers),
    ("GET", "/v1/customers/{id}", catalog.retrieve_customer),
    ("POST", "/v1/customers/{id}", catalog.update_customer),
    ("DELETE", "/v1/customers/{id}", catalog.delete_customer),
    ("POST", "/v1/products", catalog.create_product),
    ("GET", "/v1/products", catalog.list_products),
    ("GET", "/v1/products/{id}", catalog.retrieve_product),
    ("POST", "/v1/products/{id}", catalog.update_product),
    ("DELETE", "/v1/products/{id}", catalog.delete_product),
    ("POST", "/v1/prices", catalog.create_price),
    ("GET", "/v1/prices", catalog.list_prices),
    ("GET", "/v1/prices/{id}", catalog.retrieve_price),
    ("POST", "/v1/prices/{id}", catalog.update_price),
    ("POST", "/v1/coupons", catalog.create_coupon),
    ("GET", "/v1/coupons", catalog.list_coupons),
    ("GET", "/v1/coupons/{id}", catalog.retrieve_coupon),
    ("POST", "/v1/coupons/{id}", catalog.update_coupon),
    ("DELETE", "/v1/coupons/{id}", catalog.delete_coupon),
    ("POST", "/v1/subscriptions", subscriptions.create_subscription),
    ("GET", "/v1/subscriptions", subscriptions.list_subscriptions),
    ("GET", "/v1/subscriptions/search", subscriptions.search_subscriptions),
    ("GET", "/v1/subscriptions/{id}", subscriptions.retrieve_subscription),
    ("POST", "/v1/subscriptions/{id}", subscriptions.update_subscription),
    ("DELETE", "/v1/subscriptions/{id}", subscriptions.cancel_subscription),
    ("GET", "/v1/invoices", subscriptions.list_invoices),
    ("GET", "/v1/invoices/{id}", subscriptions.retrieve_invoice),
    ("GET", "/v1/events", subscriptions.list_events),
    ("GET", "/v1/events/{id}", subscriptions.retrieve_event),
]


@dataclass(frozen=True, slots=True)
class _Saved:
    """A POST's response, kept under its Idempotency-Key for replay."""

    fingerprint: tuple[str, tuple[tuple[str, str], ...]]
    response: Response


class StripeServer(ApiServer):
    """A stateful fake Stripe account over HTTP; `load(world)` seeds it from a synthetic world."""

    name = "stripe"
    DEFAULT_API_KEY = credentials.STRIPE_API_KEY
    API_VERSION = API_VERSION

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
        faults: Faults | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        salesforce_id: Callable[[str, int], str] | None = None,
    ) -> None:
        super().__init__(host, port, tls=tls, faults=faults)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.api_keys = {self.DEFAULT_API_KEY}
        self.store = Store()
        self._lock = threading.RLock()
        self._saved: dict[tuple[str, str], _Saved] = {}
        self._request_ids = IdMaker()
        for method, path, handler in _ROUTES:
            self.router.add(method, path, self._endpoint(handler, SPECS[handler.__name__]))
        self.router.add("GET", "/_sandbox/objects/{resource}", self._objects, internal=True)
        if world is not None:
            self.load(world, salesforce_id=salesforce_id)

    def load(self, world: World, *, salesforce_id: Callable[[str, int], str] | None = None) -> None:
        """Replace the account's contents with `world` (see `load.py` for the mapping)."""
        from smartseg.sandbox.stripe_api.load import load_world

        store = load_world(world, salesforce_id=salesforce_id)
        with self._lock:
            self.store = store
            self._saved.clear()

    # Hooks --------------------------------------------------------------------------------

    def error_response(
        self, status: int, reason: str, *, retry_after: float | None = None
    ) -> Response:
        """Stripe-shaped errors for the shared core's faults and unrouted requests."""
        if status == 429:
            error = StripeError(
                429,
                "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                type="invalid_request_error",
                code="rate_limit",
                # Only lock-timeout 429s are worth retrying; Stripe tells the SDK so.
                headers={"Stripe-Should-Retry": "false"},
            )
        elif status >= 500:
            error = StripeError(
                status,
                "An unknown error occurred while processing your request.",
                type="api_error",
            )
        else:
            error = StripeError(
                status,
                "Unrecognized request URL. Please see https://stripe.com/docs or we can help "
                "at https://support.stripe.com/.",
            )
        return self._error(error, self._new_request_id())

    def authenticate(self, request: Request) -> Response | None:
        key = _api_key(request.headers.get("authorization", ""))
        if key is None:
            error = StripeError(401, _NO_KEY)
        elif key not in self.api_keys:
            error = StripeError(401, f"Invalid API Key provided: {redact_key(key)}")
        else:
            return None
        error.headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
        return self._error(error, self._new_request_id())

    def decorate(self, request: Request, response: Response) -> None:
        response.headers.setdefault("Request-Id", self._new_request_id())
        response.headers.setdefault("Stripe-Version", _version(request))

    # Dispatch -----------------------------------------------------------------------------

    def _new_request_id(self) -> str:
        with self._lock:
            return self._request_ids.new("req")

    def _error(self, error: StripeError, request_id: str, version: str = API_VERSION) -> Response:
        headers = {"Request-Id": request_id, "Stripe-Version": version, **error.headers}
        return json_response(error_body(error, request_id), error.status, headers)

    def _endpoint(self, handler: Handler, spec: dict[str, Any]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            request_id = self._new_request_id()
            try:
                with self._lock:
                    return self._execute(request, handler, spec, request_id)
            except StripeError as error:
                return self._error(error, request_id)

        return run

    def _execute(
        self, request: Request, handler: Handler, spec: dict[str, Any], request_id: str
    ) -> Response:
        version = request.headers.get("stripe-version")
        if version is not None and not _VERSION.fullmatch(version):
            raise StripeError(400, f"Invalid Stripe API version: {version}")
        if request.method == "POST":
            pairs = urllib.parse.parse_qsl(request.body.decode(), keep_blank_values=True)
        else:
            pairs = [(k, v) for k, values in request.query.items() for v in values]
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        fingerprint = (request.path, tuple(sorted(pairs)))
        if key is not None:
            replay = self._replay(key, request, fingerprint)
            if replay is not None:
                return replay
        params = validate(decode(pairs), spec)
        ctx = Ctx(self.store, int(self.clock().timestamp()), request_id, key)
        body = handler(ctx, params, request.params.get("id"))
        ctx.expand(body, params.get("expand", []))
        headers = {"Request-Id": request_id, "Stripe-Version": _version(request)}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = json_response(body, 200, headers)
        if key is not None:
            self._saved[(_api_key(request.headers.get("authorization", "")) or "", key)] = _Saved(
                fingerprint, response
            )
        return response

    def _replay(
        self, key: str, request: Request, fingerprint: tuple[str, tuple[tuple[str, str], ...]]
    ) -> Response | None:
        """The saved response for a reused Idempotency-Key, or an error if the request differs."""
        if len(key) > _MAX_IDEMPOTENCY_KEY:
            raise StripeError(
                400, "Idempotency-Key must be at most 255 characters long.", param="Idempotency-Key"
            )
        saved = self._saved.get((_api_key(request.headers.get("authorization", "")) or "", key))
        if saved is None:
            return None
        if saved.fingerprint != fingerprint:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        original = saved.response
        headers = {
            **original.headers,
            "Idempotent-Replayed": "true",
            "Original-Request": original.headers["Request-Id"],
        }
        return Response(original.status, original.body, headers)

    def _objects(self, request: Request) -> Response:
        """Every stored object of a resource, rendered, newest first (for tests)."""
        kind = _RESOURCES.get(request.params["resource"])
        if kind is None:
            return json_response({"error": f"unknown resource; one of {sorted(_RESOURCES)}"}, 404)
        with self._lock:
            table = self.store[kind]
            data = [render(self.store, kind, r) for r in table.newest_first()]
        return json_response(list_object(data, False, f"/_sandbox/objects/{kind}"))


def _api_key(authorization: str) -> str | None:
    """The secret key from a Bearer header or from HTTP basic auth (key as the user name)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


def _version(request: Request) -> str:
    return request.headers.get("stripe-version") or API_VERSION
