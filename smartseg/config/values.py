"""Value types for config fields: durations, URLs, paths relative to the config file, time zones.

Each type raises a `PydanticCustomError` whose ctx carries `expected`, the phrase the loader
puts after "expected" in the ConfigError a person reads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

__all__ = [
    "ConfigPath",
    "DatabaseUrl",
    "Duration",
    "HttpUrl",
    "TimeZoneName",
    "parse_duration",
    "validation_context",
]

# Keys of the pydantic validation context the loader passes in.
CONFIG_DIR = "config_dir"
CONFIG_PATH = "config_path"
ENV = "env"
RESOLVE_SECRETS = "resolve_secrets"


def validation_context(path: Path | None, env: Mapping[str, str]) -> dict[str, Any]:
    """Build the context that relative paths and secret references are resolved against."""
    config_dir = Path(os.path.abspath(path)).parent if path is not None else Path.cwd()
    return {CONFIG_PATH: path, CONFIG_DIR: config_dir, ENV: env, RESOLVE_SECRETS: True}


def context_of(info: ValidationInfo) -> dict[str, Any]:
    """The loader's context, or a default one for models built directly in code."""
    if isinstance(info.context, dict) and CONFIG_DIR in info.context:
        return info.context
    return validation_context(None, os.environ)


def _fail(kind: str, expected: str, message: str = "expected {expected}") -> PydanticCustomError:
    return PydanticCustomError(kind, message, {"expected": expected})


_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_EXPECTED = "a duration like 30s, 5m, 2h or 7d (or whole seconds)"


def parse_duration(value: object) -> timedelta:
    """Parse `30s`, `5m`, `2h`, `7d` or plain integer seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):  # bool is an int, but `true` is no duration
        raise _fail("duration", _DURATION_EXPECTED)
    if isinstance(value, int):
        if value < 0:
            raise _fail("duration", _DURATION_EXPECTED)
        return timedelta(seconds=value)
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail("duration", _DURATION_EXPECTED)
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _check_http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail("url", "a URL like https://host or http://127.0.0.1:8444")
    try:
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise _fail("url", "a URL with a port between 0 and 65535") from None
    # Clients append paths, so a trailing slash would double up.
    return value.strip().rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


def _check_database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise _fail(
            "database_url", "a database URL like sqlite:///smartseg.db or postgresql+psycopg://..."
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise _fail("database_url", "a sqlite:// or postgresql:// database URL")
    return value


DatabaseUrl = Annotated[str, AfterValidator(_check_database_url)]


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail("time_zone", "an IANA time zone like UTC or Europe/Berlin") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file's folder, not the working directory."""
    path = value.expanduser()
    if not path.is_absolute():
        path = context_of(info)[CONFIG_DIR] / path
    # normpath, not resolve(): keep symlinks and glob characters as the user wrote them.
    return Path(os.path.normpath(path))


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
