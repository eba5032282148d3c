"""The store's tables: the customer 360 that rules read, and the ledgers that make every step
resumable (stream cursors, runs, memberships, what was pushed, playbook task intents).

Conventions: timestamps are `UTCDateTime` (aware UTC on both databases); money is in major units
of `currency`; `custom` holds mapped custom fields that rules may use by name. Source records keep
their origin in (`source`, `source_id`) so pulls can upsert them idempotently.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from smartseg.store.types import JSONType, UTCDateTime

__all__ = [
    "Account",
    "Activity",
    "Contact",
    "CrmUser",
    "Invoice",
    "Lease",
    "Membership",
    "NpsResponse",
    "Opportunity",
    "Pushed",
    "Run",
    "Segment",
    "SourceLink",
    "StreamState",
    "Subscription",
    "TaskLedger",
    "Ticket",
    "UsageDaily",
    "table_of",
]


def table_of(model: type[SQLModel] | sa.Table) -> sa.Table:
    """The Core table behind a model, typed, for set-based statements."""
    if isinstance(model, sa.Table):
        return model
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    # The column default covers Core inserts (the bulk upsert), not just ORM objects.
    return Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False, default=dict))


def _money() -> Any:
    return Field(default=None, sa_column=sa.Column(sa.Numeric(18, 4), nullable=True))


class Account(SQLModel, table=True):
    """One customer (or prospect) company, merged from every source that knows it."""

    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    external_key: str = Field(
        unique=True, description="primary source identity, e.g. salesforce:001..."
    )
    name: str
    domain: str | None = Field(default=None, index=True)
    workspace_id: str | None = Field(default=None, index=True)
    status: str | None = None
    edition: str | None = None
    product: str | None = None
    contract_type: str | None = None
    opt_out_clause: bool | None = None
    industry: str | None = None
    region: str | None = None
    country: str | None = None
    employees: int | None = None
    start_date: dt.date | None = None
    renewal_date: dt.date | None = None
    trial_end_date: dt.date | None = None
    churn_date: dt.date | None = None
    churn_reason: str | None = None
    seats: int | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None
    csm_id: str | None = None
    csm_name: str | None = None
    csm_email: str | None = None
    csm_sentiment: str | None = None
    product_fit: str | None = None
    lifecycle_stage: str | None = None
    onboarding_status: str | None = None
    onboarding_step: int | None = None
    use_case: str | None = None
    purchase_benefit: str | None = None
    benefit_achieved_date: dt.date | None = None
    growth_potential: str | None = None
    health_score: float | None = None
    reference_account: bool | None = None
    strategic: bool | None = None
    mrr: Decimal | None = _money()
    arr: Decimal | None = _money()
    currency: str | None = None
    custom: dict[str, Any] = _json()
    created_at: dt.datetime | None = _ts()
    updated_at: dt.datetime | None = _ts()
    deleted_at: dt.datetime | None = _ts()


class Contact(SQLModel, table=True):
    """A person at an account: decision maker, sponsor, primary contact, user."""

    __tablename__ = "contact"

    id: int | None = Field(default=None, primary_key=True)
    external_key: str = Field(unique=True)
    account_ref: str | None = Field(default=None, index=True)
    account_id: int | None = Field(
        default=None, foreign_key="account.id", index=True, ondelete="SET NULL"
    )
    email: str | None = Field(default=None, index=True)
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    role: str | None = None
    lifecycle_stage: str | None = None
    email_opt_out: bool | None = None
    referrals_won: int | None = None
    owner_id: str | None = None
    custom: dict[str, Any] = _json()
    created_at: dt.datetime | None = _ts()
    updated_at: dt.datetime | None = _ts()
    deleted_at: dt.datetime | None = _ts()


class SourceLink(SQLModel, table=True):
    """How one source record maps to an account or contact; unmatched records stay here too."""

    __tablename__ = "source_link"
    __table_args__ = (
        sa.UniqueConstraint("source", "object", "source_id", name="uq_source_link"),
        sa.Index("ix_source_link_object_ref", "object", "ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    object: str
    source_id: str
    ref: str | None = Field(default=None, description="source:source_id, as fact rows name it")
    account_id: int | None = Field(
        default=None, foreign_key="account.id", index=True, ondelete="SET NULL"
    )
    contact_id: int | None = Field(
        default=None, foreign_key="contact.id", index=True, ondelete="SET NULL"
    )
    matched_by: str | None = Field(
        default=None, description="id_field | domain | email_domain | primary; None = unmatched"
    )
    hint: dict[str, Any] = _json()
    updated_at: dt.datetime | None = _ts()


class Subscription(SQLModel, table=True):
    """A billing subscription with the figures MRR needs, normalised per month."""

    __tablename__ = "subscription"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_subscription_source"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_id: str
    account_ref: str | None = Field(
        default=None, index=True, description="the source's account reference, resolved by linking"
    )
    account_id: int | None = Field(
        default=None, foreign_key="account.id", index=True, ondelete="SET NULL"
    )
    customer_ref: str | None = None
    status: str
    product: str | None = None
    plan: str | None = None
    interval: str | None = None
    interval_count: int | None = None
    quantity: int | None = None
    unit_amount: Decimal | None = _money()
    discount_percent: float | None = None
    mrr: Decimal | None = _money()
    currency: str | None = None
    started_at: dt.datetime | None = _ts()
    current_period_start: dt.datetime | None = _ts()
    current_period_end: dt.datetime | None = _ts()
    trial_end: dt.datetime | None = _ts()
    cancel_at_period_end: bool | None = None
    canceled_at: dt.datetime | None = _ts()
    ended_at: dt.datetime | None = _ts()
    updated_at: dt.datetime | None = _ts()


class Activity(SQLModel, table=True):
    """An engagement: email, call, meeting or QBR, with its outcome (completed, cancelled...)."""

    __tablename__ = "activity"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id", name="uq_activity_source"),
        sa.Index("ix_activity_account_time", "account_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_id: str
    account_ref: str | None = Field(
        default=None, index=True, description="the source's account reference, resolved by linking"
    )
    contact_ref: str | None = Field(default=None, index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    contact_id: int | None = Field(
        default=None, foreign_key="contact.id", index=True, ondelete="SET NULL"
    )
    kind: str
    status: str | None = None
    occurred_at: dt.datetime | None = _ts()
    duration_minutes: float | None = None
    owner_id: str | None = None
    subject: str | None = None
    custom: dict[str, Any] = _json()
    updated_at: dt.datetime | None = _ts()
    deleted_at: dt.datetime | None = _ts()


class Ticket(SQLModel, table=True):
    """A support ticket: bug, question or feature request, with severity and status."""

    __tablename__ = "ticket"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id", name="uq_ticket_source"),
        sa.Index("ix_ticket_account_time", "account_id", "opened_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_id: str
    account_ref: str | None = Field(
        default=None, index=True, description="the source's account reference, resolved by linking"
    )
    contact_ref: str | None = Field(default=None, index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    contact_id: int | None = Field(
        default=None, foreign_key="contact.id", index=True, ondelete="SET NULL"
    )
    type: str | None = None
    severity: str | None = None
    status: str | None = None
    is_closed: bool | None = None
    feature: str | None = None
    subject: str | None = None
    opened_at: dt.datetime | None = _ts()
    closed_at: dt.datetime | None = _ts()
    updated_at: dt.datetime | None = _ts()
    deleted_at: dt.datetime | None = _ts()


class NpsResponse(SQLModel, table=True):
    """One NPS answer (0-10) from a contact."""

    __tablename__ = "nps_response"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id", name="uq_nps_source"),
        sa.Index("ix_nps_account_time", "account_id", "responded_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_id: str
    account_ref: str | None = Field(
        default=None, index=True, description="the source's account reference, resolved by linking"
    )
    contact_ref: str | None = Field(default=None, index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    contact_id: int | None = Field(
        default=None, foreign_key="contact.id", index=True, ondelete="SET NULL"
    )
    email: str | None = None
    score: int
    responded_at: dt.datetime | None = _ts()
    comment: str | None = None


class UsageDaily(SQLModel, table=True):
    """Product usage per account, user, day and feature.

    Keyed by the source's own account key (e.g. the workspace id) so rows that match no account
    yet are kept, not dropped; `account_id` is filled when the key links and indexed with the day
    for the windowed scans rules make. `user_key` is the user's email or id ('' for account-level).
    """

    __tablename__ = "usage_daily"
    __table_args__ = (sa.Index("ix_usage_account_day", "account_id", "day"),)

    source: str = Field(primary_key=True)
    account_key: str = Field(primary_key=True)
    day: dt.date = Field(primary_key=True)
    feature: str = Field(primary_key=True)
    user_key: str = Field(primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    contact_id: int | None = Field(
        default=None, foreign_key="contact.id", index=True, ondelete="SET NULL"
    )
    events: int = 0
    minutes: float = 0.0


class StreamState(SQLModel, table=True):
    """The cursor of one source stream, saved in the same transaction as the rows it covers."""

    __tablename__ = "stream_state"

    source: str = Field(primary_key=True)
    stream: str = Field(primary_key=True)
    cursor: str | None = None
    state: dict[str, Any] = _json()
    run_id: int | None = None
    updated_at: dt.datetime | None = _ts()


class Run(SQLModel, table=True):
    """One pull, evaluation, sync or pipeline run, with its counts, API calls and error.

    `lease` and `holder` say which lease the scheduled worker held while it ran this (the job's
    name, or `step:pull` and the like) and which replica held it; both are empty for one-shot
    commands. They are what lets a run whose worker died be settled as `abandoned`
    (worker/abandoned.py).
    """

    __tablename__ = "run"
    __table_args__ = (
        sa.Index("ix_run_kind_started", "kind", "started_at"),
        sa.Index("ix_run_status_lease", "status", "lease"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    job: str | None = None
    status: str = "running"
    started_at: dt.datetime | None = _ts(nullable=False)
    finished_at: dt.datetime | None = _ts()
    as_of: dt.datetime | None = _ts()
    counts: dict[str, Any] = _json()
    api_calls: dict[str, Any] = _json()
    error: str | None = None
    lease: str | None = None
    holder: str | None = None


class Segment(SQLModel, table=True):
    """A segment rule as last loaded from config, with what evaluation needs to track it."""

    __tablename__ = "segment"

    key: str = Field(primary_key=True)
    name: str
    description: str | None = None
    level: str
    rule: str
    rule_hash: str
    catalogue: list[str] = Field(
        default_factory=list, sa_column=sa.Column(JSONType, nullable=False, default=list)
    )
    static: bool = False
    source_file: str | None = None
    member_count: int = 0
    last_run_id: int | None = None
    updated_at: dt.datetime | None = _ts()


class Membership(SQLModel, table=True):
    """One episode of an entity in a segment: open while `exited_at` is null."""

    __tablename__ = "membership"
    __table_args__ = (
        sa.Index("ix_membership_segment_entity", "segment_key", "entity_type", "entity_id"),
        sa.Index("ix_membership_entity", "entity_type", "entity_id"),
        sa.Index(
            "uq_membership_open",
            "segment_key",
            "entity_type",
            "entity_id",
            unique=True,
            sqlite_where=sa.text("exited_at IS NULL"),
            postgresql_where=sa.text("exited_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key to segment: see migration 0007 (row-by-row checks, and a cascade that
    # could take the task ledger with it). Evaluation writes segment rows first, never deletes.
    segment_key: str
    entity_type: str
    entity_id: int
    entered_at: dt.datetime | None = _ts(nullable=False)
    exited_at: dt.datetime | None = _ts()
    entered_run_id: int | None = None
    exited_run_id: int | None = None
    values: dict[str, Any] = _json()


class Pushed(SQLModel, table=True):
    """What smartseg last wrote to one field of one CRM record, as the API confirmed it.

    A failed write leaves `value` at the last confirmed value (so the next plan sends it again)
    and records the API's message in `last_error`.
    """

    __tablename__ = "pushed"

    target: str = Field(primary_key=True)
    object: str = Field(primary_key=True)
    record_id: str = Field(primary_key=True)
    field: str = Field(primary_key=True)
    value: str | None = None
    pushed_at: dt.datetime | None = _ts()
    run_id: int | None = None
    last_error: str | None = None
    attempts: int = 0


class TaskLedger(SQLModel, table=True):
    """One playbook action on one entry episode: intent written before the API call,
    reconciled after, so a crash never duplicates or loses a task."""

    __tablename__ = "task_ledger"
    __table_args__ = (
        sa.UniqueConstraint(
            "playbook_key", "target", "membership_id", "action", name="uq_task_episode"
        ),
        sa.Index("ix_task_ledger_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    playbook_key: str
    segment_key: str
    target: str
    action: str = "create"
    membership_id: int = Field(foreign_key="membership.id", ondelete="CASCADE")
    entity_type: str
    entity_id: int
    marker: str = Field(unique=True, description="idempotency key written into the CRM task")
    state: str = "intent"
    crm_task_id: str | None = None
    owner_id: str | None = None
    due_date: dt.date | None = None
    subject: str | None = None
    attempts: int = 0
    error: str | None = None
    run_id: int | None = None
    created_at: dt.datetime | None = _ts()
    updated_at: dt.datetime | None = _ts()


class Opportunity(SQLModel, table=True):
    """A deal: new business, renewal or upsell, and who referred it."""

    __tablename__ = "opportunity"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_opportunity_source"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_id: str
    account_ref: str | None = Field(default=None, index=True)
    account_id: int | None = Field(
        default=None, foreign_key="account.id", index=True, ondelete="SET NULL"
    )
    name: str | None = None
    type: str | None = None
    stage: str | None = None
    amount: Decimal | None = _money()
    currency: str | None = None
    close_date: dt.date | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    owner_id: str | None = None
    referred_by_ref: str | None = None
    referred_by_contact_id: int | None = Field(
        default=None, foreign_key="contact.id", ondelete="SET NULL"
    )
    custom: dict[str, Any] = _json()
    updated_at: dt.datetime | None = _ts()
    deleted_at: dt.datetime | None = _ts()


class CrmUser(SQLModel, table=True):
    """A CRM user or owner (account owners, CSMs), to name owners and assign tasks."""

    __tablename__ = "crm_user"

    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    name: str | None = None
    email: str | None = Field(default=None, index=True)
    title: str | None = None
    active: bool | None = None
    updated_at: dt.datetime | None = _ts()


class Invoice(SQLModel, table=True):
    """A billing invoice: what was due, what was paid, and when (overdue and failed payments)."""

    __tablename__ = "invoice"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id", name="uq_invoice_source"),
        sa.Index("ix_invoice_account_created", "account_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    source_id: str
    account_ref: str | None = Field(default=None, index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    customer_ref: str | None = None
    subscription_ref: str | None = None
    status: str | None = None
    currency: str | None = None
    amount_due: Decimal | None = _money()
    amount_paid: Decimal | None = _money()
    amount_remaining: Decimal | None = _money()
    created_at: dt.datetime | None = _ts()
    due_at: dt.datetime | None = _ts()
    paid_at: dt.datetime | None = _ts()
    period_start: dt.datetime | None = _ts()
    period_end: dt.datetime | None = _ts()
    attempt_count: int | None = None
    updated_at: dt.datetime | None = _ts()


class Lease(SQLModel, table=True):
    """Which replica runs a scheduled job right now, and the last firing of it that was claimed.

    A replica holds the job while `acquired_until` is in the future (it renews that while the job
    runs and clears it when done); `holder` names it, and stays as "who ran it last" afterwards.
    `last_fired` is the scheduled fire time of the latest claimed firing, so a replica arriving
    late for a firing another one already ran does not run it a second time.
    """

    __tablename__ = "lease"

    job: str = Field(primary_key=True)
    holder: str | None = None
    acquired_at: dt.datetime | None = _ts()
    acquired_until: dt.datetime | None = _ts()
    heartbeat_at: dt.datetime | None = _ts()
    last_fired: dt.datetime | None = _ts()
