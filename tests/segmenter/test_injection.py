"""Text and names in rules can never become SQL: every constant is a bound parameter and every
identifier comes from the catalogue (property-based, on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from smartseg.segmenter import syntax
from smartseg.segmenter.catalogue import Catalogue
from smartseg.segmenter.check import Checker, RuleError, Source
from smartseg.segmenter.compile import Compiler, EvalTime
from smartseg.segmenter.evaluate import prepared
from smartseg.segmenter.rules import RuleSet

from . import golden_data

CATALOGUE = Catalogue.with_custom({"account": ["Tier__c"]})
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NASTY = st.sampled_from(
    ["'; DROP TABLE account; --", "\\'); DELETE FROM contact; --", "%' OR '1'='1", "_%",
     "名前", "O'Brien", "\" OR 1=1 --", "$1", ":param", "?", "%s", "{{x}}", "\\"]
)  # fmt: skip
TEXT = st.one_of(NASTY, st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def compiled(rule: str, level: str = "account") -> tuple[sa.Select[tuple[int]], str]:
    tree = Checker(CATALOGUE).check(syntax.parse(rule), level, Source(None, "rule t", rule)).tree
    compiler = Compiler(EvalTime(golden_data.DAY), "sqlite")
    condition, joined, entity_id = compiler.predicate(tree, level)
    query = sa.select(entity_id).select_from(joined).where(condition)
    return query, str(query.compile(dialect=sqlite.dialect()))


@given(value=TEXT)
@SETTINGS
def test_text_constants_are_parsed_back_exactly_and_never_printed(value: str) -> None:
    rule = f"name = {quote(value)} or contains(industry, {quote(value)})"
    parsed = syntax.parse(rule)
    assert isinstance(parsed, syntax.Binary) and isinstance(parsed.left, syntax.Binary)
    assert parsed.left.right == syntax.Literal(parsed.left.right.span, value, "text")
    # The SQL text is the same whatever the value: the value only travels as a parameter.
    _, sql = compiled(rule)
    _, plain = compiled("name = 'x' or contains(industry, 'x')")
    assert sql == plain


@given(value=TEXT, field=st.sampled_from(["name", "Tier__c", "industry"]))
@SETTINGS
def test_hostile_text_runs_as_a_value(engine_with_data: Engine, value: str, field: str) -> None:
    query, _ = compiled(f"{field} = {quote(value)} or has_tag({field}, {quote(value)})")
    empty = RuleSet((), {}, ())
    with (
        engine_with_data.connect() as connection,
        prepared(connection, empty, EvalTime(golden_data.DAY)),
    ):
        rows = connection.execute(query).all()
        assert len(rows) <= 1  # "Acme Corp" etc. only when the text equals a real value
        assert connection.execute(sa.text("SELECT count(*) FROM account")).scalar_one() == 5


@given(name=st.text(min_size=1, max_size=30))
@SETTINGS
def test_names_outside_the_catalogue_never_reach_sql(name: str) -> None:
    rule = f"{name} = 1"
    try:
        parsed = syntax.parse(rule)
        Checker(CATALOGUE).check(parsed, "account", Source(None, "r", rule))
    except (syntax.RuleSyntaxError, RuleError):
        return
    # It checked: any name in it is one the catalogue holds.
    assert isinstance(parsed, syntax.Binary)
    if isinstance(parsed.left, syntax.Name):
        known = {n.lower() for n in CATALOGUE.names("account")}
        assert parsed.left.text.lower() in known


@pytest.fixture
def engine_with_data(engine: Engine) -> Engine:
    golden_data.load(engine)
    return engine


def test_the_evaluation_day_is_a_parameter_not_the_database_clock() -> None:
    _, sql = compiled("days_until(renewal_date) < 30 and active_days(30d) > 1")
    lowered = sql.lower()
    assert "now()" not in lowered and "current_date" not in lowered
    assert "current_timestamp" not in lowered and "'now'" not in lowered
    assert dt.date(2026, 3, 1).isoformat() not in sql


def test_control_characters_are_refused_where_they_are() -> None:
    with pytest.raises(syntax.RuleSyntaxError) as caught:
        syntax.parse("name = 'a\x00b'")
    assert caught.value.start == 9
    assert "U+0000" in caught.value.message
