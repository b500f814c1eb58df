"""a saved commission rule is applied by a job (issue 23, R-COM-2)

`commission_rule.changed_at` (when the rule was last saved) and `applied_at` (when a run of
models.commissions.apply_rules that began after that save finished): a rule with `applied_at`
unset or older than `changed_at` is applied by the daily sweep. The rules already saved were
applied by the save itself (it recomputed in the request until now): both are set to their
`created_at`.

PostgreSQL adds the columns with ALTER TABLE. SQLite cannot ADD a column whose default is
CURRENT_TIMESTAMP to a table with rows: the table is rebuilt there (it has no triggers; keys are
off while migrating, migrations/env.py).

Revision ID: d23f00000001
Revises: d23a00000001
"""
import sqlalchemy as sa
from alembic import op

revision = 'd23f00000001'
down_revision = 'd23a00000001'
branch_labels = None
depends_on = None


def _recreate():
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade():
    with op.batch_alter_table('commission_rule', recreate=_recreate()) as batch_op:
        batch_op.add_column(sa.Column('changed_at', sa.DateTime(), server_default=sa.text('CURRENT_TIMESTAMP'),
                                      nullable=False))
        batch_op.add_column(sa.Column('applied_at', sa.DateTime(), nullable=True))
    op.execute("UPDATE commission_rule SET changed_at = created_at, applied_at = created_at")


def downgrade():
    with op.batch_alter_table('commission_rule', recreate=_recreate()) as batch_op:
        batch_op.drop_column('applied_at')
        batch_op.drop_column('changed_at')
