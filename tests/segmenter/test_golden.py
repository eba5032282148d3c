"""Golden tests: rule text in golden/rules.yaml, expected members in golden/expected.yaml, on
the fixed dataset of golden_data.py; the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from smartseg.segmenter.catalogue import Catalogue
from smartseg.segmenter.evaluate import evaluate
from smartseg.segmenter.rules import RuleSet, load_rules

from . import golden_data

GOLDEN = Path(__file__).parent / "golden"
EXPECTED: dict[str, list[str]] = yaml.safe_load(
    (Path(__file__).parent / "golden_expected.yaml").read_text()
)


def golden_rules() -> RuleSet:
    catalogue = Catalogue.with_custom({"account": ["Tier__c", "Tags__c", "Score__c", "Renewal__c"]})
    return load_rules(GOLDEN, catalogue)


@pytest.fixture
def golden_store(engine: Engine) -> Engine:
    golden_data.load(engine)
    return engine


def members(engine: Engine) -> dict[str, set[str]]:
    query = sa.text(
        "SELECT m.segment_key, COALESCE(a.name, c.email) FROM membership m "
        "LEFT JOIN account a ON m.entity_type = 'account' AND a.id = m.entity_id "
        "LEFT JOIN contact c ON m.entity_type = 'contact' AND c.id = m.entity_id "
        "WHERE m.exited_at IS NULL"
    )
    found: dict[str, set[str]] = {key: set() for key in EXPECTED}
    with engine.connect() as connection:
        for key, name in connection.execute(query):
            found[key].add(name)
    return found


def test_every_golden_rule_has_an_expectation() -> None:
    assert {r.key for r in golden_rules().segments} == set(EXPECTED)


def test_golden_rules_give_the_expected_members(golden_store: Engine) -> None:
    result = evaluate(golden_store, golden_rules(), as_of=golden_data.AS_OF)
    found = members(golden_store)
    wrong = {
        key: {"expected": sorted(EXPECTED[key]), "got": sorted(found[key])}
        for key in EXPECTED
        if set(EXPECTED[key]) != found[key]
    }
    assert wrong == {}
    assert {k: r.members for k, r in result.segments.items()} == {
        k: len(v) for k, v in EXPECTED.items()
    }
