"""What one request's handler works with: the store, the time, and list, search and expand.

Handlers stay small by leaving Stripe's shared list mechanics here: `limit` bounds, cursors,
`created` ranges, search page tokens and `expand[]`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartseg.sandbox.stripe_api.errors import StripeError
from smartseg.sandbox.stripe_api.objects import list_object, render
from smartseg.sandbox.stripe_api.search import parse_query
from smartseg.sandbox.stripe_api.store import Store

__all__ = ["LIST_PARAMS", "SEARCH_PARAMS", "Ctx", "merge_metadata", "previous_attributes"]

Json = dict[str, Any]
Record = dict[str, Any]

# Parameters every list endpoint takes; endpoints add their own filters.
LIST_PARAMS: dict[str, Any] = {
    "limit": "int",
    "starting_after": "str",
    "ending_before": "str",
    "created": "range",
    "expand": ["str"],
}
SEARCH_PARAMS: dict[str, Any] = {"query": "str", "limit": "int", "page": "str", "expand": ["str"]}
_MAX_EXPAND_DEPTH = 4


@dataclass(slots=True)
class Ctx:
    store: Store
    now: int
    request_id: str
    idempotency_key: str | None = None

    @property
    def request(self) -> tuple[str | None, str | None]:
        """The (id, idempotency key) pair events record as their `request`."""
        return self.request_id, self.idempotency_key

    def get(self, kind: str, object_id: str, param: str = "id") -> Record:
        """A live record, or Stripe's 404 resource_missing."""
        record = self.store[kind].rows.get(object_id)
        if record is None:
            raise StripeError.missing(kind, object_id, param)
        return record

    def render(self, kind: str, record: Record) -> Json:
        return render(self.store, kind, record)

    def page(
        self, kind: str, params: dict[str, Any], url: str, keep: Callable[[Record], bool] | None
    ) -> Json:
        """One page of a list endpoint, newest first, honouring limit, cursors and `created`."""
        limit = _limit(params)
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        table = self.store[kind]
        for name, cursor in (("starting_after", after), ("ending_before", before)):
            if cursor is not None and not table.listed(cursor):
                raise StripeError.missing(kind, cursor, name)
        rows, has_more = table.page(
            limit=limit,
            keep=keep,
            created=params.get("created"),
            starting_after=after,
            ending_before=before,
        )
        return list_object([self.render(kind, r) for r in rows], has_more, url)

    def search(self, resource: str, kind: str, params: dict[str, Any], url: str) -> Json:
        """One page of a search endpoint: `search_result` with an opaque `page` cursor."""
        if "query" not in params:
            raise StripeError(
                400, "Missing required param: query.", code="parameter_missing", param="query"
            )
        query = parse_query(resource, params["query"])
        limit = _limit(params)
        table = self.store[kind]
        after = _page_cursor(params["page"]) if "page" in params else None
        if after is not None and not table.listed(after):
            raise StripeError(400, "Invalid page token.", param="page")
        rows, has_more = table.page(limit=limit, keep=query.matches, starting_after=after)
        result: Json = {
            "object": "search_result",
            "data": [self.render(kind, r) for r in rows],
            "has_more": has_more,
            "next_page": _page_token(rows[-1]["id"]) if has_more else None,
            "url": url,
        }
        if "total_count" in params.get("expand", []):
            # Stripe reports total_count only on request, and only accurately up to 10,000.
            result["total_count"] = min(
                10_000, sum(1 for r in table.newest_first() if query.matches(r))
            )
        return result

    def expand(self, obj: Json, paths: list[str]) -> Json:
        """Replace ids along each dotted path with the objects they name (`expand[]`)."""
        for path in paths:
            if path == "total_count" and obj.get("object") == "search_result":
                continue
            parts = path.split(".")
            # Stepping into a list's `data` is not a level of expansion.
            if sum(part != "data" for part in parts) > _MAX_EXPAND_DEPTH:
                raise StripeError(
                    400,
                    f"You cannot expand more than {_MAX_EXPAND_DEPTH} levels of a property. "
                    f"Property: {path}",
                    param="expand",
                )
            self._expand_at(obj, parts, path)
        return obj

    def _expand_at(self, node: Any, parts: list[str], path: str) -> None:
        if not parts:
            return
        if isinstance(node, dict) and node.get("object") in ("list", "search_result"):
            if parts[0] != "data":
                raise _not_expandable(parts[0])
            for item in node["data"]:
                self._expand_at(item, parts[1:], path)
            return
        head = parts[0]
        if not isinstance(node, dict) or head not in node:
            raise _not_expandable(head)
        value = node[head]
        if isinstance(value, list):
            node[head] = [self._resolve(v, head) for v in value]
            for item in node[head]:
                self._expand_at(item, parts[1:], path)
            return
        if len(parts) == 1 or isinstance(value, str):
            value = node[head] = self._resolve(value, head)
        if len(parts) > 1 and value is not None:
            self._expand_at(value, parts[1:], path)

    def _resolve(self, value: Any, name: str) -> Any:
        if value is None or isinstance(value, dict):
            return value
        if not isinstance(value, str):
            raise _not_expandable(name)
        found = self.store.find(value)
        if found is None:
            raise _not_expandable(name)
        return self.render(*found)


def _limit(params: dict[str, Any]) -> int:
    limit = int(params.get("limit", 10))
    if limit < 1:
        raise StripeError(400, "This value must be greater than or equal to 1.", param="limit")
    if limit > 100:
        raise StripeError(400, "This value must be less than or equal to 100.", param="limit")
    return limit


def _not_expandable(name: str) -> StripeError:
    return StripeError(400, f"This property cannot be expanded ({name}).", param="expand")


def _page_token(last_id: str) -> str:
    return "page_" + base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _page_cursor(token: str) -> str:
    body = token.removeprefix("page_")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise StripeError(400, "Invalid page token.", param="page") from None


def merge_metadata(current: dict[str, str], update: dict[str, str] | str) -> dict[str, str]:
    """Stripe's metadata update: keys merge, "" unsets a key, and "" for the hash clears it."""
    if update == "":
        return {}
    assert isinstance(update, dict)
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def previous_attributes(before: Json, after: Json) -> Json:
    """The `data.previous_attributes` of an update event: old values of what changed.

    Hashes are compared key by key (a new metadata key shows as null); other values whole.
    """
    changed: Json = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and "object" not in old:
            changed[key] = {
                k: old.get(k) for k in old.keys() | new.keys() if old.get(k) != new.get(k)
            }
        else:
            changed[key] = old
    return changed
