"""identity documents (issue 19, item 13)

- lead.id_type, subscription.customer_id_type: the kind of identity document whose number is
  stored (models/identity.py): resident_id (居民身份证), passport (护照), hk_macao_permit
  (港澳居民来往内地通行证), taiwan_permit (台湾居民来往大陆通行证), foreign_permanent_resident
  (外国人永久居留身份证). Existing rows are resident ID cards (the only kind taken so far): the
  server default says so; no number is rewritten, an invalid one stays until its form is saved.

Revision ID: d19c00000001
Revises: d19f00000001
Create Date: 2026-12-07 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd19c00000001'
down_revision = 'd19f00000001'
branch_labels = None
depends_on = None

ID_TYPES = "('resident_id', 'passport', 'hk_macao_permit', 'taiwan_permit', 'foreign_permanent_resident')"


def upgrade():
    with op.batch_alter_table('lead') as batch:
        batch.add_column(sa.Column('id_type', sa.String(length=30), nullable=False, server_default='resident_id'))
        batch.create_check_constraint(op.f('ck_lead_id_type_known'), f"id_type IN {ID_TYPES}")
    with op.batch_alter_table('subscription') as batch:
        batch.add_column(sa.Column('customer_id_type', sa.String(length=30), nullable=False,
                                   server_default='resident_id'))
        batch.create_check_constraint(op.f('ck_subscription_customer_id_type_known'),
                                      f"customer_id_type IN {ID_TYPES}")


def downgrade():
    with op.batch_alter_table('subscription') as batch:
        batch.drop_constraint(op.f('ck_subscription_customer_id_type_known'), type_='check')
        batch.drop_column('customer_id_type')
    with op.batch_alter_table('lead') as batch:
        batch.drop_constraint(op.f('ck_lead_id_type_known'), type_='check')
        batch.drop_column('id_type')
