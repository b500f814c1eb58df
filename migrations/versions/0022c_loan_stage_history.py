"""mortgage files: a file's stage history may reach a stage twice (R-AFT-2)

A reversed disbursement puts the file back to the stage it was at, recorded as a row of its own,
and the file may then be disbursed again: `loan_stage` keeps no (file, stage) uniqueness (the
file's conditional UPDATE on its stage guards the moves).

Revision ID: d22c00000001
Revises: d22a00000001
"""
from alembic import op

revision = "d22c00000001"
down_revision = "d22a00000001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("loan_stage") as batch:
        batch.drop_constraint(op.f("uq_loan_stage_loan_file_id_stage"), type_="unique")


def downgrade():
    with op.batch_alter_table("loan_stage") as batch:
        batch.create_unique_constraint(op.f("uq_loan_stage_loan_file_id_stage"), ["loan_file_id", "stage"])
