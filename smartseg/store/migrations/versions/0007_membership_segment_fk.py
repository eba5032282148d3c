"""membership rows no longer carry a foreign key to segment

The key was checked row by row on every insert: on PostgreSQL about a third of the time a
first evaluation spends writing the ledger (17 of 48 s for 2.7M rows, measured on a copy of
the table). It guarded nothing smartseg does: an evaluation upserts every segment row before
it writes their memberships, in the same transaction, and never deletes a segment (removed
rules are retired, their episodes closed). Its ON DELETE CASCADE was a hazard besides: a
segment row deleted by hand took its memberships and, through them, the task ledger, so the
next sync would have created those tasks again.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The initial schema left the key unnamed: PostgreSQL named it itself, SQLite keeps no name,
# and batch mode matches a reflected unnamed key by the name this convention gives it.
_NAME = 'membership_segment_key_fkey'
_CONVENTION = {'fk': '%(table_name)s_%(column_0_name)s_fkey'}


def upgrade() -> None:

    with op.batch_alter_table('membership', schema=None, naming_convention=_CONVENTION) as batch_op:
        batch_op.drop_constraint(_NAME, type_='foreignkey')


def downgrade() -> None:

    with op.batch_alter_table('membership', schema=None, naming_convention=_CONVENTION) as batch_op:
        batch_op.create_foreign_key(_NAME, 'segment', ['segment_key'], ['key'], ondelete='CASCADE')
