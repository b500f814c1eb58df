"""notifications and exports in the reader's language (issue 19, item 17)

A notification keeps its kind and its values (`params`, JSON) and is rendered in the reader's
language when shown; rows written before keep their finished text (`message`, params NULL).
A background export keeps its requester's language (`locale`), which the worker writes it in.

Revision ID: d19f00000001
Revises: d19e00000001
"""
import sqlalchemy as sa
from alembic import op

revision = 'd19f00000001'
down_revision = 'd19e00000001'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable and without a default: adding the column rewrites nothing on PostgreSQL.
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=20), server_default='zh_Hans_CN',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('params')
