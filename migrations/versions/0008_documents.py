"""documents: the rendered file, its subject's owner and title, batches

Revision ID: d64b7d2ca151
Revises: 1efb22acf6e3
Create Date: 2026-11-27 14:10:09.132197

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd64b7d2ca151'
down_revision = '1efb22acf6e3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('document_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('job_ids', sa.Text(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('subscription_agreement', 'receipt', 'payment_reminder', 'overdue_warning', 'lawyer_letter', 'forfeit_notice', 'signing_booking', 'statement', 'board')", name=op.f('ck_document_batch_kind_known')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_document_batch_requested_by_id_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_batch'))
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('content', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_document_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_owner_id'), ['owner_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_document_owner_id_user'), 'user', ['owner_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_foreign_key(batch_op.f('fk_document_batch_id_document_batch'), 'document_batch', ['batch_id'], ['id'], ondelete='RESTRICT')



def downgrade():
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_document_batch_id_document_batch'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_document_owner_id_user'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_document_owner_id'))
        batch_op.drop_index(batch_op.f('ix_document_batch_id'))
        batch_op.drop_column('started_at')
        batch_op.drop_column('content')
        batch_op.drop_column('batch_id')
        batch_op.drop_column('owner_id')
        batch_op.drop_column('title')

    op.drop_table('document_batch')
