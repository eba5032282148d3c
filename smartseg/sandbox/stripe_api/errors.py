"""Stripe's error body, and the exception handlers raise to answer with one."""

from __future__ import annotations

from typing import Any

__all__ = ["StripeError", "error_body", "redact_key"]


class StripeError(Exception):
    """An API error: raised anywhere in a handler, answered as Stripe's `{"error": {...}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    @classmethod
    def missing(cls, kind: str, object_id: str, param: str = "id") -> StripeError:
        """404 resource_missing, worded as Stripe words it ("No such customer: 'cus_x'")."""
        label = kind.replace("_", " ")
        return cls(404, f"No such {label}: '{object_id}'", code="resource_missing", param=param)


def error_body(error: StripeError, request_id: str) -> dict[str, Any]:
    """The JSON body Stripe sends for an error; empty fields are left out as Stripe does."""
    body: dict[str, Any] = {"message": error.message, "type": error.type}
    if error.code:
        body["code"] = error.code
        body["doc_url"] = f"https://stripe.com/docs/error-codes/{error.code.replace('_', '-')}"
    if error.param:
        body["param"] = error.param
    body["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
    return {"error": body}


def redact_key(key: str) -> str:
    """Mask a secret key as Stripe's 401 message does: the prefix and last four stay visible."""
    prefix_end = key.find("_", key.find("_") + 1) + 1 if key.count("_") >= 2 else 0
    visible_tail = 4 if len(key) - prefix_end > 4 else 0
    hidden = len(key) - prefix_end - visible_tail
    return key[:prefix_end] + "*" * hidden + key[len(key) - visible_tail :]
