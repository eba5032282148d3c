"""Stripe's bracketed form encoding, decoded and checked against a per-endpoint parameter spec.

Stripe sends nested parameters as `metadata[k]=v`, `items[0][price]=p`, `expand[]=x` (the SDK
writes arrays with explicit indices, `expand[0]=x`) and rejects any parameter it does not know.
A spec is a small tree: a dict of field name to kind, where a kind is one of the names in
`_SCALARS`, a nested dict (a hash), a one-element list (an array of that kind) or `Req(kind)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smartseg.sandbox.stripe_api.errors import StripeError

__all__ = ["Req", "Spec", "decode", "validate"]

Spec = dict[str, Any]
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
# Metadata limits from https://docs.stripe.com/api/metadata.
_METADATA_KEYS = 50
_METADATA_KEY_LEN = 40
_METADATA_VALUE_LEN = 500


@dataclass(frozen=True, slots=True)
class Req:
    """Marks a parameter as required: a missing one answers 400 parameter_missing."""

    kind: Any


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn (key, value) pairs with bracketed keys into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head] + (_SEGMENT.findall("[" + rest) if rest else [])
        node = root
        for depth, raw in enumerate(path):
            name = _param_name(path[:depth])
            if not isinstance(node, dict):
                raise StripeError(400, f"Invalid hash: {name}", param=name)
            segment = raw or str(len(node))  # "expand[]" appends
            if depth == len(path) - 1:
                if isinstance(node.get(segment), dict):
                    raise StripeError(400, f"Invalid hash: {_param_name(path)}", param=name)
                node[segment] = value
            else:
                child = node.setdefault(segment, {})
                if not isinstance(child, dict):
                    bad = _param_name(path[: depth + 1])
                    raise StripeError(400, f"Invalid hash: {bad}", param=bad)
                node = child
    return {k: _listify(v) for k, v in root.items()}


def _listify(node: Any) -> Any:
    """Hashes whose keys are all indices become lists, in index order."""
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _param_name(path: list[str]) -> str:
    return path[0] + "".join(f"[{p}]" for p in path[1:]) if path else ""


def validate(params: dict[str, Any], spec: Spec, prefix: str = "") -> dict[str, Any]:
    """Check `params` against `spec` and return them coerced (ints, bools, lists)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        path = f"{prefix}[{name}]" if prefix else name
        if name not in spec:
            raise StripeError(
                400, f"Received unknown parameter: {path}", code="parameter_unknown", param=path
            )
        kind = spec[name]
        out[name] = _coerce(value, kind.kind if isinstance(kind, Req) else kind, path)
    for name, kind in spec.items():
        if isinstance(kind, Req) and name not in out:
            path = f"{prefix}[{name}]" if prefix else name
            raise StripeError(
                400, f"Missing required param: {path}.", code="parameter_missing", param=path
            )
    return out


def _coerce(value: Any, kind: Any, path: str) -> Any:
    if isinstance(kind, dict):
        if value == "":
            return ""  # Stripe's way of unsetting a hash
        if not isinstance(value, dict):
            raise StripeError(400, f"Invalid object: {path}", param=path)
        return validate(value, kind, path)
    if isinstance(kind, list):
        if value == "":
            return []
        if isinstance(value, dict):
            raise StripeError(400, f"Invalid array: {path}", param=path)
        items = value if isinstance(value, list) else [value]
        return [_coerce(item, kind[0], f"{path}[{i}]") for i, item in enumerate(items)]
    if isinstance(kind, tuple):  # an enumeration of allowed strings
        if value not in kind:
            raise StripeError(400, f"Invalid {path}: must be one of {', '.join(kind)}", param=path)
        return value
    return _SCALARS[kind](value, path)


def _as_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise StripeError(400, f"Invalid string: {path}", param=path)
    return value


def _as_int(value: Any, path: str) -> int:
    text = _as_str(value, path)
    if not re.fullmatch(r"-?\d+", text):
        code = "parameter_invalid_empty" if text == "" else "parameter_invalid_integer"
        raise StripeError(400, f"Invalid integer: {text}", code=code, param=path)
    return int(text)


def _as_float(value: Any, path: str) -> float:
    text = _as_str(value, path)
    try:
        return float(text)
    except ValueError:
        raise StripeError(400, f"Invalid decimal: {text}", param=path) from None


def _as_bool(value: Any, path: str) -> bool:
    text = _as_str(value, path)
    if text not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {text}", param=path)
    return text == "true"


def _as_range(value: Any, path: str) -> dict[str, int]:
    """An int (exact match) or a hash of gt/gte/lt/lte, as list endpoints take `created`."""
    if isinstance(value, dict):
        return validate(value, {"gt": "int", "gte": "int", "lt": "int", "lte": "int"}, path)
    exact = _as_int(value, path)
    return {"gte": exact, "lte": exact}


def _as_metadata(value: Any, path: str) -> dict[str, str] | str:
    """A hash of strings within Stripe's metadata limits; "" unsets all keys."""
    if value == "":
        return ""
    if not isinstance(value, dict):
        raise StripeError(400, f"Invalid object: {path}", param=path)
    if len(value) > _METADATA_KEYS:
        raise StripeError(400, f"Invalid {path}: metadata may have at most 50 keys", param=path)
    for key, item in value.items():
        if len(key) > _METADATA_KEY_LEN:
            raise StripeError(
                400,
                f"Metadata keys can have up to 40 characters, but {key!r} has {len(key)}.",
                param=f"{path}[{key}]",
            )
        if not isinstance(item, str):
            raise StripeError(400, f"Invalid string: {path}[{key}]", param=f"{path}[{key}]")
        if len(item) > _METADATA_VALUE_LEN:
            raise StripeError(
                400,
                f"Metadata values can have up to 500 characters, but the value of {key!r} "
                f"has {len(item)}.",
                param=f"{path}[{key}]",
            )
    return dict(value)


def _as_any(value: Any, path: str) -> Any:
    """Accepted and ignored: parameters the sandbox takes but does not model."""
    return value


_SCALARS = {
    "str": _as_str,
    "int": _as_int,
    "float": _as_float,
    "bool": _as_bool,
    "range": _as_range,
    "metadata": _as_metadata,
    "any": _as_any,
}
