"""audit: append-only in the database itself (PostgreSQL trigger refusing UPDATE and DELETE)

The ORM already refuses to change or delete audit rows (models/audit.py); this makes the
database refuse it too, whoever connects: a psql session, a script, a bug (R-ALL-2). SQLite,
the embedded single-user mode, gets the same guard as triggers of its own.

Revision ID: 3f1c2a9b7d10
Revises: 7c73f2a653cf
Create Date: 2026-11-27 22:10:00

"""
from alembic import op


revision = '3f1c2a9b7d10'
down_revision = '7c73f2a653cf'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit rows are append-only: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$;
        """)
        op.execute("""
            CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
            FOR EACH ROW EXECUTE FUNCTION audit_append_only();
        """)
        op.execute("""
            CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
            FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
        """)
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_append_only_{event.lower()} BEFORE {event} ON audit
                BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
            """)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_no_truncate ON audit")
        op.execute("DROP TRIGGER audit_append_only ON audit")
        op.execute("DROP FUNCTION audit_append_only()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_append_only_{event}")
