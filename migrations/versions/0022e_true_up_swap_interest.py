"""a unit swap voids the true-up's charge; interest on a cancellation beyond ±3 % (issue 22, R-AFT-3, R-CHG-2)

- `charge.void_at`: set when the charge no longer stands (the true-up of the unit a swap left);
  nothing more is owed on it, what was paid stays held on the deal. ADD COLUMN only.
- `project.true_up_interest_percent`: the annual rate (%) of the interest on the price paid that
  a buyer who cancels beyond ±3 % gets back with it (art. 20), the office's to set; CHECK 0–100.

Revision ID: d22e00000001
Revises: d22d00000001
"""
import sqlalchemy as sa
from alembic import op

revision = 'd22e00000001'
down_revision = 'd22d00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('charge', sa.Column('void_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('true_up_interest_percent', sa.Numeric(precision=7, scale=4),
                                      server_default='3.00', nullable=False))
        batch_op.create_check_constraint(op.f('ck_project_true_up_interest_range'),
                                         "true_up_interest_percent >= 0 AND true_up_interest_percent <= 100")


def downgrade():
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_project_true_up_interest_range'), type_='check')
        batch_op.drop_column('true_up_interest_percent')
    with op.batch_alter_table('charge', schema=None) as batch_op:
        batch_op.drop_column('void_at')
