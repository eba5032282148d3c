"""Linking: every stored record that names an account or contact gets its store id, set-based.

Records keep their source's reference (`account_ref`, `contact_ref`: 'salesforce:<Id>', ...), so
the order streams arrive in never matters and a record whose account arrives later, or moves to
another account, is linked on the next pull. References that match nothing stay on the record
and are counted as unmatched, never dropped.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from smartseg.store.models import (
    Account,
    Activity,
    Contact,
    CrmUser,
    NpsResponse,
    Opportunity,
    Subscription,
    Ticket,
)

__all__ = ["link", "unmatched_counts"]


def _table(model: Any) -> sa.Table:
    table: sa.Table = model.__table__
    return table


_ACCOUNT = _table(Account)
_CONTACT = _table(Contact)
_USER = _table(CrmUser)
_WITH_ACCOUNT = tuple(
    _table(m) for m in (Contact, Opportunity, Activity, Ticket, NpsResponse, Subscription)
)
_WITH_CONTACT = tuple(_table(m) for m in (Activity, Ticket, NpsResponse))


def link(connection: Connection) -> int:
    """Resolve references to store ids; returns how many references are still unmatched."""
    for table in _WITH_ACCOUNT:
        match = (
            sa.select(_ACCOUNT.c.id)
            .where(_ACCOUNT.c.external_key == table.c.account_ref)
            .scalar_subquery()
        )
        connection.execute(
            sa.update(table)
            .where(table.c.account_ref.is_not(None), table.c.account_id.is_distinct_from(match))
            .values(account_id=match)
        )
    for table in _WITH_CONTACT:
        match = (
            sa.select(_CONTACT.c.id)
            .where(_CONTACT.c.external_key == table.c.contact_ref)
            .scalar_subquery()
        )
        connection.execute(
            sa.update(table)
            .where(table.c.contact_ref.is_not(None), table.c.contact_id.is_distinct_from(match))
            .values(contact_id=match)
        )
    _name_owners(connection)
    return sum(unmatched_counts(connection).values())


def _name_owners(connection: Connection) -> None:
    # Owners are stored by id; CSMs and rules read names and emails.
    for id_column, name_column, email_column in (("owner_id", "owner_name", "owner_email"),
                                                 ("csm_id", "csm_name", "csm_email")):  # fmt: skip
        user = _USER.alias("u")
        name = (
            sa.select(user.c.name)
            .where(user.c.source_id == _ACCOUNT.c[id_column])
            .scalar_subquery()
        )
        email = (
            sa.select(user.c.email)
            .where(user.c.source_id == _ACCOUNT.c[id_column])
            .scalar_subquery()
        )
        connection.execute(
            sa.update(_ACCOUNT)
            .where(
                _ACCOUNT.c[id_column].is_not(None),
                sa.or_(
                    _ACCOUNT.c[name_column].is_distinct_from(name),
                    _ACCOUNT.c[email_column].is_distinct_from(email),
                ),
            )
            .values({name_column: name, email_column: email})
        )


def unmatched_counts(connection: Connection) -> dict[str, int]:
    """Per table, records whose account reference matches no account."""
    counts = {}
    for table in _WITH_ACCOUNT:
        counts[table.name] = int(
            connection.execute(
                sa.select(sa.func.count()).where(
                    table.c.account_ref.is_not(None), table.c.account_id.is_(None)
                )
            ).scalar_one()
        )
    return {name: n for name, n in counts.items() if n}
