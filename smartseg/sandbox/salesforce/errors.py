"""Salesforce's error shapes: a JSON array of {message, errorCode, fields} for a failed request."""

from __future__ import annotations

from typing import Any

from smartseg.sandbox.http import HttpError, Response, json_response

__all__ = ["SfError", "error_body", "fail", "not_found"]


class SfError(Exception):
    """One Salesforce error: raised for a whole request, or collected per record of a batch."""

    def __init__(
        self, code: str, message: str, fields: list[str] | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or []
        self.status = status

    def rest(self) -> dict[str, Any]:
        """The request-level shape (errorCode)."""
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}

    def save_result(self) -> dict[str, Any]:
        """The per-record SaveResult shape, which says statusCode rather than errorCode."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return error_body(self.status, [self.rest()], headers)


def error_body(
    status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> Response:
    return json_response(errors, status, headers)


def fail(code: str, message: str, fields: list[str] | None = None, status: int = 400) -> HttpError:
    """An HttpError carrying one Salesforce error, for handlers to raise."""
    return HttpError(SfError(code, message, fields, status).response())


def not_found(message: str = "The requested resource does not exist") -> HttpError:
    return fail("NOT_FOUND", message, status=404)
