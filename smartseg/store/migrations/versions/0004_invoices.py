"""invoices

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

from smartseg.store.types import UTCDateTime


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('source_id', sa.String(), nullable=False),
    sa.Column('account_ref', sa.String(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('customer_ref', sa.String(), nullable=True),
    sa.Column('subscription_ref', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=True),
    sa.Column('currency', sa.String(), nullable=True),
    sa.Column('amount_due', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('amount_paid', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('amount_remaining', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=True),
    sa.Column('due_at', UTCDateTime(), nullable=True),
    sa.Column('paid_at', UTCDateTime(), nullable=True),
    sa.Column('period_start', UTCDateTime(), nullable=True),
    sa.Column('period_end', UTCDateTime(), nullable=True),
    sa.Column('attempt_count', sa.Integer(), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'source_id', name='uq_invoice_source')
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_account_created', ['account_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_account_ref'), ['account_ref'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_account_ref'))
        batch_op.drop_index('ix_invoice_account_created')

    op.drop_table('invoice')

