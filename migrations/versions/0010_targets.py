"""targets: monthly sales targets per agent (R-ALL-3)

Revision ID: 7c73f2a653cf
Revises: 81cbecbd035c
Create Date: 2026-11-27 14:56:35.414640

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c73f2a653cf'
down_revision = '81cbecbd035c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sales_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('subscriptions', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('collections', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('set_by_id', sa.Integer(), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('subscriptions >= 0 AND amount >= 0 AND collections >= 0', name=op.f('ck_sales_target_not_negative')),
    sa.ForeignKeyConstraint(['agent_id'], ['user.id'], name=op.f('fk_sales_target_agent_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['set_by_id'], ['user.id'], name=op.f('fk_sales_target_set_by_id_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_target')),
    sa.UniqueConstraint('agent_id', 'month', name=op.f('uq_sales_target_agent_id_month'))
    )
    with op.batch_alter_table('sales_target', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_target_agent_id'), ['agent_id'], unique=False)



def downgrade():
    with op.batch_alter_table('sales_target', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_target_agent_id'))

    op.drop_table('sales_target')
