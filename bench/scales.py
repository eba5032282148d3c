"""The three scales `python -m bench` runs, section by section.

small is the smoke run (every figure in under two minutes on two cores, the naive baseline
included); medium gives the README's figures (evaluation at 10,000 and 100,000 accounts,
100 usage rows per account); large is the evaluation at the size the product is built for
(100,000 accounts, 1,000,000 contacts, 30,000,000 usage rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.synthetic import Scale

__all__ = ["SCALES", "BenchScale", "describe"]


@dataclass(frozen=True, slots=True)
class BenchScale:
    """What one `--scale` measures: data sizes per section."""

    name: str
    evaluation: tuple[Scale, ...]  # synthetic stores the rules are evaluated on
    naive: bool  # the per-entity Python baseline (its time grows with rules x entities)
    sync_records: tuple[int, int]  # changed CRM records of the two syncs
    pull_world: int  # the one of `sync_records` whose world the pull throughput is taken on
    pull_memory: tuple[int, int]  # sandbox accounts of the two peak-memory pulls


SCALES = {
    "small": BenchScale(
        "small",
        (Scale(accounts=300, contacts_per_account=5, usage_rows=45_000),),
        naive=True,
        sync_records=(1_000, 5_000),
        pull_world=1_000,
        pull_memory=(500, 2_000),
    ),
    "medium": BenchScale(
        "medium",
        (
            Scale(accounts=10_000, contacts_per_account=5, usage_rows=1_000_000),
            Scale(accounts=100_000, contacts_per_account=5, usage_rows=10_000_000),
        ),
        naive=False,
        sync_records=(1_000, 50_000),
        pull_world=50_000,
        pull_memory=(10_000, 50_000),
    ),
    "large": BenchScale(
        "large",
        (Scale(accounts=100_000, contacts_per_account=10, usage_rows=30_000_000),),
        naive=False,
        sync_records=(1_000, 50_000),
        pull_world=50_000,
        pull_memory=(10_000, 50_000),
    ),
}


def describe(scale: Scale) -> str:
    """A store's size as the report prints it."""
    contacts = scale.accounts * scale.contacts_per_account
    return f"{scale.accounts:,} accounts / {contacts:,} contacts / {scale.usage_rows:,} usage rows"
