"""`smartseg segments ...` and `smartseg evaluate`: load the rules the config names and run them.

The work lives in `smartseg.segmenter`; this module resolves the config (rules folder, custom
fields, time zone), turns `--as-of` into an evaluation time, and prints results for people
(rich tables on a terminal, plain lines when piped) or as one JSON object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from smartseg.config import Config
from smartseg.errors import ConfigError
from smartseg.segmenter.catalogue import Catalogue
from smartseg.segmenter.evaluate import EvaluationResult, evaluate, last_evaluation
from smartseg.segmenter.explain import Explanation, Preview, explain, preview
from smartseg.segmenter.rules import RuleSet, load_rules
from smartseg.store.models import Membership, table_of
from smartseg.sync.playbooks import load_playbooks
from smartseg.worker.context import AppContext
from smartseg.worker.one_shot import holding_step

__all__ = [
    "catalogue_for",
    "check",
    "evaluation_time",
    "list_segments",
    "print_evaluation",
    "print_explanation",
    "print_list",
    "print_preview",
    "rules_for",
    "run_evaluate",
    "run_explain",
    "run_preview",
]

_LEVEL_OF = {"account": "account", "company": "account", "companies": "account",
             "contact": "contact", "contacts": "contact"}  # fmt: skip


def catalogue_for(config: Config) -> Catalogue:
    """The rule catalogue with the custom CRM fields the source config keeps."""
    base = Catalogue()
    custom: dict[str, set[str]] = {"account": set(), "contact": set()}
    for source in (config.sources.salesforce, config.sources.hubspot):
        if source is None or not source.enabled:
            continue
        for obj, mapping in source.field_map.items():
            level = _LEVEL_OF.get(obj.lower())
            if level is not None:
                custom[level].update(n for n in mapping if n not in base.levels[level])
        for obj, names in source.custom_fields.items():
            level = _LEVEL_OF.get(obj.lower())
            if level is not None:
                custom[level].update(names)
    return Catalogue.with_custom(custom)


def rules_for(config: Config) -> RuleSet:
    return load_rules(config.segments_dir, catalogue_for(config))


def check(context: AppContext) -> dict[str, Any]:
    """Load and check every rule, metric and playbook (playbooks name segments and fields)."""
    config = context.config()
    rules = rules_for(config)
    playbooks = load_playbooks(config.playbooks_dir, rules)
    return {
        "segments": len(rules.segments),
        "metrics": len(rules.metrics),
        "playbooks": len(playbooks),
        "files": [str(f) for f in rules.files],
        "catalogue": sorted({c for r in rules.segments for c in r.spec.catalogue}),
    }


def evaluation_time(
    config: Config, as_of: str | None, clock: Callable[[], dt.datetime]
) -> dt.datetime:
    """Now, or the start of `as_of` (YYYY-MM-DD) in the configured zone."""
    if as_of is None:
        return clock()
    try:
        day = dt.date.fromisoformat(as_of)
    except ValueError:
        raise ConfigError(f"--as-of {as_of!r} is not a date; write it as YYYY-MM-DD") from None
    return dt.datetime.combine(day, dt.time(0), config.tz).astimezone(dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_evaluate(context: AppContext, *, as_of: str | None = None) -> EvaluationResult:
    config = context.config()
    rules = rules_for(config)
    moment = evaluation_time(config, as_of, _now)
    engine = context.migrated_engine()
    with holding_step(engine, config, "evaluate"):
        return evaluate(engine, rules, as_of=moment, tz=config.tz)


def print_evaluation(result: EvaluationResult) -> None:
    console = Console()
    note = "" if result.recorded else " (a look at the past: nothing recorded)"
    console.print(
        f"Evaluated {len(result.segments)} segments as of {result.as_of:%Y-%m-%d %H:%M} UTC in "
        f"{result.seconds:.1f}s, run {result.run_id}{note}."
    )
    table = Table("segment", "members", "entered", "exited", box=None)
    for key, seg in result.segments.items():
        table.add_row(key, str(seg.members), str(seg.entered), str(seg.exited))
    console.print(table)
    for warning in result.warnings:
        console.print(f"warning: {warning}", style="yellow")


def list_segments(context: AppContext) -> dict[str, Any]:
    """Each configured segment with its size and the changes of the last evaluation."""
    rules = rules_for(context.config())
    engine = context.migrated_engine()
    last = last_evaluation(engine)
    m = table_of(Membership)
    sizes: dict[str, int] = {}
    entered: dict[str, int] = {}
    exited: dict[str, int] = {}
    with engine.connect() as connection:
        for key, count in connection.execute(
            sa.select(m.c.segment_key, sa.func.count())
            .where(m.c.exited_at.is_(None))
            .group_by(m.c.segment_key)
        ):
            sizes[key] = int(count)
        if last is not None:
            for column, out in ((m.c.entered_run_id, entered), (m.c.exited_run_id, exited)):
                for key, count in connection.execute(
                    sa.select(m.c.segment_key, sa.func.count())
                    .where(column == last[0])
                    .group_by(m.c.segment_key)
                ):
                    out[key] = int(count)
    return {
        "last_evaluation": {"run_id": last[0], "as_of": last[1].isoformat()} if last else None,
        "segments": {
            r.key: {
                "name": r.spec.name,
                "level": r.level,
                "catalogue": list(r.spec.catalogue),
                "members": sizes.get(r.key, 0),
                "entered": entered.get(r.key, 0),
                "exited": exited.get(r.key, 0),
            }
            for r in rules.segments
        },
    }


def print_list(listing: dict[str, Any]) -> None:
    console = Console()
    last = listing["last_evaluation"]
    if last is None:
        console.print("No evaluation yet: run `smartseg evaluate`. Sizes below are 0.")
    else:
        console.print(f"Last evaluation: run {last['run_id']} as of {last['as_of']}.")
    table = Table("segment", "level", "catalogue", "members", "entered", "exited", "name", box=None)
    for key, seg in listing["segments"].items():
        table.add_row(
            key, seg["level"], ",".join(seg["catalogue"]), str(seg["members"]),
            str(seg["entered"]), str(seg["exited"]), seg["name"],
        )  # fmt: skip
    console.print(table)


def _day(config: Config, as_of: str | None) -> dt.date:
    return evaluation_time(config, as_of, _now).astimezone(config.tz).date()


def run_preview(context: AppContext, key: str, *, as_of: str | None, limit: int) -> Preview:
    config = context.config()
    return preview(
        context.migrated_engine(), rules_for(config), key, day=_day(config, as_of), tz=config.tz,
        limit=limit,
    )  # fmt: skip


def print_preview(result: Preview) -> None:
    console = Console()
    console.print(f"{result.key}: {result.total} {result.level}s match (nothing written).")
    table = Table("id", result.level, *result.columns, box=None)
    for entity_id, label, values in result.rows:
        table.add_row(str(entity_id), label, *(_show(v) for v in values))
    console.print(table)
    if result.total > len(result.rows):
        console.print(f"... and {result.total - len(result.rows)} more (--limit to see more).")


def preview_json(result: Preview) -> dict[str, Any]:
    return {
        "segment": result.key,
        "level": result.level,
        "members": result.total,
        "rows": [
            {"id": i, "name": label, "values": dict(zip(result.columns, values, strict=True))}
            for i, label, values in result.rows
        ],
    }


def run_explain(context: AppContext, key: str, ref: str, *, as_of: str | None) -> Explanation:
    config = context.config()
    return explain(
        context.migrated_engine(),
        rules_for(config),
        key,
        ref,
        day=_day(config, as_of),
        tz=config.tz,
    )


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def print_explanation(result: Explanation) -> None:
    console = Console(highlight=False)
    verdict = "IS" if result.member else "is NOT"
    console.print(f"{result.level} {result.entity_id} ({result.entity}) {verdict} in {result.key}.")
    marks = {True: "[green]yes[/]", False: "[red]no [/]", None: "[yellow]?  [/]"}
    for clause in result.clauses:
        values = ", ".join(f"{label} = {_show(v)}" for label, v in clause.values)
        tail = f"   [dim]({values})[/]" if values else ""
        console.print(f"{'  ' * clause.depth}{marks[clause.holds]} {clause.text}{tail}")
    for note in result.notes:
        console.print(f"note: {note}")


def explanation_json(result: Explanation) -> dict[str, Any]:
    return {
        "segment": result.key,
        "level": result.level,
        "id": result.entity_id,
        "name": result.entity,
        "member": result.member,
        "clauses": [
            {"depth": c.depth, "text": c.text, "holds": c.holds, "values": dict(c.values)}
            for c in result.clauses
        ],
        "notes": list(result.notes),
    }


def echo_check(result: dict[str, Any]) -> None:
    typer.echo(
        f"{result['segments']} segments and {result['metrics']} metrics in "
        f"{len(result['files'])} files are valid, and {result['playbooks']} playbooks."
    )
