"""One table from what went wrong on the wire to what to do about it.

Every SDK raises its own exception types (simple-salesforce by status code, hubspot-api-client an
`ApiException` per generated package, stripe a hierarchy of `StripeError`s, requests and urllib3
their transport errors). `classify` turns any of them into a `Decision`: retry (after the server's
Retry-After when it gives one), re-authenticate, or fail as a configuration problem (a person must
fix something) or a transient one (it may work next run). Messages never carry credentials.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

import requests
import stripe
import urllib3.exceptions
from simple_salesforce import exceptions as sf_errors

from smartseg.errors import SmartsegError
from smartseg.logs import redact

__all__ = ["Action", "ConnectorError", "Decision", "Failure", "MalformedResponse", "classify"]


class Action(Enum):
    RETRY = "retry"
    REAUTH = "reauth"
    FAIL = "fail"


class Failure(Enum):
    CONFIG = "config"  # a person must change config, credentials or permissions
    TRANSIENT = "transient"  # the service is unwell or busy; a later run should succeed
    DATA = "data"  # the request was refused for what it carried


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    failure: Failure
    message: str
    retry_after: float | None = None
    status: int | None = None


class ConnectorError(SmartsegError):
    """A source call that failed for good; says which source and stream and what to do."""

    def __init__(self, source: str, stream: str, decision: Decision) -> None:
        self.source = source
        self.stream = stream
        self.decision = decision
        self.exit_code = 2 if decision.failure is Failure.CONFIG else 1
        super().__init__(f"{source} {stream}: {decision.message}")


class MalformedResponse(Exception):
    """A response the SDK accepted but that lacks what the API documents: a body cut short or
    an HTML page in place of JSON leaves the SDK's model empty rather than raising."""


_TRANSPORT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
)


def classify(exc: BaseException) -> Decision:
    """What to do about `exc`; unknown exceptions fail as transient with their text redacted."""
    if isinstance(exc, _TRANSPORT):
        return Decision(Action.RETRY, Failure.TRANSIENT, f"connection failed: {_short(exc)}")
    if isinstance(exc, json.JSONDecodeError):
        return Decision(Action.RETRY, Failure.TRANSIENT, "the response was not complete JSON")
    if isinstance(exc, MalformedResponse):
        return Decision(Action.RETRY, Failure.TRANSIENT, _short(exc))
    vendor = _sdk_that_raised(exc)
    if vendor is not None and isinstance(exc, KeyError | AttributeError | TypeError | ValueError):
        # The SDK looked for a field its API documents and did not find it (or found the wrong
        # type): a response cut short, or changed by a proxy or an API change.
        return Decision(
            Action.RETRY,
            Failure.TRANSIENT,
            f"{vendor}'s response did not have its documented shape "
            f"({type(exc).__name__}: {_short(exc, 120)})",
        )
    if isinstance(exc, sf_errors.SalesforceError):
        return _salesforce(exc)
    if isinstance(exc, stripe.StripeError):
        return _stripe(exc)
    if _is_hubspot(exc):
        return _hubspot(exc)
    return Decision(
        Action.FAIL, Failure.TRANSIENT, f"unexpected {type(exc).__name__}: {_short(exc)}"
    )


_SDK_VENDORS = {"simple_salesforce": "Salesforce", "stripe": "Stripe", "hubspot": "HubSpot"}


def _sdk_that_raised(exc: BaseException) -> str | None:
    """The vendor whose SDK was running when `exc` was raised (it may have been raised in a
    helper the SDK called, such as six), if any."""
    frame = exc.__traceback__
    vendor = None
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        vendor = _SDK_VENDORS.get(module.partition(".")[0], vendor)
        frame = frame.tb_next
    return vendor


def _salesforce(exc: sf_errors.SalesforceError) -> Decision:
    code, message = _salesforce_error(exc)
    if isinstance(exc, sf_errors.SalesforceExpiredSession):
        return Decision(Action.REAUTH, Failure.CONFIG, "the Salesforce session expired", status=401)
    if isinstance(exc, sf_errors.SalesforceRefusedRequest):
        if code == "REQUEST_LIMIT_EXCEEDED":
            return Decision(
                Action.FAIL,
                Failure.TRANSIENT,
                f"Salesforce API limit reached ({message}); the next run resumes from here",
                status=403,
            )
        return Decision(
            Action.FAIL,
            Failure.CONFIG,
            f"Salesforce refused the request ({code}: {message}); check the integration user's "
            "permissions",
            status=403,
        )
    if isinstance(exc, sf_errors.SalesforceMalformedRequest):
        hint = ""
        if code == "INVALID_FIELD":
            hint = "; check the field names in sources.salesforce.field_map and custom_fields"
        return Decision(Action.FAIL, Failure.CONFIG, f"{code}: {message}{hint}", status=400)
    status = getattr(exc, "status", None)
    if status == 429 or (isinstance(status, int) and status >= 500):
        wait = _retry_after({"Retry-After": getattr(exc, "retry_after", None)})
        return Decision(
            Action.RETRY, Failure.TRANSIENT, f"Salesforce answered {status}", wait, status
        )
    return Decision(
        Action.FAIL, Failure.TRANSIENT, f"Salesforce error {status}: {message}", status=status
    )


def _salesforce_error(exc: sf_errors.SalesforceError) -> tuple[str, str]:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), _short(content[0].get("message", ""))
    return "", _short(content)


def _stripe(exc: stripe.StripeError) -> Decision:
    status = exc.http_status
    if isinstance(exc, stripe.RateLimitError):
        return Decision(
            Action.RETRY, Failure.TRANSIENT, "Stripe rate limit", _retry_after(exc.headers), 429
        )
    if isinstance(exc, stripe.APIConnectionError):
        return Decision(
            Action.RETRY, Failure.TRANSIENT, f"Stripe connection failed: {_short(exc.user_message)}"
        )
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return Decision(
            Action.FAIL,
            Failure.CONFIG,
            "Stripe refused the API key; check sources.stripe.api_key (a read-only key is enough)",
            status=status,
        )
    if isinstance(status, int) and status >= 500:
        return Decision(Action.RETRY, Failure.TRANSIENT, f"Stripe answered {status}", status=status)
    if isinstance(exc, stripe.APIError) and str(exc.user_message).startswith("Invalid response"):
        # The SDK quotes the whole body it could not parse: customer data, never worth a log line.
        return Decision(
            Action.RETRY,
            Failure.TRANSIENT,
            "Stripe's response was not complete JSON",
            status=status,
        )
    return Decision(Action.FAIL, Failure.DATA, f"Stripe: {_short(exc.user_message)}", status=status)


def _is_hubspot(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("hubspot.") and isinstance(
        getattr(exc, "status", None), int
    )


def _hubspot(exc: BaseException) -> Decision:
    status: int = getattr(exc, "status", 0)
    headers = getattr(exc, "headers", None) or {}
    body = _hubspot_body(getattr(exc, "body", None))
    if status == 429:
        # HubSpot sends no Retry-After; its body names the window that filled up.
        policy = body.get("policyName", "")
        wait = _retry_after(headers) or {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}.get(policy)
        if policy == "DAILY":
            return Decision(
                Action.FAIL, Failure.TRANSIENT, "HubSpot daily API limit reached", status=429
            )
        return Decision(
            Action.RETRY,
            Failure.TRANSIENT,
            f"HubSpot rate limit ({policy or 'unknown'})",
            wait,
            429,
        )
    if status == 0:  # raised by the SDK itself: the body did not fit its models
        reason = _short(getattr(exc, "reason", "") or "")
        return Decision(
            Action.RETRY, Failure.TRANSIENT, f"HubSpot's response could not be read ({reason})"
        )
    if status == 401:
        return Decision(
            Action.FAIL,
            Failure.CONFIG,
            "HubSpot refused the access token; check sources.hubspot.access_token",
            status=401,
        )
    if status == 403:
        return Decision(
            Action.FAIL,
            Failure.CONFIG,
            f"HubSpot: the private app lacks a scope ({_short(body.get('message', ''))})",
            status=403,
        )
    if status >= 500:
        return Decision(
            Action.RETRY, Failure.TRANSIENT, f"HubSpot answered {status}", status=status
        )
    return Decision(
        Action.FAIL,
        Failure.DATA,
        f"HubSpot {status}: {_short(body.get('message', ''))}",
        status=status,
    )


def _hubspot_body(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {"message": raw}
        return parsed if isinstance(parsed, dict) else {}
    return raw if isinstance(raw, dict) else {}


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _short(value: Any, limit: int = 300) -> str:
    text = redact(str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
