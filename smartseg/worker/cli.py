"""The `smartseg` command line.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error. Errors meant for a person are
printed as one paragraph without a traceback (`--debug` shows it); `--json` prints exactly one
JSON object on stdout.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from smartseg import __version__, entry
from smartseg.errors import SmartsegError
from smartseg.logs import redact, setup_logging
from smartseg.worker import commands, segments, sync_commands
from smartseg.worker.context import AppContext

__all__ = ["app", "main"]

log = logging.getLogger("smartseg")

app = typer.Typer(
    name="smartseg",
    help="Customer-success segmentation: pull CRM, billing and usage data, evaluate segment "
    "rules, write tags and tasks back to the CRM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
segments_app = typer.Typer(
    help="Segment rules: check, list, preview, explain.", no_args_is_help=True
)
app.add_typer(segments_app, name="segments")
crm_app = typer.Typer(help="CRM fields and properties smartseg writes.", no_args_is_help=True)
app.add_typer(crm_app, name="crm")

AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Evaluate as of this day (YYYY-MM-DD) instead of now."),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smartseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="SMARTSEG_CONFIG",
            show_envvar=True,
            help="Config file (default: ./config/smartseg.yaml).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", envvar="SMARTSEG_LOG_LEVEL")] = "INFO",
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    setup_logging("DEBUG" if debug else log_level)
    # Libraries narrate routine steps at INFO (each migration context, each connection); only
    # --debug shows them. Set both ways, since `main()` may run more than once in a process.
    for name in ("alembic", "urllib3", "stripe", "simple_salesforce"):
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)
    ctx.obj = AppContext(config_path=config, debug=debug)
    if ctx.invoked_subcommand != "run":
        entry.release()  # only the service stops gracefully on a SIGTERM that came while starting


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path(
        "config"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a starter config that works with `smartseg sandbox` at its default ports."""
    for line in commands.init_config(directory, force=force):
        typer.echo(line)


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Apply schema migrations to the database."""
    result = commands.db_upgrade(ctx.obj)
    if as_json:
        _print_json(result)
    else:
        typer.echo(f"Database {result['database']} is at revision {result['revision']}.")


@app.command()
def status(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many recent runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Recent runs (pull, evaluate, sync) with their outcome, counts and errors."""
    result = commands.status(ctx.obj, limit=limit)
    if as_json:
        _print_json(result)
    else:
        commands.print_status(result)


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[
        str | None,
        typer.Option(
            "--once",
            metavar="JOB",
            help="Run one job now (pipeline, pull, pull.<source>, evaluate, sync), then exit.",
        ),
    ] = None,
    health_host: Annotated[
        str | None,
        typer.Option(
            "--health-host", envvar="SMARTSEG_HEALTH_HOST", help="Overrides worker.health_host."
        ),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port",
            min=0,
            max=65535,
            envvar="SMARTSEG_HEALTH_PORT",
            help="Overrides worker.health_port; 0 picks a free port (logged, and in --ready-file).",
        ),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            "--ready-file",
            help="Once the scheduler runs, write its health URL, port and replica id here (JSON).",
        ),
    ] = None,
    replica_id: Annotated[
        str | None,
        typer.Option(
            "--replica-id",
            envvar="SMARTSEG_REPLICA_ID",
            help="This replica's name in job leases (default: host:pid).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --once: print the outcome as one JSON object.")
    ] = False,
) -> None:
    """Run the schedules until SIGTERM: pull, evaluate and sync, one replica per job firing.

    Serves /healthz and /metrics on worker.health_host:health_port. SIGTERM or SIGINT lets the
    running step finish, releases job leases and exits 0.
    """
    if once is not None:
        entry.release()  # one job now: a one-shot command
    elif entry.stop_requested():
        log.info("received SIGTERM while starting; nothing was started")
        raise typer.Exit(0)
    from smartseg.worker.service import Worker

    if not ctx.obj.debug:
        # One line per job from smartseg says more than APScheduler's per-execution lines.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    worker = Worker(
        ctx.obj.config(),
        ctx.obj.engine(),
        replica=replica_id,
        health_host=health_host,
        health_port=health_port,
    )
    if once is None:
        raise typer.Exit(worker.serve(ready_file=ready_file))
    outcome = worker.run_once(once)
    if as_json:
        _print_json(outcome.as_json())
    else:
        detail = outcome.error or outcome.reason or ""
        typer.echo(f"{outcome.job}: {outcome.status} in {outcome.seconds:.1f}s"
                   + (f" ({redact(detail)})" if detail else ""))  # fmt: skip
    if outcome.status != "ok":
        raise typer.Exit(1)


@app.command()
def pull(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to pull (default: all enabled).")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Ignore cursors; read everything.")] = False,
    unmatched: Annotated[
        bool, typer.Option("--unmatched", help="List records that match no account, then exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Pull CRM, billing and usage data into the store, incrementally."""
    if unmatched:
        listing = commands.unmatched(ctx.obj)
        if as_json:
            _print_json(listing)
        else:
            commands.print_unmatched(listing)
        return
    result = commands.pull(ctx.obj, sources=sources or [], full=full, show_progress=not as_json)
    if as_json:
        _print_json(result)
    else:
        commands.print_pull(result)
    failures = {stream.get("failure") for stream in result["streams"].values()} - {None}
    if failures:
        raise typer.Exit(2 if "config" in failures else 1)


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(min=1, help="Synthetic accounts to generate.")] = 200,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo's config, data and store go.")
    ] = Path("smartseg-demo"),
    as_json: Json = False,
) -> None:
    """Run the whole pipeline against the built-in sandbox: pull, evaluate, write back."""
    from smartseg.worker.demo import print_summary, run_demo

    logger = logging.getLogger("smartseg")
    level = logger.level
    if logger.getEffectiveLevel() > logging.DEBUG:
        # The summary says what happened; per-step INFO lines would bury it.
        logger.setLevel(logging.WARNING)
    try:
        summary = run_demo(directory, accounts=accounts, progress=not as_json)
    finally:
        logger.setLevel(level)
    if as_json:
        _print_json(summary.as_json())
    else:
        print_summary(summary)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(ctx: typer.Context, as_of: AsOf = None, as_json: Json = False) -> None:
    """Evaluate every segment rule and record who entered and who left."""
    result = segments.run_evaluate(ctx.obj, as_of=as_of)
    if as_json:
        _print_json(result.as_json())
    else:
        segments.print_evaluation(result)


@app.command()
def sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and its API cost; write nothing.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Write segment tags, computed fields and playbook tasks to the CRMs (changes only)."""
    result = sync_commands.run_sync(ctx.obj, dry_run=dry_run)
    if as_json:
        _print_json(result.as_json())
    else:
        sync_commands.print_sync(result)
    if result.failed:
        raise typer.Exit(1)


@crm_app.command("setup")
def crm_setup(ctx: typer.Context, as_json: Json = False) -> None:
    """Create the fields, properties and picklist values smartseg writes, and say what it did."""
    done = sync_commands.crm_setup(ctx.obj)
    if as_json:
        _print_json(done)
        return
    for target, lines in done.items():
        for line in lines or ["nothing to do: everything exists"]:
            typer.echo(f"{target}: {line}")


@segments_app.command("check")
def segments_check(ctx: typer.Context, as_json: Json = False) -> None:
    """Validate every rule, metric and playbook; exit 2 naming the file, line and spot."""
    result = segments.check(ctx.obj)
    if as_json:
        _print_json(result)
    else:
        segments.echo_check(result)


@segments_app.command("list")
def segments_list(ctx: typer.Context, as_json: Json = False) -> None:
    """Each segment with its size and who entered or exited in the last evaluation."""
    listing = segments.list_segments(ctx.obj)
    if as_json:
        _print_json(listing)
    else:
        segments.print_list(listing)


@segments_app.command("preview")
def segments_preview(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Segment key.")],
    as_of: AsOf = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Members to list.")] = 20,
    as_json: Json = False,
) -> None:
    """Who is in a segment now, with the values its rule reads; writes nothing."""
    result = segments.run_preview(ctx.obj, key, as_of=as_of, limit=limit)
    if as_json:
        _print_json(segments.preview_json(result))
    else:
        segments.print_preview(result)


@segments_app.command("explain")
def segments_explain(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Segment key.")],
    entity: Annotated[str, typer.Argument(help="Account or contact: id, CRM id, domain or email.")],
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """Why one account or contact is in or out of a segment, clause by clause."""
    result = segments.run_explain(ctx.obj, key, entity, as_of=as_of)
    if as_json:
        _print_json(segments.explanation_json(result))
    else:
        segments.print_explanation(result)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    salesforce_port: Annotated[int, typer.Option(min=0, max=65535)] = 8443,
    hubspot_port: Annotated[int, typer.Option(min=0, max=65535)] = 8444,
    stripe_port: Annotated[int, typer.Option(min=0, max=65535)] = 12111,
    accounts: Annotated[int, typer.Option(min=1, help="Synthetic accounts to generate.")] = 200,
    seed: Annotated[int, typer.Option(help="Generator seed: same seed, same data.")] = 7,
    anchor: Annotated[
        str | None, typer.Option(help="The data's 'today' as YYYY-MM-DD (default: today).")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Where usage/NPS files and the CA go.")] = Path(
        "sandbox-data"
    ),
    faults: Annotated[
        str, typer.Option(help="Faults, e.g. 'hubspot.429:probability=0.1,*.500:times=2'.")
    ] = "",
) -> None:
    """Run local Salesforce, HubSpot and Stripe APIs seeded with a synthetic customer base.

    Prints one JSON line with the URLs, the CA file and the credentials once all three accept
    connections, then serves until interrupted.
    """
    commands.run_sandbox(
        host=host,
        ports=(salesforce_port, hubspot_port, stripe_port),
        accounts=accounts,
        seed=seed,
        anchor=anchor,
        data_dir=data_dir,
        faults=faults,
    )


def _print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str, sort_keys=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: runs the CLI and turns errors into messages and exit codes."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # Standalone mode: typer prints usage errors itself and exits 2.
        app(args=argv, prog_name="smartseg")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SmartsegError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {redact(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # the last line of defence: still no secrets, still one paragraph
        if debug:
            traceback.print_exc()
        else:
            log.debug("unexpected error", exc_info=True)
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {redact(str(exc))}. "
            "Run again with --debug for the traceback.",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m smartseg.worker.cli`
    sys.exit(main())
