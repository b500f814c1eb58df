"""the money held on each deal, kept by the database; the settlement worklist by an index
(issue 21, R-CHG-5, performance)

Finance's settlement worklist is the deals that are over and still hold money
(models.payments.awaiting_settlement). "Held" was two correlated sums per dead deal (payments,
less vouchers): 180 ms to count the worklist of the large office (60,000 dead deals), whatever
the index. Now the database keeps the one figure:

- `subscription.held` = every payment of the deal (reversals are negative payments) less every
  refund and retention voucher. Payments and vouchers are append-only (never edited or deleted:
  models.audit), so an INSERT is the only write that moves it: a trigger on each adds the new
  rows' amounts (PostgreSQL: once per statement, from its transition table, so a COPY of a
  million payments is one UPDATE; SQLite: per row). Nothing else writes the column, and the
  database sees to it (`subscription_held_guard`; a deal is made holding 0 on both):
  - PostgreSQL refuses an UPDATE that changes `held` unless a trigger makes it
    (pg_trigger_depth() > 1 inside the guard: the keepers above). A raw `UPDATE subscription SET
    held = 0` — finance's worklist emptied — fails.
  - SQLite has no trigger depth (and its embedded mode is one process), so it checks the figure
    itself: an UPDATE of `held` passes only when the new value is the deal's payments less its
    vouchers (to the fen; SQLite keeps amounts as floating point). The keepers' updates pass (the
    row they add is already counted); a raw UPDATE to any other figure fails. Not guarded on
    SQLite: a raw UPDATE writing the true figure (harmless), nor money rows inserted behind the
    system's back (payments and vouchers are the audit's to guard, not this figure's).
- `ix_subscription_awaiting_settlement`: the worklist's rows themselves (a partial index on the
  dead deals that hold money), so its count and first page read the index alone (2–5 ms), and
  the dashboard's refunds due (their status and held) too (22 → 8 ms at 60,000 such deals).

Revision ID: d21c00000001
Revises: d21b00000001
"""
import sqlalchemy as sa
from alembic import op

from migrations import online

revision = 'd21c00000001'
down_revision = 'd21b00000001'
branch_labels = None
depends_on = None

DEAD = "status IN ('forfeited', 'withdrawn', 'expired', 'rescinded', 'cancelled')"
AWAITING = sa.text(f"{DEAD} AND held > 0")

# (table, sign): a payment adds to what is held, a voucher settles part of it.
KEEPERS = (("payment", "+"), ("voucher", "-"))
HELD_REFUSED = ("R-CHG-5: subscription.held is kept by the database from the payments and vouchers of its deal; "
                "it is never written directly")
TRUE_HELD = ("(coalesce((SELECT sum(amount) FROM payment p WHERE p.subscription_id = NEW.id), 0) - "
             "coalesce((SELECT sum(amount) FROM voucher v WHERE v.subscription_id = NEW.id), 0))")


def create_held_guard():
    """`held` written only by its keepers (see the module's docstring)."""
    if _postgresql():
        op.execute(f"""
            CREATE FUNCTION subscription_held_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' OR pg_trigger_depth() < 2 THEN
                    RAISE EXCEPTION '{HELD_REFUSED}' USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$""")
        op.execute("CREATE TRIGGER subscription_held_guard BEFORE UPDATE OF held ON subscription FOR EACH ROW "
                   "WHEN (NEW.held IS DISTINCT FROM OLD.held) EXECUTE FUNCTION subscription_held_guard()")
        op.execute("CREATE TRIGGER subscription_held_starts_at_zero BEFORE INSERT ON subscription FOR EACH ROW "
                   "WHEN (NEW.held <> 0) EXECUTE FUNCTION subscription_held_guard()")
        return
    op.execute(f"CREATE TRIGGER subscription_held_guard BEFORE UPDATE OF held ON subscription "
               f"WHEN abs(NEW.held - {TRUE_HELD}) >= 0.005 BEGIN SELECT RAISE(ABORT, '{HELD_REFUSED}'); END")
    op.execute(f"CREATE TRIGGER subscription_held_starts_at_zero BEFORE INSERT ON subscription "
               f"WHEN NEW.held <> 0 BEGIN SELECT RAISE(ABORT, '{HELD_REFUSED}'); END")


def drop_held_guard():
    if _postgresql():
        op.execute("DROP TRIGGER IF EXISTS subscription_held_starts_at_zero ON subscription")
        op.execute("DROP TRIGGER IF EXISTS subscription_held_guard ON subscription")
        op.execute("DROP FUNCTION IF EXISTS subscription_held_guard()")
        return
    op.execute("DROP TRIGGER IF EXISTS subscription_held_starts_at_zero")
    op.execute("DROP TRIGGER IF EXISTS subscription_held_guard")


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.add_column('subscription', sa.Column('held', sa.Numeric(precision=14, scale=2), nullable=False,
                                            server_default='0'))
    for table, sign in KEEPERS:
        if _postgresql():
            op.execute(f"""
                CREATE FUNCTION {table}_keeps_held() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE subscription s SET held = s.held {sign} n.amount
                    FROM (SELECT subscription_id, sum(amount) AS amount FROM new_rows GROUP BY subscription_id) n
                    WHERE s.id = n.subscription_id;
                    RETURN NULL;
                END $$""")
            op.execute(f"CREATE TRIGGER {table}_keeps_held AFTER INSERT ON {table} "
                       f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_keeps_held()")
        else:
            # SQLite keeps amounts as floating point: rounded to the fen, a settled deal holds exactly 0.
            op.execute(f"CREATE TRIGGER {table}_keeps_held AFTER INSERT ON {table} BEGIN "
                       f"UPDATE subscription SET held = round(held {sign} NEW.amount, 2) WHERE id = NEW.subscription_id; END")
    # The deals' money so far. After the triggers exist: creating them locked payments and vouchers
    # out (SHARE ROW EXCLUSIVE) until this part commits, so no payment is missed or counted twice.
    op.execute("UPDATE subscription SET held = "
               "coalesce((SELECT sum(amount) FROM payment WHERE payment.subscription_id = subscription.id), 0) - "
               "coalesce((SELECT sum(amount) FROM voucher WHERE voucher.subscription_id = subscription.id), 0) "
               "WHERE EXISTS (SELECT 1 FROM payment WHERE payment.subscription_id = subscription.id)")
    online.create_index('ix_subscription_awaiting_settlement', 'subscription', ['id', 'status', 'held'],
                        sqlite_where=AWAITING, postgresql_where=AWAITING)
    create_held_guard()  # after the figures so far: nothing but the keepers writes them from here


def downgrade():
    drop_held_guard()
    online.drop_index('ix_subscription_awaiting_settlement', 'subscription')
    for table, _sign in KEEPERS:
        if _postgresql():
            op.execute(f"DROP TRIGGER IF EXISTS {table}_keeps_held ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_keeps_held()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_keeps_held")
    # ALTER TABLE … DROP COLUMN, not a batch rebuild: SQLite would drop the terms guard's triggers
    # on `subscription` with the table (migration d21a00000001).
    op.drop_column('subscription', 'held')
