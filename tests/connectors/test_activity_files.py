"""Activity exports: read exactly, bad rows set aside, pulled once, linked by workspace, domain
and contact email."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.config.sources import FileInput
from smartseg.connectors.activity_files import ActivityFileError, read_activities
from smartseg.connectors.identity import link
from smartseg.connectors.pull import run_pull
from smartseg.connectors.runner import PullResult
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.store import upsert
from smartseg.store.models import Account, Activity

HEADER = (
    "Activity ID,Type,Status,Occurred At,Duration,Subject,Owner Email,Workspace ID,Domain,Email\n"
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _read(path: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    chunks = list(read_activities(FileInput(path=path, format="csv"), chunk_rows=2))
    return [r for c in chunks for r in c.rows], [r for c in chunks for r in c.rejects]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_good_file_reads_kinds_statuses_and_utc_times(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "a.csv",
        [
            "a1,Quarterly Business Review,Completed,2026-06-01T10:00:00+02:00,60,Q2 review,"
            "CSM@x.com,w-1,,Ann@A.com",
            "a2,Meeting,no-show,2026-06-02T09:30:00,,,,,www.acme.com,",
            "a3,Phone Call,Canceled,2026-06-03T00:00:00Z,5.5,,,w-2,,",
            ",EMAIL,scheduled,2026-06-04,,Hello,,w-3,,",
        ],
    )
    rows, rejects = _read(path)
    assert rejects == []
    assert [(r["kind"], r["status"]) for r in rows] == [
        ("qbr", "completed"),
        ("meeting", "cancelled"),
        ("call", "cancelled"),
        ("email", "scheduled"),
    ]
    assert [r["occurred_at"] for r in rows] == [
        dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 2, 9, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 3, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 4, tzinfo=dt.UTC),
    ]
    first, second = rows[0], rows[1]
    assert first["source"] == "activity:file"
    assert (first["source_id"], first["duration_minutes"], first["subject"]) == (
        "a1",
        60,
        "Q2 review",
    )
    assert (first["owner_id"], first["account_ref"], first["contact_ref"]) == (
        "csm@x.com",
        "workspace:w-1",
        "email:ann@a.com",
    )
    assert (second["account_ref"], second["contact_ref"], second["duration_minutes"]) == (
        "domain:acme.com",
        None,
        None,
    )
    assert rows[3]["source_id"].startswith("h:")
    assert _read(path)[0][3]["source_id"] == rows[3]["source_id"]


def test_a_long_subject_is_truncated_not_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", [f"a1,call,completed,2026-06-01,,{'x' * 5000},,w-1,,"])
    rows, rejects = _read(path)
    assert rejects == []
    assert len(rows[0]["subject"]) == 1_000


def test_a_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("activity_id,kind,occurred_at,workspace_id\na1,call,2026-06-01,w-1\n")
    with pytest.raises(ActivityFileError) as caught:
        _read(path)
    assert str(path) in str(caught.value)
    assert "'status'" in str(caught.value)


def test_a_file_naming_no_account_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("kind,status,occurred_at,contact_email\ncall,completed,2026-06-01,a@b.com\n")
    with pytest.raises(ActivityFileError, match="workspace_id"):
        _read(path)


def test_the_domain_namespace_links_only_a_unique_domain(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(
            connection,
            Account,
            [
                {"external_key": "salesforce:A", "name": "A", "domain": "a.com"},
                {"external_key": "salesforce:B", "name": "B", "domain": "shared.com"},
                {"external_key": "salesforce:C", "name": "C", "domain": "shared.com"},
            ],
            key=["external_key"],
        )
        upsert(
            connection,
            Activity,
            [
                {"source": "activity:file", "source_id": s, "kind": "call", "account_ref": ref}
                for s, ref in (("1", "domain:a.com"), ("2", "domain:shared.com"))
            ],
            key=["source", "source_id"],
        )
        link(connection)
        rows = connection.execute(
            sa.text(
                "SELECT v.source_id, a.external_key FROM activity v "
                "LEFT JOIN account a ON a.id = v.account_id ORDER BY v.source_id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("1", "salesforce:A"), ("2", None)]


# --- Through the pull -------------------------------------------------------------------------


def _config(directory: Path, server: SalesforceServer, make_sf_config: Any, path: Path) -> Config:
    make_sf_config(directory, server)
    document = yaml.safe_load((directory / "smartseg.yaml").read_text())
    document["sources"]["activities"] = {"files": [{"path": str(path), "format": "csv"}]}
    (directory / "smartseg.yaml").write_text(yaml.safe_dump(document))
    return load_config(directory / "smartseg.yaml", env={})


def _pull(engine: Engine, config: Config, **kwargs: Any) -> PullResult:
    return run_pull(engine, config, clock=_now, sleep=lambda s: None, **kwargs)


@pytest.fixture
def setup(
    engine: Engine, tmp_path: Path, sf_server: SalesforceServer, make_sf_config: Any
) -> tuple[Config, Path, dict[str, Any]]:
    """A config with an activity file, and the accounts and contact of a first Salesforce pull."""
    path = tmp_path / "exports" / "activities.csv"
    config = _config(tmp_path, sf_server, make_sf_config, path)
    assert _pull(engine, config, sources=["salesforce"]).ok
    with engine.connect() as connection:
        by_workspace = connection.execute(
            sa.text("SELECT id, workspace_id FROM account WHERE workspace_id IS NOT NULL LIMIT 1")
        ).one()
        by_domain = connection.execute(
            sa.text(
                "SELECT min(id) AS id, domain FROM account WHERE domain IS NOT NULL "
                "AND id <> :skip GROUP BY domain HAVING count(*) = 1 ORDER BY domain LIMIT 1"
            ),
            {"skip": by_workspace.id},
        ).one()
        contact = connection.execute(
            sa.text("SELECT id, email FROM contact WHERE email IS NOT NULL ORDER BY id LIMIT 1")
        ).one()
    known = {"workspace": by_workspace, "domain": by_domain, "contact": contact}
    return config, path, known


def test_activities_load_and_link_by_workspace_domain_and_contact(
    engine: Engine, setup: tuple[Config, Path, dict[str, Any]]
) -> None:
    config, path, known = setup
    workspace, domain, contact = known["workspace"], known["domain"], known["contact"]
    _write(
        path,
        [
            f"a1,QBR,completed,2026-06-01T10:00:00Z,45,Review,csm@x.com,{workspace.workspace_id},,",
            f"a2,meeting,scheduled,2026-06-02T10:00:00,,,,,https://www.{domain.domain}/,",
            f"a3,email,completed,2026-06-03T10:00:00Z,,,,{workspace.workspace_id},,"
            f"{contact.email.upper()}",
        ],
    )
    result = _pull(engine, config, sources=["activities"])
    assert result.ok, result.as_dict()
    report = result.streams["activities.files[0]"]
    assert (report.records, report.created, report.skipped) == (3, 3, 0)
    with engine.connect() as connection:
        rows = {
            r.source_id: r
            for r in connection.execute(
                sa.text(
                    "SELECT source_id, kind, status, occurred_at, account_id, contact_id "
                    "FROM activity WHERE source = 'activity:file'"
                )
            )
        }
    assert {k: (r.kind, r.status) for k, r in rows.items()} == {
        "a1": ("qbr", "completed"),
        "a2": ("meeting", "scheduled"),
        "a3": ("email", "completed"),
    }
    assert rows["a1"].account_id == rows["a3"].account_id == workspace.id
    assert rows["a2"].account_id == domain.id
    assert rows["a3"].contact_id == contact.id
    assert (rows["a1"].contact_id, rows["a2"].contact_id) == (None, None)


def test_malformed_rows_are_rejected_with_reasons_and_good_rows_load(
    engine: Engine, setup: tuple[Config, Path, dict[str, Any]]
) -> None:
    config, path, known = setup
    ws = known["workspace"].workspace_id
    path.parent.mkdir(parents=True)
    path.write_bytes(
        (
            HEADER
            + f"a1,call,completed,2026-06-01T10:00:00Z,,,,{ws},,\n"
            + f"a2,webinar,completed,2026-06-01T10:00:00Z,,,,{ws},,\n"
            + f"a3,call,completed,yesterday,,,,{ws},,\n"
            + "a4,call,completed,2026-06-01T10:00:00Z,,,,,,a@b.com\n"
        ).encode()
        + f"a5,call,completed,2026-06-01T10:00:00Z,,Caf\xe9,,{ws},,\n".encode("latin-1")
        + f"a6,meeting,done,2026-06-02T10:00:00Z,,,,{ws},,\n".encode()
    )
    result = _pull(engine, config, sources=["activities"])
    report = result.streams["activities.files[0]"]
    assert (report.records, report.skipped) == (2, 4)
    issues = {i["id"]: i["reason"] for i in report.issues}
    assert "unknown kind" in issues["activities.csv row 2"]
    assert "bad occurred_at" in issues["activities.csv row 3"]
    assert "no workspace_id and no account_domain" in issues["activities.csv row 4"]
    assert "not UTF-8" in issues["activities.csv row 5"]
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT source_id FROM activity WHERE source = 'activity:file' ORDER BY 1")
        ).scalars()
        assert list(stored) == ["a1", "a6"]


def test_an_unchanged_file_is_not_read_again(
    engine: Engine, setup: tuple[Config, Path, dict[str, Any]]
) -> None:
    config, path, known = setup
    _write(path, [f"a1,call,completed,2026-06-01T10:00:00Z,,,,{known['workspace'].workspace_id},,"])
    assert _pull(engine, config, sources=["activities"]).streams["activities.files[0]"].records == 1
    again = _pull(engine, config, sources=["activities"])
    assert again.streams["activities.files[0]"].records == 0
