"""What the basic CLI commands do, apart from argument parsing (so tests can call them too)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from smartseg.config import Config
from smartseg.connectors.identity import unmatched_counts, unmatched_links
from smartseg.connectors.pull import run_pull
from smartseg.errors import ConfigError, SmartsegError
from smartseg.sandbox import credentials
from smartseg.sandbox.app import Sandbox, SandboxError
from smartseg.store import Run, head_revision, redacted_url, upgrade
from smartseg.store.models import Lease, table_of
from smartseg.worker.abandoned import lapsed_notes, settle_proven
from smartseg.worker.context import AppContext, schema_revision
from smartseg.worker.one_shot import holding_step

__all__ = [
    "db_upgrade",
    "init_config",
    "print_pull",
    "print_status",
    "print_unmatched",
    "pull",
    "run_sandbox",
    "status",
    "summarize_counts",
    "unmatched",
]

_RUN = table_of(Run)

_STARTER_SECRETS = {
    "secrets/salesforce_client_secret": credentials.SALESFORCE_CLIENT_SECRET,
    "secrets/hubspot_token": credentials.HUBSPOT_TOKEN,
    "secrets/stripe_api_key": credentials.STRIPE_API_KEY,
}


def init_config(directory: Path, *, force: bool = False) -> Iterator[str]:
    """Copy the starter config tree into `directory` and write the sandbox's dev credentials.

    Existing files are kept unless `force`; yields one line per file for the user.
    """
    starter = resources.files("smartseg.config") / "starter"
    with resources.as_file(starter) as source:
        # Only the config itself: never local secret files or editor leftovers.
        files = sorted(
            p
            for p in Path(source).rglob("*")
            if p.is_file() and p.suffix in (".yaml", ".yml") and "secrets" not in p.parts
        )
        for path in files:
            target = directory / path.relative_to(source)
            yield _write(target, path.read_bytes(), force=force)
    for relative, value in _STARTER_SECRETS.items():
        yield _write(directory / relative, (value + "\n").encode(), force=force, private=True)
    for folder in ("segments", "playbooks"):
        (directory / folder).mkdir(parents=True, exist_ok=True)
    yield (
        f"Starter config is in {directory}/. It points at `smartseg sandbox` on its default ports; "
        "edit smartseg.yaml to use your own systems."
    )


def _write(target: Path, content: bytes, *, force: bool, private: bool = False) -> str:
    if target.exists() and not force:
        return f"kept     {target} (exists; --force overwrites)"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    if private:
        target.chmod(0o600)
    return f"wrote    {target}"


def db_upgrade(context: AppContext) -> dict[str, Any]:
    engine = context.engine()
    revision = upgrade(engine)
    return {"database": redacted_url(engine.url), "revision": revision}


def status(
    context: AppContext, *, limit: int = 20, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The schema revision, the last run of each kind and job, job leases, and recent runs.

    Runs first go through the settling that a read can be sure of (worker/abandoned.py): a run
    whose worker provably stopped shows as `abandoned`, not `running`; one whose worker only
    went quiet keeps `running`, with a note saying so."""
    engine = context.engine()
    revision = schema_revision(engine)
    now = now or _now()
    columns = {column["name"] for column in sa.inspect(engine).get_columns("run")}
    notes: dict[int, str] = {}
    if "lease" in columns:  # before `smartseg db upgrade` there is nothing to prove it with
        settle_proven(engine, now=now)
        notes = lapsed_notes(engine, now=now)
    # Only the columns this database has, so status still works while migrations are pending.
    shown = sa.select(*(column for column in _RUN.c if column.name in columns))
    latest = sa.select(sa.func.max(_RUN.c.id)).group_by(_RUN.c.kind, _RUN.c.job)
    with engine.connect() as connection:
        runs = connection.execute(
            shown.order_by(_RUN.c.started_at.desc(), _RUN.c.id.desc()).limit(limit)
        ).mappings()
        recent = [_run_summary(run, notes) for run in runs]
        last = connection.execute(
            shown.where(_RUN.c.id.in_(latest)).order_by(_RUN.c.kind, _RUN.c.job)
        ).mappings()
        latest_runs = [_last_summary(run, notes) for run in last]
    return {
        "database": redacted_url(engine.url),
        "revision": revision,
        "up_to_date": revision == head_revision(),
        "last": latest_runs,
        "leases": _leases(engine),
        "runs": recent,
    }


def _last_summary(run: sa.RowMapping, notes: dict[int, str]) -> dict[str, Any]:
    """A run for the per-job view: its counts boiled down (`counts` holds whole segment lists)."""
    summary = _run_summary(run, notes)
    del summary["counts"]
    summary["summary"] = summarize_counts(run["kind"], run["counts"])
    return summary


def _leases(engine: Engine) -> list[dict[str, Any]]:
    """Who holds (or last held) each scheduled job; empty before the lease table exists."""
    if not sa.inspect(engine).has_table("lease"):
        return []
    now = _now()
    with Session(engine) as session:
        rows = session.exec(select(Lease).order_by(col(Lease.job))).all()
    return [
        {
            "job": row.job,
            "held": row.acquired_until is not None and row.acquired_until > now,
            "holder": row.holder,
            "acquired_until": _iso(row.acquired_until),
            "last_fired": _iso(row.last_fired),
        }
        for row in rows
    ]


def summarize_counts(kind: str, counts: dict[str, Any]) -> dict[str, int]:
    """A run row's counts as a few whole numbers, whatever step wrote them."""
    if kind == "pull":
        streams = list((counts.get("streams") or {}).values())
        return {
            "records_pulled": sum(int(s.get("records", 0)) for s in streams),
            "streams_failed": sum(1 for s in streams if s.get("error")),
        }
    if kind in ("evaluate", "evaluate-past"):
        sizes = [v[0] if isinstance(v, list) else v.get("members", 0)
                 for v in (counts.get("segments") or {}).values()]  # fmt: skip
        return {"segments": len(sizes), "members": sum(int(n) for n in sizes)}
    if kind in ("sync", "sync-dry-run"):
        return {
            "records_updated": int(counts.get("records_updated", 0)),
            "tasks_created": int(counts.get("tasks_created", 0)),
            "tasks_closed": int(counts.get("tasks_closed", 0)),
            "write_failures": int(counts.get("failed", 0)),
        }
    # Job rows (smartseg run) keep their counts summed and flat already.
    return {
        k: v
        for k, v in counts.items()
        if isinstance(v, int) and not isinstance(v, bool) and k != "run_id"
    }


def _run_summary(run: sa.RowMapping, notes: dict[int, str]) -> dict[str, Any]:
    """One run row for status; `replica` and `note` say who ran it and, for a run still
    `running` whose worker has gone quiet, what that means."""
    duration = None
    if run["started_at"] and run["finished_at"]:
        duration = round((run["finished_at"] - run["started_at"]).total_seconds(), 3)
    return {
        "id": run["id"],
        "kind": run["kind"],
        "job": run["job"],
        "status": run["status"],
        "started_at": _iso(run["started_at"]),
        "finished_at": _iso(run["finished_at"]),
        "duration_s": duration,
        "counts": run["counts"],
        "api_calls": run["api_calls"],
        "error": run["error"],
        "replica": run.get("holder"),
        "note": notes.get(run["id"]),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _counts_text(summary: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.items())


def _explanation(run: dict[str, Any]) -> str:
    """The error column: what went wrong, or why a run still `running` may not be."""
    return str(run["error"] or run["note"] or "")


def print_status(result: dict[str, Any]) -> None:
    """Tables on a terminal: the last run per kind and job, leases, recent runs. Piped:
    tab-separated lines, `last` lines first, then one line per recent run."""
    runs = result["runs"]
    last = result.get("last", [])
    if not sys.stdout.isatty():
        print(f"database\t{result['database']}\trevision\t{result['revision']}")
        for run in last:
            print(
                "\t".join(
                    (
                        "last",
                        run["kind"],
                        run["job"] or "-",
                        str(run["id"]),
                        run["status"],
                        run["finished_at"] or "-",
                        _counts_text(run["summary"]) or "-",
                        _explanation(run),
                    )
                )
            )
        for run in runs:
            fields = (str(run[k]) for k in ("id", "kind", "status", "started_at", "duration_s"))
            print("\t".join((*fields, _explanation(run))))
        return
    console = Console()
    stale = "" if result["up_to_date"] else " (migrations pending: run `smartseg db upgrade`)"
    console.print(f"Database [bold]{result['database']}[/], revision {result['revision']}{stale}")
    if not runs:
        console.print("No runs yet. `smartseg demo` runs the whole pipeline against the sandbox.")
        return
    styles = {"failed": "red", "abandoned": "magenta", "succeeded": "green", "ok": "green"}
    latest = Table("kind", "job", "run", "status", "finished", "took", "counts", "error",
                   title="Last run per kind and job", title_justify="left")  # fmt: skip
    for run in last:
        style = styles.get(run["status"], "yellow")
        took = f"{run['duration_s']:.1f}s" if run["duration_s"] is not None else "-"
        latest.add_row(
            run["kind"],
            run["job"] or "",
            str(run["id"]),
            f"[{style}]{run['status']}[/]",
            run["finished_at"] or "-",
            took,
            _counts_text(run["summary"]),
            _explanation(run),
        )
    console.print(latest)
    if result.get("leases"):
        leases = Table("job", "held", "holder", "until", "last firing",
                       title="Job leases", title_justify="left")  # fmt: skip
        for lease in result["leases"]:
            leases.add_row(
                lease["job"],
                "yes" if lease["held"] else "no",
                lease["holder"] or "-",
                lease["acquired_until"] or "-",
                lease["last_fired"] or "-",
            )
        console.print(leases)
    table = Table("run", "kind", "status", "started", "took", "counts", "error",
                  title="Recent runs", title_justify="left")  # fmt: skip
    for run in runs:
        counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items() if not isinstance(v, dict))
        took = f"{run['duration_s']:.1f}s" if run["duration_s"] is not None else "-"
        style = styles.get(run["status"], "yellow")
        table.add_row(
            str(run["id"]),
            run["kind"],
            f"[{style}]{run['status']}[/]",
            run["started_at"] or "-",
            took,
            counts,
            _explanation(run),
        )
    console.print(table)


def run_sandbox(
    *,
    host: str,
    ports: tuple[int, int, int],
    accounts: int,
    seed: int,
    anchor: str | None,
    data_dir: Path,
    faults: str,
) -> None:
    """Start the sandbox, print its JSON line, serve until SIGINT/SIGTERM."""
    try:
        day = dt.date.fromisoformat(anchor) if anchor else None
    except ValueError:
        raise ConfigError(f"--anchor expects a date as YYYY-MM-DD, got {anchor!r}") from None
    box = Sandbox(
        host=host,
        salesforce_port=ports[0],
        hubspot_port=ports[1],
        stripe_port=ports[2],
        accounts=accounts,
        seed=seed,
        anchor=day,
        data_dir=data_dir,
        faults=faults,
    )
    try:
        info = box.start()
    except SandboxError as exc:
        raise SmartsegError(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sys.stdout.write(json.dumps(info.as_dict()) + "\n")
    sys.stdout.flush()
    box.serve_forever(stop)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pull(
    context: AppContext, *, sources: list[str], full: bool, show_progress: bool
) -> dict[str, Any]:
    """Run a pull; a progress line per stream on a terminal."""
    engine = context.migrated_engine()
    config = context.config()
    with holding_step(engine, config, "pull"):
        return _pull(engine, config, sources=sources, full=full, show_progress=show_progress)


def _pull(
    engine: Engine, config: Config, *, sources: list[str], full: bool, show_progress: bool
) -> dict[str, Any]:
    if not (show_progress and sys.stderr.isatty()):
        return run_pull(engine, config, clock=_now, sources=sources, full=full).as_dict()
    from rich.progress import Progress, SpinnerColumn, TextColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} records"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(stream: str, records: int) -> None:
            if stream not in tasks:
                tasks[stream] = bar.add_task(stream, total=None)
            bar.advance(tasks[stream], records)

        result = run_pull(engine, config, clock=_now, sources=sources, full=full, progress=progress)
    return result.as_dict()


def print_pull(result: dict[str, Any]) -> None:
    """One line per stream: what arrived and what it changed (tab-separated when piped)."""
    columns = ("records", "created", "updated", "deleted", "skipped", "api_calls")
    if not sys.stdout.isatty():
        print("\t".join(("stream", *columns, "error")))
        for key, s in result["streams"].items():
            print("\t".join((key, *(str(s[k]) for k in columns), s.get("error", ""))))
        print(f"run\t{result['run_id']}\tunmatched\t{result['unmatched']}")
        for line in _skipped_lines(result):
            print(line)
        return
    console = Console()
    table = Table(
        "stream", "records", "created", "updated", "deleted", "skipped", "api calls", "error"
    )
    for key, s in result["streams"].items():
        table.add_row(key, *(f"{s[k]:,}" for k in ("records", "created", "updated", "deleted",
                      "skipped", "api_calls")), s.get("error", ""))  # fmt: skip
    console.print(table)
    console.print(f"run {result['run_id']}: {result['unmatched']:,} records match no account "
                  "(`smartseg pull --unmatched` lists them)")  # fmt: skip
    for line in _skipped_lines(result):
        console.print(line, markup=False, highlight=False)


def _skipped_lines(result: dict[str, Any], shown: int = 5) -> Iterator[str]:
    """The first records each stream set aside, and why: enough to find the bad rows."""
    for key, stream in result["streams"].items():
        issues = stream.get("issues") or []
        for issue in issues[:shown]:
            yield f"skipped\t{key}\t{issue['id']}\t{issue['reason']}"
        if stream["skipped"] > shown:
            kept = f"`smartseg status --json` keeps the first {len(issues)}"
            yield f"skipped\t{key}\t... {stream['skipped'] - shown:,} more ({kept})"


def unmatched(context: AppContext, limit: int = 200) -> dict[str, Any]:
    """Counts of unmatched records per table, and the unmatched source records themselves."""
    engine = context.migrated_engine()
    with engine.connect() as connection:
        counts = unmatched_counts(connection)
        records = unmatched_links(connection, limit=limit)
    return {"total": sum(counts.values()), "by_table": counts, "records": records}


def print_unmatched(listing: dict[str, Any]) -> None:
    if not listing["total"]:
        print("Every pulled record matches an account.")
        return
    for table, count in listing["by_table"].items():
        print(f"{count:>8,}  {table}")
    if listing["records"]:
        print("\nSource records that match no account (what they say about themselves):")
    for record in listing["records"]:
        said = ", ".join(
            f"{k}={v}" for k, v in record.items() if k not in ("source", "object", "id")
        )
        where = f"{record['source']} {record['object']} {record['id']}"
        print(f"  {where}: {said or 'nothing to match on'}")
