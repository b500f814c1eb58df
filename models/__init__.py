"""Entities and the domain operations that change them, one module per aggregate."""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .base import Base, utcnow
from .errors import PermissionDenied, RuleViolation

db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)

# Import every aggregate so the metadata (and Alembic) sees all tables.
from .users import Role, User, user_role  # noqa: E402
from .inventory import Building, Project, Unit  # noqa: E402
from .leads import CustomerQuestion, FollowUp, Lead, LeadArchive, LeadConflict  # noqa: E402
from .notifications import Notification  # noqa: E402
from .deals import (Extension, Instalment, OverdueEvent, Payment, PaymentAllocation,  # noqa: E402
                    PaymentMethodTemplate, PlanLineTemplate, PriceApproval, ReceiptCounter,
                    Subscription, Voucher, VoucherCounter)
from .submissions import Submission  # noqa: E402
from .contracts import ArchiveRecord, Contract, ContractStep, StampedCopy  # noqa: E402
from .documents import Document, DocumentBatch  # noqa: E402
from .exports import Export, ExportChunk  # noqa: E402
from .instance import InstanceIdentity  # noqa: E402
from .targets import SalesTarget  # noqa: E402
from .audit import Audit  # noqa: E402

__all__ = [
    "db", "Base", "utcnow", "RuleViolation", "PermissionDenied",
    "Role", "User", "user_role", "Building", "Project", "Unit", "FollowUp", "Lead",
    "LeadArchive", "LeadConflict", "CustomerQuestion", "Notification", "PriceApproval", "ReceiptCounter", "PaymentAllocation", "PaymentMethodTemplate",
    "PlanLineTemplate", "Extension", "Instalment", "OverdueEvent", "Payment", "Subscription",
    "Voucher", "VoucherCounter", "Submission",
    "ArchiveRecord", "StampedCopy", "Contract", "ContractStep", "Document", "DocumentBatch", "Export", "ExportChunk", "SalesTarget", "Audit",
    "InstanceIdentity",
]


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # SQLite enforces foreign keys only when asked, per connection.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


@event.listens_for(Engine, "savepoint")
def _sqlite_savepoint_inside_a_transaction(conn, name):
    # pysqlite opens a transaction only before INSERT/UPDATE/DELETE. A SAVEPOINT sent first would
    # open one of its own, and releasing it would COMMIT everything so far: a session.begin_nested()
    # before any write (subscribe) committed its work even when the caller then rolled back.
    dbapi_connection = conn.connection.dbapi_connection
    if type(dbapi_connection).__module__.startswith("sqlite3") and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN")


def init_app(app) -> None:
    from pathlib import Path

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path) / "migrations"))
