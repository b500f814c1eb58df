"""after the contract (issue 22): late fees, mortgage files, area true-up, handover, after-sales

- `charge` (R-AFT-1, R-AFT-3): money owed beside the price plan — a late fee per late plan line,
  a true-up per deal — paid by payments naming it (`payment.charge_id`); `late_fee_waiver`
  requests; the projects' late-fee terms and a deal's own (`subscription.late_fee_*`).
- `bank`, `loan_file`, `loan_stage` (R-AFT-2): the mortgage pipeline; the projects' stage limits.
- `true_up_batch`, `true_up` (R-AFT-3); `unit.surveyed_area`/`surveyed_on`; `voucher.true_up_id`
  (a true-up's refund on a live deal).
- `handover`, `handover_item` (R-AFT-4); `unit`/`subscription.handed_over_on`; the projects'
  handover period and checklist.
- `ticket`, `ticket_counter`, `ticket_note`, `attachment`, `survey` (R-SVC-1/2); the projects'
  ticket due days.
- A ninth role, `customer_service` (客服): handovers, tickets, surveys.
- Four kinds of document: true-up notice, handover notice, handover record, survey summary.

Columns of subscription, payment, voucher and unit are added in place (ALTER TABLE ADD COLUMN),
never by a batch rebuild: a rebuild on SQLite would drop the triggers of migrations 0021a/0021c.

Revision ID: d22a00000001
Revises: d21c00000001
"""
import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op


def _held_migration():
    """Migration 0021c, whose SQLite triggers a rebuild of payment or voucher must make again."""
    path = Path(__file__).with_name('0021c_settlement_index.py')
    spec = importlib.util.spec_from_file_location('settlement_index_0021c', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

revision = 'd22a00000001'
down_revision = 'd21c00000001'
branch_labels = None
depends_on = None

SEED_TABLES = ("role",)  # migrations/guard.py: the role's row is written back by upgrading again
OLD_ROLES = ("admin", "sales_manager", "agent", "sales_control", "finance", "lawyer", "archive", "vp")
NEW_ROLES = OLD_ROLES + ("customer_service",)
OLD_KINDS = ('subscription_agreement', 'receipt', 'payment_reminder', 'overdue_warning', 'lawyer_letter',
             'forfeit_notice', 'signing_booking', 'statement', 'board', 'addendum')
NEW_KINDS = OLD_KINDS + ('true_up_notice', 'handover_notice', 'handover_record', 'survey_summary')
PROJECT_CHECKS = {
    'late_fee_rate_range': "late_fee_daily_percent >= 0 AND late_fee_daily_percent <= 1",
    'late_fee_cap_range': "late_fee_cap_percent >= 0 AND late_fee_cap_percent <= 100",
    'late_fee_waiver_limit_not_negative': "late_fee_waiver_limit >= 0",
    'handover_period_order': ("handover_ends_on IS NULL OR handover_starts_on IS NULL OR "
                              "handover_ends_on >= handover_starts_on"),
    'ticket_due_positive': "ticket_due_days >= 1",
}
CHECKLIST = '入户门及门锁\n窗户及玻璃\n墙面、顶棚\n地面\n给排水\n电路及开关插座\n燃气\n卫生间防水\n厨房\n阳台\n水电气表读数'
LOAN_STAGE_LIMITS = ('{"collecting": 15, "documents_complete": 10, "bank_interview": 20, "approved": 15, '
                     '"mortgage_registered": 20}')


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _kinds(kinds) -> None:
    for table in ('document', 'document_batch'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint('kind_known', type_='check')
            batch_op.create_check_constraint('kind_known', f"kind IN {_in(kinds)}")


def _roles(roles) -> None:
    with op.batch_alter_table('role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_role_name_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_role_name_known'), f"name IN {_in(roles)}")


def _add_reference(table: str, column: str, target: str, sign: str) -> None:
    """A nullable column referring to `target`, with its foreign key and index. PostgreSQL adds it
    in place. SQLite cannot ALTER a constraint (and a key declared with an added column is not
    reflected as the models declare it), so the table is rebuilt — which drops its triggers: the
    one that keeps `subscription.held` (migration 0021c, `sign`: what a row does to it) is made
    again, as that migration made it."""
    name = f'fk_{table}_{column}_{target}'
    if op.get_bind().dialect.name == 'postgresql':
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(name, table, target, [column], ['id'], ondelete='RESTRICT')
    else:
        held = _held_migration()
        held.drop_held_guard()  # it reads payment and voucher: SQLite refuses to drop a table it names
        with op.batch_alter_table(table, schema=None, recreate='always') as batch_op:
            batch_op.add_column(sa.Column(column, sa.Integer(), sa.ForeignKey(f'{target}.id', name=name,
                                                                              ondelete='RESTRICT'), nullable=True))
        _keeper(table, sign)
        held.create_held_guard()
    op.create_index(f'ix_{table}_{column}', table, [column], unique=False)


def _keeper(table: str, sign: str) -> None:
    """0021c's SQLite trigger keeping subscription.held from `table`'s inserts, made again."""
    op.execute(f"DROP TRIGGER IF EXISTS {table}_keeps_held")
    op.execute(f"CREATE TRIGGER {table}_keeps_held AFTER INSERT ON {table} BEGIN "
               f"UPDATE subscription SET held = round(held {sign} NEW.amount, 2) WHERE id = NEW.subscription_id; END")


def upgrade():
# ### commands auto generated by Alembic - please adjust! ###
    op.create_table('bank',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('branch', sa.String(length=100), server_default='', nullable=False),
    sa.Column('contact', sa.String(length=100), server_default='', nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank')),
    sa.UniqueConstraint('name', name=op.f('uq_bank_name'))
    )
    op.create_table('attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("content_type IN ('image/jpeg', 'image/png', 'application/pdf')", name=op.f('ck_attachment_type_known')),
    sa.CheckConstraint("subject IN ('ticket', 'handover')", name=op.f('ck_attachment_subject_known')),
    sa.CheckConstraint('size > 0 AND size <= 5242880', name=op.f('ck_attachment_size_range')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user.id'], name=op.f('fk_attachment_uploaded_by_id_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment'))
    )
    op.create_index('ix_attachment_subject', 'attachment', ['subject', 'subject_id'], unique=False)
    op.create_table('ticket_counter',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_ticket_counter_project_id_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_ticket_counter'))
    )
    op.create_table('true_up_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('surveyed_on', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('applied_by_id', sa.Integer(), nullable=True),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'applied')", name=op.f('ck_true_up_batch_status_known')),
    sa.ForeignKeyConstraint(['applied_by_id'], ['user.id'], name=op.f('fk_true_up_batch_applied_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], name=op.f('fk_true_up_batch_building_id_building'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_true_up_batch_created_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_true_up_batch_project_id_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_true_up_batch'))
    )
    op.create_index(op.f('ix_true_up_batch_building_id'), 'true_up_batch', ['building_id'], unique=False)
    op.create_table('handover',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('notified_on', sa.Date(), nullable=False),
    sa.Column('appointment_at', sa.DateTime(), nullable=True),
    sa.Column('inspected_on', sa.Date(), nullable=True),
    sa.Column('keys_handed_on', sa.Date(), nullable=True),
    sa.Column('keys_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('meter_readings', sa.Text(), server_default='', nullable=False),
    sa.Column('signed_by', sa.String(length=100), server_default='', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('notified_by_id', sa.Integer(), nullable=False),
    sa.Column('handed_over_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status <> 'handed_over' OR (keys_handed_on IS NOT NULL AND signed_by <> '')", name=op.f('ck_handover_keys_signed_for')),
    sa.CheckConstraint("status IN ('notified', 'booked', 'inspected', 'handed_over', 'cancelled')", name=op.f('ck_handover_status_known')),
    sa.ForeignKeyConstraint(['handed_over_by_id'], ['user.id'], name=op.f('fk_handover_handed_over_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['notified_by_id'], ['user.id'], name=op.f('fk_handover_notified_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_handover_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_handover_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_handover_unit_id_unit'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover'))
    )
    op.create_index('ix_handover_status', 'handover', ['status', 'appointment_at'], unique=False)
    op.create_index(op.f('ix_handover_subscription_id'), 'handover', ['subscription_id'], unique=False)
    op.create_index(op.f('ix_handover_unit_id'), 'handover', ['unit_id'], unique=False)
    op.create_index('uq_handover_live', 'handover', ['subscription_id'], unique=True, sqlite_where=sa.text("status <> 'cancelled'"), postgresql_where=sa.text("status <> 'cancelled'"))
    op.create_table('true_up',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('contract_area', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('surveyed_area', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('ratio_percent', sa.Numeric(precision=9, scale=4), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=4), nullable=False),
    sa.Column('buyer_pays', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('refund', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('refund_double_part', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('developer_bears', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('may_cancel', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('applied_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('computed', 'applied', 'void')", name=op.f('ck_true_up_status_known')),
    sa.CheckConstraint('buyer_pays = 0 OR refund = 0', name=op.f('ck_true_up_one_direction')),
    sa.CheckConstraint('buyer_pays >= 0 AND refund >= 0 AND developer_bears >= 0', name=op.f('ck_true_up_amounts_not_negative')),
    sa.CheckConstraint('contract_area > 0 AND surveyed_area > 0', name=op.f('ck_true_up_areas_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['true_up_batch.id'], name=op.f('fk_true_up_batch_id_true_up_batch'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_true_up_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_true_up_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_true_up_unit_id_unit'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_true_up'))
    )
    op.create_index(op.f('ix_true_up_batch_id'), 'true_up', ['batch_id'], unique=False)
    op.create_index(op.f('ix_true_up_subscription_id'), 'true_up', ['subscription_id'], unique=False)
    op.create_index(op.f('ix_true_up_unit_id'), 'true_up', ['unit_id'], unique=False)
    op.create_index('uq_true_up_live', 'true_up', ['subscription_id'], unique=True, sqlite_where=sa.text("status <> 'void'"), postgresql_where=sa.text("status <> 'void'"))
    op.create_table('charge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('instalment_id', sa.Integer(), nullable=True),
    sa.Column('true_up_id', sa.Integer(), nullable=True),
    sa.Column('rate_percent', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('cap', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('waived', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('paid', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('accrued_through', sa.Date(), nullable=True),
    sa.Column('days', sa.Integer(), server_default='0', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(kind = 'late_fee') = (instalment_id IS NOT NULL)", name=op.f('ck_charge_late_fee_has_line')),
    sa.CheckConstraint("kind IN ('late_fee', 'area_true_up')", name=op.f('ck_charge_kind_known')),
    sa.CheckConstraint('amount >= 0 AND waived >= 0 AND paid >= 0 AND waived + paid <= amount', name=op.f('ck_charge_settled_within_amount')),
    sa.ForeignKeyConstraint(['instalment_id'], ['instalment.id'], name=op.f('fk_charge_instalment_id_instalment'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_charge_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_charge_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['true_up_id'], ['true_up.id'], name=op.f('fk_charge_true_up_id_true_up'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charge'))
    )
    op.create_index(op.f('ix_charge_subscription_id'), 'charge', ['subscription_id'], unique=False)
    op.create_index('uq_charge_instalment', 'charge', ['instalment_id'], unique=True, sqlite_where=sa.text('instalment_id IS NOT NULL'), postgresql_where=sa.text('instalment_id IS NOT NULL'))
    op.create_index('uq_charge_true_up', 'charge', ['true_up_id'], unique=True, sqlite_where=sa.text('true_up_id IS NOT NULL'), postgresql_where=sa.text('true_up_id IS NOT NULL'))
    op.create_table('ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('handover_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('department', sa.String(length=30), nullable=False),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('location', sa.String(length=100), server_default='', nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('resolved_on', sa.Date(), nullable=True),
    sa.Column('resolution', sa.Text(), server_default='', nullable=False),
    sa.Column('feedback_on', sa.Date(), nullable=True),
    sa.Column('feedback', sa.Text(), server_default='', nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("category IN ('quality', 'service', 'documents', 'defect', 'other')", name=op.f('ck_ticket_category_known')),
    sa.CheckConstraint("department IN ('engineering', 'property', 'customer_service', 'finance', 'legal', 'sales')", name=op.f('ck_ticket_department_known')),
    sa.CheckConstraint("source IN ('phone', 'visit', 'wechat', 'handover', 'web', 'letter', 'other')", name=op.f('ck_ticket_source_known')),
    sa.CheckConstraint("status <> 'closed' OR (feedback_on IS NOT NULL AND feedback <> '')", name=op.f('ck_ticket_closed_after_feedback')),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'resolved', 'closed')", name=op.f('ck_ticket_status_known')),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['user.id'], name=op.f('fk_ticket_assigned_to_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['handover_id'], ['handover.id'], name=op.f('fk_ticket_handover_id_handover'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_ticket_lead_id_lead'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['opened_by_id'], ['user.id'], name=op.f('fk_ticket_opened_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_ticket_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_ticket_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_ticket_unit_id_unit'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket')),
    sa.UniqueConstraint('number', name=op.f('uq_ticket_number'))
    )
    op.create_index(op.f('ix_ticket_assigned_to_id'), 'ticket', ['assigned_to_id'], unique=False)
    op.create_index(op.f('ix_ticket_handover_id'), 'ticket', ['handover_id'], unique=False)
    op.create_index(op.f('ix_ticket_lead_id'), 'ticket', ['lead_id'], unique=False)
    op.create_index('ix_ticket_open_due', 'ticket', ['status', 'due_on'], unique=False)
    op.create_index(op.f('ix_ticket_project_id'), 'ticket', ['project_id'], unique=False)
    op.create_index(op.f('ix_ticket_subscription_id'), 'ticket', ['subscription_id'], unique=False)
    op.create_table('handover_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handover_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=100), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['handover_id'], ['handover.id'], name=op.f('fk_handover_item_handover_id_handover'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_handover_item_ticket_id_ticket'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_item')),
    sa.UniqueConstraint('handover_id', 'seq', name=op.f('uq_handover_item_handover_id_seq'))
    )
    op.create_index(op.f('ix_handover_item_handover_id'), 'handover_item', ['handover_id'], unique=False)
    op.create_table('late_fee_waiver',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('charge_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('needs_vp', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('requested', 'approved', 'rejected')", name=op.f('ck_late_fee_waiver_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_late_fee_waiver_amount_positive')),
    sa.ForeignKeyConstraint(['charge_id'], ['charge.id'], name=op.f('fk_late_fee_waiver_charge_id_charge'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_late_fee_waiver_decided_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_late_fee_waiver_requested_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_late_fee_waiver_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_late_fee_waiver'))
    )
    op.create_index(op.f('ix_late_fee_waiver_charge_id'), 'late_fee_waiver', ['charge_id'], unique=False)
    op.create_index(op.f('ix_late_fee_waiver_subscription_id'), 'late_fee_waiver', ['subscription_id'], unique=False)
    op.create_index('uq_late_fee_waiver_open', 'late_fee_waiver', ['charge_id'], unique=True, sqlite_where=sa.text("status = 'requested'"), postgresql_where=sa.text("status = 'requested'"))
    op.create_table('survey',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('occasion', sa.String(length=20), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('overall', sa.SmallInteger(), nullable=False),
    sa.Column('service', sa.SmallInteger(), nullable=True),
    sa.Column('quality', sa.SmallInteger(), nullable=True),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(occasion = 'ticket') = (ticket_id IS NOT NULL)", name=op.f('ck_survey_ticket_occasion')),
    sa.CheckConstraint("occasion IN ('signing', 'handover', 'ticket')", name=op.f('ck_survey_occasion_known')),
    sa.CheckConstraint('overall BETWEEN 1 AND 5', name=op.f('ck_survey_overall_range')),
    sa.CheckConstraint('quality IS NULL OR quality BETWEEN 1 AND 5', name=op.f('ck_survey_quality_range')),
    sa.CheckConstraint('service IS NULL OR service BETWEEN 1 AND 5', name=op.f('ck_survey_service_range')),
    sa.ForeignKeyConstraint(['agent_id'], ['user.id'], name=op.f('fk_survey_agent_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_survey_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user.id'], name=op.f('fk_survey_recorded_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_survey_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_survey_ticket_id_ticket'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey'))
    )
    op.create_index(op.f('ix_survey_agent_id'), 'survey', ['agent_id'], unique=False)
    op.create_index('ix_survey_recorded_on', 'survey', ['recorded_on'], unique=False)
    op.create_index(op.f('ix_survey_subscription_id'), 'survey', ['subscription_id'], unique=False)
    op.create_index('uq_survey_deal_occasion', 'survey', ['subscription_id', 'occasion'], unique=True, sqlite_where=sa.text('ticket_id IS NULL'), postgresql_where=sa.text('ticket_id IS NULL'))
    op.create_index('uq_survey_ticket', 'survey', ['ticket_id'], unique=True, sqlite_where=sa.text('ticket_id IS NOT NULL'), postgresql_where=sa.text('ticket_id IS NOT NULL'))
    op.create_table('ticket_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['user.id'], name=op.f('fk_ticket_note_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_note_ticket_id_ticket'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_note'))
    )
    op.create_index(op.f('ix_ticket_note_ticket_id'), 'ticket_note', ['ticket_id'], unique=False)
    op.create_table('loan_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('line_kind', sa.String(length=30), nullable=False),
    sa.Column('bank_id', sa.Integer(), nullable=False),
    sa.Column('loan_kind', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('stage', sa.String(length=30), nullable=False),
    sa.Column('stage_since', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('missing', sa.Text(), server_default='', nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(status = 'disbursed') = (stage = 'disbursed')", name=op.f('ck_loan_file_disbursed_at_last_stage')),
    sa.CheckConstraint("line_kind IN ('commercial_loan', 'provident_fund_loan')", name=op.f('ck_loan_file_line_kind_known')),
    sa.CheckConstraint("loan_kind IN ('commercial', 'provident_fund', 'combined')", name=op.f('ck_loan_file_loan_kind_known')),
    sa.CheckConstraint("stage IN ('collecting', 'documents_complete', 'bank_interview', 'approved', 'mortgage_registered', 'disbursed')", name=op.f('ck_loan_file_stage_known')),
    sa.CheckConstraint("status IN ('open', 'disbursed', 'closed')", name=op.f('ck_loan_file_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_loan_file_amount_positive')),
    sa.ForeignKeyConstraint(['bank_id'], ['bank.id'], name=op.f('fk_loan_file_bank_id_bank'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['opened_by_id'], ['user.id'], name=op.f('fk_loan_file_opened_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_loan_file_payment_id_payment'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_loan_file_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_loan_file_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_file'))
    )
    op.create_index('ix_loan_file_ageing', 'loan_file', ['status', 'stage', 'bank_id', 'stage_since'], unique=False)
    op.create_index(op.f('ix_loan_file_subscription_id'), 'loan_file', ['subscription_id'], unique=False)
    op.create_index('uq_loan_file_open', 'loan_file', ['subscription_id', 'line_kind'], unique=True, sqlite_where=sa.text("status <> 'closed'"), postgresql_where=sa.text("status <> 'closed'"))
    op.create_table('loan_stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_file_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=30), nullable=False),
    sa.Column('on', sa.Date(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("stage IN ('collecting', 'documents_complete', 'bank_interview', 'approved', 'mortgage_registered', 'disbursed')", name=op.f('ck_loan_stage_stage_known')),
    sa.ForeignKeyConstraint(['by_id'], ['user.id'], name=op.f('fk_loan_stage_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['loan_file_id'], ['loan_file.id'], name=op.f('fk_loan_stage_loan_file_id_loan_file'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_stage')),
    sa.UniqueConstraint('loan_file_id', 'stage', name=op.f('uq_loan_stage_loan_file_id_stage'))
    )
    op.create_index(op.f('ix_loan_stage_loan_file_id'), 'loan_stage', ['loan_file_id'], unique=False)
    # Columns of existing tables, in place (see the docstring).
    _add_reference('payment', 'charge_id', 'charge', '+')
    _add_reference('voucher', 'true_up_id', 'true_up', '-')
    op.add_column('subscription', sa.Column('late_fee_daily_percent', sa.Numeric(precision=7, scale=4), nullable=True))
    op.add_column('subscription', sa.Column('late_fee_cap_percent', sa.Numeric(precision=7, scale=4), nullable=True))
    op.add_column('subscription', sa.Column('handed_over_on', sa.Date(), nullable=True))
    op.add_column('unit', sa.Column('surveyed_area', sa.Numeric(precision=10, scale=2), nullable=True))
    op.add_column('unit', sa.Column('surveyed_on', sa.Date(), nullable=True))
    op.add_column('unit', sa.Column('handed_over_on', sa.Date(), nullable=True))
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('late_fee_daily_percent', sa.Numeric(precision=7, scale=4), server_default='0.05', nullable=False))
        batch_op.add_column(sa.Column('late_fee_cap_percent', sa.Numeric(precision=7, scale=4), server_default='5', nullable=False))
        batch_op.add_column(sa.Column('late_fee_waiver_limit', sa.Numeric(precision=14, scale=2), server_default='2000', nullable=False))
        batch_op.add_column(sa.Column('loan_stage_limits', sa.JSON(), server_default=LOAN_STAGE_LIMITS, nullable=False))
        batch_op.add_column(sa.Column('handover_starts_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('handover_ends_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('handover_checklist', sa.Text(), server_default=CHECKLIST, nullable=False))
        batch_op.add_column(sa.Column('ticket_due_days', sa.Integer(), server_default='7', nullable=False))
        for name, check in PROJECT_CHECKS.items():
            batch_op.create_check_constraint(op.f(f'ck_project_{name}'), check)
    _kinds(NEW_KINDS)
    _roles(NEW_ROLES)
    op.execute(sa.text("INSERT INTO role (id, name) VALUES (9, 'customer_service')"))


def downgrade():
    # A user who holds the role keeps the downgrade from running (user_role's key): nothing is lost quietly.
    op.execute(sa.text("DELETE FROM role WHERE id = 9"))
    _roles(OLD_ROLES)
    _kinds(OLD_KINDS)
    with op.batch_alter_table('project', schema=None) as batch_op:
        for name in PROJECT_CHECKS:
            batch_op.drop_constraint(op.f(f'ck_project_{name}'), type_='check')
        for column in ('ticket_due_days', 'handover_checklist', 'handover_ends_on', 'handover_starts_on',
                       'loan_stage_limits', 'late_fee_waiver_limit', 'late_fee_cap_percent', 'late_fee_daily_percent'):
            batch_op.drop_column(column)
    for table, column in (('unit', 'handed_over_on'), ('unit', 'surveyed_on'), ('unit', 'surveyed_area'),
                          ('subscription', 'handed_over_on'), ('subscription', 'late_fee_cap_percent'),
                          ('subscription', 'late_fee_daily_percent')):
        op.drop_column(table, column)
    for table, column, sign in (('voucher', 'true_up_id', '-'), ('payment', 'charge_id', '+')):
        op.drop_index(f'ix_{table}_{column}', table_name=table)
        if op.get_bind().dialect.name == 'postgresql':
            op.drop_column(table, column)
            continue
        held = _held_migration()
        held.drop_held_guard()
        with op.batch_alter_table(table, schema=None, recreate='always') as batch_op:
            batch_op.drop_column(column)
        _keeper(table, sign)
        held.create_held_guard()
    for table in ('loan_stage', 'loan_file', 'ticket_note', 'survey', 'late_fee_waiver', 'handover_item', 'ticket',
                  'charge', 'true_up', 'handover', 'true_up_batch', 'ticket_counter', 'attachment', 'bank'):
        op.drop_table(table)
