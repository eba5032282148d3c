"""Figures as a table, as JSON and as the README's Performance section.

Every figure is one row: its section, what it measures, the scale and database it was taken
at, smartseg's value, the baseline it is set against and their ratio (value / baseline). The
JSON adds the machine (cores, memory, Python, SQLite and PostgreSQL versions, git commit) and
each section's details. The README section is rendered from a report, never typed by hand.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = [
    "COLUMNS",
    "Figure",
    "code_state",
    "machine",
    "markdown_table",
    "print_table",
    "readme_section",
    "rewrite_readme",
]

COLUMNS = ("section", "figure", "scale", "database", "cores", "value", "baseline", "ratio")
START = "<!-- bench:performance:start -->"
END = "<!-- bench:performance:end -->"
_RUNTIMES = re.compile(r"<!-- bench:runtimes (\{.*?\}) -->")


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure. `value` is smartseg's; `ratio` is value / baseline when both are
    numbers; a text value is a result (e.g. "skipped: ...")."""

    section: str
    figure: str
    scale: str
    database: str
    value: float | int | str
    baseline: float | int | str | None = None
    unit: str = ""
    ratio: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def measured(
        cls,
        section: str,
        figure: str,
        scale: str,
        database: str,
        value: float | int,
        baseline: float | int | None,
        unit: str = "",
        **detail: Any,
    ) -> Figure:
        ratio = value / baseline if baseline else None
        return cls(section, figure, scale, database, value, baseline, unit, ratio, detail)

    def cells(self, cores: int) -> tuple[str, ...]:
        return (
            self.section,
            self.figure,
            self.scale,
            self.database,
            str(cores),
            _number(self.value, self.unit),
            "" if self.baseline is None else _number(self.baseline, self.unit),
            "" if self.ratio is None else f"{self.ratio:.3g}x",
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: float | int | str, unit: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".strip()


def code_state() -> dict[str, Any]:
    """The commit being measured and whether tracked files differ from it. Taken when the run
    starts: a commit or an edit made while a long run goes on must not be named in its report."""
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def machine(postgres_version: str | None, code: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the figures were measured on; `code` is `code_state()` from the run's start."""
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(pages * page_size / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        **(code if code is not None else code_state()),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def print_table(figures: Sequence[Figure], title: str, cores: int) -> None:
    table = Table(*COLUMNS, title=title)
    for figure in figures:
        table.add_row(*figure.cells(cores))
    Console(width=200).print(table)


def markdown_table(figures: Sequence[Figure], cores: int) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for figure in figures:
        cells = [c.replace("|", "\\|") for c in figure.cells(cores)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_section(report: dict[str, Any], runtimes: dict[str, dict[str, Any]]) -> str:
    """The Performance section's body for `report` (the JSON `python -m bench` writes)."""
    m = report["machine"]
    figures = [Figure(**f) for f in report["figures"]]
    commit = (m.get("git_commit") or "unknown")[:10]
    if m.get("git_dirty"):
        commit += " with uncommitted changes"
    postgres = f", PostgreSQL {m['postgresql']}" if m.get("postgresql") else ""
    timing = ", ".join(
        f"{name} {_runtime(runtimes[name]) if name in runtimes else 'not measured yet'}"
        for name in ("small", "medium", "large")
    )
    failed = []
    if report.get("failures"):
        failed = [f"Checks that did not hold: {'; '.join(report['failures'])}.", ""]
    lines = [
        START,
        f"`python -m bench --scale {report['scale']}` on {report['date']}, commit {commit}: "
        f"{m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, SQLite {m['sqlite']}"
        f"{postgres}. Each ratio is smartseg's value over the baseline's, both measured in "
        "the same run on the same machine.",
        "",
        markdown_table(figures, m["cores"]),
        "",
        *failed,
        f"Runtime of the whole command on this machine, per scale: {timing}. To reproduce "
        "(PostgreSQL figures need the distribution's PostgreSQL installed, or "
        "`SMARTSEG_BENCH_POSTGRES_URL`):",
        "",
        "```sh",
        f"make venv && .venv/bin/python -m bench --scale {report['scale']} --json bench.json "
        "--readme README.md",
        "```",
        f"<!-- bench:runtimes {json.dumps(runtimes, sort_keys=True)} -->",
        END,
    ]
    return "\n".join(lines)


def _runtime(entry: dict[str, Any]) -> str:
    seconds = entry["seconds"]
    text = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    if "stores_loaded" in entry:
        text += " (loading its stores)" if entry["stores_loaded"] else " (stores cached)"
    return text


def _stores_loaded(report: dict[str, Any]) -> bool:
    """Whether the run built any store rather than reusing a cached one."""
    runs = report.get("details", {}).get("evaluation", [])
    return any(not run["load"].get("reused", True) for run in runs if "load" in run)


def rewrite_readme(readme: Path, report: dict[str, Any]) -> None:
    """Put `report` between the Performance section's markers (kept runtimes of the other
    scales are carried over); fails with what to fix when the markers are missing."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(
            f"{readme} has no {START} ... {END} markers: put them in its Performance section, "
            "where the figures go"
        )
    before, rest = text.split(START, 1)
    old, after = rest.split(END, 1)
    found = _RUNTIMES.search(old)
    runtimes: dict[str, dict[str, Any]] = json.loads(found.group(1)) if found else {}
    runtimes[report["scale"]] = {
        "seconds": round(report["runtime_seconds"]),
        "stores_loaded": _stores_loaded(report),
        "date": report["date"],
        "cores": report["machine"]["cores"],
    }
    readme.write_text(before + readme_section(report, runtimes) + after)
