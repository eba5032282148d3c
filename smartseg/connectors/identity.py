"""Linking: one customer across systems, resolved set-based after every pull.

Source records that are not the primary CRM's own accounts (HubSpot companies, Stripe customers,
...) are `source_link` rows whose `hint` says what they know: the CRM id they name, the product's
workspace id, a website domain, an email domain. They link to an account by the first of these
that matches exactly one account, in that order. Fact rows keep their source's reference
(`account_ref`, `contact_ref`) with a namespace:

    salesforce:<Id>   an account or contact's external_key (the primary CRM's own records)
    hubspot:<id>      a source_link of that source (company/customer for accounts, contact for
    stripe:<cus_id>   contacts), which carries the account it linked to
    workspace:<id>    account.workspace_id
    domain:<domain>   account.domain, when exactly one account has it
    email:<address>   contact.email

so the order streams arrive in never matters, a record whose account arrives later links on the
next pull, and a reference that matches nothing stays on its row and is listed, never dropped.
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
    Invoice,
    NpsResponse,
    Opportunity,
    SourceLink,
    Subscription,
    Ticket,
    UsageDaily,
    table_of,
)

__all__ = ["COUNTED_STATUSES", "link", "unmatched_counts", "unmatched_links"]

# Subscriptions that make up revenue, as Stripe's MRR counts it.
COUNTED_STATUSES = ("active", "past_due")


_ACCOUNT = table_of(Account)
_CONTACT = table_of(Contact)
_LINK = table_of(SourceLink)
_USER = table_of(CrmUser)
_SUBSCRIPTION = table_of(Subscription)
_USAGE = table_of(UsageDaily)
_WITH_ACCOUNT = tuple(
    table_of(m)
    for m in (Contact, Opportunity, Activity, Ticket, NpsResponse, Subscription, Invoice)
)
_WITH_CONTACT = tuple(table_of(m) for m in (Activity, Ticket, NpsResponse))
_ACCOUNT_OBJECTS = ("company", "customer", "account")


def link(
    connection: Connection, *, match_domains: bool = True, seats_from_quantity: bool = False
) -> int:
    """Resolve every reference to store ids; returns how many records are still unmatched."""
    _link_sources(connection, match_domains=match_domains)
    for table in _WITH_ACCOUNT:
        _resolve(
            connection, table, "account_ref", "account_id", _account_match(table.c.account_ref)
        )
    for table in _WITH_CONTACT:
        _resolve(
            connection, table, "contact_ref", "contact_id", _contact_match(table.c.contact_ref)
        )
    _link_usage(connection)
    _revenue(connection, seats_from_quantity=seats_from_quantity)
    _name_owners(connection)
    return sum(unmatched_counts(connection).values())


def _hint(key: str) -> Any:
    return _LINK.c.hint[key].as_string()


def _link_sources(connection: Connection, *, match_domains: bool) -> None:
    connection.execute(
        sa.update(_LINK)
        .where(_LINK.c.ref.is_(None))
        .values(ref=_LINK.c.source + sa.literal(":") + _LINK.c.source_id)
    )
    account = _ACCOUNT.alias("a")
    rules: list[tuple[str, Any]] = [
        ("id_field", sa.select(account.c.id).where(account.c.external_key == _hint("account_ref"))),
        ("workspace", _unique(account, account.c.workspace_id, _hint("workspace_id"))),
    ]
    if match_domains:
        rules += [
            ("domain", _unique(account, account.c.domain, _hint("domain"))),
            ("email_domain", _unique(account, account.c.domain, _hint("email_domain"))),
        ]
    accounts = _LINK.c.object.in_(_ACCOUNT_OBJECTS)
    # Recompute from scratch each time, in rule order, so a changed hint or a new account can
    # move a link, and the strongest rule always wins.
    connection.execute(sa.update(_LINK).where(accounts).values(account_id=None, matched_by=None))
    for name, match in rules:
        connection.execute(
            sa.update(_LINK)
            .where(accounts, _LINK.c.account_id.is_(None), sa.exists(match))
            .values(account_id=match.scalar_subquery(), matched_by=name)
        )
    contact = _CONTACT.alias("c")
    for name, match in (
        ("id_field", sa.select(contact.c.id).where(contact.c.external_key == _hint("contact_ref"))),
        ("email", _unique(contact, contact.c.email, sa.func.lower(_hint("email")))),
    ):
        connection.execute(
            sa.update(_LINK)
            .where(
                _LINK.c.object == "contact",
                _LINK.c.contact_id.is_distinct_from(match.scalar_subquery()),
            )
            .where(sa.exists(match))
            .values(contact_id=match.scalar_subquery(), matched_by=name)
        )


def _unique(table: Any, column: Any, value: Any) -> Any:
    """The one row whose `column` equals `value`, or nothing when two do (an ambiguous domain)."""
    return (
        sa.select(sa.func.min(table.c.id))
        .where(column == value)
        .group_by(column)
        .having(sa.func.count() == 1)
    )


def _account_match(ref: Any) -> Any:
    own = sa.select(_ACCOUNT.c.id).where(_ACCOUNT.c.external_key == ref).scalar_subquery()
    linked = (
        sa.select(_LINK.c.account_id)
        .where(_LINK.c.object.in_(_ACCOUNT_OBJECTS), _LINK.c.ref == ref)
        .limit(1)
        .scalar_subquery()
    )
    workspace = (
        sa.select(sa.func.min(_ACCOUNT.c.id))
        .where(_ACCOUNT.c.workspace_id == sa.func.substr(ref, len("workspace:") + 1))
        .scalar_subquery()
    )
    domain = _unique(
        _ACCOUNT, _ACCOUNT.c.domain, sa.func.substr(ref, len("domain:") + 1)
    ).scalar_subquery()
    return sa.case(
        (ref.like("workspace:%"), workspace),
        (ref.like("domain:%"), domain),
        (ref.like("hubspot:%") | ref.like("stripe:%"), sa.func.coalesce(own, linked)),
        else_=own,
    )


def _contact_match(ref: Any) -> Any:
    own = sa.select(_CONTACT.c.id).where(_CONTACT.c.external_key == ref).scalar_subquery()
    linked = (
        sa.select(_LINK.c.contact_id)
        .where(_LINK.c.object == "contact", _LINK.c.ref == ref)
        .limit(1)
        .scalar_subquery()
    )
    by_email = (
        sa.select(sa.func.min(_CONTACT.c.id))
        .where(_CONTACT.c.email == sa.func.substr(ref, len("email:") + 1))
        .scalar_subquery()
    )
    return sa.case(
        (ref.like("email:%"), by_email),
        (ref.like("hubspot:%"), sa.func.coalesce(own, linked)),
        else_=own,
    )


def _resolve(
    connection: Connection, table: sa.Table, ref_column: str, id_column: str, match: Any
) -> None:
    connection.execute(
        sa.update(table)
        .where(table.c[ref_column].is_not(None), table.c[id_column].is_distinct_from(match))
        .values({id_column: match})
    )


def _link_usage(connection: Connection) -> None:
    # Usage is the biggest table: only rows not linked yet are looked at.
    account = sa.select(sa.func.min(_ACCOUNT.c.id)).where(
        _ACCOUNT.c.workspace_id == _USAGE.c.account_key
    )
    connection.execute(
        sa.update(_USAGE)
        .where(_USAGE.c.account_id.is_(None), sa.exists(account))
        .values(account_id=account.scalar_subquery())
    )
    contact = sa.select(sa.func.min(_CONTACT.c.id)).where(_CONTACT.c.email == _USAGE.c.user_key)
    connection.execute(
        sa.update(_USAGE)
        .where(_USAGE.c.contact_id.is_(None), _USAGE.c.user_key != "", sa.exists(contact))
        .values(contact_id=contact.scalar_subquery())
    )


def _revenue(connection: Connection, *, seats_from_quantity: bool) -> None:
    """Account MRR/ARR (and optionally seats) from the subscriptions linked to it.

    Currencies are never added together: an account's figures are in the currency of its
    largest subscription, and subscriptions in other currencies are left out of them.
    """
    sub = _SUBSCRIPTION
    has_subscriptions = sa.exists(sa.select(sub.c.id).where(sub.c.account_id == _ACCOUNT.c.id))
    top = _SUBSCRIPTION.alias("top")
    currency = (
        sa.select(top.c.currency)
        .where(top.c.account_id == _ACCOUNT.c.id, top.c.status.in_(COUNTED_STATUSES))
        .order_by(top.c.mrr.desc(), top.c.id)
        .limit(1)
        .correlate(_ACCOUNT)
        .scalar_subquery()
    )
    mrr = sa.func.coalesce(
        sa.select(sa.func.sum(sub.c.mrr))
        .where(
            sub.c.account_id == _ACCOUNT.c.id,
            sub.c.status.in_(COUNTED_STATUSES),
            sub.c.currency == currency,
        )
        .scalar_subquery(),
        0,
    )
    values: dict[str, Any] = {"mrr": mrr, "arr": mrr * 12, "currency": currency}
    if seats_from_quantity:
        values["seats"] = (
            sa.select(sa.func.sum(sub.c.quantity))
            .where(
                sub.c.account_id == _ACCOUNT.c.id, sub.c.status.in_((*COUNTED_STATUSES, "trialing"))
            )
            .scalar_subquery()
        )
    changed = sa.or_(*(_ACCOUNT.c[k].is_distinct_from(v) for k, v in values.items()))
    connection.execute(sa.update(_ACCOUNT).where(has_subscriptions, changed).values(values))


def _name_owners(connection: Connection) -> None:
    # Owners are stored by id; CSMs and rules read names and emails.
    for id_column, name_column, email_column in (("owner_id", "owner_name", "owner_email"),
                                                 ("csm_id", "csm_name", "csm_email")):  # fmt: skip
        user = _USER.alias("u")
        name = (
            sa.select(user.c.name)
            .where(user.c.source_id == _ACCOUNT.c[id_column])
            .limit(1)
            .scalar_subquery()
        )
        email = (
            sa.select(user.c.email)
            .where(user.c.source_id == _ACCOUNT.c[id_column])
            .limit(1)
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
    """Per table, records whose account reference matches no account (source_link included)."""
    counts = {}
    for table in _WITH_ACCOUNT:
        counts[table.name] = _count(
            connection, table, table.c.account_ref.is_not(None), table.c.account_id.is_(None)
        )
    counts["source_link"] = _count(
        connection, _LINK, _LINK.c.object.in_(_ACCOUNT_OBJECTS), _LINK.c.account_id.is_(None)
    )
    counts["usage_daily"] = _count(connection, _USAGE, _USAGE.c.account_id.is_(None))
    return {name: n for name, n in counts.items() if n}


def _count(connection: Connection, table: sa.Table, *conditions: Any) -> int:
    return int(
        connection.execute(
            sa.select(sa.func.count()).select_from(table).where(*conditions)
        ).scalar_one()
    )


def unmatched_links(connection: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Source records that match no account, with what they said about themselves."""
    rows = connection.execute(
        sa.select(_LINK.c.source, _LINK.c.object, _LINK.c.source_id, _LINK.c.hint)
        .where(_LINK.c.object.in_(_ACCOUNT_OBJECTS), _LINK.c.account_id.is_(None))
        .order_by(_LINK.c.source, _LINK.c.object, _LINK.c.source_id)
        .limit(limit)
    )
    return [
        {"source": r.source, "object": r.object, "id": r.source_id, **(r.hint or {})} for r in rows
    ]
