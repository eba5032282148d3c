"""Product usage from files and a warehouse query, as `usage_daily` rows (read only, no database).

Daily rollups pass through row for row; raw events are aggregated per file into one row per
(account key, user, UTC day, feature): events = count, minutes = sum(duration_seconds) / 60.
Every reader yields `UsageChunk`s of at most `chunk_rows` rows; the connector framework upserts
them and keeps the cursor. Rows carry `source`:

- ``usage:daily`` for `kind: daily` files, ``usage:events`` for `kind: events` files and
  ``usage:sql`` for the warehouse query (`usage_source_name`). The name comes from the kind, not
  the path, so moving the exports keeps the rows' identity. Two specs of the same kind share it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from smartseg.config.sources import SqlQuery, UsageFile
from smartseg.connectors.arrow_columns import (
    count_column,
    day_column,
    number_column,
    python_values,
    text_column,
    utc_day_column,
)
from smartseg.connectors.files import (
    Block,
    Column,
    Piece,
    Record,
    Reject,
    UsageFileError,
    block_records,
    check_lengths,
    convert_records,
    expand_paths,
    normalize_header,
    read_blocks,
    rechunk,
    resolve_columns,
)
from smartseg.connectors.row_values import (
    BadValue,
    parse_count,
    parse_day,
    parse_number,
    parse_text,
    parse_timestamp,
)

__all__ = ["UsageChunk", "UsageFileError", "read_usage", "read_usage_sql", "usage_source_name"]

_USER = Column(
    "user_email",
    ("user_email", "email", "user", "user_id", "user_key", "userid"),
    required=False,
)
_FEATURE = Column("feature", ("feature", "feature_name", "feature_key"))
_DAY = Column("day", ("day", "date", "usage_date", "event_date", "activity_date"))
_EVENTS = Column("events", ("events", "event_count", "events_count", "count"))
_MINUTES = Column(
    "minutes",
    ("minutes", "duration_minutes", "usage_minutes", "minutes_used", "time_minutes"),
    required=False,
)
_TIMESTAMP = Column(
    "timestamp",
    ("timestamp", "event_time", "event_timestamp", "occurred_at", "created_at", "time", "ts"),
)
_DURATION = Column(
    "duration_seconds",
    ("duration_seconds", "duration_s", "duration_secs", "seconds", "duration"),
    required=False,
)


@dataclass(frozen=True, slots=True)
class UsageChunk:
    """Up to `chunk_rows` usage_daily rows and the rejects met while reading them.

    `rows` hold source, account_key, day (date), feature, user_key (lower-cased email, the
    user id as given, or ''), events (int) and minutes (float). `file` is None for the warehouse
    query. `last` marks a file's (or the query's) final chunk, which may be empty: once it is
    stored, the file counts as loaded.
    """

    file: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    last: bool = False


def usage_source_name(spec: UsageFile | SqlQuery) -> str:
    """The `source` of a spec's rows: "usage:daily", "usage:events" or "usage:sql"."""
    return "usage:sql" if isinstance(spec, SqlQuery) else f"usage:{spec.kind}"


def read_usage(
    spec: UsageFile, *, account_key: str, chunk_rows: int = 100_000
) -> Iterator[UsageChunk]:
    """Read every file `spec.path` matches (sorted), yielding validated usage_daily rows.

    `account_key` names the column that identifies the account (sources.usage.account_key).
    Raises UsageFileError for a file that cannot be read at all; bad rows become rejects.
    """
    _check_chunk_rows(chunk_rows)
    source = usage_source_name(spec)
    for path in expand_paths(spec.path, error=UsageFileError):
        if spec.kind == "daily":
            yield from _daily_file(path, spec.format, source, account_key, chunk_rows)
        else:
            yield from _event_file(path, spec.format, source, account_key, chunk_rows)


def read_usage_sql(
    spec: SqlQuery, *, account_key: str, chunk_rows: int = 100_000
) -> Iterator[UsageChunk]:
    """Run the warehouse query and stream its result as daily-rollup rows (same columns and
    validation as a daily file). Errors show the URL with its password masked."""
    _check_chunk_rows(chunk_rows)
    url = spec.url.get_secret_value()
    shown = _masked(url)
    try:
        engine = sa.create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise UsageFileError(
            f"sources.usage.sql.url ({shown}) is not a usable SQLAlchemy URL "
            f"({_scrub(str(exc), url)}). To fix: use a URL like postgresql+psycopg://host/db "
            "and install its driver."
        ) from None
    columns = _daily_columns(account_key)
    source = usage_source_name(spec)
    try:
        with engine.connect() as connection:
            streaming = connection.execution_options(stream_results=True, yield_per=chunk_rows)
            result = streaming.execute(sa.text(spec.query))
            picks = resolve_columns(
                list(result.keys()),
                columns,
                where=f"the usage query on {shown}",
                error=UsageFileError,
            )
            records = _sql_records(result, picks, columns)
            convert = partial(_daily_row, source, account_key)
            pieces = convert_records(records, convert, file=None, piece_rows=chunk_rows)
            for rows, rejects, last in rechunk(pieces, chunk_rows):
                yield UsageChunk(None, rows, rejects, last)
    except SQLAlchemyError as exc:
        detail = _scrub(str(getattr(exc, "orig", None) or exc), url).strip()
        raise UsageFileError(
            f"the usage query on {shown} failed: {detail}. To fix: check "
            "sources.usage.sql.query and that the warehouse is reachable."
        ) from None
    finally:
        engine.dispose()


# --- Daily rollups --------------------------------------------------------------------------


def _daily_columns(account_key: str) -> tuple[Column, ...]:
    return (_account(account_key), _USER, _DAY, _FEATURE, _EVENTS, _MINUTES)


def _daily_file(
    path: Path, fmt: Literal["csv", "parquet"], source: str, account_key: str, chunk_rows: int
) -> Iterator[UsageChunk]:
    for rows, rejects, last in rechunk(
        _daily_pieces(path, fmt, source, account_key, chunk_rows), chunk_rows
    ):
        yield UsageChunk(path, rows, rejects, last)


def _daily_pieces(
    path: Path, fmt: Literal["csv", "parquet"], source: str, account_key: str, chunk_rows: int
) -> Iterator[Piece]:
    columns = _daily_columns(account_key)
    convert = partial(_daily_row, source, account_key)
    for item in read_blocks(path, fmt, columns, error=UsageFileError):
        if isinstance(item, Reject):
            yield [], [item]
            continue
        clean = _clean_daily(item, columns)
        if clean is None:
            records = block_records(item, columns, path)
            yield from convert_records(records, convert, file=path, piece_rows=chunk_rows)
            continue
        for start in range(0, item.length, chunk_rows):
            values = [python_values(array.slice(start, chunk_rows)) for array in clean]
            yield (
                [
                    {
                        "source": source,
                        "account_key": key,
                        "day": day,
                        "feature": feature,
                        "user_key": user,
                        "events": events,
                        "minutes": minutes,
                    }
                    for key, user, day, feature, events, minutes in zip(*values, strict=True)
                ],
                [],
            )


def _clean_daily(block: Block, columns: tuple[Column, ...]) -> list[pa.Array] | None:
    """The block's columns checked in Arrow, or None when some row needs a closer look."""
    key, user, day, feature, events, minutes = block.arrays
    assert key is not None and day is not None and feature is not None and events is not None
    limit = columns[0].max_chars
    checked = [
        text_column(key, required=True, max_chars=limit),
        _clean_user(user, block.length),
        day_column(day),
        text_column(feature, required=True, max_chars=limit),
        count_column(events),
        number_column(minutes, block.length),
    ]
    if any(array is None for array in checked):
        return None
    clean = [array for array in checked if array is not None]
    clean[5] = clean[5].cast(pa.float64())
    return clean


def _daily_row(source: str, account_key: str, values: tuple[object, ...]) -> dict[str, Any]:
    key, user, day, feature, events, minutes = values
    return {
        "source": source,
        "account_key": parse_text(key, account_key, required=True),
        "day": parse_day(day, "day"),
        "feature": parse_text(feature, "feature", required=True),
        "user_key": _user_key(user),
        "events": parse_count(events, "events"),
        "minutes": float(parse_number(minutes, "minutes")),
    }


# --- Raw events -----------------------------------------------------------------------------

_Group = tuple[str, str, dt.date, str]  # account key, user key, UTC day, feature


def _event_file(
    path: Path, fmt: Literal["csv", "parquet"], source: str, account_key: str, chunk_rows: int
) -> Iterator[UsageChunk]:
    """Aggregate a whole file before yielding, so no group is split across chunks.

    Memory grows with the file's distinct groups (rows of output), not with its events.
    """
    columns = (_account(account_key), _USER, _TIMESTAMP, _FEATURE, _DURATION)
    groups: dict[_Group, list[int | float]] = {}
    rejects: list[Reject] = []
    for item in read_blocks(path, fmt, columns, error=UsageFileError):
        if isinstance(item, Reject):
            rejects.append(item)
        elif not _add_clean_events(item, columns, groups):
            for record in block_records(item, columns, path):
                if isinstance(record, Reject):
                    rejects.append(record)
                    continue
                try:
                    group, seconds = _event(record.values, account_key)
                except BadValue as bad:
                    rejects.append(Reject(path, record.number, bad.reason, bad.value))
                    continue
                _add(groups, group, 1, seconds)
        if len(rejects) >= chunk_rows:
            yield UsageChunk(path, [], rejects)
            rejects = []
    rows: list[dict[str, Any]] = []
    for (key, user, day, feature), (events, seconds) in groups.items():
        rows.append(
            {
                "source": source,
                "account_key": key,
                "day": day,
                "feature": feature,
                "user_key": user,
                "events": int(events),
                "minutes": seconds / 60,
            }
        )
        if len(rows) >= chunk_rows:
            yield UsageChunk(path, rows, rejects)
            rows, rejects = [], []
    yield UsageChunk(path, rows, rejects, last=True)


def _add_clean_events(
    block: Block, columns: tuple[Column, ...], groups: dict[_Group, list[int | float]]
) -> bool:
    """Group a clean block in Arrow and add it to `groups`; False when a row needs a closer look."""
    key, user, timestamp, feature, duration = block.arrays
    assert key is not None and timestamp is not None and feature is not None
    limit = columns[0].max_chars
    checked = [
        text_column(key, required=True, max_chars=limit),
        _clean_user(user, block.length),
        utc_day_column(timestamp),
        text_column(feature, required=True, max_chars=limit),
        number_column(duration, block.length),
    ]
    if any(array is None for array in checked):
        return False
    table = pa.table(dict(zip(("k", "u", "d", "f", "s"), checked, strict=True)))
    summed = table.group_by(["k", "u", "d", "f"], use_threads=False).aggregate(
        [("s", "count"), ("s", "sum")]
    )
    names = ("k", "u", "d", "f", "s_count", "s_sum")
    values = [python_values(summed.column(name).combine_chunks()) for name in names]
    for k, u, d, f, count, seconds in zip(*values, strict=True):
        _add(groups, (k, u, d, f), count, seconds)
    return True


def _add(
    groups: dict[_Group, list[int | float]], group: _Group, count: int, seconds: float
) -> None:
    total = groups.get(group)
    if total is None:
        groups[group] = [count, seconds]
    else:
        total[0] += count
        total[1] += seconds


def _event(values: tuple[object, ...], account_key: str) -> tuple[_Group, int | float]:
    key, user, timestamp, feature, duration = values
    group = (
        parse_text(key, account_key, required=True),
        _user_key(user),
        parse_timestamp(timestamp, "timestamp").date(),
        parse_text(feature, "feature", required=True),
    )
    return group, parse_number(duration, "duration_seconds")


# --- Helpers --------------------------------------------------------------------------------


def _account(account_key: str) -> Column:
    return Column(
        account_key,
        (normalize_header(account_key),),
        hint="set sources.usage.account_key to the column that names the account",
    )


def _clean_user(array: pa.Array | None, length: int) -> pa.Array | None:
    if array is None:
        return pa.array([""] * length, pa.string())
    return text_column(array, required=False, max_chars=_USER.max_chars, emails=True)


def _user_key(value: object) -> str:
    """Emails are compared lower-cased; other user ids are kept as given."""
    text = parse_text(value, "user_email", required=False)
    return text.lower() if "@" in text else text


def _check_chunk_rows(chunk_rows: int) -> None:
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")


def _sql_records(
    result: sa.CursorResult[Any], picks: tuple[int | None, ...], columns: tuple[Column, ...]
) -> Iterator[Record | Reject]:
    number = 0
    for partition in result.partitions():
        for row in partition:
            number += 1
            values = tuple(None if at is None else row[at] for at in picks)
            reject = check_lengths(number, values, columns, None)
            yield reject if reject is not None else Record(number, values)


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "an unparseable URL"


def _scrub(text: str, url: str) -> str:
    """Driver messages may quote the URL or its password; never let either through."""
    text = text.replace(url, _masked(url))
    try:
        password = make_url(url).password
    except ArgumentError:
        return text
    return text.replace(str(password), "***") if password else text
