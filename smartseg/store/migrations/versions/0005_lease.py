"""job leases for the scheduled worker

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

from smartseg.store.types import UTCDateTime


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('lease',
    sa.Column('job', sa.String(), nullable=False),
    sa.Column('holder', sa.String(), nullable=True),
    sa.Column('acquired_at', UTCDateTime(), nullable=True),
    sa.Column('acquired_until', UTCDateTime(), nullable=True),
    sa.Column('heartbeat_at', UTCDateTime(), nullable=True),
    sa.Column('last_fired', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('job')
    )


def downgrade() -> None:

    op.drop_table('lease')
