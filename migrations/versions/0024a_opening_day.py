"""opening day (issue 24, R-LCH-1…3): launches, intent registrations, the lottery, the selection

- `launch`: one opening of a project — its buildings (`launch_building`), registration dates, the
  intent deposit and the card's expiry (R-LCH-1), the lottery's published hash and revealed seed
  (R-LCH-2), the selection's slot length, how many choose at once and the missed-slot rule (R-LCH-3).
- `launch_entry`: a buyer's intent registration (认筹) — one per phone and per identity document at
  a launch while it counts (partial unique indexes), the draw's position (unique per launch) and
  the selection's queue and slot; the subscription chosen (unique).
- `intent_payment`: the intent deposit's append-only ledger — received, refunded or converted,
  each once per entry.
- Kinds of document: the intent card, the lottery's entrants and seed hash, the lottery's result.

Revision ID: d24a00000001
Revises: d23f00000001
"""
import sqlalchemy as sa
from alembic import op

revision = 'd24a00000001'
down_revision = 'd23f00000001'
branch_labels = None
depends_on = None

OLD_KINDS = ('subscription_agreement', 'receipt', 'payment_reminder', 'overdue_warning', 'lawyer_letter',
             'forfeit_notice', 'signing_booking', 'statement', 'board', 'addendum',
             'true_up_notice', 'handover_notice', 'handover_record', 'survey_summary', 'commission_statement')
NEW_KINDS = OLD_KINDS + ('intent_card', 'lottery_entrants', 'lottery_result')


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _kinds(kinds) -> None:
    for table in ('document', 'document_batch'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint('kind_known', type_='check')
            batch_op.create_check_constraint('kind_known', f"kind IN {_in(kinds)}")


def upgrade():
    op.create_table('launch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('registration_opens_on', sa.Date(), nullable=False),
    sa.Column('registration_closes_on', sa.Date(), nullable=False),
    sa.Column('selection_on', sa.Date(), nullable=False),
    sa.Column('intent_deposit', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('card_valid_until', sa.Date(), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('groups_ordered', sa.Boolean(), nullable=False),
    sa.Column('seed_hash', sa.String(length=64), nullable=True),
    sa.Column('entrants_digest', sa.String(length=64), nullable=True),
    sa.Column('seed', sa.String(length=64), nullable=True),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('drawn_at', sa.DateTime(), nullable=True),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('slot_size', sa.Integer(), nullable=False),
    sa.Column('missed_rule', sa.String(length=20), nullable=False),
    sa.Column('selection_started_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("missed_rule IN ('requeue', 'out')", name=op.f('ck_launch_missed_rule_known')),
    sa.CheckConstraint("status IN ('registration', 'published', 'drawn', 'selecting', 'closed')", name=op.f('ck_launch_status_known')),
    sa.CheckConstraint('intent_deposit > 0', name=op.f('ck_launch_deposit_positive')),
    sa.CheckConstraint('registration_closes_on >= registration_opens_on', name=op.f('ck_launch_registration_dates_ordered')),
    sa.CheckConstraint('seed IS NULL OR seed_hash IS NOT NULL', name=op.f('ck_launch_seed_after_hash')),
    sa.CheckConstraint('selection_on >= registration_closes_on', name=op.f('ck_launch_selection_after_registration')),
    sa.CheckConstraint('slot_minutes >= 1 AND slot_size >= 1', name=op.f('ck_launch_slots_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_launch_created_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_launch_project_id_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_launch'))
    )
    with op.batch_alter_table('launch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_launch_project_id'), ['project_id'], unique=False)

    op.create_table('launch_building',
    sa.Column('launch_id', sa.Integer(), nullable=False),
    sa.Column('building_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['building_id'], ['building.id'], name=op.f('fk_launch_building_building_id_building'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['launch_id'], ['launch.id'], name=op.f('fk_launch_building_launch_id_launch'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('launch_id', 'building_id', name=op.f('pk_launch_building'))
    )
    op.create_table('launch_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('launch_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('id_type', sa.String(length=20), nullable=False),
    sa.Column('id_number', sa.String(length=40), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('group_name', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('draw_key', sa.String(length=64), nullable=True),
    sa.Column('selection_status', sa.String(length=20), nullable=False),
    sa.Column('queue_no', sa.Integer(), nullable=True),
    sa.Column('slot_starts_at', sa.DateTime(), nullable=True),
    sa.Column('slot_ends_at', sa.DateTime(), nullable=True),
    sa.Column('missed_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=True),
    sa.Column('chosen_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("group_name IN ('first_home', 'other')", name=op.f('ck_launch_entry_group_known')),
    sa.CheckConstraint("selection_status IN ('waiting', 'choosing', 'chosen', 'missed', 'out')", name=op.f('ck_launch_entry_selection_status_known')),
    sa.CheckConstraint("status IN ('registered', 'paid', 'converted', 'refunded', 'expired', 'withdrawn')", name=op.f('ck_launch_entry_status_known')),
    sa.CheckConstraint('position IS NULL OR position >= 1', name=op.f('ck_launch_entry_position_positive')),
    sa.ForeignKeyConstraint(['agent_id'], ['user.id'], name=op.f('fk_launch_entry_agent_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['launch_id'], ['launch.id'], name=op.f('fk_launch_entry_launch_id_launch'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_launch_entry_lead_id_lead'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_launch_entry_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_launch_entry')),
    sa.UniqueConstraint('launch_id', 'number', name=op.f('uq_launch_entry_launch_id_number')),
    sa.UniqueConstraint('launch_id', 'position', name=op.f('uq_launch_entry_launch_id_position')),
    sa.UniqueConstraint('subscription_id', name=op.f('uq_launch_entry_subscription_id'))
    )
    with op.batch_alter_table('launch_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_launch_entry_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_launch_entry_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_launch_entry_queue', ['launch_id', 'selection_status', 'queue_no'], unique=False)
        batch_op.create_index('uq_launch_entry_id_number', ['launch_id', 'id_number'], unique=True, sqlite_where=sa.text("status IN ('registered', 'paid', 'converted')"), postgresql_where=sa.text("status IN ('registered', 'paid', 'converted')"))
        batch_op.create_index('uq_launch_entry_phone', ['launch_id', 'phone'], unique=True, sqlite_where=sa.text("status IN ('registered', 'paid', 'converted')"), postgresql_where=sa.text("status IN ('registered', 'paid', 'converted')"))

    op.create_table('intent_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=30), nullable=True),
    sa.Column('subscription_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(kind = 'conversion') = (subscription_id IS NOT NULL)", name=op.f('ck_intent_payment_conversion_has_deal')),
    sa.CheckConstraint("kind IN ('deposit', 'refund', 'conversion')", name=op.f('ck_intent_payment_kind_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_intent_payment_amount_positive')),
    sa.ForeignKeyConstraint(['entry_id'], ['launch_entry.id'], name=op.f('fk_intent_payment_entry_id_launch_entry'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_intent_payment_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user.id'], name=op.f('fk_intent_payment_recorded_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_intent_payment_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intent_payment')),
    sa.UniqueConstraint('entry_id', 'kind', name=op.f('uq_intent_payment_entry_id_kind')),
    sa.UniqueConstraint('project_id', 'number', name=op.f('uq_intent_payment_project_id_number'))
    )
    with op.batch_alter_table('intent_payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intent_payment_entry_id'), ['entry_id'], unique=False)
    _kinds(NEW_KINDS)


def downgrade():
    _kinds(OLD_KINDS)
    with op.batch_alter_table('intent_payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intent_payment_entry_id'))

    op.drop_table('intent_payment')
    with op.batch_alter_table('launch_entry', schema=None) as batch_op:
        batch_op.drop_index('uq_launch_entry_phone', sqlite_where=sa.text("status IN ('registered', 'paid', 'converted')"), postgresql_where=sa.text("status IN ('registered', 'paid', 'converted')"))
        batch_op.drop_index('uq_launch_entry_id_number', sqlite_where=sa.text("status IN ('registered', 'paid', 'converted')"), postgresql_where=sa.text("status IN ('registered', 'paid', 'converted')"))
        batch_op.drop_index('ix_launch_entry_queue')
        batch_op.drop_index(batch_op.f('ix_launch_entry_lead_id'))
        batch_op.drop_index(batch_op.f('ix_launch_entry_agent_id'))

    op.drop_table('launch_entry')
    op.drop_table('launch_building')
    with op.batch_alter_table('launch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_launch_project_id'))

    op.drop_table('launch')
