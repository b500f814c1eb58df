"""personal data (issue 18, item 7)

- project: whether agents may export their own customers' personal data (phones); managers and
  administrators always may (R-ALL-1).

Revision ID: a16e0d1a7b01
Revises: 3c8d5a1f7e20
Create Date: 2026-12-01 17:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a16e0d1a7b01'
down_revision = '3c8d5a1f7e20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('project') as batch:
        batch.add_column(sa.Column('agents_may_export_personal_data', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('project') as batch:
        batch.drop_column('agents_may_export_personal_data')
