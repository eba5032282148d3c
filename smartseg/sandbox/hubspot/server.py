"""`HubSpotServer`: the fake HubSpot CRM API (objects, search, properties, owners, associations).

Private-app bearer auth, HubSpot's always-on rate limits (a rolling burst window, 5 searches per
second, a daily allowance) with its `X-HubSpot-RateLimit-*` headers, and HubSpot's error shapes
for faults. Inspection routes under `/_sandbox/` are neither authenticated nor counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import credentials
from ..http import ApiServer, Faults, Request, Response, TlsFiles, json_response
from ..world import World
from .assoc_api import AssociationsApi
from .catalog import OBJECT_TYPES
from .errors import error
from .limits import DailyCounter, RollingWindow
from .load import load_world
from .meta_api import MetaApi
from .objects import render, table_for
from .objects_api import ObjectsApi
from .store import PortalState

__all__ = ["HubSpotServer"]


class HubSpotServer(ApiServer):
    """A stateful HubSpot portal that hubspot-api-client talks to over a real socket."""

    name = "hubspot"
    DEFAULT_TOKEN = credentials.HUBSPOT_TOKEN
    DAILY_LIMIT = 250_000  # Free and Starter tier, per account

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
        faults: Faults | None = None,
        burst_limit: int = 100,
        burst_window: float = 10.0,
        search_per_second: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host, port, tls=tls, faults=faults)
        self.state = PortalState(clock)
        self.token: str | None = self.DEFAULT_TOKEN
        self.burst = RollingWindow(burst_limit, burst_window, clock)
        self.searches = RollingWindow(search_per_second, 1.0, clock)
        self.daily = DailyCounter(self.DAILY_LIMIT, clock)
        ObjectsApi(self.state).register(self.router)
        MetaApi(self.state).register(self.router)
        AssociationsApi(self.state).register(self.router)
        internal = [
            ("GET", "/_sandbox/objects/{objectType}", self._dump_objects),
            ("GET", "/_sandbox/token", lambda r: json_response({"token": self.token})),
            ("POST", "/_sandbox/token", self._set_token),
            ("GET", "/_sandbox/limits", lambda r: json_response(self._limits())),
            ("DELETE", "/_sandbox/limits", self._reset_limits),
        ]
        for method, template, handler in internal:
            self.router.add(method, template, handler, internal=True)
        if world is not None:
            self.load(world)

    def load(self, world: World, salesforce_id: Callable[[str, int], str] | None = None) -> None:
        """Fill this (empty) portal from `world`; see `load.py` for the id scheme."""
        load_world(self.state, world, salesforce_id)

    def __enter__(self) -> HubSpotServer:
        self.start()
        return self

    def reset_token(self, token: str | None = None) -> str:
        """Make `token` (default DEFAULT_TOKEN) the valid one again, e.g. after an expire fault."""
        self.token = token or self.DEFAULT_TOKEN
        return self.token

    def reset_limits(self) -> None:
        """Empty the rate-limit windows, so one test's burst does not throttle the next."""
        self.burst.reset()
        self.searches.reset()
        self.daily.reset()

    # ApiServer hooks ----------------------------------------------------------------------------

    def error_response(
        self, status: int, reason: str, *, retry_after: float | None = None
    ) -> Response:
        """HubSpot-shaped bodies for routing errors and injected faults."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        if status == 429:
            return self._rate_limited("TEN_SECONDLY_ROLLING", headers)
        shapes = {
            400: ("VALIDATION_ERROR", "Invalid input JSON: the request body is not valid JSON"),
            401: ("INVALID_AUTHENTICATION", "Authentication credentials not found."),
            404: ("OBJECT_NOT_FOUND", "resource not found"),
            405: ("VALIDATION_ERROR", "HTTP method not allowed for this resource"),
            500: ("INTERNAL_ERROR", "internal error"),
            503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable; please retry."),
        }
        category, message = shapes.get(status, ("INTERNAL_ERROR", reason))
        return error(status, category, message, headers)

    def authenticate(self, request: Request) -> Response | None:
        """Check the private-app token, then admit the request against the app's limits."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "and private app access tokens.",
            )
        if self.token is None or header[len("Bearer ") :].strip() != self.token:
            return error(
                401,
                "INVALID_AUTHENTICATION",
                "The access token provided is invalid, expired or revoked.",
            )
        if _is_search(request) and not self.searches.admit():
            return self._rate_limited("SECONDLY", None)
        if not self.burst.admit():
            return self._rate_limited("TEN_SECONDLY_ROLLING", self._limit_headers())
        if not self.daily.admit():
            return self._rate_limited("DAILY", self._limit_headers())
        return None

    def expire_sessions(self) -> None:
        """The "expire" fault: the token stops working until `reset_token` or /_sandbox/token."""
        self.token = None

    def decorate(self, request: Request, response: Response) -> None:
        """Rate-limit headers on every API response except search's (HubSpot sends none there)."""
        if not _is_search(request):
            response.headers.update(self._limit_headers())

    # Helpers ------------------------------------------------------------------------------------

    def _limit_headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily.limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(self.daily.remaining()),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.burst.window * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.burst.limit),
            "X-HubSpot-RateLimit-Remaining": str(self.burst.remaining()),
        }

    def _rate_limited(self, policy: str, headers: dict[str, str] | None) -> Response:
        window = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly",
                  "DAILY": "daily"}[policy]  # fmt: skip
        return error(
            429,
            "RATE_LIMITS",
            f"You have reached your {window} limit.",
            headers,
            errorType="RATE_LIMIT",
            policyName=policy,
            groupName=f"privateapp-api:{self.DEFAULT_TOKEN[:12]}",
        )

    def _limits(self) -> dict[str, Any]:
        return {"burst_remaining": self.burst.remaining(),
                "search_remaining": self.searches.remaining(),
                "daily_remaining": self.daily.remaining()}  # fmt: skip

    def _set_token(self, request: Request) -> Response:
        body = request.json() if request.body else None
        token = body.get("token") if isinstance(body, dict) else None
        return json_response({"token": self.reset_token(token)})

    def _reset_limits(self, request: Request) -> Response:
        self.reset_limits()
        return json_response(None, 204)

    def _dump_objects(self, request: Request) -> Response:
        """Every record of a type, archived ones included, with all properties and associations."""
        with self.state.lock:
            table = table_for(self.state, request.params["objectType"])
            targets = list(OBJECT_TYPES)
            results = [
                render(self.state, table, rec, list(table.schema), associations=targets)
                for rec in table.records.values()
            ]
        return json_response({"results": results, "total": len(results)})


def _is_search(request: Request) -> bool:
    return request.route.endswith("/search")
