"""initial schema

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

from smartseg.store.types import JSONType, UTCDateTime

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_key', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('domain', sa.String(), nullable=True),
    sa.Column('workspace_id', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=True),
    sa.Column('edition', sa.String(), nullable=True),
    sa.Column('product', sa.String(), nullable=True),
    sa.Column('contract_type', sa.String(), nullable=True),
    sa.Column('opt_out_clause', sa.Boolean(), nullable=True),
    sa.Column('industry', sa.String(), nullable=True),
    sa.Column('region', sa.String(), nullable=True),
    sa.Column('country', sa.String(), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('renewal_date', sa.Date(), nullable=True),
    sa.Column('trial_end_date', sa.Date(), nullable=True),
    sa.Column('churn_date', sa.Date(), nullable=True),
    sa.Column('churn_reason', sa.String(), nullable=True),
    sa.Column('seats', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.String(), nullable=True),
    sa.Column('owner_name', sa.String(), nullable=True),
    sa.Column('owner_email', sa.String(), nullable=True),
    sa.Column('csm_id', sa.String(), nullable=True),
    sa.Column('csm_name', sa.String(), nullable=True),
    sa.Column('csm_email', sa.String(), nullable=True),
    sa.Column('csm_sentiment', sa.String(), nullable=True),
    sa.Column('product_fit', sa.String(), nullable=True),
    sa.Column('lifecycle_stage', sa.String(), nullable=True),
    sa.Column('onboarding_status', sa.String(), nullable=True),
    sa.Column('onboarding_step', sa.Integer(), nullable=True),
    sa.Column('use_case', sa.String(), nullable=True),
    sa.Column('purchase_benefit', sa.String(), nullable=True),
    sa.Column('benefit_achieved_date', sa.Date(), nullable=True),
    sa.Column('growth_potential', sa.String(), nullable=True),
    sa.Column('health_score', sa.Float(), nullable=True),
    sa.Column('reference_account', sa.Boolean(), nullable=True),
    sa.Column('strategic', sa.Boolean(), nullable=True),
    sa.Column('mrr', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('arr', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(), nullable=True),
    sa.Column('custom', JSONType, nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_key')
    )
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_domain'), ['domain'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('pushed',
    sa.Column('target', sa.String(), nullable=False),
    sa.Column('object', sa.String(), nullable=False),
    sa.Column('record_id', sa.String(), nullable=False),
    sa.Column('field', sa.String(), nullable=False),
    sa.Column('value', sa.String(), nullable=True),
    sa.Column('pushed_at', UTCDateTime(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('target', 'object', 'record_id', 'field')
    )
    op.create_table('run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('job', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
    sa.Column('as_of', UTCDateTime(), nullable=True),
    sa.Column('counts', JSONType, nullable=False),
    sa.Column('api_calls', JSONType, nullable=False),
    sa.Column('error', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index('ix_run_kind_started', ['kind', 'started_at'], unique=False)

    op.create_table('segment',
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('level', sa.String(), nullable=False),
    sa.Column('rule', sa.String(), nullable=False),
    sa.Column('rule_hash', sa.String(), nullable=False),
    sa.Column('catalogue', JSONType, nullable=False),
    sa.Column('static', sa.Boolean(), nullable=False),
    sa.Column('source_file', sa.String(), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('last_run_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('stream_state',
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('stream', sa.String(), nullable=False),
    sa.Column('cursor', sa.String(), nullable=True),
    sa.Column('state', JSONType, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('source', 'stream')
    )
    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_key', sa.String(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(), nullable=True),
    sa.Column('first_name', sa.String(), nullable=True),
    sa.Column('last_name', sa.String(), nullable=True),
    sa.Column('title', sa.String(), nullable=True),
    sa.Column('role', sa.String(), nullable=True),
    sa.Column('lifecycle_stage', sa.String(), nullable=True),
    sa.Column('email_opt_out', sa.Boolean(), nullable=True),
    sa.Column('referrals_won', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.String(), nullable=True),
    sa.Column('custom', JSONType, nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_key')
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_email'), ['email'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('segment_key', sa.String(), nullable=False),
    sa.Column('entity_type', sa.String(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('entered_at', UTCDateTime(), nullable=False),
    sa.Column('exited_at', UTCDateTime(), nullable=True),
    sa.Column('entered_run_id', sa.Integer(), nullable=True),
    sa.Column('exited_run_id', sa.Integer(), nullable=True),
    sa.Column('values', JSONType, nullable=False),
    sa.ForeignKeyConstraint(['segment_key'], ['segment.key'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index('ix_membership_entity', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index('ix_membership_segment_entity', ['segment_key', 'entity_type', 'entity_id'], unique=False)
        batch_op.create_index('uq_membership_open', ['segment_key', 'entity_type', 'entity_id'], unique=True, sqlite_where=sa.text('exited_at IS NULL'), postgresql_where=sa.text('exited_at IS NULL'))

    op.create_table('subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('customer_ref', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('product', sa.String(), nullable=True),
    sa.Column('plan', sa.String(), nullable=True),
    sa.Column('interval', sa.String(), nullable=True),
    sa.Column('interval_count', sa.Integer(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('unit_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('discount_percent', sa.Float(), nullable=True),
    sa.Column('mrr', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(), nullable=True),
    sa.Column('started_at', UTCDateTime(), nullable=True),
    sa.Column('current_period_start', UTCDateTime(), nullable=True),
    sa.Column('current_period_end', UTCDateTime(), nullable=True),
    sa.Column('trial_end', UTCDateTime(), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), nullable=True),
    sa.Column('canceled_at', UTCDateTime(), nullable=True),
    sa.Column('ended_at', UTCDateTime(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'source_id', name='uq_subscription_source')
    )
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_account_id'), ['account_id'], unique=False)

    op.create_table('activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=True),
    sa.Column('occurred_at', UTCDateTime(), nullable=True),
    sa.Column('duration_minutes', sa.Float(), nullable=True),
    sa.Column('owner_id', sa.String(), nullable=True),
    sa.Column('subject', sa.String(), nullable=True),
    sa.Column('custom', JSONType, nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'source_id', name='uq_activity_source')
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_account_time', ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_contact_id'), ['contact_id'], unique=False)

    op.create_table('nps_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('responded_at', UTCDateTime(), nullable=True),
    sa.Column('comment', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'source_id', name='uq_nps_source')
    )
    with op.batch_alter_table('nps_response', schema=None) as batch_op:
        batch_op.create_index('ix_nps_account_time', ['account_id', 'responded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_nps_response_contact_id'), ['contact_id'], unique=False)

    op.create_table('source_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('object', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('matched_by', sa.String(), nullable=True),
    sa.Column('hint', JSONType, nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'object', 'source_id', name='uq_source_link')
    )
    with op.batch_alter_table('source_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_link_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_source_link_contact_id'), ['contact_id'], unique=False)

    op.create_table('task_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('playbook_key', sa.String(), nullable=False),
    sa.Column('segment_key', sa.String(), nullable=False),
    sa.Column('target', sa.String(), nullable=False),
    sa.Column('action', sa.String(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('marker', sa.String(), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('crm_task_id', sa.String(), nullable=True),
    sa.Column('owner_id', sa.String(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('subject', sa.String(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['membership_id'], ['membership.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('marker'),
    sa.UniqueConstraint('playbook_key', 'target', 'membership_id', 'action', name='uq_task_episode')
    )
    with op.batch_alter_table('task_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_task_ledger_state', ['state'], unique=False)

    op.create_table('ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(), nullable=True),
    sa.Column('severity', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=True),
    sa.Column('feature', sa.String(), nullable=True),
    sa.Column('subject', sa.String(), nullable=True),
    sa.Column('opened_at', UTCDateTime(), nullable=True),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'source_id', name='uq_ticket_source')
    )
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_account_time', ['account_id', 'opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_contact_id'), ['contact_id'], unique=False)

    op.create_table('usage_daily',
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('account_key', sa.String(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('feature', sa.String(), nullable=False),
    sa.Column('user_key', sa.String(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('source', 'account_key', 'day', 'feature', 'user_key')
    )
    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.create_index('ix_usage_account_day', ['account_id', 'day'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_daily_contact_id'), ['contact_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_daily_contact_id'))
        batch_op.drop_index('ix_usage_account_day')

    op.drop_table('usage_daily')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_contact_id'))
        batch_op.drop_index('ix_ticket_account_time')

    op.drop_table('ticket')
    with op.batch_alter_table('task_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_task_ledger_state')

    op.drop_table('task_ledger')
    with op.batch_alter_table('source_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_link_contact_id'))
        batch_op.drop_index(batch_op.f('ix_source_link_account_id'))

    op.drop_table('source_link')
    with op.batch_alter_table('nps_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nps_response_contact_id'))
        batch_op.drop_index('ix_nps_account_time')

    op.drop_table('nps_response')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_contact_id'))
        batch_op.drop_index('ix_activity_account_time')

    op.drop_table('activity')
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_account_id'))

    op.drop_table('subscription')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index('uq_membership_open', sqlite_where=sa.text('exited_at IS NULL'), postgresql_where=sa.text('exited_at IS NULL'))
        batch_op.drop_index('ix_membership_segment_entity')
        batch_op.drop_index('ix_membership_entity')

    op.drop_table('membership')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_email'))
        batch_op.drop_index(batch_op.f('ix_contact_account_id'))

    op.drop_table('contact')
    op.drop_table('stream_state')
    op.drop_table('segment')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index('ix_run_kind_started')

    op.drop_table('run')
    op.drop_table('pushed')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_account_domain'))

    op.drop_table('account')

