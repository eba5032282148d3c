"""Malformed usage exports through `smartseg pull usage`: every file of the corpus is pulled in
one run, and each case pins what the run says about it.

A bad row is reported as `<file> row <n>` with its reason, and the good rows of the same file
are stored; a file that cannot be read at all is reported by name while the other files of the
same folder still load (its stream fails, so the pull exits 1). The readers' own checks, value by
value, are pinned in tests/connectors/test_usage_files.py; this is the end-to-end view.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml

from smartseg.store import make_engine
from smartseg.worker.cli import main

DAILY = "workspace_id,user_email,day,feature,events,minutes\n"
EVENTS = "event_id,workspace_id,user_email,timestamp,feature,duration_seconds\n"
FOLDERS = {  # stream -> (folder, format, kind), as configured below
    "usage.files[0]": ("daily-csv", "csv", "daily"),
    "usage.files[1]": ("daily-parquet", "parquet", "daily"),
    "usage.files[2]": ("events-csv", "csv", "events"),
}


def _parquet(**columns: list[Any]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def _good(key: str) -> str:
    return f"{key},ann@x.io,2026-06-01,sso,2,1.5\n"


@dataclass(frozen=True)
class Case:
    """One export file: where it goes, its bytes, and what the pull must say about it.

    `issue` is the reason reported for `<file> row <row>` (or for the file itself when `row` is
    None: the file could not be read); `stored` is how many rows for the case's account key
    (its id) end up in usage_daily.
    """

    id: str
    stream: str
    data: bytes
    issue: str
    row: int | None
    stored: int

    @property
    def file(self) -> str:
        folder, fmt, _ = FOLDERS[self.stream]
        return f"{folder}/{self.id}.{fmt}"


def _daily(case_id: str, bad_row: str) -> bytes:
    return (DAILY + _good(case_id) + bad_row + _good(case_id).replace("sso", "api")).encode()


CASES = [
    Case(
        "bad-date",
        "usage.files[0]",
        _daily("bad-date", "bad-date,ann@x.io,2026-02-30,sso,1,1\n"),
        "bad day: expected a date like 2026-06-01 ('2026-02-30')",
        2,
        2,
    ),
    Case(
        "us-date",
        "usage.files[0]",
        _daily("us-date", "us-date,ann@x.io,06/01/2026,sso,1,1\n"),
        "bad day: expected a date like 2026-06-01 ('06/01/2026')",
        2,
        2,
    ),
    Case(
        "negative-count",
        "usage.files[0]",
        _daily("negative-count", "negative-count,ann@x.io,2026-06-02,sso,-3,1\n"),
        "negative events ('-3')",
        2,
        2,
    ),
    Case(
        "count-not-a-number",
        "usage.files[0]",
        _daily("count-not-a-number", "count-not-a-number,ann@x.io,2026-06-02,sso,lots,1\n"),
        "events is not a number ('lots')",
        2,
        2,
    ),
    Case(
        "fractional-count",
        "usage.files[0]",
        _daily("fractional-count", "fractional-count,ann@x.io,2026-06-02,sso,1.5,1\n"),
        "events is not a whole number ('1.5')",
        2,
        2,
    ),
    Case(
        "minutes-not-a-number",
        "usage.files[0]",
        _daily("minutes-not-a-number", "minutes-not-a-number,ann@x.io,2026-06-02,sso,3,lots\n"),
        "minutes is not a number ('lots')",
        2,
        2,
    ),
    Case(
        "empty-account-key",
        "usage.files[0]",
        _daily("empty-account-key", ",ann@x.io,2026-06-02,sso,3,1\n"),
        "empty workspace_id ('')",
        2,
        2,
    ),
    Case(
        "missing-fields",
        "usage.files[0]",
        (DAILY + "missing-fields,ann@x.io,2026-06-02\n" + _good("missing-fields")).encode(),
        "expected 6 fields, found 3 ('missing-fields,ann@x.io,2026-06-02')",
        1,
        1,
    ),
    Case(
        "latin-1-row",
        "usage.files[0]",
        _daily("latin-1-row", "") + b"latin-1-row,jos\xe9@x.io,2026-06-02,sso,1,1\n",
        "has bytes that are not UTF-8 (latin-1 or another encoding?)",
        3,
        2,
    ),
    Case(
        "value-too-long",
        "usage.files[0]",
        _daily("value-too-long", f"value-too-long,ann@x.io,2026-06-02,{'f' * 1001},1,1\n"),
        "feature is over 1,000 characters",
        2,
        2,
    ),
    Case(
        "unclosed-quote",
        "usage.files[0]",
        # Nothing closes the quote, so the rest of the file is one bad row: nothing to store.
        (
            DAILY
            + 'unclosed-quote,ann@x.io,2026-06-02,"sso,1,1\n'
            + _good("unclosed-quote")
            + _good("unclosed-quote").replace("sso", "api")
        ).encode(),
        "expected 6 fields, found 4",
        1,
        0,
    ),
    Case(
        "utf-16",
        "usage.files[0]",
        (DAILY + _good("utf-16")).encode("utf-16"),
        "{dir}/daily-csv/utf-16.csv is UTF-16 text. To fix: export it as UTF-8 CSV.",
        None,
        0,
    ),
    Case(
        "empty-file",
        "usage.files[0]",
        b"",
        "{dir}/daily-csv/empty-file.csv is empty: expected a header row naming the columns "
        "(workspace_id, day, feature, events).",
        None,
        0,
    ),
    Case(
        "missing-column",
        "usage.files[0]",
        b"workspace_id,user_email,day,feature,minutes\nmissing-column,a@x.io,2026-06-01,sso,1\n",
        "{dir}/daily-csv/missing-column.csv has no 'events' column (also accepted: event_count, "
        "events_count, count); found columns: workspace_id, user_email, day, feature, minutes. "
        "To fix: rename the column in the export.",
        None,
        0,
    ),
    Case(
        "latin-1-header",
        "usage.files[0]",
        "workspace_id,user_email,día,feature,events\n".encode("latin-1"),
        "{dir}/daily-csv/latin-1-header.csv: the header row is not UTF-8 text",
        None,
        0,
    ),
    Case(
        "parquet-bad-values",
        "usage.files[1]",
        _parquet(
            workspace_id=["parquet-bad-values"] * 3,
            day=["2026-06-01", "yesterday", "2026-06-02"],
            feature=["sso", "sso", "api"],
            events=["1", "2", "-1"],
        ),
        "bad day: expected a date like 2026-06-01 ('yesterday')",
        2,
        1,
    ),
    Case(
        "parquet-missing-column",
        "usage.files[1]",
        _parquet(workspace_id=["parquet-missing-column"], day=["2026-06-01"], feature=["sso"]),
        "{dir}/daily-parquet/parquet-missing-column.parquet has no 'events' column",
        None,
        0,
    ),
    Case(
        "parquet-truncated",
        "usage.files[1]",
        _parquet(
            workspace_id=["parquet-truncated"] * 500,
            day=["2026-06-01"] * 500,
            feature=[f"f{i}" for i in range(500)],
            events=list(range(500)),
        )[:-300],
        "{dir}/daily-parquet/parquet-truncated.parquet is not a readable Parquet file",
        None,
        0,
    ),
    Case(
        "parquet-junk",
        "usage.files[1]",
        b"PAR1\x00\x01 this was never a parquet file",
        "{dir}/daily-parquet/parquet-junk.parquet is not a readable Parquet file",
        None,
        0,
    ),
    Case(
        "bad-timestamp",
        "usage.files[2]",
        (
            EVENTS + "1,bad-timestamp,ann@x.io,2026-06-01T10:00:00Z,api,60\n"
            "2,bad-timestamp,ann@x.io,yesterday,api,60\n"
            "3,bad-timestamp,ann@x.io,2026-06-01T11:00:00Z,api,60\n"
        ).encode(),
        "bad timestamp: expected an ISO 8601 time",
        2,
        1,  # the two good events roll up into one daily row
    ),
]


@dataclass(frozen=True)
class Pulled:
    code: int
    result: dict[str, Any]
    err: str
    folder: Path
    rows: dict[str, int]


def _config(folder: Path) -> Path:
    files = [
        {"path": f"{name}/*.{fmt}", "format": fmt, "kind": kind}
        for name, fmt, kind in FOLDERS.values()
    ]
    files.append({"path": "daily-csv/not-there.csv", "format": "csv", "kind": "daily"})
    document = {
        "database_url": f"sqlite:///{folder / 'store.db'}",
        "sources": {"usage": {"files": files, "account_key": "workspace_id"}},
    }
    path = folder / "smartseg.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pulled]:
    """Every case file written into its folder, then one `smartseg pull usage --json`."""
    folder = tmp_path_factory.mktemp("usage-corpus")
    for name, _, _ in FOLDERS.values():
        (folder / name).mkdir()
    for case in CASES:
        (folder / case.file).write_bytes(case.data)
    config = str(_config(folder))
    assert _run("--config", config, "db", "upgrade")[0] == 0
    code, out, err = _run("--config", config, "pull", "usage", "--json")
    engine = make_engine(f"sqlite:///{folder / 'store.db'}")
    with engine.connect() as connection:
        rows = dict(
            connection.execute(
                sa.text("SELECT account_key, count(*) FROM usage_daily GROUP BY account_key")
            ).all()
        )
    engine.dispose()
    yield Pulled(code, json.loads(out), err, folder, rows)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_bad_row_or_file_is_reported_and_the_good_rows_stored(
    case: Case, pulled: Pulled
) -> None:
    issues = pulled.result["streams"][case.stream].get("issues", [])
    name = case.file.rsplit("/", 1)[1]
    where = name if case.row is None else f"{name} row {case.row}"
    reported = [issue["reason"] for issue in issues if issue["id"] == where]
    expected = case.issue.replace("{dir}", str(pulled.folder))
    assert (len(reported), pulled.rows.get(case.id, 0)) == (1, case.stored), issues
    assert expected in reported[0]


def test_a_stream_with_unreadable_files_fails_and_names_them(pulled: Pulled) -> None:
    report = pulled.result["streams"]["usage.files[0]"]
    assert pulled.code == 1
    assert report["failure"] == "data"
    assert report["error"] == (
        "4 files could not be read (empty-file.csv, latin-1-header.csv, missing-column.csv, "
        "utf-16.csv); each is listed with its reason among the skipped records"
    )
    assert "Traceback" not in pulled.err


def test_a_missing_configured_file_fails_only_its_own_stream(pulled: Pulled) -> None:
    streams = pulled.result["streams"]
    assert streams["usage.files[3]"]["error"] == (
        f"{pulled.folder}/daily-csv/not-there.csv does not exist. To fix: check the path in "
        "config (relative paths are relative to the config file's folder)."
    )
    assert streams["usage.files[2]"].get("error") is None


def test_a_row_with_missing_fields_after_good_rows_is_numbered_where_it_is(
    tmp_path: Path,
) -> None:
    from smartseg.config.sources import UsageFile
    from smartseg.connectors.usage_files import read_usage

    path = tmp_path / "usage.csv"
    rows = [
        _good("w1"),
        "w2,ann@x.io,2026-06-02\n",  # row 2: too few fields, set aside by the CSV parser
        "\n",  # a blank line is not a row
        _good("w3"),
        "w4,ann@x.io,2026-13-01,sso,2,1.5\n",  # row 4: a bad date, found after parsing
        "w5,ann@x.io,2026-06-02,sso,2,1.5,extra\n",  # row 5: too many fields
        _good("w6"),
    ]
    path.write_text(DAILY + "".join(rows))
    spec = UsageFile(path=path, format="csv", kind="daily")
    chunks = list(read_usage(spec, account_key="workspace_id"))
    rejects = sorted((r.row, r.reason) for chunk in chunks for r in chunk.rejects)
    assert [row for row, _ in rejects] == [2, 4, 5], rejects
    assert "expected 6 fields, found 3" in rejects[0][1]
    assert "day" in rejects[1][1]
    assert sum(len(chunk.rows) for chunk in chunks) == 3
