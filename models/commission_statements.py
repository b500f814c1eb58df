"""Monthly commission statements (issue 23, R-COM-2, 佣金月结) and the sales floor's figures.

A statement gathers one payee's commission lines (models.commissions) of one month of one
project: what was earned (the positive lines), clawed back (the negative ones), the total.
`draw_statements` draws (or refreshes) the drafts (any time: a month not over is a preview);
`approve_statement` approves one once its month is over in the office's time — by the
sales manager up to the project's `commission_vp_limit`, by the vice-president above it, never
by the payee — and stamps its lines: the month is then closed for that payee
(`models.commissions.line_month` sends a later line to the next open month).

The floor's figures are defined here once each, and every page, export and PDF reads them:
`statement_figures` / `statement_lines` (a statement), `commissions_accrued` (lines per month),
`commissions_payable` (approved statements per month), `channel_conversion` (visits →
subscriptions → signings per channel and month, attributed by `deal_channel`).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, exists, func, literal, select, update

from .audit import record_many
from .base import office_midnight_utc, office_today, utcnow
from .channels import ChannelCompany, ChannelMember, ChannelRegistration
from .commissions import CommissionLine, CommissionStatement
from .contracts import Contract
from .deals import Subscription
from .dialect import insert_ignoring_duplicates
from .errors import RuleViolation
from .money import format_money
from .notifications import notify
from .permissions import can_do, require
from .projects import Project
from .reception import Visit
from .reports import deal_was_a_sale
from .users import User, users_who_may

ZERO = Decimal("0")
RULE = "R-COM-2"


# --- months -----------------------------------------------------------------------------------------

def first_of_month(value) -> dt.date:
    """The first day of a month given as a date or "YYYY-MM" (refused otherwise)."""
    if isinstance(value, dt.date):
        return value.replace(day=1)
    try:
        year, month = str(value or "").strip().split("-")[:2]
        return dt.date(int(year), int(month), 1)
    except (TypeError, ValueError):
        raise RuleViolation(_l("Give the month as YYYY-MM."), rule=RULE) from None


def next_month(first: dt.date) -> dt.date:
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def months_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """The first days of the months from `start`'s to `end`'s, both included."""
    months, month = [], first_of_month(start)
    while month <= end:
        months.append(month)
        month = next_month(month)
    return months


def _payee_key(user_id, company_id) -> tuple:
    return (user_id, company_id)


def _of_payee(model, user_id, company_id):
    return and_(model.payee_user_id == user_id if user_id is not None else model.payee_user_id.is_(None),
                model.payee_company_id == company_id if company_id is not None else model.payee_company_id.is_(None))


# --- one statement's figures -------------------------------------------------------------------------

def _sums(*where):
    """earned, clawed_back, total, line_count of the lines matching `where`, per payee."""
    return (select(CommissionLine.payee_user_id, CommissionLine.payee_company_id,
                   func.coalesce(func.sum(case((CommissionLine.amount > 0, CommissionLine.amount), else_=0)), 0),
                   func.coalesce(func.sum(case((CommissionLine.amount < 0, CommissionLine.amount), else_=0)), 0),
                   func.coalesce(func.sum(CommissionLine.amount), 0), func.count())
            .where(*where).group_by(CommissionLine.payee_user_id, CommissionLine.payee_company_id))


def _statement_lines_where(st: CommissionStatement):
    """The lines a statement covers: its stamped lines once approved; while a draft, the payee's
    lines of the month that no approved statement holds."""
    if st.status == "approved":
        return (CommissionLine.statement_id == st.id,)
    return (CommissionLine.project_id == st.project_id, CommissionLine.month == st.month,
            CommissionLine.statement_id.is_(None), _of_payee(CommissionLine, st.payee_user_id, st.payee_company_id))


def statement_figures(session, st: CommissionStatement) -> dict:
    """The statement's figures from its lines as they are NOW (the approval compares them with the
    drawn ones; the export and the PDF show the drawn ones, which equal these once approved)."""
    row = session.execute(_sums(*_statement_lines_where(st))).first()
    if row is None:
        return {"earned": ZERO, "clawed_back": ZERO, "total": ZERO, "line_count": 0}
    return {"earned": Decimal(row[2]), "clawed_back": Decimal(row[3]), "total": Decimal(row[4]),
            "line_count": int(row[5])}


def statement_lines(session, st: CommissionStatement) -> list[dict]:
    """The statement's lines by stage and deal (oldest first), for the export and the PDF."""
    rows = session.execute(
        select(CommissionLine.id, CommissionLine.stage, CommissionLine.kind, CommissionLine.role,
               CommissionLine.base, CommissionLine.amount, CommissionLine.earned_on, CommissionLine.reason,
               Subscription.number, Subscription.customer_name)
        .join(Subscription, Subscription.id == CommissionLine.subscription_id)
        .where(*_statement_lines_where(st))
        .order_by(CommissionLine.stage, Subscription.number, CommissionLine.id)).all()
    return [{"id": r[0], "stage": r[1], "kind": r[2], "role": r[3], "base": r[4], "amount": r[5],
             "earned_on": r[6], "reason": r[7], "deal": r[8], "customer": r[9]} for r in rows]


def payee_name(session, st) -> str:
    if st.payee_user_id is not None:
        return session.scalar(select(User.display_name).where(User.id == st.payee_user_id)) or ""
    return session.scalar(select(ChannelCompany.name).where(ChannelCompany.id == st.payee_company_id)) or ""


def payee_users(session, st) -> list[int]:
    """Who is told about a statement: the payee, or the channel company's people."""
    if st.payee_user_id is not None:
        return [st.payee_user_id]
    return list(session.scalars(select(ChannelMember.user_id).where(ChannelMember.company_id == st.payee_company_id)))


# --- drawing the month's statements ----------------------------------------------------------------

def draw_statements(session, by, project_id: int, month, today: dt.date | None = None) -> dict:
    """Draw up the month's statements of a project (R-COM-2): one draft per payee (a person or a
    channel company) with lines of the month that no approved statement holds — earned, clawed
    back, total, line count, and whether the vice-president must approve (total above the
    project's `commission_vp_limit`). Drawing again refreshes the drafts (idempotent); two
    drawings at once meet at the partial unique indexes (INSERT … ON CONFLICT DO NOTHING, then a
    conditional UPDATE … WHERE status = 'draft'), so each payee keeps one statement. Set-based:
    one GROUP BY over the month's lines. An approved statement is never touched. Returns
    {"drawn": n, "created": n, "refreshed": n, "needs_vp": n}. Raises PermissionDenied."""
    require(by, "commission.statement")
    month = first_of_month(month)
    project = session.get(Project, project_id)
    if project is None:
        raise RuleViolation(_l("There is no such project."), rule=RULE)
    limit = project.commission_vp_limit
    sums = session.execute(_sums(CommissionLine.project_id == project_id, CommissionLine.month == month,
                                 CommissionLine.statement_id.is_(None))).all()
    existing = {_payee_key(u, c): (sid, status, total, count, needs_vp) for sid, u, c, status, total, count, needs_vp
                in session.execute(select(CommissionStatement.id, CommissionStatement.payee_user_id,
                                          CommissionStatement.payee_company_id, CommissionStatement.status,
                                          CommissionStatement.total, CommissionStatement.line_count,
                                          CommissionStatement.needs_vp)
                                   .where(CommissionStatement.project_id == project_id,
                                          CommissionStatement.month == month))}
    wanted = []
    for user_id, company_id, earned, clawed, total, count in sums:
        key = _payee_key(user_id, company_id)
        if key in existing and existing[key][1] == "approved":
            continue  # a line in a closed month (written before line_month moved it): the next drawing's
        total = Decimal(total)
        wanted.append({"project_id": project_id, "month": month, "payee_user_id": user_id,
                       "payee_company_id": company_id, "status": "draft", "earned": Decimal(earned),
                       "clawed_back": Decimal(clawed), "total": total, "line_count": int(count),
                       "needs_vp": bool(total > limit), "created_at": utcnow()})
    new = [row for row in wanted if _payee_key(row["payee_user_id"], row["payee_company_id"]) not in existing]
    inserted: dict[tuple, int] = {}  # drafts this drawing inserted (a concurrent one's are refreshed below)
    for where, rows in ((CommissionStatement.payee_user_id.isnot(None), [r for r in new if r["payee_user_id"]]),
                        (CommissionStatement.payee_company_id.isnot(None),
                         [r for r in new if r["payee_company_id"]])):
        if rows:
            column = "payee_user_id" if rows[0]["payee_user_id"] else "payee_company_id"
            stmt = insert_ignoring_duplicates(session, CommissionStatement, ["project_id", "month", column],
                                              index_where=where)
            for sid, user_id, company_id in session.execute(stmt.returning(
                    CommissionStatement.id, CommissionStatement.payee_user_id, CommissionStatement.payee_company_id),
                    rows):
                inserted[_payee_key(user_id, company_id)] = sid
    # Refresh every draft to the figures drawn now (those just inserted included: harmless).
    refreshed, changes = 0, []
    for row in wanted:
        key = _payee_key(row["payee_user_id"], row["payee_company_id"])
        before = existing.get(key)
        if key in inserted:  # inserted just now with these figures
            changes.append((inserted[key], {"total": [None, str(row["total"])], "line_count": [None, row["line_count"]],
                                            "needs_vp": [None, row["needs_vp"]]}))
            continue
        if before is not None and (before[2], before[3], before[4]) == (row["total"], row["line_count"],
                                                                           row["needs_vp"]):
            continue  # nothing changed since the last drawing
        result = session.execute(
            update(CommissionStatement)
            .where(CommissionStatement.project_id == project_id, CommissionStatement.month == month,
                   _of_payee(CommissionStatement, row["payee_user_id"], row["payee_company_id"]),
                   CommissionStatement.status == "draft")
            .values(earned=row["earned"], clawed_back=row["clawed_back"], total=row["total"],
                    line_count=row["line_count"], needs_vp=row["needs_vp"])
            .returning(CommissionStatement.id)
            .execution_options(synchronize_session=False)).all()
        for (sid,) in result:
            refreshed += before is not None
            changes.append((sid, {"total": [str(before[2]) if before else None, str(row["total"])],
                                  "line_count": [before[3] if before else None, row["line_count"]],
                                  "needs_vp": [before[4] if before else None, row["needs_vp"]]}))
    record_many(session, "commission_statement", "draw_commission_statement", by, changes)
    session.expire_all()
    waiting_vp = [row for row in wanted if row["needs_vp"]]
    newly_vp = [row for row in waiting_vp
                if not (existing.get(_payee_key(row["payee_user_id"], row["payee_company_id"])) or (0, 0, 0, 0, False))[4]]
    if newly_vp:  # the vice-president is told once a statement waits for him
        notify(session, [u for u in users_who_may(session, "commission.approve_beyond_limit") if u != by.id],
               "commission_statement_waiting", {"month": month.strftime("%Y-%m"), "n": len(newly_vp),
                                                "project": project.name},
               "/admin/commission_statement/")
    return {"drawn": len(wanted), "created": len(inserted), "refreshed": refreshed, "needs_vp": len(waiting_vp)}


# --- approving one ----------------------------------------------------------------------------------

def month_refusal(st: CommissionStatement, today: dt.date | None = None) -> RuleViolation | None:
    """Why `st` may not be approved YET (None: it may): a month is approved only once it is over
    in the office's time (`today` default: the office's today). Until then its draft is a
    preview: approving it would close the month early and send the rest of its lines to the next
    month — one month's earnings sliced into statements each under the vice-president's limit."""
    opens = next_month(first_of_month(st.month))
    if opens > (today or office_today()):
        return RuleViolation(_l("The statement of %(month)s can be approved once the month is over, from %(day)s; "
                                "until then it is a preview.", month=st.month.strftime("%Y-%m"),
                                day=opens.isoformat()), rule=RULE)
    return None


def approval_refusal(session, by, st: CommissionStatement, today: dt.date | None = None,
                     month_over: bool = True) -> RuleViolation | None:
    """Why `by` may not approve `st` (None: they may). The buttons ask this too (the month's end
    apart, `month_over=False`: the button then shows, disabled, with `month_refusal`'s reason)."""
    if not can_do(by, "commission.approve"):
        return RuleViolation(_l("The sales manager or the vice-president approves commission statements."),
                             rule=RULE)
    if month_over and (early := month_refusal(st, today)) is not None:
        return early
    if st.payee_user_id == by.id or (st.payee_company_id is not None and session.scalar(
            select(ChannelMember.user_id).where(ChannelMember.company_id == st.payee_company_id,
                                                ChannelMember.user_id == by.id)) is not None):
        return RuleViolation(_l("This is your own commission statement: someone else approves it."), rule=RULE)
    limit = session.scalar(select(Project.commission_vp_limit).where(Project.id == st.project_id))
    if (st.needs_vp or st.total > limit) and not can_do(by, "commission.approve_beyond_limit"):
        return RuleViolation(_l("This statement's total passes %(limit)s: only the vice-president approves it.",
                                limit=format_money(limit)), rule=RULE)
    return None


def _already_approved(session, statement_id: int) -> RuleViolation:
    st = session.get(CommissionStatement, statement_id, populate_existing=True)
    who = st.approved_by.display_name if st is not None and st.approved_by else "—"
    return RuleViolation(_l("This statement was already approved (by %(who)s); nothing was changed.", who=who),
                         rule=RULE)


def approve_statement(session, by, statement_id: int, today: dt.date | None = None) -> CommissionStatement:
    """Approve a drafted statement (R-COM-2) once its month is over in the office's time (`today`,
    default the office's today): the manager up to the project's limit, the
    vice-president above it, never the payee. A conditional UPDATE from `draft` (two approvals
    at once, or a double click, approve once: the second is told it was done); the payee's lines
    of the month are stamped with the statement and must add up to the drawn total and count,
    else nothing is approved ("redraw"). The month is then closed for the payee: later lines go
    to the next month (models.commissions.line_month). The payee and the approver are told."""
    require(by, "commission.approve")
    st = session.get(CommissionStatement, statement_id, populate_existing=True)
    if st is None:
        raise RuleViolation(_l("There is no such commission statement."), rule=RULE)
    if st.status != "draft":
        raise _already_approved(session, statement_id)
    refused = approval_refusal(session, by, st, today)
    if refused is not None:
        raise refused
    drawn = (st.total, st.line_count)
    now = utcnow()
    # The conditional UPDATE first: it takes the row's lock, so a line written meanwhile by the
    # engine (which reads the statement FOR SHARE in line_month) either lands before — and the
    # count below no longer matches — or waits and goes to the next month.
    matched = session.execute(
        update(CommissionStatement).where(CommissionStatement.id == statement_id,
                                          CommissionStatement.status == "draft")
        .values(status="approved", approved_by_id=by.id, approved_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        raise _already_approved(session, statement_id)
    stamped = session.execute(
        update(CommissionLine).where(CommissionLine.project_id == st.project_id, CommissionLine.month == st.month,
                                     CommissionLine.statement_id.is_(None),
                                     _of_payee(CommissionLine, st.payee_user_id, st.payee_company_id))
        .values(statement_id=statement_id).execution_options(synchronize_session=False)).rowcount
    total = session.scalar(select(func.coalesce(func.sum(CommissionLine.amount), 0))
                           .where(CommissionLine.statement_id == statement_id))
    if stamped != drawn[1] or Decimal(total) != drawn[0]:
        raise RuleViolation(_l("The lines of this statement changed since it was drawn (%(now)s in %(n)d lines, "
                               "drawn %(then)s in %(m)d): redraw the month's statements, then approve.",
                               now=format_money(Decimal(total)), n=stamped, then=format_money(drawn[0]),
                               m=drawn[1]), rule=RULE)
    record_many(session, "commission_statement", "approve_commission_statement", by,
                [(statement_id, {"status": ["draft", "approved"], "approved_by_id": [None, by.id],
                                 "total": [str(drawn[0]), str(drawn[0])], "line_count": [drawn[1], stamped]})])
    st = session.get(CommissionStatement, statement_id, populate_existing=True)
    params = {"month": st.month.strftime("%Y-%m"), "payee": payee_name(session, st), "amount": str(st.total)}
    notify(session, sorted(set(payee_users(session, st)) | {by.id}), "commission_statement_approved", params,
           f"/admin/commission_statement/details/?id={statement_id}")
    return st


# --- the floor's figures (one function each) ------------------------------------------------------

def commissions_accrued(session, project_id: int | None, start: dt.date, end: dt.date) -> list[dict]:
    """Commission accrued per month (the lines' month) from `start`'s month to `end`'s: earned,
    clawed back, total, lines — the dashboard's "accrued" figure."""
    where = [CommissionLine.month.between(first_of_month(start), first_of_month(end))]
    if project_id:
        where.append(CommissionLine.project_id == project_id)
    rows = {m: (e, c, t, n) for m, e, c, t, n in session.execute(
        select(CommissionLine.month,
               func.coalesce(func.sum(case((CommissionLine.amount > 0, CommissionLine.amount), else_=0)), 0),
               func.coalesce(func.sum(case((CommissionLine.amount < 0, CommissionLine.amount), else_=0)), 0),
               func.coalesce(func.sum(CommissionLine.amount), 0), func.count())
        .where(*where).group_by(CommissionLine.month))}
    return [{"month": m.strftime("%Y-%m"), "earned": Decimal(rows.get(m, (0,) * 4)[0]),
             "clawed_back": Decimal(rows.get(m, (0,) * 4)[1]), "total": Decimal(rows.get(m, (0,) * 4)[2]),
             "lines": int(rows.get(m, (0,) * 4)[3])} for m in months_between(start, end)]


def commissions_payable(session, project_id: int | None, start: dt.date, end: dt.date) -> list[dict]:
    """Commission payable per month: the approved statements' totals and count — the dashboard's
    "payable" figure (the same statements finance exports)."""
    where = [CommissionStatement.status == "approved",
             CommissionStatement.month.between(first_of_month(start), first_of_month(end))]
    if project_id:
        where.append(CommissionStatement.project_id == project_id)
    rows = {m: (t, n) for m, t, n in session.execute(
        select(CommissionStatement.month, func.coalesce(func.sum(CommissionStatement.total), 0), func.count())
        .where(*where).group_by(CommissionStatement.month))}
    return [{"month": m.strftime("%Y-%m"), "total": Decimal(rows.get(m, (0, 0))[0]),
             "statements": int(rows.get(m, (0, 0))[1])} for m in months_between(start, end)]


def deal_channel(lead_id_column, project_id_column):
    """THE attribution of a customer (and so of his deals) to a channel, as SQL (R-COM-1,
    R-RCP-2): `channel` when the lead has a registration confirmed by a visit (an external
    channel brought him), else the channel of his FIRST visit to the project, else `none` (no
    visit registered). One definition: the dashboard, the analytics page and its export."""
    confirmed = exists().where(ChannelRegistration.lead_id == lead_id_column,
                               ChannelRegistration.project_id == project_id_column,
                               ChannelRegistration.status == "confirmed")
    first_visit = (select(Visit.channel).where(Visit.lead_id == lead_id_column, Visit.project_id == project_id_column)
                   .order_by(Visit.arrived_at, Visit.id).limit(1).scalar_subquery())
    return case((confirmed, literal("channel")), else_=func.coalesce(first_visit, literal("none")))


def _month_bucket(column, months: list[dt.date], as_utc: bool):
    """SQL naming the month ("YYYY-MM") a value falls in, among `months` (a date column, or a UTC
    time whose month is the office's): the same on both databases."""
    whens = []
    for first in months:
        last = next_month(first)
        lo, hi = (office_midnight_utc(first), office_midnight_utc(last)) if as_utc else (first, last)
        whens.append((and_(column >= lo, column < hi), literal(first.strftime("%Y-%m"))))
    return case(*whens, else_=literal(None))


def channel_conversion(session, project_id: int | None, start: dt.date, end: dt.date) -> list[dict]:
    """Visits → subscriptions → signings per channel and per month, `start`'s month to `end`'s
    (R-RCP-2): visits by their registered channel and arrival (office time); subscriptions (the
    deals that were a sale: models.reports.deal_was_a_sale) by subscription date and signings
    (sale contracts signed) by signing date, both attributed by `deal_channel`. Rows sorted by
    month then channel, each with its rates (per 100 visits)."""
    months = months_between(start, end)
    if not months:
        return []
    lo, hi = months[0], next_month(months[-1])
    counts: dict[tuple, dict] = {}

    def add(key, what, n):
        counts.setdefault(key, {"visits": 0, "subscriptions": 0, "signings": 0})[what] += n

    v_month = _month_bucket(Visit.arrived_at, months, as_utc=True)
    where = [Visit.arrived_at >= office_midnight_utc(lo), Visit.arrived_at < office_midnight_utc(hi)]
    if project_id:
        where.append(Visit.project_id == project_id)
    for month, channel, n in session.execute(select(v_month, Visit.channel, func.count()).where(*where)
                                             .group_by(v_month, Visit.channel)):
        add((month, channel), "visits", n)
    attributed = deal_channel(Subscription.lead_id, Subscription.project_id).label("channel")
    s_month = _month_bucket(Subscription.subscribed_on, months, as_utc=False).label("month")
    where = [Subscription.subscribed_on >= lo, Subscription.subscribed_on < hi, deal_was_a_sale()]
    if project_id:
        where.append(Subscription.project_id == project_id)
    inner = select(s_month, attributed).where(*where).subquery()
    for month, channel, n in session.execute(select(inner.c.month, inner.c.channel, func.count())
                                             .group_by(inner.c.month, inner.c.channel)):
        add((month, channel), "subscriptions", n)
    c_month = _month_bucket(Contract.signed_on, months, as_utc=False).label("month")
    where = [Contract.kind == "sale", Contract.signed_on >= lo, Contract.signed_on < hi]
    if project_id:
        where.append(Subscription.project_id == project_id)
    inner = (select(c_month, attributed).join(Subscription, Subscription.id == Contract.subscription_id)
             .where(*where).subquery())
    for month, channel, n in session.execute(select(inner.c.month, inner.c.channel, func.count())
                                             .group_by(inner.c.month, inner.c.channel)):
        add((month, channel), "signings", n)
    rows = []
    for (month, channel), c in sorted(counts.items(), key=lambda item: (item[0][0], item[0][1])):
        rows.append({"month": month, "channel": channel, **c,
                     "subscription_rate": _per_hundred(c["subscriptions"], c["visits"]),
                     "signing_rate": _per_hundred(c["signings"], c["visits"])})
    return rows


def conversion_totals(rows: list[dict]) -> list[dict]:
    """`channel_conversion`'s rows summed per channel over the period (the dashboard's panel)."""
    per: dict[str, dict] = {}
    for row in rows:
        c = per.setdefault(row["channel"], {"channel": row["channel"], "visits": 0, "subscriptions": 0,
                                            "signings": 0})
        for key in ("visits", "subscriptions", "signings"):
            c[key] += row[key]
    out = sorted(per.values(), key=lambda c: c["channel"])
    for c in out:
        c["subscription_rate"] = _per_hundred(c["subscriptions"], c["visits"])
        c["signing_rate"] = _per_hundred(c["signings"], c["visits"])
    return out


def _per_hundred(part, whole):
    return None if not whole else round(100.0 * part / whole, 1)


def floor_figures(session, project_id: int | None, start: dt.date, end: dt.date) -> dict:
    """Everything the floor dashboard shows, each from its one function."""
    from .reception import rotation_fairness
    conversion = channel_conversion(session, project_id, start, end)
    return {"fairness": rotation_fairness(session, project_id, start, end), "conversion": conversion,
            "conversion_totals": conversion_totals(conversion),
            "accrued": commissions_accrued(session, project_id, start, end),
            "payable": commissions_payable(session, project_id, start, end)}
