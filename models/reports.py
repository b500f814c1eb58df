"""The office's reports, read-only: what each role's home page (/admin/) shows, targets against
actuals and the monthly review (R-ALL-3). Aggregates computed in the database, a few queries per
panel, so the page stays fast at a million payment rows.

- manager (and vp, admin): today's registrations, visits, subscriptions and signings; sell-through
  (去化率) by project and building; collection rate (回款率); overdue ageing (1–7, 8–14, 15+ days);
  subscribed but not signed; extension rate; open conflicts; targets against actuals (R-ALL-3);
- agent: my follow-ups due, my customers' instalments due soon (reminders), their overdue ones;
- finance: today's receipts, due this week, overdue; refunds due (the settlement worklist's total);
- changes to deals (R-CHG-1, issue 21), on the manager's and vice-president's page: the change
  rate per project (approved changes per 100 deals made, by kind), the changes waiting (by kind
  and by whose step), refunds due;
- lawyer: signing bookings, signings overdue, post-signing steps past their promised date;
- the monthly review: each agent's targets against what they did that month, with the month's
  work (new customers, follow-ups, visits) and the totals.

Panels are kept in the app's cache (cache.py: this process's memory, and Redis with REDIS_URL).
"""
from __future__ import annotations

import datetime as dt
import time
import weakref
from decimal import Decimal

from flask import current_app, has_app_context
from sqlalchemy import and_, case, func, or_, select

from .base import office_midnight_utc, utcnow
from .deals import DEAD_DEAL, DEFAULTED, LIVE_DEAL
from .dialect import days_between
from .payments import EFFECTIVE_DUE, in_force, late_on, open_line, owed
from .targets import SalesTarget, month_range, parse_month
from .users import User

ZERO = Decimal("0")
CACHE_SECONDS = 60  # how old a panel's figures may be; the page says when they were computed
# How old the office panels kept in Redis may be: `refresh-dashboards` (jobs/schedule.py)
# computes them every minute, so a page never waits for the ~300 ms of sums at a million lines.
SHARED_SECONDS = 180
# Versioned: a new release reads no panel of the old shape kept by processes still running the old one.
SHARED_PREFIX = "salesdesk:dashboard:3:"  # 3: the changes and refunds due (issue 21)
STORE = "reports"  # the panels' store in the app's cache (cache.py)
_every_store = weakref.WeakSet()  # the stores this process's apps kept panels in (for `_cache.clear`)


def _app_cache():
    """The app's cache (cache.py, registered by create_app): found through the app, as models/
    imports nothing above it."""
    return current_app.extensions["salesdesk_cache"]


def _kept():
    """The panels this app keeps in its process's memory."""
    store = _app_cache().store(STORE)
    _every_store.add(store)
    return store


class _KeptPanels:
    """`_cache`: the panels kept in memory by the current app (outside an app context: by every
    app of the process), which the tests and the benchmark empty to make a page compute anew."""

    def _stores(self):
        return [_kept()] if has_app_context() else list(_every_store)

    def clear(self) -> None:
        for store in self._stores():
            store.clear()

    def __contains__(self, key) -> bool:
        return any(key in store for store in self._stores())


_cache = _KeptPanels()


def cached(key, compute, seconds: float = CACHE_SECONDS, shared: bool = False):
    """`compute()`, or its value from the last `seconds` (per process): the office-wide sums scan
    a million lines (~100 ms each at that size); a dashboard may be a minute old. Returns
    (value, computed_at as a naive UTC datetime).

    `shared` panels are also kept in Redis (with REDIS_URL), where every web worker finds the
    figures the refresh job last computed, up to SHARED_SECONDS old."""
    now = time.monotonic()
    hit = _kept().get(key, seconds)
    if hit is not None:
        return hit
    found = _shared_get(key) if shared else None
    if found is not None and (utcnow() - found[1]).total_seconds() < max(seconds, SHARED_SECONDS):
        value, computed_at = found
    else:
        value, computed_at = compute(), utcnow()
        if shared:
            _shared_put(key, value, computed_at)
    _keep(key, value, computed_at, now)
    return value, computed_at


def _keep(key, value, computed_at, now=None) -> None:
    _kept().put(key, (value, computed_at), now)


def _redis():
    """The production Redis, or None (embedded mode: the process cache is enough)."""
    return _app_cache().redis()


def _shared_get(key):
    return _app_cache().get_shared(SHARED_PREFIX + repr(key), what="dashboard figures")


def _shared_put(key, value, computed_at) -> None:
    _app_cache().put_shared(SHARED_PREFIX + repr(key), (value, computed_at), 2 * SHARED_SECONDS,
                               what="dashboard figures")


def manager_panel(session, today: dt.date) -> dict:
    """The office-wide figures of the sales manager's home page."""
    from .ladder import forecast
    collection_, ageing_ = collection_and_ageing(session, today)
    return {"today": today_counts(session, today), "sell": sell_through(session),
            "collection": collection_, "ageing": ageing_, "pipeline": pipeline(session),
            "targets": targets_vs_actuals(session, today.strftime("%Y-%m")), "forecast": forecast(session, today),
            "changes": change_rate(session), "changes_waiting": changes_waiting(session),
            "refunds_due": refunds_due(session), "satisfaction": satisfaction_panel(session, today)}


def satisfaction_panel(session, today: dt.date) -> dict:
    """Customer satisfaction this month and after-sales tickets overdue (R-SVC-1/2), for the
    manager's home page."""
    from .tickets import Ticket, survey_results, tickets_overdue
    results = survey_results(session, month=today)
    return {"total": results["total"], "agents": results["agents"], "projects": results["projects"],
            "tickets_overdue": session.scalar(select(func.count()).select_from(Ticket).where(tickets_overdue(today)))}


def office_panel(session, name: str, today: dt.date):
    """The "manager" or "finance" panel of `today`, as kept (see `cached`): (figures, computed at)."""
    return cached((name, today), lambda: OFFICE_PANELS[name](session, today), shared=True)


def refresh_office_panels(session, today: dt.date) -> list[str]:
    """Compute the office-wide panels now and keep them for every web worker (the refresh job)."""
    for name, compute in OFFICE_PANELS.items():
        value, computed_at = compute(session, today), utcnow()
        _shared_put((name, today), value, computed_at)
        _keep((name, today), value, computed_at)
    return list(OFFICE_PANELS)


def today_counts(session, today: dt.date) -> dict:
    from .contracts import Contract
    from .deals import Subscription
    from .leads import FollowUp, Lead
    start, end = office_midnight_utc(today), office_midnight_utc(today + dt.timedelta(days=1))
    return {
        "registrations": session.scalar(select(func.count()).select_from(Lead).where(
            Lead.registered_at >= start, Lead.registered_at < end)),
        "visits": session.scalar(select(func.count()).select_from(FollowUp).where(
            FollowUp.channel == "visit", FollowUp.at >= start, FollowUp.at < end)),
        "subscriptions": session.scalar(select(func.count()).select_from(Subscription).where(
            Subscription.subscribed_on == today)),
        "signings": session.scalar(select(func.count()).select_from(Contract).where(
            Contract.signed_on == today)),
    }


def sell_through(session) -> list[dict]:
    """去化率 per project and building: sold of saleable units, by the one definition
    (models.inventory.sold_and_saleable), which the board reads too."""
    from .board import sell_through_rate, sold_and_saleable
    from .inventory import Building
    from .projects import Project
    counts = sold_and_saleable(session)
    rows = session.execute(select(Project.id, Project.name, Building.id, Building.name)
                           .join(Building, Building.project_id == Project.id)
                           .order_by(Project.name, Building.name)).all()
    projects: dict[int, dict] = {}
    for project_id, project, building_id, building in rows:
        units, saleable, sold = counts.get(building_id, (0, 0, 0))
        if not units:
            continue
        entry = projects.setdefault(project_id, {"name": project, "units": 0, "saleable": 0, "sold": 0,
                                                 "buildings": []})
        entry["units"] += units
        entry["saleable"] += saleable
        entry["sold"] += sold
        entry["buildings"].append({"name": building, "units": units, "saleable": saleable, "sold": sold,
                                   "rate": sell_through_rate(sold, saleable)})
    for entry in projects.values():
        entry["rate"] = sell_through_rate(entry["sold"], entry["saleable"])
    return list(projects.values())


def _rate(part, whole) -> float:
    return round(100.0 * float(part) / float(whole), 1) if whole else 0.0


def collection(session, today: dt.date) -> dict:
    """回款率, the one definition (the dashboard shows it; nothing else computes it), on the plan
    lines of live deals, measured two ways and always shown with its basis:

    - `rate`: received on the lines already due by `today` ÷ what those lines ask (`paid` ÷ `due`);
      money paid ahead on lines not yet due does not count here;
    - `plan_rate`: everything received on the plans ÷ the plans' whole amount (`plan_paid` ÷ `plan`).
    """
    return collection_and_ageing(session, today)[0]


def ageing(session, today: dt.date, agent_id: int | None = None) -> list[dict]:
    """Open instalments past their (effective) due date, in buckets of days overdue."""
    from .deals import Subscription
    conditions = () if agent_id is None else (Subscription.agent_id == agent_id,)
    return _open_summary(session, today, 0, *conditions)["ageing"]


def collection_and_ageing(session, today: dt.date) -> tuple[dict, list[dict]]:
    """The office's collection rate and overdue ageing in one pass over the lines due (the two
    read the same ~400,000 lines at the large office: ~160 ms apart, ~140 ms together)."""
    summary = _open_summary(session, today, 0, collection=True)
    due, paid, plan, plan_paid = summary["collection"]
    return {"due": due, "paid": paid, "rate": _rate(paid, due),
            "plan": plan, "plan_paid": plan_paid, "plan_rate": _rate(plan_paid, plan)}, summary["ageing"]


def pipeline(session) -> dict:
    """Subscribed but not signed; the share of live deals with an approved extension; open
    duplicate-registration conflicts."""
    from .deals import Subscription
    from .ladder import Extension
    from .leads import LeadConflict
    waiting = session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.status.in_(("confirmed", "active"))))
    live = session.scalar(select(func.count()).select_from(Subscription).where(Subscription.status.in_(LIVE_DEAL)))
    extended = session.scalar(
        select(func.count(func.distinct(Extension.subscription_id)))
        .join(Subscription, Subscription.id == Extension.subscription_id)
        .where(Extension.status == "approved", Subscription.status.in_(LIVE_DEAL)))
    conflicts = session.scalar(select(func.count()).select_from(LeadConflict).where(LeadConflict.status == "open"))
    return {"not_signed": waiting, "live": live, "extended": extended,
            "extension_rate": _rate(extended, live), "open_conflicts": conflicts}


def _lines(session, *conditions, limit=8):
    from .deals import Subscription
    from .payments import Instalment
    due = EFFECTIVE_DUE
    return session.execute(
        select(Instalment.id, Subscription.number, Subscription.customer_name, Instalment.kind, due.label("due"),
               (Instalment.amount_due - Instalment.amount_paid).label("balance"))
        .join(Subscription, Subscription.id == Instalment.subscription_id)
        .where(open_line(), owed(joined=True), *conditions)
        .order_by(due).limit(limit)).all()


def _open_summary(session, today: dt.date, window: int, *conditions, collection: bool = False) -> dict:
    """One pass over the open lines of live deals: overdue (count, amount, ageing buckets) and due
    within `window` days from today (count, amount). With `collection`, the same pass also sums,
    over every line paid or not, what was due by today and what was paid of it, and the whole
    plan and what was paid of it (lines due later included)."""
    from .deals import Subscription
    from .payments import Instalment
    due = EFFECTIVE_DUE
    balance = Instalment.amount_due - Instalment.amount_paid
    unpaid = open_line()
    overdue = late_on(today)  # with owed() in the WHERE below: overdue_on, the one definition
    soon = (due >= today) & (due <= today + dt.timedelta(days=window))
    soon = unpaid & soon if collection else soon
    late_by = days_between(session, due, today)

    def n(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    def amount(condition):
        return func.coalesce(func.sum(case((condition, balance), else_=ZERO)), ZERO)
    buckets = {"1-7": overdue & (late_by <= 7), "8-14": overdue & (late_by > 7) & (late_by <= 14),
               "15+": overdue & (late_by > 14)}
    columns = [n(overdue), amount(overdue), n(soon), amount(soon)]
    for condition in buckets.values():
        columns += [n(condition), amount(condition)]
    if collection:
        past = due <= today
        columns += [func.coalesce(func.sum(case((past, Instalment.amount_due), else_=ZERO)), ZERO),
                    func.coalesce(func.sum(case((past, Instalment.amount_paid), else_=ZERO)), ZERO),
                    func.coalesce(func.sum(Instalment.amount_due), ZERO),
                    func.coalesce(func.sum(Instalment.amount_paid), ZERO)]
    bounds = (in_force(),) if collection else (unpaid, due <= today + dt.timedelta(days=window))
    row = session.execute(
        select(*columns).join(Subscription, Subscription.id == Instalment.subscription_id)
        .where(*bounds, owed(joined=True), *conditions)).one()
    summary = {"overdue": (row[0], row[1]), "soon": (row[2], row[3]),
               "ageing": [{"bucket": b, "count": row[4 + 2 * i], "amount": row[5 + 2 * i]}
                          for i, b in enumerate(buckets)]}
    if collection:
        summary["collection"] = (row[10], row[11], row[12], row[13])
    return summary


def agent_panel(session, agent_id: int, today: dt.date) -> dict:
    from .deals import Subscription
    from .leads import OPEN_STAGES, Lead
    from .projects import Project
    due = EFFECTIVE_DUE
    mine = Subscription.agent_id == agent_id
    due_leads = (Lead.owner_id == agent_id, Lead.stage.in_(OPEN_STAGES), Lead.next_follow_up_on <= today)
    follow_ups = session.execute(select(Lead.id, Lead.name, Lead.phone, Lead.next_follow_up_on)
                                 .where(*due_leads).order_by(Lead.next_follow_up_on).limit(8)).all()
    follow_ups_count = session.scalar(select(func.count()).select_from(Lead).where(*due_leads))
    window = session.scalar(select(func.max(Project.reminder_days_before))) or 3
    summary = _open_summary(session, today, window, mine)
    return {
        "follow_ups": follow_ups, "follow_ups_count": follow_ups_count,
        "reminders": _lines(session, mine, due >= today, due <= today + dt.timedelta(days=window)),
        "reminders_count": summary["soon"][0],
        "overdue": _lines(session, mine, due < today),
        "overdue_total": summary["overdue"],
        "ageing": summary["ageing"],
        "window": window,  # the days "due soon" looks ahead (the projects' reminder days)
    }


def finance_panel(session, today: dt.date) -> dict:
    from .payments import Payment
    due = EFFECTIVE_DUE
    count, amount = session.execute(select(func.count(), func.coalesce(func.sum(Payment.amount), ZERO))
                                    .where(Payment.paid_on == today)).one()
    summary = _open_summary(session, today, 6)
    return {"receipts": {"count": count, "amount": amount}, "due_week": summary["soon"],
            "due_week_lines": _lines(session, due >= today, due <= today + dt.timedelta(days=6)),
            "overdue": summary["overdue"], "refunds_due": refunds_due(session),
            "late_fees": late_fees_outstanding(session)}


def late_fees_outstanding(session) -> dict:
    """Late fees still owed (R-AFT-1): charges_owed()'s definition, of kind late_fee."""
    from .charges import OUTSTANDING, Charge, charges_owed
    count, amount = session.execute(select(func.count(), func.coalesce(func.sum(OUTSTANDING), 0)).where(
        charges_owed(), Charge.kind == "late_fee")).one()
    return {"count": count, "amount": Decimal(amount or 0).quantize(Decimal("0.01"))}


# --- Changes to deals (R-CHG-1, R-CHG-5; issue 21, item 8) ---------------------------------------

def deal_was_a_sale():
    """A WHERE clause on `subscription`, the one definition of the deals a change rate is counted
    per 100 of: every deal that was ever a sale — live now (LIVE_DEAL), or over after sales control
    confirmed it (checked_at), or over in a state only a sale reaches (forfeited, rescinded,
    cancelled). Drafts, and deals withdrawn or expired before confirmation, are not counted."""
    from .deals import Subscription
    return or_(Subscription.status.in_(LIVE_DEAL),
               and_(Subscription.status.in_(DEAD_DEAL),
                    or_(Subscription.checked_at.isnot(None), Subscription.status.in_(DEFAULTED + ("cancelled",)))))


def change_rate(session) -> list[dict]:
    """The change rate per project: approved change requests (R-CHG-1) per 100 deals that were
    ever a sale (`deal_was_a_sale`), by kind and in all. All time, as the deals are."""
    from .changes import CHANGE_KINDS, ChangeRequest
    from .deals import Subscription
    from .projects import Project
    deals = dict(session.execute(select(Subscription.project_id, func.count()).where(deal_was_a_sale())
                                 .group_by(Subscription.project_id)).all())
    changes: dict[int, dict[str, int]] = {}
    for project_id, kind, n in session.execute(
            select(Subscription.project_id, ChangeRequest.kind, func.count())
            .join(Subscription, Subscription.id == ChangeRequest.subscription_id)
            .where(ChangeRequest.status == "approved")
            .group_by(Subscription.project_id, ChangeRequest.kind)):
        changes.setdefault(project_id, {})[kind] = n
    rows = []
    for project_id, name in session.execute(select(Project.id, Project.name).order_by(Project.name)):
        made, by_kind = deals.get(project_id, 0), changes.get(project_id, {})
        if not made and not by_kind:
            continue
        total = sum(by_kind.values())
        rows.append({"project_id": project_id, "name": name, "deals": made, "changes": total,
                     "rate": per_hundred(total, made),
                     "kinds": [{"kind": kind, "changes": by_kind.get(kind, 0),
                                "rate": per_hundred(by_kind.get(kind, 0), made)} for kind in CHANGE_KINDS]})
    return rows


def per_hundred(part, whole) -> float:
    """Changes per 100 deals, to one decimal (0 when there are no deals)."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def changes_waiting(session) -> dict:
    """The open change requests (R-CHG-1) by kind and by whose step they wait for: the role of
    their chain's current step, or the requester (`requester`) when sent back to them."""
    from .changes import OPEN_CHANGE, ChangeRequest
    counts: dict[tuple[str, str], int] = {}
    for kind, status, chain, step, n in session.execute(
            select(ChangeRequest.kind, ChangeRequest.status, ChangeRequest.chain, ChangeRequest.step, func.count())
            .where(ChangeRequest.status.in_(OPEN_CHANGE))
            .group_by(ChangeRequest.kind, ChangeRequest.status, ChangeRequest.chain, ChangeRequest.step)):
        roles = [r for r in chain.split(",") if r]
        whose = roles[step] if status == "requested" and step < len(roles) else "requester"
        counts[(kind, whose)] = counts.get((kind, whose), 0) + n
    rows = [{"kind": kind, "whose": whose, "count": n} for (kind, whose), n in sorted(counts.items())]
    return {"total": sum(counts.values()), "rows": rows}


def refunds_due(session) -> dict:
    """Refunds due: the money still held on deals that are over, waiting on finance's settlement
    worklist for a refund or retention voucher (R-CHG-5) — its rows and its total, by the one
    definition (models.payments.awaiting_settlement, held_amount), with the cancelled (退房) and
    forfeited deals' part apart."""
    from .deals import Subscription
    from .payments import awaiting_settlement, held_amount
    parts = {"cancelled": [0, ZERO], "forfeited": [0, ZERO], "other": [0, ZERO]}
    for status, n, held in session.execute(
            select(Subscription.status, func.count(), func.coalesce(func.sum(held_amount()), ZERO))
            .where(awaiting_settlement()).group_by(Subscription.status)):
        part = parts[status if status in parts else "other"]
        part[0] += n
        part[1] += Decimal(held)
    return {"count": sum(n for n, _ in parts.values()), "held": sum((h for _, h in parts.values()), ZERO),
            "by_status": [{"status": status, "count": n, "held": held} for status, (n, held) in parts.items()]}


def lawyer_panel(session, today: dt.date) -> dict:
    from .contracts import Contract, ContractStep, steps_late
    from .deals import Subscription
    bookings = session.execute(
        select(Contract.id, Subscription.number, Subscription.customer_name, Contract.appointment_at,
               Contract.signing_due_on)
        .join(Subscription, Subscription.id == Contract.subscription_id)
        .where(Contract.status == "booked").order_by(Contract.appointment_at).limit(8)).all()
    overdue = session.scalar(select(func.count()).select_from(Contract).where(
        Contract.status == "booked", Contract.signing_due_on < today))
    steps = session.scalar(select(func.count()).select_from(ContractStep).where(steps_late(today)))
    booked = session.scalar(select(func.count()).select_from(Contract).where(Contract.status == "booked"))
    return {"bookings": bookings, "booked": booked, "signing_overdue": overdue, "steps_late": steps}


def targets_vs_actuals(session, month: str, agent_id: int | None = None) -> list[dict]:
    """Each agent's monthly target (R-ALL-3) beside what they did that month: subscriptions
    (count and amount, by subscription date) and collections (money received on their deals)."""
    from .deals import Subscription
    from .payments import Payment
    first, last = month_range(month)
    subs = dict((a, (n, amount)) for a, n, amount in session.execute(
        select(Subscription.agent_id, func.count(), func.coalesce(func.sum(Subscription.price), ZERO))
        .where(Subscription.subscribed_on.between(first, last),
               Subscription.status.notin_(("withdrawn", "draft")))
        .group_by(Subscription.agent_id)))
    collected = dict(session.execute(
        select(Subscription.agent_id, func.coalesce(func.sum(Payment.amount), ZERO))
        .join(Subscription, Subscription.id == Payment.subscription_id)
        .where(Payment.paid_on.between(first, last)).group_by(Subscription.agent_id)).all())
    targets = {t.agent_id: t for t in session.scalars(select(SalesTarget).where(SalesTarget.month == month))}
    agents = session.execute(select(User.id, User.display_name).where(
        User.id.in_(set(subs) | set(collected) | set(targets))).order_by(User.display_name)).all()
    rows = []
    for user_id, name in agents:
        if agent_id is not None and user_id != agent_id:
            continue
        target = targets.get(user_id)
        count, amount = subs.get(user_id, (0, ZERO))
        rows.append({"agent_id": user_id, "agent": name, "subscriptions": count, "amount": amount,
                     "collections": collected.get(user_id, ZERO),
                     "target_subscriptions": target.subscriptions if target else None,
                     "target_amount": target.amount if target else None,
                     "target_collections": target.collections if target else None})
    for row in rows:
        row["subscriptions_rate"] = _rate(row["subscriptions"], row["target_subscriptions"] or 0)
        row["amount_rate"] = _rate(row["amount"], row["target_amount"] or 0)
        row["collections_rate"] = _rate(row["collections"], row["target_collections"] or 0)
    return rows


def monthly_review(session, month: str) -> dict:
    """Targets against actuals per agent, with the month's work, and the totals."""
    from .leads import FollowUp, Lead
    month = parse_month(month)
    first, last = month_range(month)
    start, end = office_midnight_utc(first), office_midnight_utc(last + dt.timedelta(days=1))
    rows = targets_vs_actuals(session, month)
    agents = {u.id: u.display_name for u in session.scalars(select(User).where(User.active.is_(True)))
              if u.has_role("agent")}
    known = {row["agent_id"] for row in rows}
    for agent_id, name in sorted(agents.items(), key=lambda item: item[1]):
        if agent_id not in known:
            rows.append({"agent_id": agent_id, "agent": name, "subscriptions": 0, "amount": Decimal("0"),
                         "collections": Decimal("0"), "target_subscriptions": None, "target_amount": None,
                         "target_collections": None, "subscriptions_rate": 0.0, "amount_rate": 0.0,
                         "collections_rate": 0.0})
    leads = dict(session.execute(select(Lead.registered_by_id, func.count()).where(
        Lead.registered_at >= start, Lead.registered_at < end).group_by(Lead.registered_by_id)).all())
    follow_ups = dict(session.execute(select(FollowUp.agent_id, func.count()).where(
        FollowUp.at >= start, FollowUp.at < end).group_by(FollowUp.agent_id)).all())
    visits = dict(session.execute(select(FollowUp.agent_id, func.count()).where(
        FollowUp.at >= start, FollowUp.at < end, FollowUp.channel == "visit").group_by(FollowUp.agent_id)).all())
    from .tickets import survey_results, ticket_figures
    satisfaction = survey_results(session, month=first)  # R-SVC-2: the month's surveys per agent and project
    surveyed = {r["id"]: r for r in satisfaction["agents"]}
    for row in rows:
        survey = surveyed.get(row["agent_id"], {})
        row.update(new_leads=leads.get(row["agent_id"], 0), follow_ups=follow_ups.get(row["agent_id"], 0),
                   visits=visits.get(row["agent_id"], 0), surveys=survey.get("count", 0),
                   satisfaction=survey.get("overall"), satisfied=survey.get("satisfied"))
    totals = {key: sum((row[key] or 0) for row in rows)
              for key in ("subscriptions", "amount", "collections", "target_subscriptions", "target_amount",
                          "target_collections", "new_leads", "follow_ups", "visits", "surveys")}
    totals.update(surveys=satisfaction["total"]["count"], satisfaction=satisfaction["total"]["overall"],
                  satisfied=satisfaction["total"]["satisfied"])
    return {"month": month, "first": first, "last": last, "rows": rows, "totals": totals,
            "satisfaction": satisfaction, "tickets": ticket_figures(session, first)}


def project_names(session) -> str:
    """The projects of the office, for a report's running header."""
    from .projects import Project
    return "、".join(session.scalars(select(Project.name).order_by(Project.name))) or "—"


OFFICE_PANELS = {"manager": manager_panel, "finance": finance_panel}
