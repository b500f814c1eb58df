"""a true-up is refunded once (issue 22, R-AFT-3)

`uq_voucher_true_up`: a partial unique index on voucher.true_up_id (where set), so a double click
on a true-up's "Refund" issues one voucher. An index only: voucher is not rebuilt on SQLite (its
held-keeping triggers stay).

Revision ID: d22d00000001
Revises: d22c00000001
"""
import sqlalchemy as sa
from alembic import op

revision = 'd22d00000001'
down_revision = 'd22c00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('uq_voucher_true_up', 'voucher', ['true_up_id'], unique=True,
                    sqlite_where=sa.text('true_up_id IS NOT NULL'), postgresql_where=sa.text('true_up_id IS NOT NULL'))


def downgrade():
    op.drop_index('uq_voucher_true_up', table_name='voucher')
