"""The usage and NPS file readers, and the warehouse query reader, on real files."""

from __future__ import annotations

import datetime as dt
import math
import os
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from smartseg.config.sources import FileInput, SqlQuery, UsageFile
from smartseg.connectors.files import Reject, UsageFileError, file_fingerprint
from smartseg.connectors.nps_files import read_nps
from smartseg.connectors.usage_files import UsageChunk, read_usage, read_usage_sql
from smartseg.sandbox.exports import Exports, write_exports
from smartseg.sandbox.generator import generate
from smartseg.sandbox.usage import daily_rollups
from smartseg.sandbox.world import World

ANCHOR = dt.date(2026, 6, 30)
HEADER = "workspace_id,user_email,day,feature,events,minutes\n"
EVENTS_HEADER = "event_id,workspace_id,user_email,timestamp,feature,duration_seconds\n"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Exports]:
    world = generate(seed=3, accounts=50, anchor=ANCHOR)
    return world, write_exports(world, tmp_path_factory.mktemp("exports"))


def daily(path: Path, fmt: Literal["csv", "parquet"] = "csv") -> UsageFile:
    return UsageFile(path=path, format=fmt, kind="daily")


def events(path: Path, fmt: Literal["csv", "parquet"] = "csv") -> UsageFile:
    return UsageFile(path=path, format=fmt, kind="events")


def read(spec: UsageFile, chunk_rows: int = 100_000) -> tuple[list[dict[str, Any]], list[Reject]]:
    chunks = list(read_usage(spec, account_key="workspace_id", chunk_rows=chunk_rows))
    return [r for c in chunks for r in c.rows], [r for c in chunks for r in c.rejects]


def write(tmp_path: Path, data: str | bytes, name: str = "usage.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def only_reject(spec: UsageFile) -> Reject:
    _, rejects = read(spec)
    assert len(rejects) == 1, rejects
    return rejects[0]


def as_set(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (r["account_key"], r["user_key"], r["day"], r["feature"], r["events"], r["minutes"])
        for r in rows
    }


# --- Sandbox exports --------------------------------------------------------------------------


def test_daily_parquet_reads_back_with_exact_totals(sandbox: tuple[World, Exports]) -> None:
    _, exports = sandbox
    rows, rejects = read(daily(exports.data_dir / "usage/daily/*.parquet", "parquet"))
    table = pa.concat_tables(pq.read_table(path) for path in exports.daily)
    assert not rejects
    assert len(rows) == table.num_rows == exports.rollup_rows
    assert sum(r["events"] for r in rows) == pc.sum(table["events"]).as_py()
    assert math.fsum(r["minutes"] for r in rows) == pytest.approx(
        math.fsum(table["minutes"].to_pylist()), rel=1e-12
    )
    assert {r["source"] for r in rows} == {"usage:daily"}


def test_event_csvs_read_back_with_exact_totals(sandbox: tuple[World, Exports]) -> None:
    _, exports = sandbox
    rows, rejects = read(events(exports.data_dir / "usage/events/*.csv"))
    table = pa.concat_tables(pacsv.read_csv(path) for path in exports.events)
    assert not rejects
    assert sum(r["events"] for r in rows) == table.num_rows == exports.event_rows
    seconds = pc.sum(table["duration_seconds"]).as_py()
    assert math.fsum(r["minutes"] for r in rows) == pytest.approx(seconds / 60, rel=1e-12)


def test_raw_events_aggregate_to_the_sandbox_rollups(sandbox: tuple[World, Exports]) -> None:
    world, exports = sandbox
    rows, _ = read(events(exports.data_dir / "usage/events/*.csv"))
    first = dt.date.fromisoformat(exports.events[0].stem.removeprefix("events-"))
    rollups = daily_rollups(world, first, ANCHOR - dt.timedelta(days=1)).to_pylist()
    expected = {
        (
            r["workspace_id"],
            r["user_email"].lower(),
            r["day"],
            r["feature"],
            r["events"],
            r["minutes"],
        )
        for r in rollups
    }
    assert as_set(rows) == expected


@pytest.mark.parametrize("kind", ["daily", "events"])
def test_chunk_size_changes_neither_rows_nor_totals(
    sandbox: tuple[World, Exports], kind: str
) -> None:
    _, exports = sandbox
    spec = daily(exports.daily[0], "parquet") if kind == "daily" else events(exports.events[0])
    small = list(read_usage(spec, account_key="workspace_id", chunk_rows=7))
    big = list(read_usage(spec, account_key="workspace_id", chunk_rows=100_000))
    assert all(len(c.rows) <= 7 for c in small)
    assert len(small) > len(big)
    assert sorted(map(repr, (r for c in small for r in c.rows))) == sorted(
        map(repr, (r for c in big for r in c.rows))
    )


def test_event_groups_are_never_split_across_chunks(sandbox: tuple[World, Exports]) -> None:
    _, exports = sandbox
    keys = [
        (r["account_key"], r["day"], r["feature"], r["user_key"])
        for c in read_usage(events(exports.events[0]), account_key="workspace_id", chunk_rows=7)
        for r in c.rows
    ]
    assert len(keys) == len(set(keys))


def test_every_file_ends_with_a_last_chunk(sandbox: tuple[World, Exports]) -> None:
    _, exports = sandbox
    chunks = list(
        read_usage(events(exports.data_dir / "usage/events/*.csv"), account_key="workspace_id")
    )
    assert [c.file for c in chunks if c.last] == list(exports.events)


# --- Columns --------------------------------------------------------------------------------


def test_missing_column_names_the_file_the_column_and_the_columns_found(tmp_path: Path) -> None:
    path = write(
        tmp_path, "workspace_id,user_email,day,feature,minutes\nws_1,a@x.io,2026-06-01,sso,1\n"
    )
    with pytest.raises(UsageFileError) as raised:
        read(daily(path))
    message = str(raised.value)
    assert str(path) in message
    assert "'events'" in message
    assert "found columns: workspace_id, user_email, day, feature, minutes" in message


def test_account_key_column_comes_from_config(tmp_path: Path) -> None:
    path = write(tmp_path, "account,feature,day,events\nacme,sso,2026-06-01,2\n")
    with pytest.raises(UsageFileError, match=r"sources\.usage\.account_key"):
        read(daily(path))
    chunk = next(read_usage(daily(path), account_key="account"))
    assert chunk.rows[0]["account_key"] == "acme"


def test_header_variants_are_matched_case_insensitively(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Workspace ID,UserEmail,DATE,Feature,Event Count,Minutes\n"
        "ws_1,Ann@X.io,2026-06-01,sso,2,1.5\n",
    )
    rows, _ = read(daily(path))
    assert rows == [
        {
            "source": "usage:daily",
            "account_key": "ws_1",
            "day": dt.date(2026, 6, 1),
            "feature": "sso",
            "user_key": "ann@x.io",
            "events": 2,
            "minutes": 1.5,
        }
    ]


def test_missing_duration_column_counts_zero_minutes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "workspace_id,timestamp,feature\nws_1,2026-06-01T10:00:00Z,api\n"
        "ws_1,2026-06-01T11:00:00Z,api\n",
    )
    rows, _ = read(events(path))
    assert [(r["events"], r["minutes"], r["user_key"]) for r in rows] == [(2, 0.0, "")]


# --- Rejected rows ----------------------------------------------------------------------------


def test_bad_date_is_rejected_with_its_row(tmp_path: Path) -> None:
    path = write(
        tmp_path, HEADER + "ws_1,a@x.io,2026-06-01,sso,1,1\nws_1,a@x.io,2026-02-30,sso,1,1\n"
    )
    reject = only_reject(daily(path))
    assert (reject.file, reject.row, reject.value) == (path, 2, "2026-02-30")
    assert reject.reason == "bad day: expected a date like 2026-06-01"


def test_negative_events_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "ws_1,a@x.io,2026-06-01,sso,-3,1\n")
    assert only_reject(daily(path)).reason == "negative events"


def test_non_numeric_minutes_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "ws_1,a@x.io,2026-06-01,sso,3,lots\n")
    assert only_reject(daily(path)).reason == "minutes is not a number"


def test_empty_account_key_is_rejected_and_the_other_rows_load(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + ",a@x.io,2026-06-01,sso,1,1\nws_2,b@x.io,2026-06-01,sso,1,1\n")
    rows, rejects = read(daily(path))
    assert [r["account_key"] for r in rows] == ["ws_2"]
    assert [(r.row, r.reason) for r in rejects] == [(1, "empty workspace_id")]


def test_empty_feature_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "ws_1,a@x.io,2026-06-01,  ,1,1\n")
    assert only_reject(daily(path)).reason == "empty feature"


def test_value_over_1000_characters_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + f"ws_1,a@x.io,2026-06-01,{'f' * 1001},1,1\n")
    reject = only_reject(daily(path))
    assert reject.reason == "feature is over 1,000 characters"
    assert len(reject.value) <= 80


def test_bad_timestamp_is_rejected_and_offsets_become_utc_days(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        EVENTS_HEADER + "1,ws_1,a@x.io,2026-06-01T23:30:00-02:00,api,60\n"
        "2,ws_1,a@x.io,2026-06-02T10:00:00,api,60\n3,ws_1,a@x.io,yesterday,api,60\n",
    )
    rows, rejects = read(events(path))
    assert [(r["day"], r["events"], r["minutes"]) for r in rows] == [(dt.date(2026, 6, 2), 2, 2.0)]
    assert [(r.row, r.value) for r in rejects] == [(3, "yesterday")]
    assert rejects[0].reason.startswith("bad timestamp: expected an ISO 8601 time")


def test_latin1_bytes_reject_only_their_row(tmp_path: Path) -> None:
    data = (HEADER + "ws_1,a@x.io,2026-06-01,sso,1,1\n").encode() + (
        "ws_2,jos\xe9@x.io,2026-06-01,sso,1,1\n".encode("latin-1")
    )
    reject = only_reject(daily(write(tmp_path, data)))
    assert reject.row == 2
    assert reject.reason == "has bytes that are not UTF-8 (latin-1 or another encoding?)"
    assert "jos\\xe9" in reject.value


def test_utf16_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + "ws_1,a@x.io,2026-06-01,sso,1,1\n").encode("utf-16"))
    with pytest.raises(UsageFileError, match="is UTF-16 text") as raised:
        read(daily(path))
    assert str(path) in str(raised.value)


def test_bom_crlf_quoted_newlines_and_blank_lines_are_read(tmp_path: Path) -> None:
    text = (
        "\ufeffworkspace_id,user_email,day,feature,events,minutes,note\r\n"
        'ws_1,a@x.io,2026-06-01,sso,1,1.5,"two\r\nlines"\r\n'
        "\r\n"
        "ws_2,b@x.io,2026-06-01,api,4,0,\r\n"
    )
    rows, rejects = read(daily(write(tmp_path, text)))
    assert not rejects
    assert [(r["account_key"], r["events"], r["minutes"]) for r in rows] == [
        ("ws_1", 1, 1.5),
        ("ws_2", 4, 0.0),
    ]


def test_row_with_missing_fields_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "ws_1,a@x.io,2026-06-01\nws_2,b@x.io,2026-06-01,sso,1,1\n")
    rows, rejects = read(daily(path))
    assert [r["account_key"] for r in rows] == ["ws_2"]
    assert [r.reason for r in rejects] == ["expected 6 fields, found 3"]


# --- Unreadable files -------------------------------------------------------------------------


def test_junk_parquet_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"this is not parquet at all", "usage.parquet")
    with pytest.raises(UsageFileError, match="is not a readable Parquet file") as raised:
        read(daily(path, "parquet"))
    assert str(path) in str(raised.value)


def test_truncated_parquet_is_an_error(sandbox: tuple[World, Exports], tmp_path: Path) -> None:
    _, exports = sandbox
    data = exports.daily[0].read_bytes()
    path = write(tmp_path, data[: len(data) // 2], "usage.parquet")
    with pytest.raises(UsageFileError, match=str(path)):
        read(daily(path, "parquet"))


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageFileError, match="is empty: expected a header row"):
        read(daily(write(tmp_path, b"")))


def test_header_only_file_gives_one_empty_last_chunk(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER)
    assert list(read_usage(daily(path), account_key="workspace_id")) == [
        UsageChunk(path, [], [], last=True)
    ]


def test_missing_plain_path_is_an_error_but_an_empty_glob_is_not(tmp_path: Path) -> None:
    with pytest.raises(UsageFileError, match="does not exist"):
        read(daily(tmp_path / "nope.csv"))
    assert read(daily(tmp_path / "*.csv")) == ([], [])


# --- Memory -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    n = 300_000
    i = np.arange(n)
    table = pa.table(
        {
            "workspace_id": np.char.add("ws_", (i % 5000).astype(str)),
            "user_email": np.char.add(np.char.add("user", (i % 40000).astype(str)), "@example.com"),
            "day": (np.datetime64("2026-01-01") + (i % 180)).astype("datetime64[D]"),
            "feature": np.array(["login", "dashboards", "automation", "api"])[i % 4],
            "events": i % 17 + 1,
            "minutes": (i % 100) / 4.0,
            "note": np.full(n, "a column the reader never needs " * 3),
        }
    )
    path = tmp_path_factory.mktemp("big") / "usage.csv"
    pacsv.write_csv(table, path)
    return path


def test_memory_stays_flat_in_the_file_size(big_csv: Path) -> None:
    size = big_csv.stat().st_size
    tracemalloc.start()
    try:
        rows = 0
        for chunk in read_usage(daily(big_csv), account_key="workspace_id", chunk_rows=10_000):
            rows += len(chunk.rows)
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 300_000
    assert size > 40_000_000
    assert peak < 24_000_000  # the whole file as rows would take several hundred MB


# --- Warehouse query --------------------------------------------------------------------------


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE rollup (ws TEXT, email TEXT, day TEXT, feature TEXT, "
            "events INTEGER, minutes REAL)"
        )
        db.executemany(
            "INSERT INTO rollup VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("ws_1", "Ann@X.io", "2026-06-01", "sso", 2, 1.5),
                ("ws_1", None, "2026-06-02", "api", 5, 0.0),
                ("ws_2", "bob@x.io", "2026-06-02", "api", -1, 0.0),
            ],
        )
    return f"sqlite:///{path}"


def sql(url: str, query: str) -> SqlQuery:
    return SqlQuery(url=SecretStr(url), query=query)


def test_sql_source_reads_a_sqlite_warehouse(warehouse: str) -> None:
    query = sql(
        warehouse,
        "SELECT ws AS workspace_id, email AS user_email, day, feature, "
        "events, minutes FROM rollup ORDER BY day, ws",
    )
    chunks = list(read_usage_sql(query, account_key="workspace_id", chunk_rows=1))
    rows = [r for c in chunks for r in c.rows]
    rejects = [r for c in chunks for r in c.rejects]
    assert as_set(rows) == {
        ("ws_1", "ann@x.io", dt.date(2026, 6, 1), "sso", 2, 1.5),
        ("ws_1", "", dt.date(2026, 6, 2), "api", 5, 0.0),
    }
    assert {r["source"] for r in rows} == {"usage:sql"}
    assert [(r.file, r.row, r.reason) for r in rejects] == [(None, 3, "negative events")]
    assert chunks[-1].last and not any(c.last for c in chunks[:-1])


def test_sql_missing_column_names_the_column(warehouse: str) -> None:
    with pytest.raises(UsageFileError, match=r"the usage query on sqlite:///.*has no 'events'"):
        list(
            read_usage_sql(
                sql(warehouse, "SELECT ws AS workspace_id, day, feature FROM rollup"),
                account_key="workspace_id",
            )
        )


def test_sql_errors_never_show_the_password() -> None:
    query = sql("postgresql+psycopg://smartseg:hunter2@127.0.0.1:1/warehouse", "SELECT 1")
    with pytest.raises(UsageFileError) as raised:
        list(read_usage_sql(query, account_key="workspace_id"))
    assert "hunter2" not in str(raised.value)
    assert "smartseg:***@127.0.0.1:1/warehouse" in str(raised.value)


# --- NPS ----------------------------------------------------------------------------------------


def test_nps_export_reads_every_answer(sandbox: tuple[World, Exports]) -> None:
    world, exports = sandbox
    chunks = list(read_nps(FileInput(path=exports.nps, format="csv")))
    rows = [r for c in chunks for r in c.rows]
    assert not [r for c in chunks for r in c.rejects]
    assert len(rows) == len(world.nps) == len({r["source_id"] for r in rows})
    assert all(
        0 <= r["score"] <= 10 and r["responded_at"].utcoffset() == dt.timedelta(0) for r in rows
    )
    assert {r["source"] for r in rows} == {"nps:file"}


def test_nps_rows_are_checked_identified_and_trimmed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,workspace_id,score,responded_at,comment\n"
        f"Ann@X.io,ws_1,9,2026-06-01T10:00:00Z,{'x' * 5000}\n"
        "bob@x.io,,11,2026-06-01T10:00:00Z,\n"
        "cy@x.io,ws_2,7,someday,\n",
        "nps.csv",
    )
    chunks = list(read_nps(FileInput(path=path, format="csv")))
    rows = [r for c in chunks for r in c.rows]
    rejects = [(r.row, r.reason) for c in chunks for r in c.rejects]
    assert rejects == [
        (2, "score outside 0..10"),
        (3, "bad responded_at: expected an ISO 8601 time like 2026-06-01T12:00:00Z"),
    ]
    [row] = rows
    assert (row["email"], row["account_key"], len(row["comment"])) == ("ann@x.io", "ws_1", 4000)
    again = next(read_nps(FileInput(path=path, format="csv"))).rows[0]
    assert row["source_id"] == again["source_id"] and row["source_id"].startswith("h:")


# --- Fingerprint --------------------------------------------------------------------------------


def fingerprints(path: Path, data: Iterator[bytes]) -> list[str]:
    out = []
    for content in data:
        path.write_bytes(content)
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # same mtime: only content differs
        out.append(file_fingerprint(path))
    return out


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    small = fingerprints(tmp_path / "a.csv", iter([b"a,b\n1,2\n", b"a,b\n1,3\n", b"a,b\n1,3\n"]))
    assert small[0] != small[1] == small[2]
    big = b"x" * 500_000
    tail = fingerprints(tmp_path / "b.csv", iter([big, big[:-1] + b"y"]))
    assert tail[0] != tail[1]
