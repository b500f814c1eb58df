"""exports: background finance exports and their files in 1 MiB chunks

Revision ID: 81cbecbd035c
Revises: d64b7d2ca151
Create Date: 2026-11-27 14:51:58.403677

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '81cbecbd035c'
down_revision = 'd64b7d2ca151'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list', sa.String(length=20), nullable=False),
    sa.Column('format', sa.String(length=10), nullable=False),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('file', sa.String(length=200), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("format IN ('csv', 'xlsx')", name=op.f('ck_export_format_known')),
    sa.CheckConstraint("list IN ('payments', 'instalments')", name=op.f('ck_export_list_known')),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_export_status_known')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_export_requested_by_id_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export'))
    )
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_export_requested_by_id'), ['requested_by_id'], unique=False)

    op.create_table('export_chunk',
    sa.Column('export_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['export_id'], ['export.id'], name=op.f('fk_export_chunk_export_id_export'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('export_id', 'seq', name=op.f('pk_export_chunk'))
    )


def downgrade():
    op.drop_table('export_chunk')
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_requested_by_id'))

    op.drop_table('export')
