"""`python -m bench`: smartseg measured against its baselines, every figure a same-run ratio.

    python -m bench [--scale small|medium|large] [--json FILE] [--readme README.md]
                    [--only SECTION,...] [--cache-dir DIR] [--from-json FILE]

Sections (see each module's docstring for what is measured and why):
  evaluation  all shipped rules against one grouped scan of usage_daily, on SQLite and
              PostgreSQL (evaluation.py); at the small scale also against a naive per-entity
              Python script, which must find the same members (naive.py)
  api         pull throughput against a bare loop over the same SDK calls (pull.py), and sync
              write calls against the batch lower bound, then a sync with nothing changed
              (sync.py), on sandbox worlds in a child process
  memory      peak memory of a Salesforce pull at two sizes (pull_memory.py)
  demo        `smartseg demo` end to end (demo.py)

It prints one table and writes the same figures as JSON with the machine's details. Loaded
stores are cached under --cache-dir (a SQLite file and a PostgreSQL database per size) and
reused. PostgreSQL: SMARTSEG_BENCH_POSTGRES_URL, else a server the bench starts and stops
(postgres.py), else the PostgreSQL figures say why they were skipped. The exit status is 1 when
a section failed or a check did not hold (the naive baseline's members, the same members on
SQLite and PostgreSQL, zero calls when nothing changed); the figures are printed either way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.demo import run_demo
from bench.evaluation import disagreements, measure_evaluation
from bench.figures import (
    agreement_figure,
    demo_figures,
    evaluation_figures,
    memory_figures,
    pull_figures,
    skipped_evaluation,
    sync_figures,
)
from bench.logs import log
from bench.postgres import Postgres, postgres_server
from bench.pull import measure_memory, measure_overhead, pulled_world
from bench.report import Figure, code_state, machine, print_table, rewrite_readme
from bench.sandbox_process import REPO
from bench.scales import SCALES, BenchScale, describe
from bench.segment_eval import load_rule_set
from bench.sync import accounts_for, measure_sync
from smartseg.segmenter.rules import RuleSet

SECTIONS = ("evaluation", "api", "memory", "demo")
Section = Callable[[], tuple[list[Figure], Any]]


class Bench:
    """One run: the sections in order, their figures, details and failures."""

    def __init__(self, scale: BenchScale, cache_dir: Path, work: Path, postgres: Postgres) -> None:
        self.scale = scale
        self.cache_dir = cache_dir
        self.work = work
        self.postgres = postgres
        self.rules: RuleSet = load_rule_set(REPO / "config" / "segments")
        self.figures: list[Figure] = []
        self.details: dict[str, Any] = {}
        self.failures: list[str] = []
        self.seconds: dict[str, float] = {}

    def run(self, name: str, section: Section) -> None:
        started = time.perf_counter()
        try:
            figures, detail = section()
        except Exception as exc:  # reported as a failed section; the others still run
            traceback.print_exc(file=sys.stderr)
            message = f"{type(exc).__name__}: {exc}"
            self.failures.append(f"{name}: {message}")
            self.figures.append(Figure(name, "section failed", self.scale.name, "", message[:300]))
            return
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 1)
        self.figures.extend(figures)
        self.details[name] = detail

    def evaluation(self) -> tuple[list[Figure], Any]:
        figures: list[Figure] = []
        runs = []
        for store in self.scale.evaluation:
            both = []
            for kind in ("sqlite", "postgresql"):
                if kind == "postgresql" and self.postgres.url is None:
                    figures.append(skipped_evaluation(store, self.postgres.skipped or "no server"))
                    continue
                run = measure_evaluation(
                    self.rules,
                    store,
                    kind,
                    cache_dir=self.cache_dir,
                    admin_url=self.postgres.url,
                    naive=self.scale.naive and kind == "sqlite",
                )
                both.append(run)
                runs.append(run.as_json())
                figures.extend(evaluation_figures(run, len(self.rules.segments)))
                if run.naive is not None and run.naive.mismatches:
                    self.failures.append(
                        "evaluation: the naive baseline's members differ from smartseg's for "
                        f"{sorted(run.naive.mismatches)}"
                    )
            if len(both) == 2:
                differ = disagreements(both)
                figures.append(agreement_figure(store, len(self.rules.segments), differ))
                runs.append({"scale": store.as_json(), "databases_disagree": differ})
                if differ:
                    self.failures.append(
                        f"evaluation: SQLite and PostgreSQL find different members for "
                        f"{sorted(differ)} ({describe(store)})"
                    )
        return figures, runs

    def api(self) -> tuple[list[Figure], Any]:
        figures: list[Figure] = []
        detail: dict[str, Any] = {"sync": []}
        for records in self.scale.sync_records:
            accounts = accounts_for(records)
            directory = self.work / f"world-{accounts}"
            throughput = records == self.scale.pull_world
            with pulled_world(accounts, directory, crm_only=not throughput) as world:
                if throughput:
                    overhead = measure_overhead(world)
                    figures[:0] = pull_figures(overhead)
                    detail["pull"] = overhead.as_json()
                sync = measure_sync(world, directory / "sync")
            figures.extend(sync_figures(sync))
            detail["sync"].append(sync.as_json())
            if sync.unchanged_requests:
                self.failures.append(
                    f"sync: a second sync with nothing changed made {sync.unchanged_requests} "
                    "calls (must be 0)"
                )
        return figures, detail

    def memory(self) -> tuple[list[Figure], Any]:
        results = measure_memory(self.scale.pull_memory)
        return memory_figures(results), results

    def demo(self) -> tuple[list[Figure], Any]:
        demo = run_demo(self.work / "demo")
        return demo_figures(demo), demo


def _postgres_version(postgres: Postgres) -> str | None:
    if postgres.url is None:
        return None
    import sqlalchemy as sa

    from smartseg.store import make_engine

    engine = make_engine(postgres.url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(sa.text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def run(scale: BenchScale, cache_dir: Path, only: tuple[str, ...]) -> dict[str, Any]:
    """Every section in `only`, at `scale`; the report as the JSON holds it."""
    started = time.perf_counter()
    code = code_state()
    log(f"bench: scale {scale.name}, sections {', '.join(only)}; caches in {cache_dir}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="smartseg-bench-") as work,
        postgres_server(cache_dir) as postgres,
    ):
        bench = Bench(scale, cache_dir, Path(work), postgres)
        sections: dict[str, Section] = {
            "evaluation": bench.evaluation,
            "api": bench.api,
            "memory": bench.memory,
            "demo": bench.demo,
        }
        for name in only:
            log(f"bench: section {name}")
            bench.run(name, sections[name])
        info = machine(_postgres_version(postgres), code)
        info["postgresql_server"] = postgres.origin
    return {
        "bench": "smartseg",
        "scale": scale.name,
        "sections": list(only),
        "date": dt.date.today().isoformat(),
        "runtime_seconds": round(time.perf_counter() - started, 1),
        "section_seconds": bench.seconds,
        "machine": info,
        "figures": [f.as_json() for f in bench.figures],
        "failures": bench.failures,
        "details": bench.details,
    }


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown) or '(none)'}; choose from {', '.join(SECTIONS)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", choices=tuple(SCALES), default="small")
    parser.add_argument("--json", type=Path, help="write the figures as JSON to this file")
    parser.add_argument(
        "--readme", type=Path, help="rewrite this README's Performance section with the figures"
    )
    parser.add_argument(
        "--only", type=_sections, default=SECTIONS, help=f"sections: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "smartseg-bench",
        help="where loaded stores (and the bench's PostgreSQL cluster) are kept between runs",
    )
    parser.add_argument(
        "--from-json", type=Path, help="print (and --readme) a report written earlier; no run"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        report = json.loads(args.from_json.read_text())
    else:
        report = run(SCALES[args.scale], args.cache_dir.resolve(), args.only)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    m = report["machine"]
    title = (
        f"smartseg bench, scale {report['scale']}, {report['date']}: {m['cores']} cores, "
        f"Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql'] or '-'}; "
        f"ran {report['runtime_seconds']:.0f} s"
    )
    print_table([Figure(**f) for f in report["figures"]], title, m["cores"])
    for failure in report["failures"]:
        print(f"FAILED {failure}", file=sys.stderr)
    if args.readme:
        rewrite_readme(args.readme, report)
        log(f"bench: wrote the Performance section of {args.readme}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
