"""What a rule may name: fields derived from the store's tables, related tables, functions.

The catalogue is built from the SQLModel tables themselves (a new column is usable in rules
as soon as it is in the store) plus the custom CRM fields the config keeps; identifiers in SQL
only ever come from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import SQLModel

from smartseg.segmenter.typed import Type
from smartseg.store import models
from smartseg.store.models import table_of

__all__ = ["LEVELS", "RELATED", "Catalogue", "Related", "column_type"]

LEVELS = ("account", "contact")

# Columns that are plumbing, not customer facts.
_HIDDEN = frozenset(
    {"id", "custom", "account_ref", "contact_ref", "account_id", "contact_id", "source_id"}
    | {"customer_ref", "subscription_ref", "referred_by_ref", "referred_by_contact_id"}
    | {"updated_at", "deleted_at"}
)


def column_type(column: sa.Column[object]) -> Type | None:
    """The rule type of a store column (None for columns rules cannot use)."""
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.Boolean):
        return Type.BOOL
    if isinstance(kind, sa.Integer | sa.Float | sa.Numeric):
        return Type.NUMBER
    if isinstance(kind, sa.Date):
        return Type.DATE
    if isinstance(kind, sa.DateTime):
        return Type.DATE
    if isinstance(kind, sa.String):
        return Type.TEXT
    return None


def _fields(model: type[SQLModel], hidden: Iterable[str] = ()) -> dict[str, Type]:
    out: dict[str, Type] = {}
    skip = _HIDDEN | set(hidden)
    for column in table_of(model).columns:
        kind = column_type(column)
        if column.name not in skip and kind is not None:
            out[column.name] = kind
    return out


@dataclass(frozen=True, slots=True)
class Related:
    """A table rules reach through an aggregate: `count activity(...)`, `any contact(...)`.

    `group_by` names the column that ties a row to an account or a contact (absent: that level
    cannot aggregate it); `time` is the column windows filter on; `mirror` lists the columns
    that identify one real-world record copied into both CRMs, which counts once.
    """

    name: str
    model: type[SQLModel]
    group_by: Mapping[str, str]
    time: str | None
    fields: Mapping[str, Type]
    mirror: tuple[str, ...] = ()
    prefer: str = ""  # the source whose copy of a mirrored record counts
    live_only: bool = True  # rows with deleted_at set are ignored


def _related() -> dict[str, Related]:
    return {
        r.name: r
        for r in (
            Related(
                "contact",
                models.Contact,
                {"account": "account_id"},
                None,
                _fields(models.Contact, {"created_at"}),
            ),
            Related(
                "activity",
                models.Activity,
                {"account": "account_id", "contact": "contact_id"},
                "occurred_at",
                _fields(models.Activity),
                mirror=("account_id", "kind", "occurred_at"),
                # HubSpot meetings carry their outcome; Salesforce Events have no status.
                prefer="hubspot",
            ),
            Related(
                "ticket",
                models.Ticket,
                {"account": "account_id", "contact": "contact_id"},
                "opened_at",
                _fields(models.Ticket),
                mirror=("account_id", "type", "opened_at"),
                # Salesforce Cases carry custom fields (the feature); HubSpot keeps it in text.
                prefer="salesforce",
            ),
            Related(
                "nps",
                models.NpsResponse,
                {"account": "account_id", "contact": "contact_id"},
                "responded_at",
                _fields(models.NpsResponse, {"email"}),
                live_only=False,
            ),
            Related(
                "subscription",
                models.Subscription,
                {"account": "account_id"},
                "started_at",
                _fields(models.Subscription),
                live_only=False,
            ),
            Related(
                "opportunity",
                models.Opportunity,
                {"account": "account_id", "contact": "referred_by_contact_id"},
                "close_date",
                _fields(models.Opportunity),
            ),
            Related(
                "invoice",
                models.Invoice,
                {"account": "account_id"},
                "created_at",
                _fields(models.Invoice),
                live_only=False,
            ),
        )
    }


RELATED: Mapping[str, Related] = _related()

# Derived names per level: what they mean is documented in docs/rules.md.
_DERIVED = {"tenure": Type.DURATION, "today": Type.DATE}


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every name a rule can use at each level, with its type.

    `custom` holds custom CRM field names per level (kept in the JSON column); their type is
    decided by what they are compared with.
    """

    levels: Mapping[str, Mapping[str, Type]] = field(
        default_factory=lambda: {
            "account": _fields(models.Account, {"created_at", "external_key"}),
            "contact": _fields(models.Contact, {"created_at", "external_key"}),
        }
    )
    custom: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {"account": frozenset(), "contact": frozenset()}
    )

    @classmethod
    def with_custom(cls, custom: Mapping[str, Iterable[str]]) -> Catalogue:
        """A catalogue that also knows the custom fields per level (from the source config)."""
        return cls(custom={lvl: frozenset(custom.get(lvl, ())) for lvl in LEVELS})

    def field_type(self, level: str, name: str) -> Type | None:
        if level in self.levels:
            found = self.levels[level].get(name)
            if found is not None:
                return found
            if name in _DERIVED and (level == "account" or name == "today"):
                return _DERIVED[name]
            return Type.ANY if name in self.custom.get(level, ()) else None
        related = RELATED[level]
        return related.fields.get(name)

    def names(self, level: str) -> list[str]:
        """Every field name usable at `level` (for "did you mean")."""
        if level in self.levels:
            derived = [n for n in _DERIVED if level == "account" or n == "today"]
            return [*self.levels[level], *derived, *sorted(self.custom.get(level, ()))]
        return list(RELATED[level].fields)

    def is_custom(self, level: str, name: str) -> bool:
        return level in self.levels and name not in self.levels[level] and name not in _DERIVED
