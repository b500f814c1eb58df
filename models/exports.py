"""Finance exports: the payment and instalment lists as CSV or XLSX (R-PAY-1, R-PAY-3).

Headers, labels and file name in the requester's language (a background export keeps it on its
row and the worker writes in it), real numbers and dates (not text), a totals row, rows scoped by role (an agent
exports only own customers). Every cell a spreadsheet would run as a formula is neutralised in
both formats. Rows are streamed from the database (yield_per) into the file, so memory stays
flat whatever the size; a large export runs as a job (`jobs.exports`) and its file is kept in
the database in 1 MiB chunks, so any web process can serve it. Every export writes an audit row.

A background export's states, each step one conditional UPDATE (like a document's): asked for
(`request_export`: queued), given to a job (`give_to_job`: queued, held by job J; `take_back`
when J never reached the queue), taken by J's worker and written (`run_export`: running → done,
or failed with the error), given back when J died (`models.documents.release_claim`: queued
again, or failed once interrupted MAX_ATTEMPTS times), retried (`retry_export`: failed → queued).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import force_locale, get_locale, lazy_gettext as _l, ngettext, pgettext
from sqlalchemy import JSON, CheckConstraint, ForeignKey, LargeBinary, String, Text, cast, func, select
from sqlalchemy.orm import Mapped, aliased, mapped_column

from spreadsheets import FORMULA_PREFIXES, CsvWriter, XlsxWriter

from .background import RequestedWork
from .base import Base, in_list, office_today, utcnow
from .errors import PermissionDenied, RuleViolation
from .users import User

EXPORT_LISTS = ("payments", "instalments")
EXPORT_FORMATS = ("csv", "xlsx")
EXPORT_STATUSES = ("queued", "running", "done", "failed")
DIRECT_LIMIT = 5000  # up to this many rows the file comes back at once; above, a job makes it
CHUNK = 1024 * 1024
OFFICE_LOCALE = "zh_Hans_CN"  # jobs and the CLI write in the office's language unless told


class Export(RequestedWork, Base):
    """A background export: what was asked, its state, and its file (in ExportChunk rows); who
    asked and when: RequestedWork."""

    __tablename__ = "export"
    __table_args__ = (
        CheckConstraint(in_list("list", EXPORT_LISTS), name="list_known"),
        CheckConstraint(in_list("format", EXPORT_FORMATS), name="format_known"),
        CheckConstraint(in_list("status", EXPORT_STATUSES), name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list: Mapped[str] = mapped_column(String(20))
    format: Mapped[str] = mapped_column(String(10))
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    total: Mapped[int] = mapped_column(default=0)  # rows expected when it was asked
    rows: Mapped[int | None]
    size: Mapped[int | None]
    file: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(64))  # the rq job it was given to (its claim)
    sent_at: Mapped[dt.datetime | None]  # when it was given to that job
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")  # runs started
    locale: Mapped[str] = mapped_column(String(20), default=OFFICE_LOCALE, server_default=OFFICE_LOCALE)  # the requester's


class ExportChunk(Base):
    __tablename__ = "export_chunk"

    export_id: Mapped[int] = mapped_column(ForeignKey("export.id", ondelete="RESTRICT"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


# --- filters -------------------------------------------------------------------------------------

def _date(value, what):
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise RuleViolation(_l("%(what)s is not a date like 2026-11-26.", what=what)) from None
    if not dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
        raise RuleViolation(_l("%(what)s lies outside 2000–2100.", what=what))
    return day


def parse_filters(session, list_name: str, args) -> dict:
    """The filters of an export from a form or query string, checked; RuleViolation says what
    is wrong in the user's language. Returns plain values (JSON-able: dates as ISO strings)."""
    from .deals import PAYMENT_METHODS
    from .payments import INSTALMENT_STATUSES, PAYMENT_CHANNELS
    from .projects import Project
    if list_name not in EXPORT_LISTS:
        raise RuleViolation(_l("There is no such list to export."))
    filters: dict = {}
    project = (args.get("project") or "").strip()
    if project:
        if not project.isdigit() or session.get(Project, int(project)) is None:
            raise RuleViolation(_l("There is no such project."))
        filters["project"] = int(project)
    start, end = _date(args.get("date_from"), _l("The start date")), _date(args.get("date_to"), _l("The end date"))
    if start and end and start > end:
        raise RuleViolation(_l("The start date is after the end date."))
    if start:
        filters["date_from"] = start.isoformat()
    if end:
        filters["date_to"] = end.isoformat()
    method = (args.get("method") or "").strip()
    if method:
        if method not in PAYMENT_METHODS:
            raise RuleViolation(_l("There is no such payment method."))
        filters["method"] = method
    status = (args.get("status") or "").strip()
    statuses = INSTALMENT_STATUSES if list_name == "instalments" else ("receipt", "reversal")
    if status:
        if status not in statuses:
            raise RuleViolation(_l("There is no such status for this list."))
        filters["status"] = status
    channel = (args.get("channel") or "").strip()
    if channel:
        if list_name != "payments" or channel not in PAYMENT_CHANNELS:
            raise RuleViolation(_l("There is no such payment channel for this list."))
        filters["channel"] = channel
    if args.get("overdue") in ("1", "true", "on", True):
        if list_name != "instalments":
            raise RuleViolation(_l("Only instalments can be overdue."))
        filters["overdue"] = True
    return filters


# --- the lists -----------------------------------------------------------------------------------

def _labels(entity, column):
    """The labels of a coded column in the current language (the requester's)."""
    from .labels import CHOICES
    return {code: str(label) for code, label in CHOICES.get((entity, column), {}).items()}


def _lines_paid():
    """A function reading a payment's "seq|kind|amount;…" (its allocations, in any order) as the
    lines it paid, in the export's language (the requester's): "首付款 ¥400,000.00；第3期 ¥50,000.00"."""
    from flask_babel import gettext
    from .payments import lines_paid
    kinds = _labels("instalment", "kind")
    numbered, separator = gettext("Instalment %(n)s"), gettext("; ")

    def read(encoded: str | None) -> str:
        if not encoded:
            return ""
        parts = [part.split("|") for part in encoded.split(";")]
        return lines_paid([(int(seq), kind, Decimal(amount)) for seq, kind, amount in parts],
                          kinds, numbered, separator)
    return read


def _shared_filters(query, filters: dict, day_column):
    """The filters both lists have: project, a date range on `day_column`, payment method."""
    from .deals import Subscription
    if "project" in filters:
        query = query.where(Subscription.project_id == filters["project"])
    if "date_from" in filters:
        query = query.where(day_column >= dt.date.fromisoformat(filters["date_from"]))
    if "date_to" in filters:
        query = query.where(day_column <= dt.date.fromisoformat(filters["date_to"]))
    if "method" in filters:
        query = query.where(Subscription.payment_method == filters["method"])
    return query


def _joined(query, subscription_id, project_id, user_id):
    """The joins both lists make: the row's deal, its project, unit and building, and the user shown."""
    from .deals import Subscription
    from .inventory import Building, Unit
    from .projects import Project
    return (query.join(Subscription, Subscription.id == subscription_id)
            .join(Project, Project.id == project_id)
            .join(Unit, Unit.id == Subscription.unit_id)
            .join(Building, Building.id == Unit.building_id)
            .join(User, User.id == user_id))


def _payments_query(filters: dict):
    from .deals import Subscription
    from .payments import Instalment, Payment, PaymentAllocation
    from .inventory import Building, Unit
    from .projects import Project
    original = aliased(Payment)
    # The lines each payment paid, as "seq|kind|amount;…" from its allocations (read by _lines_paid):
    # one index lookup a row, in the same streamed query.
    paid_lines = (select(func.aggregate_strings(
        cast(Instalment.seq, String) + "|" + Instalment.kind + "|" + cast(PaymentAllocation.amount, String), ";"))
        .select_from(PaymentAllocation).join(Instalment, Instalment.id == PaymentAllocation.instalment_id)
        .where(PaymentAllocation.payment_id == Payment.id).correlate(Payment).scalar_subquery())
    query = (select(Payment.receipt_no, Project.name, Subscription.number, Subscription.customer_name,
                    Building.name, Unit.number, Payment.paid_on, Payment.amount, Payment.channel,
                    Subscription.payment_method, Payment.bank_ref, original.receipt_no, Payment.reason,
                    User.display_name, paid_lines))
    query = (_joined(query, Payment.subscription_id, Payment.project_id, Payment.recorded_by_id)
             .outerjoin(original, original.id == Payment.reverses_id)
             .order_by(Payment.paid_on, Payment.id))
    query = _shared_filters(query, filters, Payment.paid_on)
    if "channel" in filters:
        query = query.where(Payment.channel == filters["channel"])
    if filters.get("status") == "reversal":
        query = query.where(Payment.reverses_id.isnot(None))
    elif filters.get("status") == "receipt":
        query = query.where(Payment.reverses_id.is_(None))
    return query, Subscription


def _instalments_query(filters: dict, today: dt.date):
    from .deals import Subscription
    from .payments import EFFECTIVE_DUE as due, Instalment, in_force, overdue_on
    from .inventory import Building, Unit
    from .projects import Project
    query = (select(Project.name, Subscription.number, Subscription.customer_name, Building.name,
                    Unit.number, User.display_name, Instalment.seq, Instalment.kind, Instalment.due_on,
                    Instalment.extended_due_on, Instalment.amount_due, Instalment.amount_paid,
                    Instalment.status, due, Subscription.status))
    query = (_joined(query, Instalment.subscription_id, Subscription.project_id, Subscription.agent_id)
             .where(in_force()).order_by(Instalment.due_on, Instalment.id))
    query = _shared_filters(query, filters, due)
    if "status" in filters:
        query = query.where(Instalment.status == filters["status"])
    if filters.get("overdue"):
        query = query.where(overdue_on(today, joined=True))
    return query, Subscription


def _query(list_name: str, filters: dict, user, today: dt.date):
    """The list's SELECT for `user`: agents get their own customers' rows only (R-PAY-3)."""
    from .permissions import can, sees_all_rows
    if not can(user, "finance_export", "export"):
        raise PermissionDenied(_l("Your role does not allow exports."), rule="R-ALL-1")
    query, subscription = (_payments_query(filters) if list_name == "payments"
                           else _instalments_query(filters, today))
    if not sees_all_rows(user):
        query = query.where(subscription.agent_id == user.id)
    return query


def headers_of(list_name: str) -> list[str]:
    """The list's column headers in the current language (the requester's)."""
    if list_name == "payments":
        return [pgettext("export header", "Receipt no."),
                pgettext("export header", "Project"),
                pgettext("export header", "Subscription no."),
                pgettext("export header", "Customer"),
                pgettext("export header", "Unit"),
                pgettext("export header", "Paid on"),
                pgettext("export header", "Amount (yuan)"),
                pgettext("export header", "Instalments paid"),
                pgettext("export header", "Payment channel"),
                pgettext("export header", "Payment method"),
                pgettext("export header", "Bank reference"),
                pgettext("export header", "Reverses receipt"),
                pgettext("export header", "Reason"),
                pgettext("export header", "Recorded by")]
    return [pgettext("export header", "Project"),
            pgettext("export header", "Subscription no."),
            pgettext("export header", "Customer"),
            pgettext("export header", "Unit"),
            pgettext("export header", "Agent"),
            pgettext("export header", "Line"),
            pgettext("export header", "Kind of payment"),
            pgettext("export header", "Due on"),
            pgettext("export header", "Due on after extension"),
            pgettext("export header", "Amount due (yuan)"),
            pgettext("export header", "Amount paid (yuan)"),
            pgettext("export header", "Amount unpaid (yuan)"),
            pgettext("export header", "Status"),
            pgettext("export header", "Days overdue"),
            pgettext("export header", "Subscription status")]


LIST_NAMES = {"payments": _l("Payments received"), "instalments": _l("Payment plans")}  # file names
MONEY_COLUMNS = {"payments": (6,), "instalments": (9, 10, 11)}
DATE_COLUMNS = {"payments": (5,), "instalments": (7, 8)}


def _stream(session, query):
    """Rows through a server-side cursor, 5,000 at a time, without the ORM's per-row work."""
    # The option goes on the statement: on the connection it would stay for the next statements.
    return session.connection().execute(query.execution_options(yield_per=5000))


def _rows(session, list_name: str, query, today: dt.date):
    """Cells of each row, typed: str, Decimal, date, int or None."""
    if list_name == "payments":
        channels, methods = _labels("payment", "channel"), _labels("subscription", "payment_method")
        lines = _lines_paid()
        for r in _stream(session, query):
            yield [r[0] or "", r[1], r[2], r[3], f"{r[4]}-{r[5]}", r[6], r[7], lines(r[14]),
                   channels.get(r[8], r[8]), methods.get(r[9], r[9]), r[10] or "", r[11] or "", r[12] or "", r[13]]
    else:
        from .payments import days_late
        kinds, statuses = _labels("instalment", "kind"), _labels("instalment", "status")
        deals = _labels("subscription", "status")
        for r in _stream(session, query):
            overdue = days_late(r[12], r[13], r[14], today)  # overdue_on's definition, per row
            yield [r[0], r[1], r[2], f"{r[3]}-{r[4]}", r[5], r[6], kinds.get(r[7], r[7]), r[8], r[9],
                   r[10], r[11], r[10] - r[11], statuses.get(r[12], r[12]), overdue, deals.get(r[14], r[14])]


def count_rows(session, list_name: str, filters: dict, user, today: dt.date | None = None) -> int:
    query = _query(list_name, filters, user, today or office_today())
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def file_name(list_name: str, fmt: str, today: dt.date) -> str:
    """The file's name in the current language (the requester's), e.g. 收款明细-2026-11-26.xlsx."""
    return f"{LIST_NAMES[list_name]}-{today.isoformat()}.{fmt}"


def requester_locale() -> str:
    """The language of the request asking for an export (the office's outside a request)."""
    locale = get_locale()
    return str(locale) if locale is not None else OFFICE_LOCALE


def write_export(session, list_name: str, fmt: str, filters: dict, user, out, today: dt.date | None = None,
                 progress=None, locale: str | None = None) -> int:
    """Stream the list into the binary file `out` as CSV or XLSX; returns the number of rows.
    `progress(n)` is called every 10,000 rows. Headers and labels in `locale` (a background
    export: its requester's), else in the current language (the request's)."""
    if locale is not None:
        with force_locale(locale):
            return write_export(session, list_name, fmt, filters, user, out, today, progress)
    today = today or office_today()
    query = _query(list_name, filters, user, today)
    headers = headers_of(list_name)
    money, dates = MONEY_COLUMNS[list_name], DATE_COLUMNS[list_name]
    totals = {i: Decimal("0") for i in money}
    count = 0
    writer = (XlsxWriter(out, headers, money, dates, sheet=pgettext("worksheet", "Rows")) if fmt == "xlsx"
              else CsvWriter(out, headers))
    texts = [i for i in range(len(headers)) if i not in money and i not in dates]
    write = writer.row
    for row in _rows(session, list_name, query, today):
        for i in money:
            totals[i] += row[i]
        for i in texts:  # only text can start like a formula
            value = row[i]
            if value.__class__ is str and value[:1] in FORMULA_PREFIXES:
                row[i] = "'" + value
        write(row)
        count += 1
        if progress is not None and count % 10_000 == 0:
            progress(count)
    total_row = [None] * len(headers)
    total_row[0] = ngettext("Total (%(num)d row)", "Total (%(num)d rows)", count)
    for i in money:
        total_row[i] = totals[i]
    writer.row(total_row, bold=True)
    writer.close()
    return count


def audit_export(session, user, list_name: str, fmt: str, filters: dict, rows: int, export_id=None,
                 personal: bool | None = None) -> None:
    """One audit row per export: who, which list, which filter, how many rows (and, for a grid,
    whether it gave customers' personal data whole, R-ALL-1)."""
    from .audit import record
    changes = {"list": list_name, "format": fmt, "filters": filters, "rows": rows}
    if personal is not None:
        changes["personal_data"] = personal
    record(session, "export", export_id if export_id is not None else "-", "export", changes, actor=user.id)


def request_export(session, by, list_name: str, fmt: str, filters: dict, total: int) -> Export:
    """A background export for `by` (the caller commits, then enqueues)."""
    from .audit import audit_context
    from .permissions import can
    if not can(by, "finance_export", "export"):
        raise PermissionDenied(_l("Your role does not allow exports."), rule="R-ALL-1")
    if fmt not in EXPORT_FORMATS:
        raise RuleViolation(_l("Exports are CSV or XLSX."))
    with audit_context(session, actor=by, action="request_export"):
        export = Export(list=list_name, format=fmt, filters=filters, total=total, requested_by_id=by.id,
                        file=file_name(list_name, fmt, office_today()), locale=requester_locale())
        session.add(export)
        session.flush()
    return export


def store_chunks(session, export_id: int, handle) -> int:
    """Copy the file `handle` into ExportChunk rows, 1 MiB at a time; returns its size."""
    from sqlalchemy import insert
    size = seq = 0
    handle.seek(0)
    while True:
        data = handle.read(CHUNK)
        if not data:
            return size
        session.execute(insert(ExportChunk).values(export_id=export_id, seq=seq, data=data))
        size += len(data)
        seq += 1


def chunks(session, export_id: int):
    """The stored file, chunk after chunk (one in memory at a time)."""
    seqs = list(session.scalars(select(ExportChunk.seq).where(ExportChunk.export_id == export_id)
                                .order_by(ExportChunk.seq)))
    for seq in seqs:
        yield session.scalar(select(ExportChunk.data).where(ExportChunk.export_id == export_id,
                                                            ExportChunk.seq == seq))



def retry_export(session, by, export_id: int) -> Export:
    """The retry button: a failed export of `by` (or one a role that sees every export may
    list) goes back to the queue with its tries counted afresh. Idempotent: an export queued,
    running or done is left as it is. The caller commits, then sends it (`jobs.exports`)."""
    from .document_queue import requeue_failed
    from .permissions import can, scope_filter
    query = select(Export).where(Export.id == export_id)
    clause = scope_filter(Export, by)  # the export grid's own scope
    export = session.scalar(query if clause is None else query.where(clause))
    if export is None or not can(by, "export", "list"):
        raise PermissionDenied(_l("There is no such export, or it is not yours."), rule="R-ALL-1")
    requeue_failed(session, Export, export_id, by)
    session.refresh(export)
    return export


# --- a background export's states (the job in jobs/exports.py calls these) ------------------------

def give_to_job(session, export_id: int, job_id: str, held_by: str | None = None) -> bool:
    """Queued and held by no job (or by `held_by`) → held by job `job_id`: one conditional UPDATE,
    committed (the worker must find it). False: someone else gave it to a job first."""
    from sqlalchemy import update
    holder = Export.job_id.is_(None) if held_by is None else Export.job_id == held_by
    claimed = session.execute(update(Export).where(Export.id == export_id, Export.status == "queued", holder)
                              .values(job_id=job_id, sent_at=utcnow())
                              .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return bool(claimed)


def take_back(session, export_id: int, job_id: str) -> None:
    """Job `job_id` never reached the queue (Redis down): the export it was given is queued again
    without a job, for the sweep. Ends the caller's transaction first; commits."""
    from sqlalchemy import update
    session.rollback()
    session.execute(update(Export).where(Export.id == export_id, Export.job_id == job_id, Export.status == "queued")
                    .values(job_id=None, sent_at=None).execution_options(synchronize_session=False))
    session.commit()


def unsent_exports(session) -> list[int]:
    """The queued exports no job holds (asked for while Redis was down, given back, retried)."""
    return session.scalars(select(Export.id).where(Export.status == "queued", Export.job_id.is_(None))
                           .order_by(Export.id)).all()


def run_export(session, export_id: int, job_id: str | None = None, progress=None, before_write=None) -> dict:
    """Write export `export_id` as its requester (their row scope, their language): queued →
    running → done, or failed with the error (raised again, for the job). Safe to run twice:
    only a queued export is taken (one conditional UPDATE), so one already done, failed or being
    written by another worker is left alone ({"skipped": True}). `job_id`: the rq job writing it
    (the claim's owner); `progress(done, total)` every 10,000 rows and at the end;
    `before_write()` once it is claimed (the fault tests' pause)."""
    import tempfile

    from sqlalchemy import delete, update

    from .audit import audit_context, record
    values = {"status": "running", "error": "", "started_at": utcnow(), "attempts": Export.attempts + 1}
    if job_id is not None:
        values["job_id"] = job_id
    claimed = session.execute(update(Export).where(Export.id == export_id, Export.status == "queued")
                              .values(**values)
                              .execution_options(synchronize_session=False)).rowcount
    if not claimed:
        session.commit()
        return {"skipped": True}
    record(session, "export", export_id, "export_started", {"status": "running"})
    session.execute(delete(ExportChunk).where(ExportChunk.export_id == export_id))  # a half-done run's
    session.commit()
    export = session.get(Export, export_id, populate_existing=True)

    def report(done):
        if progress is not None:
            progress(done, export.total)

    try:
        if before_write is not None:
            before_write()
        with tempfile.TemporaryFile() as handle:
            rows = write_export(session, export.list, export.format, export.filters, export.requested_by,
                                handle, progress=report, locale=export.locale)  # the requester's language
            size = store_chunks(session, export.id, handle)
    except Exception as exc:
        session.rollback()
        export = session.get(Export, export_id, populate_existing=True)
        with audit_context(session, action="export_failed"):
            export.status, export.error, export.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:2000], utcnow()
            session.flush()
        session.commit()
        raise
    with audit_context(session, action="export_done"):
        export.status, export.rows, export.size, export.finished_at = "done", rows, size, utcnow()
        session.flush()
    audit_export(session, export.requested_by, export.list, export.format, export.filters, rows, export.id)
    session.commit()
    report(rows)
    return {"rows": rows, "size": size}
