"""source references, opportunities and CRM users

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

from smartseg.store.types import JSONType, UTCDateTime

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('crm_user',
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('email', sa.String(), nullable=True),
    sa.Column('title', sa.String(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('source', 'source_id')
    )
    with op.batch_alter_table('crm_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_user_email'), ['email'], unique=False)

    op.create_table('opportunity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('account_ref', sa.String(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('type', sa.String(), nullable=True),
    sa.Column('stage', sa.String(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=True),
    sa.Column('is_won', sa.Boolean(), nullable=True),
    sa.Column('owner_id', sa.String(), nullable=True),
    sa.Column('referred_by_ref', sa.String(), nullable=True),
    sa.Column('referred_by_contact_id', sa.Integer(), nullable=True),
    sa.Column('custom', JSONType, nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['referred_by_contact_id'], ['contact.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'source_id', name='uq_opportunity_source')
    )
    with op.batch_alter_table('opportunity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunity_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunity_account_ref'), ['account_ref'], unique=False)

    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_ref', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('contact_ref', sa.String(), nullable=True))
        batch_op.create_index(batch_op.f('ix_activity_account_ref'), ['account_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_contact_ref'), ['contact_ref'], unique=False)

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_ref', sa.String(), nullable=True))
        batch_op.create_index(batch_op.f('ix_contact_account_ref'), ['account_ref'], unique=False)

    with op.batch_alter_table('nps_response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_ref', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('contact_ref', sa.String(), nullable=True))
        batch_op.create_index(batch_op.f('ix_nps_response_account_ref'), ['account_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_nps_response_contact_ref'), ['contact_ref'], unique=False)

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_ref', sa.String(), nullable=True))
        batch_op.create_index(batch_op.f('ix_subscription_account_ref'), ['account_ref'], unique=False)

    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_ref', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('contact_ref', sa.String(), nullable=True))
        batch_op.create_index(batch_op.f('ix_ticket_account_ref'), ['account_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_contact_ref'), ['contact_ref'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_contact_ref'))
        batch_op.drop_index(batch_op.f('ix_ticket_account_ref'))
        batch_op.drop_column('contact_ref')
        batch_op.drop_column('account_ref')

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_account_ref'))
        batch_op.drop_column('account_ref')

    with op.batch_alter_table('nps_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nps_response_contact_ref'))
        batch_op.drop_index(batch_op.f('ix_nps_response_account_ref'))
        batch_op.drop_column('contact_ref')
        batch_op.drop_column('account_ref')

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_account_ref'))
        batch_op.drop_column('account_ref')

    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_contact_ref'))
        batch_op.drop_index(batch_op.f('ix_activity_account_ref'))
        batch_op.drop_column('contact_ref')
        batch_op.drop_column('account_ref')

    with op.batch_alter_table('opportunity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunity_account_ref'))
        batch_op.drop_index(batch_op.f('ix_opportunity_account_id'))

    op.drop_table('opportunity')
    with op.batch_alter_table('crm_user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_user_email'))

    op.drop_table('crm_user')

