"""The bench's smallest pieces, so CI catches breakage: the naive baseline as an oracle on a
tiny store, the report's JSON, and the README's Performance section written from it.

(The bench itself is not a test; `python -m bench` runs it.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.postgres
from bench.__main__ import main, run
from bench.databases import prepare_database
from bench.naive import run_naive
from bench.report import COLUMNS, END, START, Figure, rewrite_readme
from bench.scales import BenchScale
from bench.synthetic import AS_OF, Scale
from smartseg.segmenter.catalogue import Catalogue
from smartseg.segmenter.rules import load_rules

TINY = Scale(accounts=40, contacts_per_account=5, usage_rows=6_000)
TINY_BENCH = BenchScale(
    "tiny", (TINY,), naive=True, sync_records=(1, 2), pull_world=1, pull_memory=(1, 2)
)
README = f"# x\n\n## Performance\n\n{START}\nold figures\n{END}\n\n## Next\n"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-cache")


@pytest.mark.timeout(120)
def test_evaluation_section_agrees_with_the_naive_oracle_and_reports_skipped_postgres(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(bench.postgres.ENV_URL, raising=False)
    monkeypatch.setattr(bench.postgres, "_PG_ROOT", tmp_path / "no-postgres")
    report = run(TINY_BENCH, cache_dir, ("evaluation",))
    assert report["failures"] == []
    rows = {(f["figure"], f["database"]): f for f in report["figures"]}
    equal = next(f for (name, _), f in rows.items() if name.startswith("naive script's members"))
    assert equal["value"] == "123 of 123"
    skipped = [f for (_, db), f in rows.items() if db == "postgresql"]
    assert skipped and str(skipped[0]["value"]).startswith("skipped: no PostgreSQL binaries")
    first = next(f for (name, db), f in rows.items() if "first evaluation" in name)
    assert first["ratio"] == pytest.approx(first["value"] / first["baseline"])
    assert set(report["machine"]) >= {
        "cores",
        "memory_gb",
        "python",
        "sqlite",
        "postgresql",
        "git_commit",
    }
    for figure in report["figures"]:
        assert set(figure) >= set(COLUMNS) - {"cores"}
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps(report))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert main(["--from-json", str(saved), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old figures" not in text and "## Next" in text
    assert "| naive script's members equal smartseg's (rules) |" in text


def test_naive_baseline_leaves_out_rules_it_cannot_interpret(
    cache_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(
        """segments:
  - {key: rounded, name: Rounded, when: "round(health_score) > 50"}
  - {key: built_on_rounded, name: Built on it, when: "in_segment('rounded') and seats > 5"}
  - {key: customers, name: Customers, when: "status = 'Customer'"}
"""
    )
    rules = load_rules(tmp_path, Catalogue())
    database = prepare_database("sqlite", TINY, cache_dir=cache_dir)
    try:
        result = run_naive(database.engine, rules, AS_OF)
    finally:
        database.engine.dispose()
    assert result.skipped == {
        "rounded": "function round()",
        "built_on_rounded": "refers to rounded, which is left out",
    }
    assert list(result.members) == ["customers"] and result.members["customers"]


def _report(scale: str, value: float) -> dict[str, object]:
    figure = Figure.measured("demo", "demo end to end", "200 accounts", "sqlite", value, None, "s")
    return {
        "scale": scale,
        "date": "2026-06-30",
        "runtime_seconds": 90.0,
        "machine": {
            "cores": 2,
            "memory_gb": 8.0,
            "python": "3.11",
            "sqlite": "3.40",
            "postgresql": None,
            "git_commit": "abc",
            "git_dirty": False,
        },
        "figures": [figure.as_json()],
        "failures": [],
    }


def test_readme_rewrite_replaces_the_figures_and_keeps_other_scales_runtimes(
    tmp_path: Path,
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    rewrite_readme(readme, _report("small", 11.0))
    rewrite_readme(readme, _report("medium", 22.0))
    text = readme.read_text()
    assert "22.00 s" in text and "11.00 s" not in text
    assert "small 90 s (stores cached), medium 90 s (stores cached), large not measured" in text
    assert text.count(START) == 1 and text.endswith("## Next\n")


def test_readme_rewrite_says_where_the_markers_go(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Performance\n\nhand-typed figures\n")
    with pytest.raises(ValueError, match="markers"):
        rewrite_readme(readme, _report("small", 1.0))
