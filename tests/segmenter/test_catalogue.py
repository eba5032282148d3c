"""Every catalogue segment ships as a working rule: on sandbox data, the archetype built to be
a member is one and the archetype built not to be is not, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.sandbox.generator import ARCHETYPES, Archetype
from smartseg.segmenter.evaluate import EvaluationResult, evaluate
from smartseg.segmenter.rules import RuleSet, load_rules

from .conftest import SHIPPED_SEGMENTS, Finder


@pytest.fixture(scope="session")
def shipped() -> RuleSet:
    return load_rules(SHIPPED_SEGMENTS)


@pytest.fixture(scope="session")
def evaluated(pulled: Engine, shipped: RuleSet, as_of: dt.datetime) -> EvaluationResult:
    return evaluate(pulled, shipped, as_of=as_of)


def _members(engine: Engine, key: str, level: str) -> set[int]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT entity_id FROM membership WHERE segment_key = :k AND entity_type = :t "
                "AND exited_at IS NULL"
            ),
            {"k": key, "t": level},
        )
        return {int(r[0]) for r in rows}


def test_every_catalogue_id_has_a_shipped_rule(shipped: RuleSet) -> None:
    covered = {cid for rule in shipped.segments for cid in rule.spec.catalogue}
    wanted = {a.segment for a in ARCHETYPES}
    assert wanted - covered == set()


@pytest.mark.parametrize("archetype", ARCHETYPES, ids=lambda a: a.segment)
def test_shipped_rule_takes_the_member_and_leaves_the_non_member(
    archetype: Archetype,
    shipped: RuleSet,
    evaluated: EvaluationResult,
    pulled: Engine,
    finder: Finder,
) -> None:
    rules = [r for r in shipped.segments if archetype.segment in r.spec.catalogue]
    assert rules, f"no shipped rule names catalogue id {archetype.segment}"
    by_level: dict[str, list[str]] = defaultdict(list)
    for rule in rules:
        by_level[rule.level].append(rule.key)
    member_level, member_id = finder.entity(archetype.member)
    other_level, other_id = finder.entity(archetype.non_member)
    # The rule of this id at the archetype's level (the first, when an id ships several).
    key = by_level[member_level][0]
    members = _members(pulled, key, member_level)
    assert member_id in members, f"{archetype.member} should be in {key} ({archetype.rule})"
    other_key = by_level[other_level][0]
    assert other_id not in _members(pulled, other_key, other_level), (
        f"{archetype.non_member} should not be in {other_key} ({archetype.rule})"
    )
