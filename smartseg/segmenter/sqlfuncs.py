"""The few SQL pieces SQLite and PostgreSQL spell differently, as SQLAlchemy constructs.

Date arithmetic, JSON text extraction, NULL-ignoring greatest/least, rounded float sums and
CREATE TEMP TABLE AS:
each is a small element with one compile rule per dialect, so the compiler stays dialect-free
and both databases give the same answers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable, FunctionElement

__all__ = [
    "CreateTempAs",
    "add_days",
    "day_of",
    "days_between",
    "greatest",
    "json_text",
    "least",
    "settled",
    "to_date",
    "to_number",
]


class days_between(FunctionElement[int]):
    """Whole days from the second date to the first (later - earlier)."""

    type = sa.Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"CAST(julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)}) AS INTEGER)"
    )


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"(CAST({compiler.process(later, **kw)} AS DATE) - "
        f"CAST({compiler.process(earlier, **kw)} AS DATE))"
    )


class add_days(FunctionElement[Any]):
    """A date moved by a number of days (negative moves back)."""

    type = sa.Date()
    inherit_cache = True
    name = "add_days"


@compiles(add_days, "sqlite")
def _add_days_sqlite(element: add_days, compiler: Any, **kw: Any) -> str:
    day, days = list(element.clauses)
    return (
        f"date({compiler.process(day, **kw)}, "
        f"printf('%+d days', CAST({compiler.process(days, **kw)} AS INTEGER)))"
    )


@compiles(add_days, "postgresql")
def _add_days_pg(element: add_days, compiler: Any, **kw: Any) -> str:
    day, days = list(element.clauses)
    return (
        f"(CAST({compiler.process(day, **kw)} AS DATE) + "
        f"CAST({compiler.process(days, **kw)} AS INTEGER))"
    )


class day_of(FunctionElement[Any]):
    """The UTC calendar day of a stored timestamp."""

    type = sa.Date()
    inherit_cache = True
    name = "day_of"


@compiles(day_of, "sqlite")
def _day_of_sqlite(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(next(iter(element.clauses)), **kw)})"


@compiles(day_of, "postgresql")
def _day_of_pg(element: day_of, compiler: Any, **kw: Any) -> str:
    return (
        f"CAST(({compiler.process(next(iter(element.clauses)), **kw)} AT TIME ZONE 'UTC') AS DATE)"
    )


class json_text(FunctionElement[str]):
    """One key of a JSON column as text (NULL when absent); the key is a bound parameter."""

    type = sa.String()
    inherit_cache = True
    name = "json_text"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: Any, **kw: Any) -> str:
    column, path = list(element.clauses)
    return (
        f"CAST(json_extract({compiler.process(column, **kw)}, "
        f"{compiler.process(path, **kw)}) AS TEXT)"
    )


@compiles(json_text, "postgresql")
def _json_text_pg(element: json_text, compiler: Any, **kw: Any) -> str:
    column, key = list(element.clauses)
    return f"({compiler.process(column, **kw)} ->> {compiler.process(key, **kw)})"


def json_key(dialect_name: str, key: str) -> sa.BindParameter[str]:
    """The bound path or key for `json_text` on this dialect."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    value = f'$."{escaped}"' if dialect_name == "sqlite" else key
    return sa.bindparam(None, value, type_=sa.String())


class to_number(FunctionElement[float]):
    """Text as a number, or NULL when it is not one (never an error, on either database)."""

    type = sa.Float()
    inherit_cache = True
    name = "to_number"


@compiles(to_number, "sqlite")
def _to_number_sqlite(element: to_number, compiler: Any, **kw: Any) -> str:
    text = f"trim(CAST({compiler.process(next(iter(element.clauses)), **kw)} AS TEXT))"
    return (
        f"(CASE WHEN {text} GLOB '*[0-9]*' AND {text} NOT GLOB '*[^0-9.eE+-]*' "
        f"THEN CAST({text} AS REAL) END)"
    )


@compiles(to_number, "postgresql")
def _to_number_pg(element: to_number, compiler: Any, **kw: Any) -> str:
    text = f"trim(CAST({compiler.process(next(iter(element.clauses)), **kw)} AS TEXT))"
    return (
        f"(CASE WHEN {text} ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$' "
        f"THEN CAST({text} AS DOUBLE PRECISION) END)"
    )


class settled(FunctionElement[float]):
    """A float sum rounded to `SETTLED_DIGITS` decimals, so both databases compare it alike.

    A sum of floats depends on the order it adds them in, which differs between SQLite and
    PostgreSQL (and between plans): 30 minutes summed from parts can come out 29.999999999999996
    on one and 30.000000000000004 on the other, and `minutes(7d) < 30` then picks different
    accounts. Rounding far below any threshold a rule would write settles it.
    """

    type = sa.Float()
    inherit_cache = True
    name = "settled"


SETTLED_DIGITS = 6


@compiles(settled, "sqlite")
def _settled_sqlite(element: settled, compiler: Any, **kw: Any) -> str:
    value = compiler.process(next(iter(element.clauses)), **kw)
    return f"round({value}, {SETTLED_DIGITS})"


@compiles(settled, "postgresql")
def _settled_pg(element: settled, compiler: Any, **kw: Any) -> str:
    # round(double precision, int) does not exist; numeric rounds exactly, then back to float.
    value = compiler.process(next(iter(element.clauses)), **kw)
    return f"CAST(round(CAST({value} AS NUMERIC), {SETTLED_DIGITS}) AS DOUBLE PRECISION)"


class to_date(FunctionElement[Any]):
    """Text as a date (its first ten characters, YYYY-MM-DD), or NULL when it is not one."""

    type = sa.Date()
    inherit_cache = True
    name = "to_date"


@compiles(to_date, "sqlite")
def _to_date_sqlite(element: to_date, compiler: Any, **kw: Any) -> str:
    return f"date(substr({compiler.process(next(iter(element.clauses)), **kw)}, 1, 10))"


@compiles(to_date, "postgresql")
def _to_date_pg(element: to_date, compiler: Any, **kw: Any) -> str:
    text = f"substr(CAST({compiler.process(next(iter(element.clauses)), **kw)} AS TEXT), 1, 10)"
    return (
        f"(CASE WHEN {text} ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' "
        f"THEN CAST({text} AS DATE) END)"
    )


class _extreme(FunctionElement[Any]):
    inherit_cache = True
    pg_name = ""
    sqlite_name = ""


class greatest(_extreme):
    """The largest non-NULL value (NULL only when all are)."""

    inherit_cache = True
    name = "greatest"
    pg_name = "GREATEST"
    sqlite_name = "max"


class least(_extreme):
    """The smallest non-NULL value (NULL only when all are)."""

    inherit_cache = True
    name = "least"
    pg_name = "LEAST"
    sqlite_name = "min"


@compiles(greatest, "postgresql")
@compiles(least, "postgresql")
def _extreme_pg(element: _extreme, compiler: Any, **kw: Any) -> str:
    return f"{element.pg_name}({compiler.process(element.clause_expr, **kw)[1:-1]})"


@compiles(greatest, "sqlite")
@compiles(least, "sqlite")
def _extreme_sqlite(element: _extreme, compiler: Any, **kw: Any) -> str:
    # SQLite's multi-argument max()/min() return NULL if any argument is NULL; PostgreSQL's
    # GREATEST/LEAST skip NULLs. Rotating COALESCEs give SQLite the PostgreSQL answer.
    args = [compiler.process(a, **kw) for a in element.clauses]
    rotated = [
        f"COALESCE({', '.join(args[i:] + args[:i])})" if len(args) > 1 else args[0]
        for i in range(len(args))
    ]
    return f"{element.sqlite_name}({', '.join(rotated)})"


class CreateTempAs(Executable, ClauseElement):
    """CREATE TEMPORARY TABLE name AS <select>, with the select's parameters bound."""

    inherit_cache = False

    def __init__(self, name: str, select: sa.Select[Any]) -> None:
        self.name = name
        self.select = select


@compiles(CreateTempAs)
def _create_temp_as(element: CreateTempAs, compiler: Any, **kw: Any) -> str:
    table = compiler.preparer.quote(element.name)
    return f"CREATE TEMPORARY TABLE {table} AS {compiler.process(element.select, **kw)}"
