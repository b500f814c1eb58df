"""The overdue ladder and extensions (R-PAY-4, R-PAY-5, R-PAY-6, R-PAY-7).

Days overdue count from an instalment's effective due date (its extended date if an extension
was approved). Per project (settings): a reminder N days before; a warning from day 2; a
lawyer's letter from day 8; forfeit (挞定) from day 15 — subscription forfeited, unit available
again, the customer's records snapshotted and kept apart. Every rung is an overdue_event,
unique per (instalment, due date, level): a run twice for one day, or two runs at once, write
each event once; a run after missed days applies each level once, in order.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, func, insert, select, update

from .audit import audit_context, record_many
from .base import office_today, utcnow
from .documents import queue_letters
from .deals import EFFECTIVE_DUE, Extension, Instalment, OverdueEvent, Payment, Subscription
from .errors import RuleViolation
from .inventory import Project, Unit
from .leads import Lead, LeadArchive
from .notifications import notify
from .permissions import require, sees_all_rows

LADDER_SUBSCRIPTIONS = ("confirmed", "active")  # deals still waiting for their money


def _thresholds(project: Project) -> dict[str, int]:
    return {"warning": project.warning_day, "lawyer_letter": project.lawyer_letter_day,
            "forfeit": project.forfeit_day}


def ladder_level(project: Project, days_overdue: int) -> str | None:
    """The rung of the ladder a line `days_overdue` past its due date stands on (R-PAY-5):
    forfeit, lawyer_letter, warning, or None before the warning day."""
    for level, day in sorted(_thresholds(project).items(), key=lambda item: -item[1]):
        if days_overdue >= day:
            return level
    return None


def _overdue_query(project_id: int, level: str, cutoff: dt.date, first_due: dt.date | None = None):
    """Open instalments of live deals in `project_id` whose effective due date is on or before
    `cutoff` (and on or after `first_due`), without an event of `level` for that due date."""
    conditions = [Instalment.status != "paid", EFFECTIVE_DUE <= cutoff,
                  Subscription.project_id == project_id, Subscription.status.in_(LADDER_SUBSCRIPTIONS),
                  ~exists().where(OverdueEvent.instalment_id == Instalment.id,
                                  OverdueEvent.due_on == EFFECTIVE_DUE, OverdueEvent.level == level,
                                  OverdueEvent.cause == "payment")]
    if first_due is not None:
        conditions.append(EFFECTIVE_DUE >= first_due)
    return select(Instalment.id, EFFECTIVE_DUE.label("due"), Subscription.id.label("sub"),
                  Subscription.agent_id).join(Subscription, Subscription.id == Instalment.subscription_id
                                              ).where(*conditions)


def _insert_events(session, rows, level: str, today: dt.date, cause: str = "payment") -> list:
    """INSERT the events, ignoring any another run wrote meanwhile; returns those written."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    values = [{"instalment_id": r.id, "due_on": r.due, "level": level, "cause": cause, "on": today,
               "created_at": utcnow()} for r in rows]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        statement = pg_insert(OverdueEvent).on_conflict_do_nothing(
            index_elements=["instalment_id", "due_on", "level", "cause"])
    else:
        statement = insert(OverdueEvent).prefix_with("OR IGNORE")
    written = []
    for start in range(0, len(values), 5000):
        chunk = values[start:start + 5000]
        result = session.execute(statement.returning(OverdueEvent.id, OverdueEvent.instalment_id), chunk)
        written += result.all()
    record_many(session, "overdue_event", level, None,
                [(event_id, {"instalment_id": [None, instalment_id], "level": [None, level],
                             "cause": [None, cause]})
                 for event_id, instalment_id in written])
    return written


LEVEL_TEXT = {
    "reminder": "付款提醒：您的客户有一笔款项将于 {due} 到期（{no}）。",
    "warning": "逾期警告：您的客户有一笔款项已逾期（{no}，应付日 {due}），请尽快联系客户并记录情况。",
    "lawyer_letter": "律师函：{no} 的款项逾期已到发律师函的期限（应付日 {due}）。",
}


def _notify_agents(session, rows, written_ids, level):
    """One notification per agent and level, naming the subscriptions."""
    by_agent: dict[int, list[str]] = {}
    wanted = {instalment_id for _, instalment_id in written_ids}
    numbers = dict(session.execute(select(Subscription.id, Subscription.number).where(
        Subscription.id.in_({r.sub for r in rows if r.id in wanted}))).all()) if wanted else {}
    for r in rows:
        if r.id in wanted:
            by_agent.setdefault(r.agent_id, []).append(
                LEVEL_TEXT[level].format(no=numbers.get(r.sub, r.sub), due=r.due))
    for agent_id, texts in by_agent.items():
        notify(session, [agent_id], f"ladder_{level}", texts[0] if len(texts) == 1
               else f"{texts[0]} 等 {len(texts)} 笔", "/admin/overdue_event/")


def run_ladder(session, today: dt.date | None = None, dry_run: bool = False) -> Counter:
    """Run the ladder for the office day `today` and commit, level by level; each forfeit in a
    transaction of its own. `dry_run` counts what would happen and writes nothing. Returns the
    number of events (or forfeits) per level."""
    today = today or office_today()
    counts: Counter = Counter()
    for project in session.scalars(select(Project).order_by(Project.id)).all():
        # Reminders: open instalments due within the next N days (or today).
        rows = session.execute(_overdue_query(project.id, "reminder",
                                              today + dt.timedelta(days=project.reminder_days_before),
                                              first_due=today)).all()
        counts["reminder"] += len(rows) if dry_run else _written(session, rows, "reminder", today)
        for level, day in _thresholds(project).items():
            rows = session.execute(_overdue_query(project.id, level, today - dt.timedelta(days=day))).all()
            if level == "forfeit":
                subs = sorted({r.sub for r in rows})
                counts["forfeit"] += len(subs) if dry_run else sum(
                    forfeit(session, sub_id, today) for sub_id in subs)
            else:
                counts[level] += len(rows) if dry_run else _written(session, rows, level, today)
        for level, day in _thresholds(project).items():  # R-CON-5: paid but not signed in time
            rows = _signing_overdue(session, project.id, level, today - dt.timedelta(days=day))
            if level == "forfeit":
                counts["signing_forfeit"] += len(rows) if dry_run else sum(
                    forfeit(session, r.sub, today, cause="signing") for r in rows)
            else:
                counts[f"signing_{level}"] += len(rows) if dry_run else _written(
                    session, rows, level, today, cause="signing")
    if dry_run:
        session.rollback()
    return counts


LETTERS = {"warning": "overdue_warning", "lawyer_letter": "lawyer_letter"}


def _written(session, rows, level, today, cause: str = "payment") -> int:
    written = _insert_events(session, rows, level, today, cause)
    if level in LETTERS:  # the letter of each new rung, in the same transaction (R-PAY-5)
        queue_letters(session, LETTERS[level], [event_id for event_id, _ in written])
    if level in LEVEL_TEXT and cause == "payment":
        _notify_agents(session, rows, written, level)
    elif written:
        by_agent = {}
        for r in rows:
            by_agent.setdefault(r.agent_id, 0)
            by_agent[r.agent_id] += 1
        for agent_id, n in by_agent.items():
            notify(session, [agent_id], f"signing_{level}",
                   f"签约逾期：您有 {n} 位客户首期已付清但超过约定期限仍未签约，请尽快安排。", "/admin/contract/")
    session.commit()
    return len(written)


def _signing_overdue(session, project_id: int, level: str, cutoff: dt.date) -> list:
    """Booked sale contracts past their signing due date by the level's days, whose down payment
    is complete (R-CON-5), without that level's signing event yet. Rows carry the deposit line."""
    from .contracts import Contract, signing_gate
    rows = session.execute(
        select(Instalment.id, Contract.signing_due_on.label("due"), Subscription.id.label("sub"),
               Subscription.agent_id)
        .join(Subscription, Subscription.id == Contract.subscription_id)
        .join(Instalment, and_(Instalment.subscription_id == Subscription.id, Instalment.kind == "deposit"))
        .where(Contract.kind == "sale", Contract.status == "booked", Contract.signing_due_on <= cutoff,
               Subscription.project_id == project_id, Subscription.status == "active",
               ~exists().where(OverdueEvent.instalment_id == Instalment.id,
                               OverdueEvent.due_on == Contract.signing_due_on,
                               OverdueEvent.level == level, OverdueEvent.cause == "signing"))).all()
    ready = []
    for row in rows:
        required, paid = signing_gate(session, session.get(Subscription, row.sub))
        if paid >= required:  # short payers are the payment ladder's business
            ready.append(row)
    return ready


def forfeit(session, subscription_id: int, today: dt.date, cause: str = "payment") -> bool:
    """挞定 (R-PAY-5): in one transaction, re-checked under lock — a payment recorded before this
    moment stops it. The subscription is forfeited, the unit available again, the customer's
    records snapshotted apart (LeadArchive), the forfeit event written. Returns whether it did."""
    try:
        sub = session.scalar(select(Subscription).where(Subscription.id == subscription_id)
                             .with_for_update().execution_options(populate_existing=True))
        if sub is None or sub.status not in LADDER_SUBSCRIPTIONS:
            session.rollback()
            return False
        days = sub.project.forfeit_day
        if cause == "signing":
            overdue = [r for r in _signing_overdue(session, sub.project_id, "forfeit",
                                                   today - dt.timedelta(days=days)) if r.sub == sub.id]
        else:
            overdue = session.execute(
                select(Instalment.id, EFFECTIVE_DUE.label("due"))
                .where(Instalment.subscription_id == sub.id, Instalment.status != "paid",
                       EFFECTIVE_DUE <= today - dt.timedelta(days=days))
                .order_by(EFFECTIVE_DUE).with_for_update(of=Instalment)).all()
        if not overdue:
            session.rollback()  # paid, extended or signed meanwhile: no forfeit
            return False
        written = _insert_events(session, overdue[:1], "forfeit", today, cause)
        if not written:
            session.rollback()
            return False
        lead = session.get(Lead, sub.lead_id)
        with audit_context(session, action="forfeit"):
            session.add(LeadArchive(lead_id=lead.id, subscription_id=sub.id, reason="forfeit",
                                    snapshot=_snapshot(session, sub, lead, today)))
            sub.status = "forfeited"
            sub.forfeited_at = utcnow()
            lead.stage = "lost"
            session.flush()
        session.execute(update(Unit).where(Unit.id == sub.unit_id, Unit.status == "subscribed")
                        .values(status="available").execution_options(synchronize_session=False))
        record_many(session, "unit", "forfeit", None, [(sub.unit_id, {"status": ["subscribed", "available"]})])
        queue_letters(session, "forfeit_notice", [sub.id])
        notify(session, [sub.agent_id], "ladder_forfeit",
               f"挞定：{sub.number}（{sub.customer_name}）逾期 {days} 天未付款，认购已取消，房源已恢复可售。",
               f"/admin/subscription/details/?id={sub.id}")
        session.commit()
        return True
    except Exception:
        session.rollback()
        raise


def _snapshot(session, sub: Subscription, lead: Lead, today: dt.date) -> dict:
    """Everything the office knew of the customer and the deal, kept apart (R-PAY-5, R-ALL-2)."""
    instalments = session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id)
                                  .order_by(Instalment.seq)).all()
    payments = session.scalars(select(Payment).where(Payment.subscription_id == sub.id)
                               .order_by(Payment.id)).all()
    return {
        "forfeited_on": today.isoformat(),
        "customer": {"name": lead.name, "phone": lead.phone, "id_number": sub.customer_id_number,
                     "address": sub.customer_address, "source": lead.source, "needs": lead.needs},
        "subscription": {"number": sub.number, "unit_id": sub.unit_id, "price": str(sub.price),
                         "deposit": str(sub.deposit), "payment_method": sub.payment_method,
                         "subscribed_on": sub.subscribed_on.isoformat(), "agent_id": sub.agent_id},
        "instalments": [{"seq": i.seq, "kind": i.kind, "due_on": i.due_on.isoformat(),
                         "extended_due_on": i.extended_due_on.isoformat() if i.extended_due_on else None,
                         "amount_due": str(i.amount_due), "amount_paid": str(i.amount_paid)}
                        for i in instalments],
        "payments": [{"receipt_no": p.receipt_no, "amount": str(p.amount), "paid_on": p.paid_on.isoformat(),
                      "reverses_id": p.reverses_id} for p in payments],
    }


def forecast(session, today: dt.date | None = None, days: int = 7) -> list[dict]:
    """What the ladder will do on each of the next `days` days if nothing is paid (R-PAY-5):
    [{"on": date, "warning": n, "lawyer_letter": n, "forfeit": n}], so a forfeit never surprises."""
    today = today or office_today()
    plan = {today + dt.timedelta(days=d): Counter() for d in range(1, days + 1)}
    thresholds = {project.id: _thresholds(project) for project in session.scalars(select(Project))}
    if not thresholds:
        return [{"on": on, "warning": 0, "lawyer_letter": 0, "forfeit": 0} for on in sorted(plan)]
    days_of = [day for levels in thresholds.values() for day in levels.values()]
    # One pass in the database over every due date any project's rung could reach in the window:
    # open lines and distinct deals (a forfeit counts each deal once a day) per project and date.
    rows = session.execute(
        select(Subscription.project_id, EFFECTIVE_DUE, func.count(),
               func.count(func.distinct(Instalment.subscription_id)))
        .join(Subscription, Subscription.id == Instalment.subscription_id)
        .where(Instalment.status != "paid", Subscription.status.in_(LADDER_SUBSCRIPTIONS),
               EFFECTIVE_DUE.between(min(plan) - dt.timedelta(days=max(days_of)),
                                     max(plan) - dt.timedelta(days=min(days_of))))
        .group_by(Subscription.project_id, EFFECTIVE_DUE)).all()
    for project_id, due, lines, deals in rows:
        for level, day in thresholds[project_id].items():
            on = due + dt.timedelta(days=day)
            if on in plan:
                plan[on][level] += deals if level == "forfeit" else lines
    return [{"on": on, **{lvl: plan[on][lvl] for lvl in ("warning", "lawyer_letter", "forfeit")}}
            for on in sorted(plan)]


# --- Extensions (R-PAY-6) ------------------------------------------------------------------------

def request_extension(session, by, instalment_id: int, days: int, reason: str) -> Extension:
    """The agent asks to move an instalment's due date by `days`, with a reason."""
    require(by, "extension.request")
    line = session.get(Instalment, instalment_id)
    if line is None or (not sees_all_rows(by) and line.subscription.agent_id != by.id):
        raise RuleViolation(_l("This instalment does not exist, or is not one of your customers'."))
    try:
        days = int(days)
    except (TypeError, ValueError):
        raise RuleViolation(_l("The extension is a whole number of days."), rule="R-PAY-6") from None
    if days <= 0 or days > 365:
        raise RuleViolation(_l("An extension is between 1 and 365 days."), rule="R-PAY-6")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the customer needs more time."), rule="R-PAY-6")
    if line.status == "paid" or line.subscription.status not in LADDER_SUBSCRIPTIONS:
        raise RuleViolation(_l("Only an open instalment of a live deal can be extended."), rule="R-PAY-6")
    if session.scalar(select(Extension.id).where(Extension.instalment_id == line.id,
                                                 Extension.status == "requested")):
        raise RuleViolation(_l("An extension of this instalment is already waiting for a decision."),
                            rule="R-PAY-6")
    with audit_context(session, actor=by, action="request_extension"):
        extension = Extension(instalment_id=line.id, days=days, reason=reason, requested_by_id=by.id)
        session.add(extension)
        session.flush()
    return extension


def decider_refusal(by, extension: Extension) -> RuleViolation | None:
    """Why `by` may not decide `extension` (None: they may). Up to the project's limit the sales
    manager or the vice-president, beyond it only the vice-president (R-PAY-6)."""
    limit = extension.instalment.subscription.project.extension_limit_days
    if extension.days > limit:
        if not by.has_role("vp"):
            return RuleViolation(_l("An extension over %(limit)d days needs the vice-president.",
                                    limit=limit), rule="R-PAY-6")
    elif not by.has_role("sales_manager", "vp"):
        return RuleViolation(_l("The sales manager or the vice-president decides extensions."),
                             rule="R-PAY-6")
    return None


def decide_extension(session, by, extension_id: int, approve: bool) -> Extension:
    """Up to the project's limit (default 15 days) the sales manager decides; beyond it only the
    vice-president (R-PAY-6). Approval moves the effective due date; the ladder counts from it."""
    extension = session.get(Extension, extension_id)
    if extension is None or extension.status != "requested":
        raise RuleViolation(_l("This extension is not waiting for a decision."), rule="R-PAY-6")
    refused = decider_refusal(by, extension)
    if refused is not None:
        raise refused
    line = extension.instalment
    with audit_context(session, actor=by, action="approve_extension" if approve else "reject_extension"):
        extension.status = "approved" if approve else "rejected"
        extension.decided_by_id = by.id
        extension.decided_at = utcnow()
        if approve:
            base = line.extended_due_on or line.due_on
            extension.new_due_on = line.extended_due_on = base + dt.timedelta(days=extension.days)
        session.flush()
    notify(session, [extension.requested_by_id], "extension_decided",
           f"延期申请（{extension.days} 天）已{'批准，新的应付日为 ' + str(extension.new_due_on) if approve else '驳回'}。",
           "/admin/extension/")
    return extension
