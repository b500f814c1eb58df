"""Entities and the domain operations that change them, one module per aggregate."""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .base import Base, utcnow
from .errors import PermissionDenied, RuleViolation

from .search import install as install_search_functions  # noqa: E402

install_search_functions(Base.metadata)  # before create_all's tables on PostgreSQL (models/search.py)
db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)

# Import every aggregate so the metadata (and Alembic) sees all tables.
from .users import Role, User, user_role  # noqa: E402
from .inventory import Building, Unit  # noqa: E402
from .projects import Project  # noqa: E402
from .leads import CustomerQuestion, FollowUp, Lead, LeadArchive, LeadConflict  # noqa: E402
from .notifications import Notification  # noqa: E402
from .deals import PriceApproval, Subscription  # noqa: E402
from .payments import (Instalment, Payment, PaymentAllocation, PaymentMethodTemplate,  # noqa: E402
                       PlanLineTemplate, ReceiptCounter, Voucher, VoucherCounter)
from .ladder import Extension, OverdueEvent  # noqa: E402
from .changes import ChangeRequest, ChangeStep, DealBuyer  # noqa: E402
from .submissions import Submission  # noqa: E402
from .contracts import ArchiveRecord, Contract, ContractStep, StampedCopy  # noqa: E402
from .charges import Charge, LateFeeWaiver  # noqa: E402
from .loans import Bank, LoanFile, LoanStage  # noqa: E402
from .true_ups import TrueUp, TrueUpBatch  # noqa: E402
from .handovers import Handover, HandoverItem  # noqa: E402
from .tickets import Attachment, Survey, Ticket, TicketCounter, TicketNote  # noqa: E402
from .channels import ChannelCompany, ChannelConflict, ChannelMember, ChannelRegistration  # noqa: E402
from .reception import RotationEntry, RotationEvent, Visit  # noqa: E402
from .commissions import CommissionLine, CommissionRule, CommissionStatement, DealSplit  # noqa: E402
from .launches import IntentPayment, Launch, LaunchBuilding, LaunchEntry  # noqa: E402
from .document_queue import Document, DocumentBatch  # noqa: E402
from .exports import Export, ExportChunk  # noqa: E402
from .imports import PriceListImport  # noqa: E402
from .instance import InstanceIdentity  # noqa: E402
from .targets import SalesTarget  # noqa: E402
from .audit import Audit  # noqa: E402

__all__ = [
    "db", "Base", "utcnow", "RuleViolation", "PermissionDenied",
    "Role", "User", "user_role", "Building", "Project", "Unit", "FollowUp", "Lead",
    "LeadArchive", "LeadConflict", "CustomerQuestion", "Notification", "PriceApproval", "ReceiptCounter", "PaymentAllocation", "PaymentMethodTemplate",
    "PlanLineTemplate", "Extension", "Instalment", "OverdueEvent", "Payment", "Subscription",
    "Voucher", "VoucherCounter", "Submission", "ChangeRequest", "ChangeStep", "DealBuyer",
    "ArchiveRecord", "StampedCopy", "Contract", "ContractStep", "Document", "DocumentBatch", "Export", "ExportChunk", "PriceListImport", "SalesTarget", "Audit",
    "InstanceIdentity", "Charge", "LateFeeWaiver", "Bank", "LoanFile", "LoanStage", "TrueUp", "TrueUpBatch",
    "Handover", "HandoverItem", "Attachment", "Survey", "Ticket", "TicketCounter", "TicketNote",
    "ChannelCompany", "ChannelConflict", "ChannelMember", "ChannelRegistration", "RotationEntry", "RotationEvent",
    "Visit", "CommissionLine", "CommissionRule", "CommissionStatement", "DealSplit",
    "IntentPayment", "Launch", "LaunchBuilding", "LaunchEntry",
]


SQLITE_BUSY_SECONDS = 30  # how long a writer waits for another's transaction before giving up
FORM_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _is_sqlite(dbapi_connection) -> bool:
    return type(dbapi_connection).__module__.startswith("sqlite3")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """Embedded mode's SQLite, made safe for concurrent staff (issue 18, item 19).

    - foreign keys: SQLite enforces them only when asked, per connection;
    - WAL: readers never wait for the writer nor the writer for readers (set once: the mode is
      kept in the database file, later connections find it on);
    - a busy timeout: a writer waits up to SQLITE_BUSY_SECONDS for the one before it;
    - write transactions begin IMMEDIATE (see `_sqlite_begin`)."""
    if not _is_sqlite(dbapi_connection):
        return
    dbapi_connection.isolation_level = "IMMEDIATE"
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() not in ("wal", "memory"):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _form_request() -> bool:
    from flask import has_request_context, request
    return has_request_context() and request.method in FORM_METHODS


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """Every SQLite write transaction takes the write lock at its start (BEGIN IMMEDIATE) and so
    waits (busy timeout) for the writer before it. A deferred transaction that has read and then
    writes cannot wait: if another connection wrote in between, SQLite refuses at once with
    "database is locked" whatever the busy timeout, which is how 3 of 200 concurrent
    subscriptions failed.

    - A form (POST…) begins IMMEDIATE with its first statement: the request's reads, checks and
      writes are one serial transaction, as the row locks (FOR UPDATE, which SQLite ignores)
      make them on PostgreSQL.
    - Everything else — pages (GET), the embedded worker thread, the CLI — reads outside any
      transaction (WAL: each read sees the last commit, like READ COMMITTED, and never waits),
      and pysqlite begins IMMEDIATE right before its first write (isolation_level "IMMEDIATE").
      Browsing, rendering a document or reading an export's rows never holds the lock the
      office's forms wait for; and a session left open (a test's, a shell's) holds it only
      once it has written."""
    dbapi_connection = conn.connection.dbapi_connection
    if not _is_sqlite(dbapi_connection) or dbapi_connection.in_transaction:
        return
    if _form_request():
        dbapi_connection.isolation_level = None  # our BEGIN, not pysqlite's
        dbapi_connection.execute("BEGIN IMMEDIATE")
    else:
        dbapi_connection.isolation_level = "IMMEDIATE"  # pysqlite: BEGIN IMMEDIATE before a write


@event.listens_for(Engine, "savepoint")
def _sqlite_savepoint_inside_a_transaction(conn, name):
    # pysqlite opens a transaction only before INSERT/UPDATE/DELETE. A SAVEPOINT sent first would
    # open one of its own, and releasing it would COMMIT everything so far: a session.begin_nested()
    # before any write (subscribe) committed its work even when the caller then rolled back. The
    # transaction begins here, IMMEDIATE as every write transaction.
    dbapi_connection = conn.connection.dbapi_connection
    if _is_sqlite(dbapi_connection) and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


def init_app(app) -> None:
    from pathlib import Path

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path) / "migrations"))
    from .live import init_app as init_live  # the live board's hub and its Session listeners
    init_live(app)
