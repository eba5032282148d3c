"""The checked rule: typed nodes with every name resolved, ready for `compile.py` to print.

Checking turns syntax (`syntax.py`) into these nodes; nothing here is text any more: fields
point at catalogue columns, named metrics are expanded, `change()` is arithmetic on shifted
windows, and every node carries its type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "TAccount",
    "TAggregate",
    "TBetween",
    "TBinary",
    "TCall",
    "TConst",
    "TContactOf",
    "TCustom",
    "TDerived",
    "TExpr",
    "TField",
    "TIn",
    "TIsNull",
    "TSegment",
    "TUnary",
    "TUsage",
    "Type",
    "WindowSpec",
]


class Type(StrEnum):
    """What a rule expression evaluates to."""

    NUMBER = "number"
    TEXT = "text"
    BOOL = "true/false"
    DATE = "date"
    DURATION = "duration"
    WINDOW = "window"
    LIST = "list"
    NULL = "null"
    ANY = "custom value"  # a custom CRM field: its type follows what it is compared with


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Whole days: `length` ending `before` days before the evaluation day, or the first
    `length` days from the account's start date when `first`."""

    length: int
    before: int = 0
    first: bool = False

    def shifted(self) -> WindowSpec:
        """The window just before this one, of the same length (for `change` and `previous`)."""
        return WindowSpec(self.length, self.before + self.length, self.first)

    def describe(self) -> str:
        if self.first:
            return f"first {self.length}d"
        return f"{self.length}d" + (f" before {self.before}d" if self.before else "")


@dataclass(frozen=True, slots=True)
class TExpr:
    """Base of typed nodes; `type` is what the node evaluates to, `label` its rule text."""

    type: Type
    label: str = field(default="", kw_only=True, compare=False)


@dataclass(frozen=True, slots=True)
class TConst(TExpr):
    value: Any


@dataclass(frozen=True, slots=True)
class TField(TExpr):
    """A column of the scope's own table (account, contact or a fact table)."""

    column: str


@dataclass(frozen=True, slots=True)
class TCustom(TExpr):
    """A custom CRM field kept in the `custom` JSON column under `key`."""

    key: str


@dataclass(frozen=True, slots=True)
class TDerived(TExpr):
    """A value computed from the evaluation day: `tenure`, `today`."""

    name: str


@dataclass(frozen=True, slots=True)
class TAccount(TExpr):
    """`inner` evaluated for the account of the current contact or fact row."""

    inner: TExpr


@dataclass(frozen=True, slots=True)
class TContactOf(TExpr):
    """`inner` (a contact field) evaluated for the contact of the current fact row."""

    inner: TExpr


@dataclass(frozen=True, slots=True)
class TUsage(TExpr):
    """A usage metric over a window: events, minutes, active days or active users."""

    measure: str  # "events" | "minutes" | "days" | "users"
    window: WindowSpec
    features: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class TAggregate(TExpr):
    """An aggregate over related rows (contacts of an account, activities, tickets, NPS...)."""

    op: str
    table: str
    condition: TExpr | None
    value: TExpr | None
    window: WindowSpec | None
    uses_segments: bool = False


@dataclass(frozen=True, slots=True)
class TSegment(TExpr):
    """Membership of the entity (or of a contact's account) in another segment."""

    key: str
    level: str
    of_account: bool = False


@dataclass(frozen=True, slots=True)
class TCall(TExpr):
    """A scalar function such as `days_until`, `lower`, `coalesce`, `has_tag`."""

    name: str
    args: tuple[TExpr, ...]


@dataclass(frozen=True, slots=True)
class TUnary(TExpr):
    op: str
    operand: TExpr


@dataclass(frozen=True, slots=True)
class TBinary(TExpr):
    op: str
    left: TExpr
    right: TExpr


@dataclass(frozen=True, slots=True)
class TIn(TExpr):
    operand: TExpr
    items: tuple[TExpr, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class TBetween(TExpr):
    operand: TExpr
    low: TExpr
    high: TExpr
    negated: bool


@dataclass(frozen=True, slots=True)
class TIsNull(TExpr):
    operand: TExpr
    negated: bool
