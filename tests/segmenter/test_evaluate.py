"""Evaluation records history: episodes open and close as data changes, static segments keep
their members, removed segments release theirs, the past is read-only, a failure changes
nothing; and the CLI shows it (evaluate, segments list, preview, explain)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.segmenter import evaluate as evaluate_module
from smartseg.segmenter.evaluate import EvaluationResult, evaluate
from smartseg.segmenter.rules import RuleSet, load_rules
from smartseg.store import make_engine, refresh_statistics, upgrade
from smartseg.store.models import Account, Activity, UsageDaily, table_of
from smartseg.worker.cli import main

from . import golden_data

RULES = """
segments:
  - {key: gold, name: Gold, when: "edition = 'Gold'"}
  - {key: big, name: Big, when: "employees >= 1000"}
  - {key: gold_static, name: Gold once, static: true, when: "edition = 'Gold'",
     exclude: [umbrella.test]}
  - {key: promoters, name: Promoters, level: contact, when: "latest nps(score) >= 9"}
"""
LATER = golden_data.AS_OF + dt.timedelta(days=1)


def rules_in(tmp_path: Path, text: str = RULES) -> RuleSet:
    folder = tmp_path / "segments"
    folder.mkdir(exist_ok=True)
    (folder / "rules.yaml").write_text(text)
    return load_rules(folder)


@pytest.fixture
def store(engine: Engine) -> Engine:
    golden_data.load(engine)
    return engine


def episodes(engine: Engine, key: str) -> list[tuple[int, bool]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT entity_id, exited_at IS NULL FROM membership WHERE segment_key = :k "
                "ORDER BY entity_id, id"
            ),
            {"k": key},
        )
        return [(int(a), bool(b)) for a, b in rows]


def set_edition(engine: Engine, account: int, edition: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE account SET edition = :e WHERE id = :i"), {"e": edition, "i": account}
        )


def test_nothing_changed_means_nothing_entered_or_exited(store: Engine, tmp_path: Path) -> None:
    rules = rules_in(tmp_path)
    first = evaluate(store, rules, as_of=golden_data.AS_OF)
    assert first.segments["gold"].entered == 1
    second = evaluate(store, rules, as_of=LATER)
    assert {(r.entered, r.exited) for r in second.segments.values()} == {(0, 0)}
    assert episodes(store, "gold") == [(1, True)]


def test_leaving_and_coming_back_are_two_episodes(store: Engine, tmp_path: Path) -> None:
    rules = rules_in(tmp_path)
    evaluate(store, rules, as_of=golden_data.AS_OF)
    set_edition(store, 2, "Gold")
    entered = evaluate(store, rules, as_of=LATER)
    assert (entered.segments["gold"].entered, entered.segments["gold"].exited) == (1, 0)
    set_edition(store, 2, "Silver")
    left = evaluate(store, rules, as_of=LATER + dt.timedelta(days=1))
    assert (left.segments["gold"].entered, left.segments["gold"].exited) == (0, 1)
    set_edition(store, 2, "Gold")
    evaluate(store, rules, as_of=LATER + dt.timedelta(days=2))
    assert episodes(store, "gold") == [(1, True), (2, False), (2, True)]
    with store.connect() as connection:
        closed = connection.execute(
            sa.text(
                "SELECT entered_at, exited_at, entered_run_id, exited_run_id FROM membership "
                "WHERE segment_key = 'gold' AND entity_id = 2 AND exited_at IS NOT NULL"
            )
        ).one()
    assert closed.entered_run_id == entered.run_id and closed.exited_run_id == left.run_id


def test_static_members_stay_until_excluded(store: Engine, tmp_path: Path) -> None:
    rules = rules_in(tmp_path)
    evaluate(store, rules, as_of=golden_data.AS_OF)
    set_edition(store, 1, "Silver")
    result = evaluate(store, rules, as_of=LATER)
    assert result.segments["gold"].exited == 1
    assert result.segments["gold_static"].exited == 0
    assert episodes(store, "gold_static") == [(1, True)]
    excluding = RULES.replace("exclude: [umbrella.test]", "exclude: [acme.test]")
    result = evaluate(store, rules_in(tmp_path, excluding), as_of=LATER + dt.timedelta(days=1))
    assert result.segments["gold_static"].exited == 1


def test_removed_segment_releases_its_members(store: Engine, tmp_path: Path) -> None:
    evaluate(store, rules_in(tmp_path), as_of=golden_data.AS_OF)
    without_big = "\n".join(line for line in RULES.splitlines() if "key: big" not in line)
    evaluate(store, rules_in(tmp_path, without_big), as_of=LATER)
    assert episodes(store, "big") == [(1, False)]


def test_deleted_account_exits(store: Engine, tmp_path: Path) -> None:
    rules = rules_in(tmp_path)
    evaluate(store, rules, as_of=golden_data.AS_OF)
    accounts = table_of(Account)
    with store.begin() as connection:
        connection.execute(sa.update(accounts).where(accounts.c.id == 1).values(deleted_at=LATER))
    result = evaluate(store, rules, as_of=LATER)
    assert result.segments["gold"].exited == 1


def test_a_look_at_the_past_writes_nothing(store: Engine, tmp_path: Path) -> None:
    rules = rules_in(tmp_path)
    evaluate(store, rules, as_of=LATER)
    before = episodes(store, "promoters")
    past = evaluate(store, rules, as_of=golden_data.AS_OF - dt.timedelta(days=60))
    assert not past.recorded
    assert episodes(store, "promoters") == before
    # 60 days earlier Alice's 9 had not been given yet; her latest answer then was a 3.
    assert past.segments["promoters"].members == 0
    assert past.segments["promoters"].exited == 0  # nobody was recorded as a member then
    with store.connect() as connection:
        kind = connection.execute(
            sa.text("SELECT kind FROM run WHERE id = :i"), {"i": past.run_id}
        ).scalar_one()
    assert kind == "evaluate-past"


HISTORY_RULES = """
segments:
  - {key: active, name: Active, when: "active_days(30d) >= 5 or active_users(14d) >= 2"}
  - {key: early, name: Early dashboards, when: "events(first 30d, 'dashboards') > 0"}
  - {key: quiet, name: Quiet users, level: contact, when: "active_days(30d) < 3"}
  - {key: met, name: Met, when: "any activity(kind = 'meeting' and status = 'completed', 90d)"}
"""


def vm_steps(engine: Engine, run: Callable[[], object]) -> int:
    """SQLite virtual-machine steps (in thousands) that `run` costs: a measure of the rows a
    query reads which, unlike a timer, does not depend on the machine or its load."""
    ticks = [0]

    def count() -> int:
        ticks[0] += 1
        return 0

    def watch(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_progress_handler(count, 1000)

    engine.dispose()
    sa.event.listen(engine, "connect", watch)
    try:
        run()
    finally:
        sa.event.remove(engine, "connect", watch)
        engine.dispose()
    return ticks[0]


def add_old_history(engine: Engine, rows_per_account: int) -> None:
    """Usage and meetings from 400 to 1,000 days back: older than any window of HISTORY_RULES
    reaches and outside every account's first 30 days."""
    rows = [
        dict(source="usage:test", account_key=f"ws{account}", feature=f"f{i % 7}",
             day=golden_data.DAY - dt.timedelta(days=400 + i % 600), user_key=f"u{i % 13}",
             account_id=account, contact_id=contact, events=1, minutes=1.0)
        for account, contact in ((1, 11), (2, 22), (3, None))
        for i in range(rows_per_account)
    ]  # fmt: skip
    meetings = [
        dict(source=source, source_id=f"old{account}-{i}", account_id=account, kind="meeting",
             status="completed", occurred_at=golden_data.AS_OF - dt.timedelta(days=400 + i),
             custom={})
        for account in (1, 2, 3)
        for i in range(rows_per_account // 10)
        for source in ("salesforce", "hubspot")
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(table_of(UsageDaily)), rows)
        connection.execute(sa.insert(table_of(Activity)), meetings)


def test_evaluation_reads_the_windows_not_all_of_history(tmp_path: Path) -> None:
    # SQLite only: its virtual-machine steps are the measure (PostgreSQL plans the same scans).
    store = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(store)
    golden_data.load(store)
    rules = rules_in(tmp_path, HISTORY_RULES)
    refresh_statistics(store)
    first: list[EvaluationResult] = []
    recent = vm_steps(store, lambda: first.append(evaluate(store, rules, as_of=LATER)))
    add_old_history(store, 6_000)  # 18,000 usage rows, 40 times the golden dataset's; 3,600
    # meetings (each held in both CRMs)
    refresh_statistics(store)  # as the pull that brought them does
    again: list[EvaluationResult] = []
    with_history = vm_steps(store, lambda: again.append(evaluate(store, rules, as_of=LATER)))
    members = {k: r.members for k, r in first[0].segments.items()}
    assert {k: r.members for k, r in again[0].segments.items()} == members  # none in reach
    assert sum(r.entered + r.exited for r in again[0].segments.values()) == 0
    assert first[0].segments["early"].members == 1  # Initech used dashboards in its first days
    assert first[0].segments["met"].members == 2
    # Reading the old rows would cost tens of steps each (about 500,000 for the usage rows
    # alone); stepping over them through the (account, time) indexes costs a few per row.
    assert with_history - recent < 100, (recent, with_history)
    store.dispose()


def test_a_failure_mid_evaluation_changes_nothing(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = rules_in(tmp_path)
    evaluate(store, rules, as_of=golden_data.AS_OF)
    set_edition(store, 2, "Gold")
    real_fill = evaluate_module.prepared._fill
    calls = {"n": 0}

    def failing_fill(self: evaluate_module.prepared, rule: object, predicate: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the database went away")
        real_fill(self, rule, predicate)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate_module.prepared, "_fill", failing_fill)
    with pytest.raises(RuntimeError):
        evaluate(store, rules, as_of=LATER)
    assert episodes(store, "gold") == [(1, True)]
    with store.connect() as connection:
        status, error = connection.execute(
            sa.text("SELECT status, error FROM run ORDER BY id DESC LIMIT 1")
        ).one()
    assert status == "failed" and "the database went away" in error
    monkeypatch.undo()
    again = evaluate(store, rules, as_of=LATER)
    assert again.segments["gold"].entered == 1


def cli(tmp_path: Path, engine: Engine, *args: str) -> tuple[int, str]:
    config = tmp_path / "smartseg.yaml"
    url = engine.url.render_as_string(hide_password=False)
    config.write_text(json.dumps({"database_url": url}))
    return main(["--config", str(config), *args]), ""


def test_cli_evaluate_json_and_list(
    store: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_in(tmp_path)
    code, _ = cli(tmp_path, store, "evaluate", "--as-of", "2026-03-01", "--json")
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["segments"]["gold"] == {"members": 1, "entered": 1, "exited": 0}
    assert out["segments"]["promoters"]["members"] == 2
    assert isinstance(out["run_id"], int)
    code, _ = cli(tmp_path, store, "segments", "list", "--json")
    listing = json.loads(capsys.readouterr().out)
    assert listing["segments"]["big"]["members"] == 1
    assert listing["last_evaluation"]["run_id"] == out["run_id"]


def test_cli_preview_lists_members_with_their_values(
    store: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_in(tmp_path)
    code, _ = cli(tmp_path, store, "segments", "preview", "promoters", "--as-of", "2026-03-01",
                  "--json")  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["members"] == 2
    assert [r["values"]["latest nps(score)"] for r in out["rows"]] == [9, 10]
    assert episodes(store, "promoters") == []  # nothing written


def test_cli_explain_shows_each_clause(
    store: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "r.yaml").write_text(
        "segments:\n  - key: gold_big\n    name: x\n"
        "    when: edition = 'Gold' and (employees >= 1000 or active_days(30d) > 25)\n"
    )
    code, _ = cli(tmp_path, store, "segments", "explain", "gold_big", "globex.test",
                  "--as-of", "2026-03-01", "--json")  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["member"] is False and out["name"] == "Globex Inc"
    clauses = {c["text"]: (c["holds"], c["values"]) for c in out["clauses"]}
    assert clauses["edition = 'Gold'"] == (False, {"edition": "Silver"})
    assert clauses["employees >= 1000"] == (False, {"employees": 150})
    assert clauses["active_days(30d) > 25"] == (False, {"active_days(30d)": 5})
    code, _ = cli(tmp_path, store, "segments", "explain", "gold_big", "nobody.test")
    assert code == 1
    assert "no account matches 'nobody.test'" in capsys.readouterr().err
