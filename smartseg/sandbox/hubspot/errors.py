"""HubSpot's error shapes: the top-level error body and the per-item errors of batch responses.

A top-level error is `{"status": "error", "message", "correlationId", "category", ...}`; a batch
item error is a StandardError (`status, category, message, context, errors, links`), which
hubspot-api-client deserializes and therefore requires in full.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..http import HttpError, Response, json_response
from .properties import PropertyValueError

__all__ = [
    "ItemError",
    "error",
    "fail",
    "property_errors",
]


def error(
    status: int, category: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """A top-level HubSpot error response."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return json_response(body, status, headers)


def fail(status: int, category: str, message: str, **extra: Any) -> HttpError:
    """An HttpError to raise from a handler."""
    return HttpError(error(status, category, message, **extra))


class ItemError(Exception):
    """Why one input of a request failed; a batch reports it per item, a single call as its body."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.context = context or {}
        self.errors = errors or []
        self.sub_category = sub_category

    def standard(self, trace_id: str | None = None) -> dict[str, Any]:
        """This error as a batch response's StandardError."""
        context = dict(self.context)
        if trace_id:
            context["objectWriteTraceId"] = [trace_id]
        item: dict[str, Any] = {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": context,
            "errors": self.errors,
            "links": {},
        }
        if self.sub_category:
            item["subCategory"] = self.sub_category
        return item

    def response(self) -> Response:
        """This error as the body of a single-object call."""
        extra: dict[str, Any] = {}
        if self.errors:
            extra["errors"] = self.errors
        if self.context:
            extra["context"] = self.context
        if self.sub_category:
            extra["subCategory"] = self.sub_category
        return error(self.status, self.category, self.message, **extra)


def property_errors(problems: list[PropertyValueError]) -> ItemError:
    """HubSpot's "Property values were not valid" error for a list of refused values."""
    detail = [
        {
            "isValid": False,
            "message": p.message,
            "error": p.code,
            "name": p.name,
            "localizedErrorMessage": p.message,
        }
        for p in problems
    ]
    return ItemError(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: {json.dumps(detail, separators=(',', ':'))}",
        context={"propertyName": [p.name for p in problems]},
        errors=[
            {"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}}
            for p in problems
        ],
    )
