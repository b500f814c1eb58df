"""deals that change (issue 21): the addendum (补充协议) as a kind of document

- document.kind and document_batch.kind may be `addendum`: the supplementary agreement of an
  approved change request (R-CHG-3), rendered by the workers like the other documents.

Revision ID: d21b00000001
Revises: d21a00000001
"""
from alembic import op

revision = 'd21b00000001'
down_revision = 'd21a00000001'
branch_labels = None
depends_on = None

OLD_KINDS = ("kind IN ('subscription_agreement', 'receipt', 'payment_reminder', 'overdue_warning', "
             "'lawyer_letter', 'forfeit_notice', 'signing_booking', 'statement', 'board')")
NEW_KINDS = ("kind IN ('subscription_agreement', 'receipt', 'payment_reminder', 'overdue_warning', "
             "'lawyer_letter', 'forfeit_notice', 'signing_booking', 'statement', 'board', 'addendum')")


def _kinds(check: str) -> None:
    for table in ('document', 'document_batch'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint('kind_known', type_='check')
            batch_op.create_check_constraint('kind_known', check)


def upgrade():
    _kinds(NEW_KINDS)


def downgrade():
    # An addendum already made keeps the old CHECK from coming back: the database refuses the
    # downgrade rather than losing a signed document's row.
    _kinds(OLD_KINDS)
