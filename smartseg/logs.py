"""Logging setup for the whole process, with secrets masked before any handler writes a line.

Every handler smartseg installs carries a `RedactingFilter`: it replaces the values of resolved
secrets (registered by the config loader) and masks anything shaped like a credential, in the
message, its args, `extra=` fields and exception text. `redact()` does the same for error text
printed outside logging.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from smartseg.errors import ConfigError

__all__ = [
    "RedactingFilter",
    "redact",
    "register_secret",
    "setup_logging",
]

MASK = "[REDACTED]"
_MIN_SECRET_LENGTH = 6
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FORMATS = ("json", "plain", "rich")

# Field names whose values are credentials. Deliberately narrower than "anything with key":
# segment keys, task keys and primary keys are everyday, harmless words in smartseg's logs.
_SENSITIVE_NAME = (
    r"(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|consumer[_-]?key|signing[_-]?key|session[_-]?id|sessionid|credential|authorization|cookie)"
)
_SENSITIVE_NAME_RE = re.compile(_SENSITIVE_NAME, re.IGNORECASE)

# Each pattern keeps its group 1 (the label) and masks the rest of the match.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Credentials inside URLs: scheme://user:password@host
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?=@)", re.IGNORECASE),
    # Authorization-style headers, bare or quoted as in a dict repr.
    re.compile(
        r"""(\b(?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)[^'"\r\n,}]+""",
        re.IGNORECASE,
    ),
    re.compile(r"(\bx-(?:api-key|sfdc-session)['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+", re.I),
    re.compile(r"(\bBearer\s+)[A-Za-z0-9\-._~+/!]+=*", re.IGNORECASE),
    # Salesforce session ids / OAuth access tokens: 15-18 char org id, '!', opaque token.
    re.compile(r"()\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]{16,}"),
    # Stripe secret, restricted and webhook-signing keys.
    re.compile(r"()\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{6,}"),
    re.compile(r"()\bwhsec_[A-Za-z0-9]{6,}"),
    # HubSpot private-app tokens: pat-na1-<uuid>.
    re.compile(r"()\bpat-[a-z]{2}\d-[A-Za-z0-9-]{8,}", re.IGNORECASE),
    # JSON or dict-repr fields named like a credential: "access_token": "..." / 'x': '...'.
    re.compile(r'("[^"\n]*' + _SENSITIVE_NAME + r'[^"\n]*"\s*:\s*)"(?:[^"\\\n]|\\.)*"', re.I),
    re.compile(r"('[^'\n]*" + _SENSITIVE_NAME + r"[^'\n]*'\s*:\s*)'(?:[^'\\\n]|\\.)*'", re.I),
    # key=value in query strings and log text: password=..., client_secret=..., api_key=...
    re.compile(r"(\b[\w.-]*" + _SENSITIVE_NAME + r"[\w-]*=)[^&\s,;'\"]+", re.IGNORECASE),
)


class _SecretRegistry:
    """Resolved secret values and one compiled pattern matching any of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self.pattern = re.compile("|".join(re.escape(v) for v in ordered))


_registry = _SecretRegistry()
# Handlers setup_logging installed, so a second call replaces rather than adds.
_installed: list[logging.Handler] = []


def register_secret(value: str) -> None:
    """Remember a resolved secret so every later log line and `redact()` masks it."""
    if len(value) >= _MIN_SECRET_LENGTH:  # shorter ones would mangle ordinary words
        _registry.add(value)


def redact(text: str) -> str:
    """Mask registered secrets and credential-shaped substrings in `text`."""
    pattern = _registry.pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for token_re in _PATTERNS:
        text = token_re.sub(lambda m: m.group(1) + MASK, text)
    return text


def _redact_value(value: object, name: str = "") -> object:
    """Redact a structured `extra=` value, masking whole values under credential-like names."""
    if name and _SENSITIVE_NAME_RE.search(name) and value is not None:
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


_RECORD_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with `extra=`."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS}


class RedactingFilter(logging.Filter):
    """Rewrite a record in place so no handler can emit a secret; always lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact message, args, extras, exception and stack text of `record`."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A broken format string must not crash the caller; keep its parts instead.
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for name, value in _extras(record).items():
            setattr(record, name, _redact_value(value, name))
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _format_extras(record: logging.LogRecord) -> str:
    extras = _extras(record)
    return "".join(f" {k}={v}" for k, v in extras.items())


class _PlainFormatter(logging.Formatter):
    """`time level logger message key=value...`, one event per line (plus any traceback)."""

    def __init__(self, *, with_time: bool = True) -> None:
        fmt = (
            "%(asctime)s %(levelname)s %(name)s %(message)s"
            if with_time
            else "%(name)s %(message)s"
        )
        super().__init__(fmt)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record) + _format_extras(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso_time(record)


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc_info as text."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise `record`; values JSON cannot represent become their text."""
        event: dict[str, Any] = {
            "ts": _iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in _extras(record).items():
            event.setdefault(name, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exc_info"] = record.exc_text
        if record.stack_info:
            event["stack_info"] = record.stack_info
        return json.dumps(event, default=str, ensure_ascii=False)


def _iso_time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _make_handler(fmt: str, stream: TextIO) -> logging.Handler:
    handler: logging.Handler
    if fmt == "rich":
        from rich.console import Console
        from rich.logging import RichHandler

        # Rich's own traceback rendering would bypass the filter's redacted exc_text.
        handler = RichHandler(
            console=Console(file=stream), show_path=False, rich_tracebacks=False, markup=False
        )
        handler.setFormatter(_PlainFormatter(with_time=False))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_JsonFormatter() if fmt == "json" else _PlainFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(
    level: str = "INFO", fmt: str | None = None, *, stream: TextIO | None = None
) -> None:
    """Configure the root logger once: rich on a terminal, plain text otherwise, or JSON lines.

    `fmt` is "json", "plain" or "rich"; when None, SMARTSEG_LOG_FORMAT decides, then whether
    the stream is a terminal. Calling again replaces smartseg's handler instead of adding one.
    """
    level_name = level.upper()
    if level_name not in _LEVELS:
        raise ConfigError(f"log level {level!r} is not one of {', '.join(_LEVELS)}")
    out = stream if stream is not None else sys.stderr
    chosen = (fmt or os.environ.get("SMARTSEG_LOG_FORMAT") or "").lower()
    if not chosen:
        chosen = "rich" if out.isatty() else "plain"
    if chosen not in _FORMATS:
        raise ConfigError(f"log format {chosen!r} is not one of {', '.join(_FORMATS)}")

    root = logging.getLogger()
    while _installed:
        old = _installed.pop()
        root.removeHandler(old)
        old.close()
    handler = _make_handler(chosen, out)
    _installed.append(handler)
    root.addHandler(handler)
    root.setLevel(level_name)
    logging.captureWarnings(True)
