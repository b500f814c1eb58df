"""imports: price lists imported in the background (issue 18, item 4)

- price_list_import: the uploaded file, its state (queued → running → done | failed, with the
  attempts a worker made and why it failed), the rows it had and the units it created or re-priced,
  or the errors by row and column; who sent it and when.

Revision ID: c18a2e3f9d03
Revises: b17f1c2d8e02
Create Date: 2026-12-01 17:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c18a2e3f9d03'
down_revision = 'b17f1c2d8e02'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('price_list_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('locale', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='queued', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('created', sa.Integer(), nullable=True),
    sa.Column('updated', sa.Integer(), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_price_list_import_status_known')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_price_list_import_attempts_not_negative')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_price_list_import_requested_by_id_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_list_import'))
    )
    with op.batch_alter_table('price_list_import', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_price_list_import_requested_by_id'), ['requested_by_id'], unique=False)
        batch_op.create_index('ix_price_list_import_status', ['status'], unique=False)



def downgrade():
    with op.batch_alter_table('price_list_import', schema=None) as batch_op:
        batch_op.drop_index('ix_price_list_import_status')
        batch_op.drop_index(batch_op.f('ix_price_list_import_requested_by_id'))

    op.drop_table('price_list_import')
