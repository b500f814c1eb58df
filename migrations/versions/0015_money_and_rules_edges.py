"""money and rules at every edge (issue 17)

- submission: one-time keys of money forms (R-PAY-1);
- voucher, voucher_counter: refunds and retentions of money held on deals that are over (R-CHG-5);
- extension: on an instalment or a booked contract's signing date, with its deal; one waiting per
  subject (R-PAY-6, R-CON-5);
- overdue_event: the rescission rung of signed deals, and what a person did about a lawyer's letter
  or a rescission (R-PAY-5);
- subscription: `expired` for a deposit that never came (R-SUB-2), `rescinded` (and the contract)
  when the rescission review of a signed deal decides so (R-PAY-5); one booking per deal and kind;
- project: how far back dates go, the sale's start, the deposit's due and grace days, the follow-up
  maximum, the post-signing steps' order (R-SUB-1, R-PAY-1, R-LEAD-3, R-CON-6);
- lead: a follow-up paused by the manager (R-LEAD-3); the budget and purpose checks the models had
  since 0002 but the database never got.

Revision ID: 3c8d5a1f7e20
Revises: 9e4f1b6c2d75
Create Date: 2026-12-01 15:10:00

"""
import json

from alembic import op
import sqlalchemy as sa

from migrations import online


revision = '3c8d5a1f7e20'
down_revision = '9e4f1b6c2d75'
branch_labels = None
depends_on = None

STEPS = {"notarisation": ["online_filing"], "mortgage": ["online_filing"],
         "registration": ["online_filing", "notarisation", "mortgage"]}
OLD_STATUSES = "status IN ('draft', 'confirmed', 'active', 'contracted', 'forfeited', 'withdrawn')"
NEW_STATUSES = ("status IN ('draft', 'confirmed', 'active', 'contracted', 'forfeited', 'withdrawn', 'expired', "
                "'rescinded')")
OLD_CONTRACT = "status IN ('booked', 'signed', 'registered', 'archived')"
NEW_CONTRACT = "status IN ('booked', 'signed', 'registered', 'archived', 'rescinded')"
OLD_LEVELS = "level IN ('reminder', 'warning', 'lawyer_letter', 'forfeit')"
NEW_LEVELS = "level IN ('reminder', 'warning', 'lawyer_letter', 'forfeit', 'rescission')"
OPEN = sa.text("status = 'requested'")
WAITING = sa.text('outcome IS NULL')
BOOKED = sa.text("status = 'booked'")
DRAFT = sa.text("status = 'draft'")


def upgrade():
    # PostgreSQL commits the schema part before building the big tables' indexes CONCURRENTLY
    # (migrations/online.py). Should a build stop, the revision is not recorded and the next
    # `db upgrade` runs this again: the committed part is then found and not done twice.
    if not _schema_committed():
        _schema()
    _big_table_indexes()


def _schema_committed():
    context = op.get_context()
    return (op.get_bind().dialect.name == "postgresql" and not context.as_sql
            and sa.inspect(op.get_bind()).has_table("submission"))


def _big_table_indexes():
    online.create_index('ix_overdue_event_waiting', 'overdue_event', ['level'], sqlite_where=WAITING,
                        postgresql_where=WAITING)
    # One booking per deal and kind of contract: booking again moves the appointment (a second
    # booking used to open a second signing due date, which the ladder still counted from). Where
    # a deal has several, the newest stays, due by the earliest date any of them was due; the
    # others go (a booked contract has no steps, archive entry or extension yet; the audit trail
    # keeps them). Done right before the unique index, so that a run again does it again.
    op.execute("UPDATE contract SET signing_due_on = (SELECT MIN(c2.signing_due_on) FROM contract c2 "
               "WHERE c2.subscription_id = contract.subscription_id AND c2.kind = contract.kind "
               "AND c2.status = 'booked') WHERE status = 'booked'")
    op.execute("DELETE FROM contract WHERE status = 'booked' AND id < (SELECT MAX(c2.id) FROM contract c2 "
               "WHERE c2.subscription_id = contract.subscription_id AND c2.kind = contract.kind "
               "AND c2.status = 'booked')")
    online.create_index('uq_contract_booked', 'contract', ['subscription_id', 'kind'], unique=True,
                        sqlite_where=BOOKED, postgresql_where=BOOKED)
    online.create_index('ix_subscription_draft_unit', 'subscription', ['unit_id'], sqlite_where=DRAFT,
                        postgresql_where=DRAFT)


def _schema():
    op.create_table('submission',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('result', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_submission_user_id_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_submission'))
    )
    op.create_table('voucher_counter',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_voucher_counter_project_id_project'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_voucher_counter'))
    )
    op.create_table('voucher',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=30), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(kind = 'refund') = (channel IS NOT NULL)", name=op.f('ck_voucher_refund_has_channel')),
    sa.CheckConstraint("kind IN ('refund', 'retained')", name=op.f('ck_voucher_kind_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_voucher_amount_positive')),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_voucher_project_id_project'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user.id'], name=op.f('fk_voucher_recorded_by_id_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_voucher_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher')),
    sa.UniqueConstraint('project_id', 'number', name=op.f('uq_voucher_project_id_number'))
    )
    with op.batch_alter_table('voucher', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voucher_subscription_id'), ['subscription_id'], unique=False)

    # Extensions name their deal; existing ones are all on instalments.
    with op.batch_alter_table('extension', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subscription_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('contract_id', sa.Integer(), nullable=True))
    op.execute("UPDATE extension SET subscription_id = (SELECT subscription_id FROM instalment "
               "WHERE instalment.id = extension.instalment_id)")
    with op.batch_alter_table('extension', schema=None) as batch_op:
        batch_op.alter_column('subscription_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('instalment_id', existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_check_constraint('one_subject', "(instalment_id IS NULL) <> (contract_id IS NULL)")
        batch_op.create_index(batch_op.f('ix_extension_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_extension_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index('uq_extension_open_contract', ['contract_id'], unique=True, sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_index('uq_extension_open_instalment', ['instalment_id'], unique=True, sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_foreign_key(batch_op.f('fk_extension_contract_id_contract'), 'contract', ['contract_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_foreign_key(batch_op.f('fk_extension_subscription_id_subscription'), 'subscription', ['subscription_id'], ['id'], ondelete='RESTRICT')

    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follow_up_paused_until', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('follow_up_pause_reason', sa.Text(), nullable=False, server_default=''))
        # In the models since migration 0002 but never in the database (found by the test that now
        # compares CHECK constraints): a budget is positive, a purpose one of the list.
        batch_op.create_check_constraint('budget_positive', "budget_wan IS NULL OR budget_wan > 0")
        batch_op.create_check_constraint(
            'purpose_known', "purpose IS NULL OR purpose IN ('own_home', 'upgrade', 'investment', 'for_family', 'other')")

    with op.batch_alter_table('overdue_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('handled_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('handled_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('handling_note', sa.Text(), nullable=False, server_default=''))
        batch_op.drop_constraint('level_known', type_='check')
        batch_op.create_check_constraint('level_known', NEW_LEVELS)
        batch_op.create_check_constraint(
            'outcome_known', "outcome IS NULL OR outcome IN ('sent', 'not_needed', 'continue', 'rescind')")
        batch_op.create_check_constraint('outcome_dated', "(outcome IS NULL) = (handled_on IS NULL)")
        batch_op.create_foreign_key(batch_op.f('fk_overdue_event_handled_by_id_user'), 'user', ['handled_by_id'], ['id'], ondelete='RESTRICT')

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follow_up_max_days', sa.Integer(), nullable=False, server_default='3'))
        batch_op.add_column(sa.Column('backdate_days', sa.Integer(), nullable=False, server_default='30'))
        batch_op.add_column(sa.Column('sales_start_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('deposit_due_max_days', sa.Integer(), nullable=False, server_default='7'))
        batch_op.add_column(sa.Column('draft_grace_days', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('step_prerequisites', sa.JSON(), nullable=False,
                                      server_default=json.dumps(STEPS)))
        batch_op.create_check_constraint('backdate_not_negative', "backdate_days >= 0")
        batch_op.create_check_constraint('deposit_due_max_not_negative', "deposit_due_max_days >= 0")
        batch_op.create_check_constraint('draft_grace_not_negative', "draft_grace_days >= 0")
        batch_op.create_check_constraint('follow_up_max_covers_cycle', "follow_up_max_days >= follow_up_days")

    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', NEW_CONTRACT)

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expired_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('rescinded_at', sa.DateTime(), nullable=True))
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', NEW_STATUSES)


def downgrade():
    online.drop_index('ix_subscription_draft_unit', 'subscription')
    online.drop_index('uq_contract_booked', 'contract')
    online.drop_index('ix_overdue_event_waiting', 'overdue_event')
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', OLD_STATUSES)
        batch_op.drop_column('rescinded_at')
        batch_op.drop_column('expired_at')

    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', OLD_CONTRACT)

    with op.batch_alter_table('project', schema=None) as batch_op:
        for name in ('follow_up_max_covers_cycle', 'draft_grace_not_negative', 'deposit_due_max_not_negative',
                     'backdate_not_negative'):
            batch_op.drop_constraint(name, type_='check')
        for column in ('step_prerequisites', 'draft_grace_days', 'deposit_due_max_days', 'sales_start_on',
                       'backdate_days', 'follow_up_max_days'):
            batch_op.drop_column(column)

    with op.batch_alter_table('overdue_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_overdue_event_handled_by_id_user'), type_='foreignkey')
        batch_op.drop_constraint('outcome_dated', type_='check')
        batch_op.drop_constraint('outcome_known', type_='check')
        batch_op.drop_constraint('level_known', type_='check')
        batch_op.create_check_constraint('level_known', OLD_LEVELS)
        for column in ('handling_note', 'handled_by_id', 'handled_on', 'outcome'):
            batch_op.drop_column(column)

    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_constraint('purpose_known', type_='check')
        batch_op.drop_constraint('budget_positive', type_='check')
        batch_op.drop_column('follow_up_pause_reason')
        batch_op.drop_column('follow_up_paused_until')

    with op.batch_alter_table('extension', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_extension_subscription_id_subscription'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_extension_contract_id_contract'), type_='foreignkey')
        batch_op.drop_index('uq_extension_open_instalment', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_index('uq_extension_open_contract', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_index(batch_op.f('ix_extension_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_extension_contract_id'))
        batch_op.drop_constraint('one_subject', type_='check')
        batch_op.alter_column('instalment_id', existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column('contract_id')
        batch_op.drop_column('subscription_id')

    with op.batch_alter_table('voucher', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voucher_subscription_id'))
    op.drop_table('voucher')
    op.drop_table('voucher_counter')
    op.drop_table('submission')
