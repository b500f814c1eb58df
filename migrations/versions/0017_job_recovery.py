"""jobs: recovery and namespacing (issue 18)

Items 9, 10, 13: documents and exports record when they were given to their job (`sent_at`) and
how many runs started (`attempts`); exports when their run started; the database's own
fingerprint, which workers check jobs against.

Revision ID: b17f1c2d8e02
Revises: a16e0d1a7b01
"""
import sqlalchemy as sa
from alembic import op

revision = 'b17f1c2d8e02'
down_revision = 'a16e0d1a7b01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('instance_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instance_identity'))
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(), nullable=True))
    # A document already running when this is deployed counts as started once.
    op.execute("UPDATE document SET attempts = 1 WHERE status IN ('running', 'done', 'failed')")
    op.execute("UPDATE export SET attempts = 1 WHERE status IN ('running', 'done', 'failed')")


def downgrade():
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.drop_column('started_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('sent_at')
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_column('attempts')
        batch_op.drop_column('sent_at')
    op.drop_table('instance_identity')
