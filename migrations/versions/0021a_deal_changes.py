"""deals that change (issue 21, R-CHG-1…5): change requests and their steps, a deal's buyers,
plans numbered per deal, cancelled deals

- change_request (one open per deal: uq_change_request_open), change_step (one decision per
  request, round and step), deal_buyer (权益人; the current ones: ended_by_change_id IS NULL);
- project.change_chains (who approves each kind, in order), project.manager_price_limit_percent;
- subscription.plan_no / instalment.plan_no: a change regenerates the plan as the next plan, the
  lines it replaced kept (instalment status `replaced`); instalment's (subscription, seq)
  uniqueness becomes (subscription, plan_no, seq) — built CONCURRENTLY on PostgreSQL before the old
  one is dropped (migrations/online.py);
- subscription: `cancelled` (退房, R-CHG-4) and cancelled_at; last_change_id (the terms guard);
- every existing deal gets its one buyer, from the agreement's customer block, with 100 %;
- the terms guard (R-CHG-1): triggers refusing a write of a live deal's terms (subscription: unit,
  price, deposit, payment method, plan, the agreement's customer block; deal_buyer: a buyer added,
  ended, changed or deleted) unless it names an approved change request of that deal not yet
  applied (subscription.last_change_id, deal_buyer.added_by_change_id / ended_by_change_id);
  and what would walk around it:
  - a deal's status: a deal that is over (forfeited, withdrawn, expired, rescinded, cancelled)
    never changes status again, and a live deal (confirmed, active, contracted) never goes back to
    draft (whose terms are not guarded) — toggling the status to rewrite the terms is refused;
  - its plan lines: a line's subscription, plan_no, seq, kind, due_on and amount_due never change
    (payments move amount_paid and status, an extension extended_due_on, the agent agent_note; a
    change replaces the plan: a line becomes `replaced` only once its deal's plan_no has moved past
    it, and stays so); a line is added to a live deal only by applying an approved change
    (the deal's last_change_id, as above, and into the deal's plan in force), and a live deal's
    line is never deleted (a draft's plan is deleted and made again while nothing is paid).
  Made last, after the backfill. SQLite drops a table's triggers with the table: a later migration
  that rebuilds `subscription`, `instalment` or `deal_buyer` in batch mode must create them again
  (`create_guards`).

Revision ID: d21a00000001
Revises: d19c00000001
"""
import json

import sqlalchemy as sa
from alembic import op

from migrations import online

revision = 'd21a00000001'
down_revision = 'd19c00000001'
branch_labels = None
depends_on = None

CHAINS = {"unit_swap": ["sales_manager"], "buyers": ["sales_manager"], "payment_method": ["sales_manager"],
          "price": ["sales_manager"], "cancellation": ["sales_manager", "vp"]}
OLD_SUBSCRIPTION = ("status IN ('draft', 'confirmed', 'active', 'contracted', 'forfeited', 'withdrawn', 'expired', "
                    "'rescinded')")
NEW_SUBSCRIPTION = ("status IN ('draft', 'confirmed', 'active', 'contracted', 'forfeited', 'withdrawn', 'expired', "
                    "'rescinded', 'cancelled')")
OLD_INSTALMENT = "status IN ('pending', 'partly_paid', 'paid')"
NEW_INSTALMENT = "status IN ('pending', 'partly_paid', 'paid', 'replaced')"
ID_TYPES = "id_type IN ('resident_id', 'passport', 'hk_macao_permit', 'taiwan_permit', 'foreign_permanent_resident')"
OPEN = sa.text("status IN ('requested', 'sent_back')")
CURRENT = sa.text("ended_by_change_id IS NULL")


def _ladder_index():
    """SQLite's batch mode rebuilds `instalment` without its expression index (Alembic cannot
    reflect one): build it again as 0004 made it."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_instalment_open_effective_due")
        op.create_index('ix_instalment_open_effective_due', 'instalment',
                        [sa.text('coalesce(extended_due_on, due_on)')],
                        sqlite_where=sa.text("status <> 'paid'"))


# R-CHG-1: the statuses of a live deal (models.deals.LIVE_DEAL, as this revision has it) and the
# columns that are its terms.
LIVE = "('confirmed', 'active', 'contracted')"
TERMS = ("unit_id", "price", "deposit", "payment_method", "plan_no", "customer_name", "customer_id_type",
         "customer_id_number")
BUYER_COLUMNS = ("subscription_id", "seq", "name", "id_type", "id_number", "phone", "share", "added_by_change_id",
                 "created_at")
# An approved change request of the deal, not yet applied: the one licence to write its terms.
APPLYING = ("EXISTS (SELECT 1 FROM change_request c WHERE c.id = {change} AND c.subscription_id = {deal} "
            "AND c.status = 'approved' AND c.applied_at IS NULL)")
TERMS_REFUSED = ("R-CHG-1: the terms of a live deal change only through an approved change request "
                 "(subscription.last_change_id names none of this deal waiting to be applied)")
BUYERS_REFUSED = ("R-CHG-3: the buyers of a live deal change only through an approved change request "
                  "(a buyer added or ended names none of this deal waiting to be applied; former buyers are kept "
                  "as they were)")


DEAD = "('forfeited', 'withdrawn', 'expired', 'rescinded', 'cancelled')"  # models.deals.DEAD_DEAL
STATUS_REFUSED = ("R-CHG-1: a deal that is over never changes status again, and a live deal never goes back to "
                  "draft")
PLAN_COLUMNS = ("subscription_id", "plan_no", "seq", "kind", "due_on", "amount_due")
PLAN_REFUSED = ("R-CHG-2: a plan line keeps its deal, plan, place, kind, due date and amount (a change replaces "
                "the plan)")
LINES_REFUSED = ("R-CHG-2: the plan of a live deal changes only by applying an approved change request (a line "
                 "added to its plan in force while subscription.last_change_id names one of this deal waiting to "
                 "be applied; a line is never deleted)")
# A line of deal {deal}, plan {plan}, may be added: the deal's last_change_id names an approved change
# of it not yet applied, and the line is in the plan that change made.
LINE_LICENSED = ("EXISTS (SELECT 1 FROM subscription s JOIN change_request c ON c.id = s.last_change_id "
                 "WHERE s.id = {deal} AND s.plan_no = {plan} AND c.subscription_id = s.id "
                 "AND c.status = 'approved' AND c.applied_at IS NULL)")
STATUS_MOVE_REFUSED = f"(OLD.status IN {DEAD} OR (OLD.status IN {LIVE} AND NEW.status = 'draft'))"
# A line leaves its plan (`replaced`) only when a change has started the next plan, and never comes back.
REPLACED_MOVE = ("((OLD.status = 'replaced' AND NEW.status IS NOT 'replaced') OR (NEW.status = 'replaced' "
                 "AND OLD.status IS NOT 'replaced' AND NEW.plan_no >= "
                 "(SELECT s.plan_no FROM subscription s WHERE s.id = NEW.subscription_id)))")
REPLACED_REFUSED = ("R-CHG-2: a plan line is replaced only by a change that started the next plan of its deal, "
                    "and a replaced line stays replaced")


def _live(deal: str) -> str:
    return f"(SELECT s.status FROM subscription s WHERE s.id = {deal}) IN {LIVE}"


def create_guards():
    """The terms guard: triggers on `subscription`, `instalment` and `deal_buyer` (see the module's
    docstring)."""
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in TERMS)
        op.execute(f"""
            CREATE FUNCTION subscription_terms_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.status IN {LIVE} AND ({changed})
                   AND NOT {APPLYING.format(change="NEW.last_change_id", deal="NEW.id")} THEN
                    RAISE EXCEPTION '{TERMS_REFUSED}' USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$;
        """)
        op.execute(f"""
            CREATE TRIGGER subscription_terms_guard BEFORE UPDATE OF {", ".join(TERMS)}
            ON subscription FOR EACH ROW EXECUTE FUNCTION subscription_terms_guard();
        """)
        op.execute(f"""
            CREATE FUNCTION subscription_status_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {STATUS_MOVE_REFUSED} THEN
                    RAISE EXCEPTION '{STATUS_REFUSED}' USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$;
        """)
        op.execute("""
            CREATE TRIGGER subscription_status_guard BEFORE UPDATE OF status ON subscription
            FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
            EXECUTE FUNCTION subscription_status_guard();
        """)
        moved = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in PLAN_COLUMNS)
        op.execute(f"""
            CREATE FUNCTION instalment_plan_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    IF {moved} THEN
                        RAISE EXCEPTION '{PLAN_REFUSED}' USING ERRCODE = 'check_violation';
                    END IF;
                    IF {REPLACED_MOVE.replace(" IS NOT ", " IS DISTINCT FROM ")} THEN
                        RAISE EXCEPTION '{REPLACED_REFUSED}' USING ERRCODE = 'check_violation';
                    END IF;
                    RETURN NEW;
                END IF;
                IF TG_OP = 'DELETE' THEN
                    IF {_live("OLD.subscription_id")} THEN
                        RAISE EXCEPTION '{LINES_REFUSED}' USING ERRCODE = 'check_violation';
                    END IF;
                    RETURN OLD;
                END IF;
                IF {_live("NEW.subscription_id")}
                   AND NOT {LINE_LICENSED.format(deal="NEW.subscription_id", plan="NEW.plan_no")} THEN
                    RAISE EXCEPTION '{LINES_REFUSED}' USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$;
        """)
        op.execute(f"""
            CREATE TRIGGER instalment_plan_guard BEFORE INSERT OR DELETE OR UPDATE OF {", ".join(PLAN_COLUMNS)}, status
            ON instalment FOR EACH ROW EXECUTE FUNCTION instalment_plan_guard();
        """)
        same = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in BUYER_COLUMNS)
        op.execute(f"""
            CREATE FUNCTION deal_buyer_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    IF {_live("NEW.subscription_id")}
                       AND NOT {APPLYING.format(change="NEW.added_by_change_id", deal="NEW.subscription_id")} THEN
                        RAISE EXCEPTION '{BUYERS_REFUSED}' USING ERRCODE = 'check_violation';
                    END IF;
                    RETURN NEW;
                END IF;
                IF TG_OP = 'DELETE' THEN
                    IF {_live("OLD.subscription_id")} THEN
                        RAISE EXCEPTION '{BUYERS_REFUSED}' USING ERRCODE = 'check_violation';
                    END IF;
                    RETURN OLD;
                END IF;
                IF NOT {_live("OLD.subscription_id")} THEN
                    RETURN NEW;
                END IF;
                IF OLD.ended_by_change_id IS NOT NULL OR NOT ({same})
                   OR NOT {APPLYING.format(change="NEW.ended_by_change_id", deal="OLD.subscription_id")} THEN
                    RAISE EXCEPTION '{BUYERS_REFUSED}' USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$;
        """)
        op.execute("""
            CREATE TRIGGER deal_buyer_guard BEFORE INSERT OR UPDATE OR DELETE ON deal_buyer
            FOR EACH ROW EXECUTE FUNCTION deal_buyer_guard();
        """)
        return
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in TERMS)
    op.execute(f"""
        CREATE TRIGGER subscription_terms_guard BEFORE UPDATE OF {", ".join(TERMS)} ON subscription
        WHEN OLD.status IN {LIVE} AND ({changed})
             AND NOT {APPLYING.format(change="NEW.last_change_id", deal="NEW.id")}
        BEGIN SELECT RAISE(ABORT, '{TERMS_REFUSED}'); END;
    """)
    op.execute(f"""
        CREATE TRIGGER subscription_status_guard BEFORE UPDATE OF status ON subscription
        WHEN NEW.status IS NOT OLD.status AND {STATUS_MOVE_REFUSED}
        BEGIN SELECT RAISE(ABORT, '{STATUS_REFUSED}'); END;
    """)
    moved = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in PLAN_COLUMNS)
    op.execute(f"""
        CREATE TRIGGER instalment_plan_guard BEFORE UPDATE OF {", ".join(PLAN_COLUMNS)} ON instalment
        WHEN {moved}
        BEGIN SELECT RAISE(ABORT, '{PLAN_REFUSED}'); END;
    """)
    op.execute(f"""
        CREATE TRIGGER instalment_replaced_guard BEFORE UPDATE OF status ON instalment
        WHEN {REPLACED_MOVE}
        BEGIN SELECT RAISE(ABORT, '{REPLACED_REFUSED}'); END;
    """)
    op.execute(f"""
        CREATE TRIGGER instalment_insert_guard BEFORE INSERT ON instalment
        WHEN {_live("NEW.subscription_id")}
             AND NOT {LINE_LICENSED.format(deal="NEW.subscription_id", plan="NEW.plan_no")}
        BEGIN SELECT RAISE(ABORT, '{LINES_REFUSED}'); END;
    """)
    op.execute(f"""
        CREATE TRIGGER instalment_delete_guard BEFORE DELETE ON instalment
        WHEN {_live("OLD.subscription_id")}
        BEGIN SELECT RAISE(ABORT, '{LINES_REFUSED}'); END;
    """)
    op.execute(f"""
        CREATE TRIGGER deal_buyer_insert_guard BEFORE INSERT ON deal_buyer
        WHEN {_live("NEW.subscription_id")}
             AND NOT {APPLYING.format(change="NEW.added_by_change_id", deal="NEW.subscription_id")}
        BEGIN SELECT RAISE(ABORT, '{BUYERS_REFUSED}'); END;
    """)
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in BUYER_COLUMNS)
    op.execute(f"""
        CREATE TRIGGER deal_buyer_update_guard BEFORE UPDATE ON deal_buyer
        WHEN {_live("OLD.subscription_id")}
             AND (OLD.ended_by_change_id IS NOT NULL OR NOT ({same})
                  OR NOT {APPLYING.format(change="NEW.ended_by_change_id", deal="OLD.subscription_id")})
        BEGIN SELECT RAISE(ABORT, '{BUYERS_REFUSED}'); END;
    """)
    op.execute(f"""
        CREATE TRIGGER deal_buyer_delete_guard BEFORE DELETE ON deal_buyer
        WHEN {_live("OLD.subscription_id")}
        BEGIN SELECT RAISE(ABORT, '{BUYERS_REFUSED}'); END;
    """)


def drop_guards():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS deal_buyer_guard ON deal_buyer")
        op.execute("DROP FUNCTION IF EXISTS deal_buyer_guard()")
        op.execute("DROP TRIGGER IF EXISTS instalment_plan_guard ON instalment")
        op.execute("DROP FUNCTION IF EXISTS instalment_plan_guard()")
        op.execute("DROP TRIGGER IF EXISTS subscription_status_guard ON subscription")
        op.execute("DROP FUNCTION IF EXISTS subscription_status_guard()")
        op.execute("DROP TRIGGER IF EXISTS subscription_terms_guard ON subscription")
        op.execute("DROP FUNCTION IF EXISTS subscription_terms_guard()")
        return
    for name in ("deal_buyer_delete_guard", "deal_buyer_update_guard", "deal_buyer_insert_guard",
                 "instalment_delete_guard", "instalment_insert_guard", "instalment_replaced_guard",
                 "instalment_plan_guard",
                 "subscription_status_guard", "subscription_terms_guard"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade():
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_chains', sa.JSON(), nullable=False,
                                      server_default=json.dumps(CHAINS)))
        batch_op.add_column(sa.Column('manager_price_limit_percent', sa.Numeric(precision=5, scale=2),
                                      nullable=False, server_default='0'))
        batch_op.create_check_constraint('manager_price_limit_range',
                                         "manager_price_limit_percent >= 0 AND manager_price_limit_percent < 100")

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('plan_no', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('last_change_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', NEW_SUBSCRIPTION)

    with op.batch_alter_table('instalment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_no', sa.Integer(), nullable=False, server_default='1'))
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', NEW_INSTALMENT)

    op.create_table('change_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('chain', sa.String(length=100), nullable=False),
    sa.Column('step', sa.Integer(), server_default='0', nullable=False),
    sa.Column('round', sa.Integer(), server_default='1', nullable=False),
    sa.Column('proposal', sa.JSON(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('difference', sa.JSON(), nullable=False),
    sa.Column('decision_note', sa.Text(), server_default='', nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('unit_swap', 'buyers', 'payment_method', 'price', 'cancellation')",
                       name=op.f('ck_change_request_kind_known')),
    sa.CheckConstraint("status IN ('requested', 'sent_back', 'approved', 'rejected', 'withdrawn')",
                       name=op.f('ck_change_request_status_known')),
    sa.CheckConstraint('step >= 0', name=op.f('ck_change_request_step_not_negative')),
    sa.CheckConstraint('round >= 1', name=op.f('ck_change_request_round_positive')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'],
                            name=op.f('fk_change_request_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_change_request_requested_by_id_user'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_change_request_decided_by_id_user'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_request'))
    )
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_request_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index('ix_change_request_status', ['status', 'requested_at'], unique=False)
        batch_op.create_index('uq_change_request_open', ['subscription_id'], unique=True,
                              sqlite_where=OPEN, postgresql_where=OPEN)

    op.create_table('change_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_request_id', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("decision IN ('approved', 'rejected', 'sent_back')", name=op.f('ck_change_step_decision_known')),
    sa.ForeignKeyConstraint(['change_request_id'], ['change_request.id'],
                            name=op.f('fk_change_step_change_request_id_change_request'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_change_step_decided_by_id_user'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_step')),
    sa.UniqueConstraint('change_request_id', 'round', 'seq', name=op.f('uq_change_step_change_request_id_round_seq'))
    )
    with op.batch_alter_table('change_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_step_change_request_id'), ['change_request_id'], unique=False)

    op.create_table('deal_buyer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('id_type', sa.String(length=30), server_default='resident_id', nullable=False),
    sa.Column('id_number', sa.String(length=30), nullable=False),
    sa.Column('phone', sa.String(length=30), server_default='', nullable=False),
    sa.Column('share', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('added_by_change_id', sa.Integer(), nullable=True),
    sa.Column('ended_by_change_id', sa.Integer(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('share > 0 AND share <= 100', name=op.f('ck_deal_buyer_share_range')),
    sa.CheckConstraint(ID_TYPES, name=op.f('ck_deal_buyer_id_type_known')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'],
                            name=op.f('fk_deal_buyer_subscription_id_subscription'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['added_by_change_id'], ['change_request.id'],
                            name=op.f('fk_deal_buyer_added_by_change_id_change_request'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['ended_by_change_id'], ['change_request.id'],
                            name=op.f('fk_deal_buyer_ended_by_change_id_change_request'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_buyer'))
    )
    with op.batch_alter_table('deal_buyer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_buyer_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index('uq_deal_buyer_current_seq', ['subscription_id', 'seq'], unique=True,
                              sqlite_where=CURRENT, postgresql_where=CURRENT)

    # Every deal's one buyer so far: the agreement's customer block, with the customer's phone.
    op.execute(sa.text(
        "INSERT INTO deal_buyer (subscription_id, seq, name, id_type, id_number, phone, share, created_at) "
        "SELECT s.id, 1, s.customer_name, s.customer_id_type, s.customer_id_number, coalesce(l.phone, ''), 100, "
        "s.created_at FROM subscription s JOIN lead l ON l.id = s.lead_id"))

    # Instalment: (subscription, plan, seq) unique before (subscription, seq) goes.
    online.create_index('uq_instalment_subscription_id_plan_no_seq', 'instalment',
                        ['subscription_id', 'plan_no', 'seq'], unique=True)
    with op.batch_alter_table('instalment', schema=None) as batch_op:
        batch_op.drop_constraint('uq_instalment_subscription_id_seq', type_='unique')
    _ladder_index()
    create_guards()


def downgrade():
    drop_guards()
    with op.batch_alter_table('instalment', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_instalment_subscription_id_seq', ['subscription_id', 'seq'])
    online.drop_index('uq_instalment_subscription_id_plan_no_seq', 'instalment')
    with op.batch_alter_table('deal_buyer', schema=None) as batch_op:
        batch_op.drop_index('uq_deal_buyer_current_seq')
        batch_op.drop_index(batch_op.f('ix_deal_buyer_subscription_id'))
    op.drop_table('deal_buyer')
    with op.batch_alter_table('change_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_step_change_request_id'))
    op.drop_table('change_step')
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.drop_index('uq_change_request_open')
        batch_op.drop_index('ix_change_request_status')
        batch_op.drop_index(batch_op.f('ix_change_request_subscription_id'))
    op.drop_table('change_request')
    with op.batch_alter_table('instalment', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', OLD_INSTALMENT)
        batch_op.drop_column('plan_no')
    _ladder_index()
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', OLD_SUBSCRIPTION)
        batch_op.drop_column('last_change_id')
        batch_op.drop_column('plan_no')
        batch_op.drop_column('cancelled_at')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_constraint('manager_price_limit_range', type_='check')
        batch_op.drop_column('manager_price_limit_percent')
        batch_op.drop_column('change_chains')
