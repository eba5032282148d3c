"""A PostgreSQL staging table that batches of rows are COPYed into, bound exactly as Core would.

The upsert loads each batch here and merges it into the real table with one INSERT ... SELECT:
COPY has no parameter limit and skips per-row statement overhead, several times faster than an
executemany. The staging table has the target's column types but none of its constraints, so a
NOT NULL or foreign-key violation surfaces in the merge, as the usual IntegrityError.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["Stage", "staged"]


@contextmanager
def staged(connection: Connection, table: sa.Table, columns: Sequence[str]) -> Iterator[Stage]:
    """A temporary staging table for rows carrying `columns` of `table`, dropped on exit.

    Runs in the caller's transaction. ON COMMIT DROP backs up the explicit drop, which is skipped
    once the transaction has failed (its rollback removes the table anyway).
    """
    stage = Stage(connection, table, columns)
    stage.create()
    try:
        yield stage
    finally:
        if stage.driver.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            connection.exec_driver_sql(f"DROP TABLE {stage.name}")


class Stage:
    """The staging table: the given columns plus those whose Core default is computed in Python."""

    def __init__(self, connection: Connection, table: sa.Table, columns: Sequence[str]) -> None:
        self.name = f"upsert_stage_{uuid.uuid4().hex}"
        self.driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
        self._connection = connection
        self._table = table
        given = [table.c[c] for c in columns]
        self._given = [column.key for column in given]
        # Core fills these in for every row that omits them; COPY bypasses Core, so do it here.
        self._defaulted = [
            column
            for column in table.c
            if column.key not in columns
            and column.default is not None
            and (column.default.is_scalar or column.default.is_callable)
        ]
        self.columns: list[sa.Column[Any]] = given + self._defaulted
        self.table = sa.table(self.name, *(sa.column(c.name, c.type) for c in self.columns))
        dialect = connection.dialect
        self._processors: list[tuple[int, Callable[[Any], Any]]] = [
            (at, processor)
            for at, column in enumerate(self.columns)
            if (processor := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        self._names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in self.columns)
        self._copy_sql = f"COPY {self.name} ({self._names}) FROM STDIN"

    def create(self) -> None:
        """Create the (empty) staging table with the target's column types and no constraints."""
        target = self._connection.dialect.identifier_preparer.format_table(self._table)
        # Outside a transaction (AUTOCOMMIT), ON COMMIT DROP would drop the table at once.
        on_commit = "" if self.driver.autocommit else " ON COMMIT DROP"
        create = (
            f"CREATE TEMPORARY TABLE {self.name}{on_commit} AS "
            f"SELECT {self._names} FROM {target} WITH NO DATA"
        )
        # psycopg reads % as a placeholder even without parameters; a quoted name may hold one.
        self._connection.exec_driver_sql(create.replace("%", "%%"))

    def load(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace the staging table's contents with `rows`."""
        # Bind every value before COPY starts: a refused value then leaves the transaction usable,
        # as it does when Core refuses a parameter.
        values = self._bound(rows)
        self._connection.exec_driver_sql(f"TRUNCATE {self.name}")
        try:
            with self.driver.cursor() as cursor, cursor.copy(self._copy_sql) as copy:
                for row in values:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise sa.exc.DBAPIError.instance(
                self._copy_sql, None, exc, psycopg.Error, dialect=self._connection.dialect
            ) from exc

    def _bound(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        values: list[list[Any]] = []
        for row in rows:
            try:
                bound = [row[k] for k in self._given]
            except KeyError as exc:
                raise self._refused(
                    str(exc.args[0]),
                    sa.exc.InvalidRequestError(
                        f"a row has no value for {exc.args[0]!r}, which the first row has; "
                        "every row of one upsert needs the same columns"
                    ),
                ) from exc
            bound.extend(self._default(column, row) for column in self._defaulted)
            values.append(bound)
        for at, processor in self._processors:
            try:
                for row_values in values:
                    row_values[at] = processor(row_values[at])
            except Exception as exc:
                raise self._refused(self.columns[at].name, exc) from exc
        return values

    def _default(self, column: sa.Column[Any], row: Mapping[str, Any]) -> Any:
        default: Any = column.default
        return default.arg(_DefaultContext(row)) if default.is_callable else default.arg

    def _refused(self, column: str, exc: Exception) -> sa.exc.StatementError:
        # The same error type and wording Core gives when a bind parameter is refused.
        return sa.exc.StatementError(
            f"({type(exc).__module__}.{type(exc).__name__}) {exc} "
            f"(column {self._table.name}.{column})",
            self._copy_sql,
            None,
            exc,
        )


class _DefaultContext:
    """What a Core default callable may ask of its execution context: the row being inserted."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.current_parameters = row

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> Mapping[str, Any]:
        return self.current_parameters
