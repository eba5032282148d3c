"""source link reference

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op




revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table('source_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ref', sa.String(), nullable=True))
        batch_op.create_index('ix_source_link_object_ref', ['object', 'ref'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('source_link', schema=None) as batch_op:
        batch_op.drop_index('ix_source_link_object_ref')
        batch_op.drop_column('ref')


