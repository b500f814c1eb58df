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
  million payments is one UPDATE; SQLite: per row). Nothing else writes the column.
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


def downgrade():
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
