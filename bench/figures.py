"""Section results as report rows: what each figure is called and what it is set against."""

from __future__ import annotations

from typing import Any

from bench.evaluation import EvaluationRun
from bench.pull import PullOverhead
from bench.report import Figure
from bench.scales import describe
from bench.sync import SyncFigures
from bench.synthetic import Scale

__all__ = [
    "agreement_figure",
    "demo_figures",
    "evaluation_figures",
    "memory_figures",
    "pull_figures",
    "skipped_evaluation",
    "sync_figures",
]


def evaluation_figures(run: EvaluationRun, rules: int) -> list[Figure]:
    scale, db = describe(run.scale), run.database
    scan = run.scan["seconds"]
    members = run.first["members"]
    out = [
        Figure.measured(
            "evaluation",
            f"all {rules} rules, first evaluation ({members:,} memberships) vs one grouped "
            "scan of usage_daily",
            scale,
            db,
            run.first["seconds"],
            scan,
            "s",
            window=run.window,
        ),
        Figure.measured(
            "evaluation",
            f"all {rules} rules, a day later ({run.second['entered']:,} entered, "
            f"{run.second['exited']:,} exited) vs the same scan",
            scale,
            db,
            run.second["seconds"],
            scan,
            "s",
        ),
    ]
    for label, evaluation in (("first evaluation", run.first), ("a day later", run.second)):
        out.append(_phases_figure(label, evaluation, scan, scale, db))
    if run.naive is not None:
        naive = run.naive.result
        covered = len(naive.members)
        out.append(
            Figure.measured(
                "evaluation",
                f"first evaluation vs a naive per-entity Python script ({covered} of {rules} "
                f"rules, {naive.queries:,} queries)",
                scale,
                db,
                run.first["seconds"],
                round(naive.seconds, 3),
                "s",
            )
        )
        equal = covered - len(run.naive.mismatches)
        out.append(
            Figure(
                "evaluation",
                "naive script's members equal smartseg's (rules)",
                scale,
                db,
                f"{equal} of {covered}" + _uncovered(rules - covered),
            )
        )
    return out


# The phases an evaluation's SQL time splits into (bench.segment_eval.phase_of), as the
# report names them. What is left (Python, result fetches, set-up) shows as "the rest".
_PHASES = (
    ("metric_tables", "metric tables"),
    ("segment_inserts", "segment results"),
    ("membership_writes", "membership ledger"),
)


def _phases_figure(
    label: str, evaluation: dict[str, Any], scan: float, scale: str, db: str
) -> Figure:
    """Where one evaluation's time went, each phase as seconds and as a multiple of the scan:
    the figure that shows which part of the work keeps the total from the scan."""
    phases = evaluation.get("phases", {})
    parts = [(name, float(phases.get(key, 0.0))) for key, name in _PHASES]
    parts.append(("the rest", max(0.0, evaluation["seconds"] - sum(s for _, s in parts))))
    shown = ", ".join(f"{name} {s:.2f} s ({_times(s / scan)})" for name, s in parts)
    return Figure(
        "evaluation", f"{label} by phase, each vs the same scan", scale, db, shown,
        detail={"phases": phases},
    )  # fmt: skip


def agreement_figure(store: Scale, rules: int, differ: dict[str, dict[str, int]]) -> Figure:
    shown = "; ".join(
        f"{key}: " + ", ".join(f"{db} {n:,}" for db, n in counts.items())
        for key, counts in sorted(differ.items())
    )
    return Figure(
        "evaluation",
        "first evaluation: SQLite and PostgreSQL find the same members (rules)",
        describe(store),
        "both",
        f"{rules - len(differ)} of {rules}" + (f" (differ: {shown})" if differ else ""),
    )


def skipped_evaluation(scale: Scale, reason: str) -> Figure:
    return Figure(
        "evaluation", "all rules vs one grouped scan", describe(scale), "postgresql",
        f"skipped: {reason}",
    )  # fmt: skip


def pull_figures(overhead: PullOverhead) -> list[Figure]:
    records = overhead.total
    return [
        Figure.measured(
            "pull",
            f"records per second, first pull of Salesforce, HubSpot and Stripe ({records:,} "
            f"records, {overhead.smartseg_calls} calls) vs a bare loop over the same SDK calls",
            f"{overhead.accounts:,} sandbox accounts",
            "sqlite",
            round(records / overhead.smartseg_seconds),
            round(records / overhead.bare_seconds),
            "rec/s",
        )
    ]


def memory_figures(results: list[dict[str, Any]]) -> list[Figure]:
    small, large = results
    return [
        Figure.measured(
            "pull",
            f"peak memory of a Salesforce pull, {r['records']:,} records"
            + (f", vs {small['records']:,} records" if r is large else ""),
            f"{r['accounts']:,} sandbox accounts",
            "sqlite",
            r["peak_rss_mb"],
            small["peak_rss_mb"] if r is large else None,
            "MB",
        )
        for r in (small, large)
    ]


def sync_figures(sync: SyncFigures) -> list[Figure]:
    n = sync.total_changed
    scale = f"{sync.accounts:,} sandbox accounts"
    per_crm = ", ".join(f"{crm} {count:,}" for crm, count in sync.changed.items())
    return [
        Figure.measured(
            "sync",
            f"write calls for {n:,} changed records ({per_crm}) vs the batch lower bound",
            scale,
            "sqlite",
            sum(sync.writes.values()),
            sum(sync.lower_bound.values()),
            "calls",
        ),
        Figure.measured(
            "sync",
            f"time to write {n:,} changed records (shipped rate limits, all requests: "
            f"{sum(sum(r.values()) for r in sync.requests.values())})",
            scale,
            "sqlite",
            round(sync.seconds, 2),
            None,
            "s",
        ),
        Figure.measured(
            "sync",
            "calls of a second sync with nothing changed (must be 0)",
            scale,
            "sqlite",
            sync.unchanged_requests,
            None,
            "calls",
        ),
    ]


def demo_figures(demo: dict[str, Any]) -> list[Figure]:
    calls = demo["api_calls"]
    total = sum(sum(c.values()) for c in calls.values())
    scale = f"{demo['accounts']:,} sandbox accounts"
    return [
        Figure.measured(
            "demo",
            "smartseg demo end to end: sandbox, pull, evaluate, CRM setup, sync",
            scale,
            "sqlite",
            demo["wall_seconds"],
            None,
            "s",
        ),
        Figure.measured(
            "demo",
            f"API calls of the demo (pull {sum(calls['pull'].values())}, "
            f"sync {sum(calls['sync'].values())})",
            scale,
            "sqlite",
            total,
            None,
            "calls",
        ),
    ]


def _times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _uncovered(count: int) -> str:
    return f" ({count} rules not covered)" if count else ""
