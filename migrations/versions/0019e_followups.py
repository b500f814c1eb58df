"""signing checklist per payment method (issue 19, item 12)

- payment_method_template.signing_checklist: what a deal of this method brings to the signing
  beyond the project's own list (R-CON-3), so a mortgage's bank card is asked of mortgage deals
  only. Existing methods get the default items of their code.
- project.signing_checklist: a project still holding the old default list (which named the
  down-payment receipt and the mortgage's bank card for every deal) gets the new common list;
  a list the office edited is left as it is.

Revision ID: d19e00000001
Revises: d19b00000001
Create Date: 2026-12-07 17:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd19e00000001'
down_revision = 'd19b00000001'
branch_labels = None
depends_on = None

# As models.payments.DEFAULT_SIGNING_CHECKLISTS and models.inventory.COMMON_SIGNING_CHECKLIST
# when this migration was written (a migration never imports the models: they move on).
METHOD_ITEMS = {
    "one_off": "全部房款收据",
    "instalments": "首期款收据\n已付分期款收据",
    "commercial_mortgage": "首期款收据\n收入证明\n近六个月银行流水\n银行卡（用于按揭还款）",
    "provident_fund": "首期款收据\n住房公积金缴存证明\n银行卡（用于公积金贷款还款）",
}
OLD_COMMON = ("身份证原件及复印件\n户口簿原件及复印件\n婚姻状况证明\n认购书及定金收据\n"
              "首期款收据\n银行卡（用于按揭还款）\n契税、维修基金等税费")
NEW_COMMON = "身份证原件及复印件\n户口簿原件及复印件\n婚姻状况证明\n认购书及定金收据\n契税、维修基金等税费"


def upgrade():
    with op.batch_alter_table('payment_method_template', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signing_checklist', sa.Text(), server_default='', nullable=False))
    method = sa.table('payment_method_template', sa.column('code', sa.String), sa.column('signing_checklist', sa.Text))
    for code, items in METHOD_ITEMS.items():
        op.execute(method.update().where(method.c.code == code).values(signing_checklist=items))
    project = sa.table('project', sa.column('signing_checklist', sa.Text))
    op.execute(project.update().where(project.c.signing_checklist == OLD_COMMON).values(signing_checklist=NEW_COMMON))


def downgrade():
    project = sa.table('project', sa.column('signing_checklist', sa.Text))
    op.execute(project.update().where(project.c.signing_checklist == NEW_COMMON).values(signing_checklist=OLD_COMMON))
    with op.batch_alter_table('payment_method_template', schema=None) as batch_op:
        batch_op.drop_column('signing_checklist')
