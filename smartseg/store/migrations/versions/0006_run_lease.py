"""run rows record the lease and replica they ran under

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('holder', sa.String(), nullable=True))
        batch_op.create_index('ix_run_status_lease', ['status', 'lease'], unique=False)


def downgrade() -> None:

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index('ix_run_status_lease')
        batch_op.drop_column('holder')
        batch_op.drop_column('lease')
