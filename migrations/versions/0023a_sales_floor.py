"""the sales floor (issue 23, R-RCP-1/2, R-COM-1/2): reception rotation, visits, channels, commissions

- `rotation_entry`, `rotation_event` (R-RCP-1): the day's rotation per project and what happened
  on it, exceptions with their reason; `visit` (R-RCP-2): every visit with its source channel;
  `lead.protected_until`: the first visit's protection; the projects' `protection_days`.
- `channel_company`, `channel_member`, `channel_registration`, `channel_conflict` (R-COM-1): external
  channels, their people, their registrations (报备) — one live registration per project and phone,
  by a partial unique index — and the refused ones for the manager; the projects'
  `channel_window_days`. A lead's source may be `channel`.
- `commission_rule`, `deal_split`, `commission_line`, `commission_statement` (R-COM-2); the
  projects' `commission_tiered` and `commission_vp_limit`.
- A tenth role, `channel` (渠道): an agency's person, who sees only his own registrations.
- A kind of document: the commission statement.

Revision ID: d23a00000001
Revises: d22e00000001
"""
import sqlalchemy as sa
from alembic import op

revision = 'd23a00000001'
down_revision = 'd22e00000001'
branch_labels = None
depends_on = None

SEED_TABLES = ("role",)  # migrations/guard.py: the role's row is written back by upgrading again
OLD_ROLES = ("admin", "sales_manager", "agent", "sales_control", "finance", "lawyer", "archive", "vp",
             "customer_service")
NEW_ROLES = OLD_ROLES + ("channel",)
OLD_KINDS = ('subscription_agreement', 'receipt', 'payment_reminder', 'overdue_warning', 'lawyer_letter',
             'forfeit_notice', 'signing_booking', 'statement', 'board', 'addendum',
             'true_up_notice', 'handover_notice', 'handover_record', 'survey_summary')
NEW_KINDS = OLD_KINDS + ('commission_statement',)
OLD_SOURCES = ("phone_call", "walk_in", "referral", "advert", "web", "fair", "other")
NEW_SOURCES = ("phone_call", "walk_in", "referral", "advert", "web", "fair", "channel", "other")
PROJECT_CHECKS = {
    'protection_positive': "protection_days >= 1",
    'channel_window_positive': "channel_window_days >= 1",
    'commission_vp_limit_not_negative': "commission_vp_limit >= 0",
}


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


def _sources(sources) -> None:
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lead_source_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_lead_source_known'), f"source IN {_in(sources)}")


def upgrade():
    op.create_table('channel_company',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('contact_name', sa.String(length=100), server_default='', nullable=False),
    sa.Column('contact_phone', sa.String(length=20), server_default='', nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_company')),
    sa.UniqueConstraint('name', name=op.f('uq_channel_company_name'))
    )
    op.create_table('channel_member',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['channel_company.id'], name=op.f('fk_channel_member_company_id_channel_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_channel_member_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_channel_member'))
    )
    with op.batch_alter_table('channel_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_member_company_id'), ['company_id'], unique=False)

    op.create_table('commission_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), server_default='', nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('payee_user_id', sa.Integer(), nullable=True),
    sa.Column('basis', sa.String(length=10), nullable=False),
    sa.Column('rate_percent', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('tiers', sa.JSON(), nullable=False),
    sa.Column('stage_shares', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(basis = 'rate' AND rate_percent IS NOT NULL AND rate_percent >= 0 AND rate_percent <= 100) OR (basis = 'fixed' AND amount IS NOT NULL AND amount >= 0)", name=op.f('ck_commission_rule_basis_has_value')),
    sa.CheckConstraint("basis IN ('rate', 'fixed')", name=op.f('ck_commission_rule_basis_known')),
    sa.CheckConstraint("role <> 'manager' OR payee_user_id IS NOT NULL", name=op.f('ck_commission_rule_manager_rule_names_payee')),
    sa.CheckConstraint("role = 'channel' OR company_id IS NULL", name=op.f('ck_commission_rule_company_only_for_channels')),
    sa.CheckConstraint("role IN ('agent', 'manager', 'channel')", name=op.f('ck_commission_rule_role_known')),
    sa.ForeignKeyConstraint(['company_id'], ['channel_company.id'], name=op.f('fk_commission_rule_company_id_channel_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_commission_rule_created_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payee_user_id'], ['user.id'], name=op.f('fk_commission_rule_payee_user_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_commission_rule_project_id_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_rule'))
    )
    with op.batch_alter_table('commission_rule', schema=None) as batch_op:
        batch_op.create_index('ix_commission_rule_project', ['project_id', 'role', 'active'], unique=False)

    op.create_table('commission_statement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('payee_user_id', sa.Integer(), nullable=True),
    sa.Column('payee_company_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('earned', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('clawed_back', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('needs_vp', sa.Boolean(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status <> 'approved' OR approved_by_id IS NOT NULL", name=op.f('ck_commission_statement_approved_by_someone')),
    sa.CheckConstraint("status IN ('draft', 'approved')", name=op.f('ck_commission_statement_status_known')),
    sa.CheckConstraint('(payee_user_id IS NULL) <> (payee_company_id IS NULL)', name=op.f('ck_commission_statement_one_payee')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user.id'], name=op.f('fk_commission_statement_approved_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payee_company_id'], ['channel_company.id'], name=op.f('fk_commission_statement_payee_company_id_channel_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payee_user_id'], ['user.id'], name=op.f('fk_commission_statement_payee_user_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_commission_statement_project_id_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_statement'))
    )
    with op.batch_alter_table('commission_statement', schema=None) as batch_op:
        batch_op.create_index('uq_commission_statement_company', ['project_id', 'month', 'payee_company_id'], unique=True, sqlite_where=sa.text('payee_company_id IS NOT NULL'), postgresql_where=sa.text('payee_company_id IS NOT NULL'))
        batch_op.create_index('uq_commission_statement_user', ['project_id', 'month', 'payee_user_id'], unique=True, sqlite_where=sa.text('payee_user_id IS NOT NULL'), postgresql_where=sa.text('payee_user_id IS NOT NULL'))

    op.create_table('rotation_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('queue_seq', sa.Integer(), nullable=False),
    sa.Column('receptions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('skipped', sa.Integer(), server_default='0', nullable=False),
    sa.Column('signed_in_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('free', 'receiving', 'break', 'out')", name=op.f('ck_rotation_entry_status_known')),
    sa.CheckConstraint('receptions >= 0 AND skipped >= 0', name=op.f('ck_rotation_entry_counts_not_negative')),
    sa.ForeignKeyConstraint(['agent_id'], ['user.id'], name=op.f('fk_rotation_entry_agent_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_rotation_entry_project_id_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rotation_entry')),
    sa.UniqueConstraint('project_id', 'day', 'agent_id', name=op.f('uq_rotation_entry_project_id_day_agent_id'))
    )
    with op.batch_alter_table('rotation_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rotation_entry_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index('ix_rotation_entry_next', ['project_id', 'day', 'status', 'queue_seq'], unique=False)

    op.create_table('channel_registration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('registered_by_id', sa.Integer(), nullable=False),
    sa.Column('customer_name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.CheckConstraint("status IN ('valid', 'confirmed', 'expired', 'refused', 'withdrawn')", name=op.f('ck_channel_registration_status_known')),
    sa.CheckConstraint('valid_until >= registered_on', name=op.f('ck_channel_registration_valid_after_registration')),
    sa.ForeignKeyConstraint(['company_id'], ['channel_company.id'], name=op.f('fk_channel_registration_company_id_channel_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_channel_registration_lead_id_lead'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_channel_registration_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['registered_by_id'], ['user.id'], name=op.f('fk_channel_registration_registered_by_id_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_registration'))
    )
    with op.batch_alter_table('channel_registration', schema=None) as batch_op:
        batch_op.create_index('ix_channel_registration_by', ['registered_by_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_channel_registration_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_channel_registration_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_channel_registration_phone', ['project_id', 'phone', 'registered_at'], unique=False)
        batch_op.create_index('uq_channel_registration_live_phone', ['project_id', 'phone'], unique=True, sqlite_where=sa.text("status IN ('valid', 'confirmed')"), postgresql_where=sa.text("status IN ('valid', 'confirmed')"))

    op.create_table('channel_conflict',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('against_registration_id', sa.Integer(), nullable=True),
    sa.Column('against_lead_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'kept', 'awarded')", name=op.f('ck_channel_conflict_status_known')),
    sa.CheckConstraint('against_registration_id IS NOT NULL OR against_lead_id IS NOT NULL', name=op.f('ck_channel_conflict_against_something')),
    sa.ForeignKeyConstraint(['against_lead_id'], ['lead.id'], name=op.f('fk_channel_conflict_against_lead_id_lead'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['against_registration_id'], ['channel_registration.id'], name=op.f('fk_channel_conflict_against_registration_id_channel_registration'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_channel_conflict_decided_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_channel_conflict_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['registration_id'], ['channel_registration.id'], name=op.f('fk_channel_conflict_registration_id_channel_registration'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_conflict'))
    )
    with op.batch_alter_table('channel_conflict', schema=None) as batch_op:
        batch_op.create_index('ix_channel_conflict_open', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_channel_conflict_registration_id'), ['registration_id'], unique=False)

    op.create_table('visit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('party_size', sa.SmallInteger(), server_default='1', nullable=False),
    sa.Column('received_by_id', sa.Integer(), nullable=True),
    sa.Column('on_behalf_of_id', sa.Integer(), nullable=True),
    sa.Column('in_turn', sa.Boolean(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=True),
    sa.Column('arrived_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('registered_by_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("channel IN ('walk_in', 'phone_call', 'referral', 'web', 'advert', 'fair', 'channel')", name=op.f('ck_visit_channel_known')),
    sa.CheckConstraint("kind IN ('first', 'return')", name=op.f('ck_visit_kind_known')),
    sa.CheckConstraint('ended_at IS NULL OR ended_at >= arrived_at', name=op.f('ck_visit_ends_after_arrival')),
    sa.CheckConstraint('party_size >= 1 AND party_size <= 50', name=op.f('ck_visit_party_size_range')),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_visit_lead_id_lead'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['on_behalf_of_id'], ['user.id'], name=op.f('fk_visit_on_behalf_of_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_visit_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['received_by_id'], ['user.id'], name=op.f('fk_visit_received_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['registered_by_id'], ['user.id'], name=op.f('fk_visit_registered_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['registration_id'], ['channel_registration.id'], name=op.f('fk_visit_registration_id_channel_registration'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit'))
    )
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_visit_phone', ['project_id', 'phone'], unique=False)
        batch_op.create_index('ix_visit_project_arrived', ['project_id', 'arrived_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_received_by_id'), ['received_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_registration_id'), ['registration_id'], unique=False)

    op.create_table('commission_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('payee_user_id', sa.Integer(), nullable=True),
    sa.Column('payee_company_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('base', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('earned_on', sa.Date(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind <> 'clawback' OR amount < 0", name=op.f('ck_commission_line_clawback_negative')),
    sa.CheckConstraint("kind IN ('earned', 'adjustment', 'clawback')", name=op.f('ck_commission_line_kind_known')),
    sa.CheckConstraint("role IN ('agent', 'manager', 'channel')", name=op.f('ck_commission_line_role_known')),
    sa.CheckConstraint("stage IN ('subscribed', 'signed', 'down_payment', 'disbursed')", name=op.f('ck_commission_line_stage_known')),
    sa.CheckConstraint('(payee_user_id IS NULL) <> (payee_company_id IS NULL)', name=op.f('ck_commission_line_one_payee')),
    sa.ForeignKeyConstraint(['payee_company_id'], ['channel_company.id'], name=op.f('fk_commission_line_payee_company_id_channel_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['payee_user_id'], ['user.id'], name=op.f('fk_commission_line_payee_user_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_commission_line_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['rule_id'], ['commission_rule.id'], name=op.f('fk_commission_line_rule_id_commission_rule'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['statement_id'], ['commission_statement.id'], name=op.f('fk_commission_line_statement_id_commission_statement'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_commission_line_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_line'))
    )
    with op.batch_alter_table('commission_line', schema=None) as batch_op:
        batch_op.create_index('ix_commission_line_company_month', ['payee_company_id', 'month'], unique=False)
        batch_op.create_index('ix_commission_line_project_month', ['project_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_line_statement_id'), ['statement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_line_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index('ix_commission_line_user_month', ['payee_user_id', 'month'], unique=False)

    op.create_table('deal_split',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('percent > 0 AND percent <= 100', name=op.f('ck_deal_split_percent_range')),
    sa.ForeignKeyConstraint(['agent_id'], ['user.id'], name=op.f('fk_deal_split_agent_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_deal_split_created_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_deal_split_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_split')),
    sa.UniqueConstraint('subscription_id', 'agent_id', name=op.f('uq_deal_split_subscription_id_agent_id'))
    )
    with op.batch_alter_table('deal_split', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_split_subscription_id'), ['subscription_id'], unique=False)

    op.create_table('rotation_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('turn_of_id', sa.Integer(), nullable=True),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("NOT kind IN ('skip', 'out_of_turn', 'make_up', 'on_behalf') OR reason <> ''", name=op.f('ck_rotation_event_exception_has_reason')),
    sa.CheckConstraint("kind IN ('sign_in', 'sign_out', 'break', 'back', 'assign', 'finish', 'owner_return', 'on_behalf', 'skip', 'out_of_turn', 'make_up')", name=op.f('ck_rotation_event_kind_known')),
    sa.ForeignKeyConstraint(['agent_id'], ['user.id'], name=op.f('fk_rotation_event_agent_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['by_id'], ['user.id'], name=op.f('fk_rotation_event_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_rotation_event_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['turn_of_id'], ['user.id'], name=op.f('fk_rotation_event_turn_of_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_rotation_event_visit_id_visit'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rotation_event'))
    )
    with op.batch_alter_table('rotation_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rotation_event_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index('ix_rotation_event_day', ['project_id', 'day', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rotation_event_visit_id'), ['visit_id'], unique=False)

    op.add_column('lead', sa.Column('protected_until', sa.Date(), nullable=True))
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('protection_days', sa.Integer(), server_default='30', nullable=False))
        batch_op.add_column(sa.Column('channel_window_days', sa.Integer(), server_default='30', nullable=False))
        batch_op.add_column(sa.Column('commission_tiered', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('commission_vp_limit', sa.Numeric(precision=14, scale=2), server_default='50000', nullable=False))
        for name, check in PROJECT_CHECKS.items():
            batch_op.create_check_constraint(op.f(f'ck_project_{name}'), check)
    _sources(NEW_SOURCES)
    _kinds(NEW_KINDS)
    _roles(NEW_ROLES)
    op.execute(sa.text("INSERT INTO role (id, name) VALUES (10, 'channel')"))


def downgrade():
    # A user who holds the role keeps the downgrade from running (user_role's key): nothing is lost quietly.
    op.execute(sa.text("DELETE FROM role WHERE id = 10"))
    _roles(OLD_ROLES)
    _kinds(OLD_KINDS)
    _sources(OLD_SOURCES)
    with op.batch_alter_table('project', schema=None) as batch_op:
        for name in PROJECT_CHECKS:
            batch_op.drop_constraint(op.f(f'ck_project_{name}'), type_='check')
        for column in ('commission_vp_limit', 'commission_tiered', 'channel_window_days', 'protection_days'):
            batch_op.drop_column(column)
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_column('protected_until')
    with op.batch_alter_table('rotation_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rotation_event_visit_id'))
        batch_op.drop_index('ix_rotation_event_day')
        batch_op.drop_index(batch_op.f('ix_rotation_event_agent_id'))

    op.drop_table('rotation_event')
    with op.batch_alter_table('deal_split', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deal_split_subscription_id'))

    op.drop_table('deal_split')
    with op.batch_alter_table('commission_line', schema=None) as batch_op:
        batch_op.drop_index('ix_commission_line_user_month')
        batch_op.drop_index(batch_op.f('ix_commission_line_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_commission_line_statement_id'))
        batch_op.drop_index('ix_commission_line_project_month')
        batch_op.drop_index('ix_commission_line_company_month')

    op.drop_table('commission_line')
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_registration_id'))
        batch_op.drop_index(batch_op.f('ix_visit_received_by_id'))
        batch_op.drop_index('ix_visit_project_arrived')
        batch_op.drop_index('ix_visit_phone')
        batch_op.drop_index(batch_op.f('ix_visit_lead_id'))

    op.drop_table('visit')
    with op.batch_alter_table('channel_conflict', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_conflict_registration_id'))
        batch_op.drop_index('ix_channel_conflict_open')

    op.drop_table('channel_conflict')
    with op.batch_alter_table('channel_registration', schema=None) as batch_op:
        batch_op.drop_index('uq_channel_registration_live_phone', sqlite_where=sa.text("status IN ('valid', 'confirmed')"), postgresql_where=sa.text("status IN ('valid', 'confirmed')"))
        batch_op.drop_index('ix_channel_registration_phone')
        batch_op.drop_index(batch_op.f('ix_channel_registration_lead_id'))
        batch_op.drop_index(batch_op.f('ix_channel_registration_company_id'))
        batch_op.drop_index('ix_channel_registration_by')

    op.drop_table('channel_registration')
    with op.batch_alter_table('rotation_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_rotation_entry_next')
        batch_op.drop_index(batch_op.f('ix_rotation_entry_agent_id'))

    op.drop_table('rotation_entry')
    with op.batch_alter_table('commission_statement', schema=None) as batch_op:
        batch_op.drop_index('uq_commission_statement_user', sqlite_where=sa.text('payee_user_id IS NOT NULL'), postgresql_where=sa.text('payee_user_id IS NOT NULL'))
        batch_op.drop_index('uq_commission_statement_company', sqlite_where=sa.text('payee_company_id IS NOT NULL'), postgresql_where=sa.text('payee_company_id IS NOT NULL'))

    op.drop_table('commission_statement')
    with op.batch_alter_table('commission_rule', schema=None) as batch_op:
        batch_op.drop_index('ix_commission_rule_project')

    op.drop_table('commission_rule')
    with op.batch_alter_table('channel_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_member_company_id'))

    op.drop_table('channel_member')
    op.drop_table('channel_company')
