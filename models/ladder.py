"""The overdue ladder and extensions (R-PAY-4, R-PAY-5, R-PAY-6, R-PAY-7).

Days overdue count from an instalment's effective due date (its extended date if an extension
was approved). Per project (settings): a reminder N days before; a warning from day 2; a
lawyer's letter from day 8 (the lawyer is prompted and the letter goes on the lawyer's worklist);
forfeit (挞定) from day 15 — subscription forfeited, unit available again, the customer's records
snapshotted and kept apart, the money held on finance's settlement worklist. A signed contract
climbs the same rungs but is never forfeited: on day 15 it goes on the manager's and the
lawyer's rescission (解约) worklist, where they decide. Every rung is an overdue_event, unique
per (instalment, due date, level): a run twice for one day, or two runs at once, write each
event once; a run after missed days applies each level once, in order. The daily run first
expires subscriptions whose deposit never came (`expire_unpaid`).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, and_, case, exists, func, insert, literal, select, text
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from .audit import audit_context, record_many
from .channels import expire_registrations
from .launches import expire_entries
from .charges import accrue_late_fees
from .base import Base, in_list, office_today, utcnow
from .document_queue import Document
from .dialect import among, insert_rows
from .deals import (LIVE_DEAL, WITHDRAWABLE, RequestedDecision, Subscription, already_decided, decide_request,
                    end_deal, locked_subscription, move_status, via_subscription, works_on_deal)
from .errors import RuleViolation
from .payments import EFFECTIVE_DUE, OPEN_LINE, Instalment, in_force, open_line, signing_gate, tell_finance_of_money_held
from .projects import Project
from .labels import choice_label
from .archive import keep_apart
from .contracts import Contract
from .leads import Lead
from .notifications import notify
from .permissions import can_do, require
from .users import User, users_who_may, users_with_roles

EXTENSION_STATUSES = ("requested", "approved", "rejected")
# rescission: a signed contract's line on the forfeit day — never forfeited by the ladder, it goes
# on the manager's and the lawyer's rescission worklist (R-PAY-4, R-PAY-5).
LADDER_LEVELS = ("reminder", "warning", "lawyer_letter", "forfeit", "rescission")
# What a person did about an event that waits for one: a letter sent (or no longer needed), a
# rescission decided (keep chasing, or rescind).
EVENT_OUTCOMES = ("sent", "not_needed", "continue", "rescind")


class Extension(RequestedDecision, Base):
    """A request to move an instalment's due date, or a booked sale contract's signing date
    (R-PAY-6, R-CON-5). At most one waits per subject (a partial unique index)."""

    __tablename__ = "extension"
    __table_args__ = (
        CheckConstraint("days > 0", name="days_positive"),
        CheckConstraint(in_list("status", EXTENSION_STATUSES), name="status_known"),
        CheckConstraint("(instalment_id IS NULL) <> (contract_id IS NULL)", name="one_subject"),
        Index("uq_extension_open_instalment", "instalment_id", unique=True,
              sqlite_where=text("status = 'requested'"), postgresql_where=text("status = 'requested'")),
        Index("uq_extension_open_contract", "contract_id", unique=True,
              sqlite_where=text("status = 'requested'"), postgresql_where=text("status = 'requested'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"),
                                                      index=True)
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"),
                                                    index=True)
    days: Mapped[int]
    new_due_on: Mapped[dt.date | None]

    subscription: Mapped[Subscription] = relationship()
    instalment: Mapped[Instalment | None] = relationship()
    contract: Mapped["Contract | None"] = relationship()  # noqa: F821 (models.contracts)

    def __str__(self) -> str:
        if self.instalment_id:
            return str(self.instalment)
        from flask_babel import gettext
        return gettext("%(deal)s signing", deal=self.subscription)

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


class OverdueEvent(Base):
    """A rung of the overdue ladder reached by an instalment (R-PAY-4, R-PAY-5).

    Unique per instalment, due date and level, so a ladder run twice writes each event once.
    """

    __tablename__ = "overdue_event"
    __table_args__ = (
        UniqueConstraint("instalment_id", "due_on", "level", "cause"),
        CheckConstraint(in_list("level", LADDER_LEVELS), name="level_known"),
        CheckConstraint(in_list("cause", ("payment", "signing")), name="cause_known"),
        CheckConstraint("outcome IS NULL OR " + in_list("outcome", EVENT_OUTCOMES), name="outcome_known"),
        CheckConstraint("(outcome IS NULL) = (handled_on IS NULL)", name="outcome_dated"),
        Index("ix_overdue_event_on_level", "on", "level"),
        # The worklists: letters to send and rescissions to decide.
        Index("ix_overdue_event_waiting", "level", sqlite_where=text("outcome IS NULL"),
              postgresql_where=text("outcome IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"))
    due_on: Mapped[dt.date]
    level: Mapped[str] = mapped_column(String(20))
    # payment: the instalment is unpaid; signing: paid enough but not signed in time (R-CON-5),
    # recorded on the deal's deposit line with the signing due date.
    cause: Mapped[str] = mapped_column(String(20), default="payment")
    on: Mapped[dt.date]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # What a person did about an event that waits for one (models.worklists): the lawyer sends a
    # lawyer's letter; the manager or the lawyer decides a rescission.
    outcome: Mapped[str | None] = mapped_column(String(20))
    handled_on: Mapped[dt.date | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    handling_note: Mapped[str] = mapped_column(Text, default="", server_default="")

    instalment: Mapped[Instalment] = relationship()
    handled_by: Mapped[User | None] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.instalment_id.in_(
            select(Instalment.id).where(via_subscription(Instalment.subscription_id, user_id)))


LADDER_SUBSCRIPTIONS = LIVE_DEAL  # every live deal's lines are chased, signed ones too (R-PAY-4)
FORFEITABLE = ("confirmed", "active")  # a signed contract is never forfeited by the ladder


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


def _overdue_query(project_id: int, level: str, cutoff: dt.date, first_due: dt.date | None = None,
                   statuses: tuple = LADDER_SUBSCRIPTIONS):
    """Open instalments of live deals (of `statuses`) in `project_id` whose effective due date is
    on or before `cutoff` (and on or after `first_due`), without an event of `level` for that due
    date."""
    # A lateness already chased on a line a change replaced (R-CHG-2) is the same lateness on the
    # line that replaced it, due the same day: its warning or letter is not written twice.
    replaced = aliased(Instalment)
    chased_before = exists().where(OverdueEvent.instalment_id == replaced.id,
                                   replaced.subscription_id == Instalment.subscription_id,
                                   replaced.status == "replaced", OverdueEvent.due_on == EFFECTIVE_DUE,
                                   OverdueEvent.level == level, OverdueEvent.cause == "payment")
    conditions = [open_line(), EFFECTIVE_DUE <= cutoff,
                  Subscription.project_id == project_id, Subscription.status.in_(statuses),
                  ~exists().where(OverdueEvent.instalment_id == Instalment.id,
                                  OverdueEvent.due_on == EFFECTIVE_DUE, OverdueEvent.level == level,
                                  OverdueEvent.cause == "payment"),
                  ~chased_before]
    if first_due is not None:
        conditions.append(EFFECTIVE_DUE >= first_due)
    return select(Instalment.id, EFFECTIVE_DUE.label("due"), Subscription.id.label("sub"),
                  Subscription.agent_id).join(Subscription, Subscription.id == Instalment.subscription_id
                                              ).where(*conditions)


def _insert_events(session, rows, level: str, today: dt.date, cause: str = "payment") -> list:
    """INSERT the events, ignoring any another run wrote meanwhile; returns those written."""
    if not rows:
        return []
    now = utcnow()  # one time for the run's rows (one transaction)
    values = [{"instalment_id": r.id, "due_on": r.due, "level": level, "cause": cause, "on": today,
               "created_at": now} for r in rows]
    written = insert_rows(session, OverdueEvent.__table__, values, returning=("id", "instalment_id"),
                          conflict=("instalment_id", "due_on", "level", "cause"))
    record_many(session, "overdue_event", level, None,
                [(event_id, {"instalment_id": [None, instalment_id], "level": [None, level],
                             "cause": [None, cause]})
                 for event_id, instalment_id in written])
    return written


def _notify_agents(session, rows, written_ids, level):
    """One notification per agent and level, naming the first subscription and how many in all
    (its text: models.notifications, "ladder.<level>")."""
    by_agent: dict[int, list[dict]] = {}
    wanted = {instalment_id for _, instalment_id in written_ids}
    numbers = dict(session.execute(select(Subscription.id, Subscription.number).where(
        among(session, Subscription.id, {r.sub for r in rows if r.id in wanted}))).all()) if wanted else {}
    for r in rows:
        if r.id in wanted:
            by_agent.setdefault(r.agent_id, []).append({"no": numbers.get(r.sub, r.sub), "due": r.due})
    for agent_id, lines in by_agent.items():
        notify(session, [agent_id], f"ladder_{level}", {"_t": f"ladder.{level}", **lines[0], "n": len(lines)},
               "/admin/overdue_event/")


def _notify_who_must_act(session, level: str, cause: str, n: int) -> None:
    """Whoever must act on a new rung is told (R-PAY-5): the lawyer sends the lawyer's letters;
    the manager and the lawyer decide a signed deal's rescission."""
    if not n:
        return
    if level == "lawyer_letter":
        notify(session, users_who_may(session, "letter.mark_sent"), "lawyer_letter_due",
               {"_t": f"lawyer_letter_due.{'signing' if cause == 'signing' else 'payment'}", "n": n},
               "/admin/lawyer_letter_due/")
    elif level == "rescission":
        notify(session, users_who_may(session, "rescission.decide"), "rescission_due",
               {"n": n},
               "/admin/rescission/")


def run_ladder(session, today: dt.date | None = None, dry_run: bool = False) -> Counter:
    """Run the ladder for the office day `today` and commit, level by level; each forfeit (and each
    expiry) in a transaction of its own. `dry_run` counts what would happen and writes nothing.
    Returns the number of events (or expiries, forfeits) per level."""
    today = today or office_today()
    counts: Counter = Counter()
    counts["expired"] = expire_unpaid(session, today, dry_run=dry_run)
    for project in session.scalars(select(Project).order_by(Project.id)).all():
        # Reminders: open instalments due within the next N days (or today).
        rows = session.execute(_overdue_query(project.id, "reminder",
                                              today + dt.timedelta(days=project.reminder_days_before),
                                              first_due=today)).all()
        counts["reminder"] += len(rows) if dry_run else _written(session, rows, "reminder", today)
        for level, day in _thresholds(project).items():
            cutoff = today - dt.timedelta(days=day)
            if level == "forfeit":
                rows = session.execute(_overdue_query(project.id, level, cutoff, statuses=FORFEITABLE)).all()
                subs = sorted({r.sub for r in rows})
                counts["forfeit"] += len(subs) if dry_run else sum(
                    forfeit(session, sub_id, today) for sub_id in subs)
                # A signed contract is never forfeited: its late line goes to the rescission worklist.
                rows = session.execute(_overdue_query(project.id, "rescission", cutoff,
                                                      statuses=("contracted",))).all()
                counts["rescission"] += len(rows) if dry_run else _written(session, rows, "rescission", today)
            else:
                rows = session.execute(_overdue_query(project.id, level, cutoff)).all()
                counts[level] += len(rows) if dry_run else _written(session, rows, level, today)
        for level, day in _thresholds(project).items():  # R-CON-5: paid but not signed in time
            rows = _signing_overdue(session, project.id, level, today - dt.timedelta(days=day))
            if level == "forfeit":
                counts["signing_forfeit"] += len(rows) if dry_run else sum(
                    forfeit(session, r.sub, today, cause="signing") for r in rows)
            else:
                counts[f"signing_{level}"] += len(rows) if dry_run else _written(
                    session, rows, level, today, cause="signing")
    # R-AFT-1: the late fees through today, after the ladder's levels, in a transaction of their own.
    counts["late_fee"] = accrue_late_fees(session, today, dry_run=dry_run)
    counts["channel_expired"] = expire_registrations(session, today)  # R-COM-1: windows passed unvisited
    counts["intent_expired"] = expire_entries(session, today)  # R-LCH-1: registrations never paid
    if not dry_run:
        session.commit()
    # R-COM-2: the commission lines a missed change left behind (models.commissions' safety net).
    from .commissions import recompute_commissions
    counts["commission"] = recompute_commissions(session, today, dry_run=dry_run)
    if dry_run:
        session.rollback()
    return counts


LETTERS = {"warning": "overdue_warning", "lawyer_letter": "lawyer_letter"}


def queue_letters(session, kind: str, subject_ids) -> int:
    """The ladder's letters (R-PAY-5): one queued document per new event (or forfeited deal),
    inserted set-based in the ladder's own transaction, with an audit row each;
    `jobs.documents.enqueue_pending` sends them to a worker after the commit."""
    ids = list(subject_ids)
    written = 0
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        if kind == "forfeit_notice":
            source = select(Subscription.id, Subscription.agent_id,
                            Subscription.number.concat(" ").concat(Subscription.customer_name)).where(among(session, Subscription.id, chunk))
        else:
            source = (select(OverdueEvent.id, Subscription.agent_id,
                             Subscription.number.concat(" ").concat(Subscription.customer_name))
                      .join(Instalment, Instalment.id == OverdueEvent.instalment_id)
                      .join(Subscription, Subscription.id == Instalment.subscription_id)
                      .where(among(session, OverdueEvent.id, chunk)))
        source = source.add_columns(literal(kind), literal("queued"), literal(""),
                                    literal(utcnow(), type_=Document.created_at.type))
        rows = session.execute(insert(Document).from_select(
            ["subject_id", "owner_id", "title", "kind", "status", "error", "created_at"], source)
            .returning(Document.id, Document.subject_id)).all()
        record_many(session, "document", "request_document", None,
                    [(doc_id, {"kind": [None, kind], "subject_id": [None, subject_id]})
                     for doc_id, subject_id in rows])
        written += len(rows)
    return written


def _written(session, rows, level, today, cause: str = "payment") -> int:
    written = _insert_events(session, rows, level, today, cause)
    if level in LETTERS:  # the letter of each new rung, in the same transaction (R-PAY-5)
        queue_letters(session, LETTERS[level], [event_id for event_id, _ in written])
    if cause == "payment":
        _notify_agents(session, rows, written, level)
    elif written:
        by_agent: Counter = Counter(r.agent_id for r in rows)
        for agent_id, n in by_agent.items():
            notify(session, [agent_id], f"signing_{level}", {"_t": "signing_overdue", "n": n}, "/admin/contract/")
    _notify_who_must_act(session, level, cause, len(written))
    session.commit()
    return len(written)


def _signing_overdue(session, project_id: int, level: str, cutoff: dt.date) -> list:
    """Booked sale contracts past their signing due date by the level's days, whose down payment
    is complete (R-CON-5), without that level's signing event yet — on any plan's deposit line:
    a change that replaced the plan (R-CHG-2) does not restart the signing's ladder. Rows carry the
    deposit line of the plan in force."""
    earlier = aliased(Instalment)
    rows = session.execute(
        select(Instalment.id, Contract.signing_due_on.label("due"), Subscription.id.label("sub"),
               Subscription.agent_id)
        .join(Subscription, Subscription.id == Contract.subscription_id)
        .join(Instalment, and_(Instalment.subscription_id == Subscription.id, Instalment.kind == "deposit", in_force()))
        .where(Contract.kind == "sale", Contract.status == "booked", Contract.signing_due_on <= cutoff,
               Subscription.project_id == project_id, Subscription.status == "active",
               ~exists().where(OverdueEvent.instalment_id == earlier.id, earlier.subscription_id == Subscription.id,
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
    records snapshotted apart (LeadArchive), the forfeit event written, requests still waiting on
    the deal closed. The agent, finance and the manager are told the real cause; the money held
    goes on finance's settlement worklist (R-CHG-5). Returns whether it forfeited."""
    try:
        sub = session.scalar(select(Subscription).where(Subscription.id == subscription_id)
                             .with_for_update().execution_options(populate_existing=True))
        if sub is None or sub.status not in FORFEITABLE:
            session.rollback()
            return False
        days = sub.project.forfeit_day
        if cause == "signing":
            overdue = [r for r in _signing_overdue(session, sub.project_id, "forfeit",
                                                   today - dt.timedelta(days=days)) if r.sub == sub.id]
        else:
            overdue = session.execute(
                select(Instalment.id, EFFECTIVE_DUE.label("due"))
                .where(Instalment.subscription_id == sub.id, open_line(),
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
            keep_apart(session, sub, lead, "forfeit", today)
            sub.status = "forfeited"
            sub.forfeited_at = utcnow()
            lead.stage = "lost"
            session.flush()
        end_deal(session, sub.id, sub.unit_id, None, "forfeit")
        queue_letters(session, "forfeit_notice", [sub.id])
        _tell_of_forfeit(session, sub, cause, (today - overdue[0].due).days)
        session.commit()
        return True
    except Exception:
        session.rollback()
        raise


def _tell_of_forfeit(session, sub: Subscription, cause: str, days: int) -> None:
    what = {"_t": f"forfeit_cause.{cause}", "no": sub.number, "name": sub.customer_name, "days": days}
    link = f"/admin/subscription/details/?id={sub.id}"
    notify(session, [sub.agent_id], "ladder_forfeit", {"_t": "ladder_forfeit.agent", "what": what}, link)
    notify(session, users_with_roles(session, {"sales_manager"}), "ladder_forfeit",
           {"_t": "ladder_forfeit.manager", "what": what}, link)
    tell_finance_of_money_held(session, sub, {"_t": "settlement_due.forfeit", "what": what})


def forecast(session, today: dt.date | None = None, days: int = 7) -> list[dict]:
    """What the ladder will do on each of the next `days` days if nothing is paid (R-PAY-5):
    [{"on": date, "warning": n, "lawyer_letter": n, "forfeit": n}], so a forfeit never surprises."""
    today = today or office_today()
    plan = {today + dt.timedelta(days=d): Counter() for d in range(1, days + 1)}
    thresholds = {project.id: _thresholds(project) for project in session.scalars(select(Project))}
    if not thresholds:
        return [{"on": on, "warning": 0, "lawyer_letter": 0, "forfeit": 0, "rescission": 0} for on in sorted(plan)]
    days_of = [day for levels in thresholds.values() for day in levels.values()]
    # One pass in the database over every due date any project's rung could reach in the window:
    # open lines and distinct deals (a forfeit counts each deal once a day) per project and date.
    signed = case((Subscription.status == "contracted", 1), else_=0)
    rows = session.execute(
        select(Subscription.project_id, EFFECTIVE_DUE, signed, func.count(),
               func.count(func.distinct(Instalment.subscription_id)))
        .join(Subscription, Subscription.id == Instalment.subscription_id)
        .where(open_line(), Subscription.status.in_(LADDER_SUBSCRIPTIONS),
               EFFECTIVE_DUE.between(min(plan) - dt.timedelta(days=max(days_of)),
                                     max(plan) - dt.timedelta(days=min(days_of))))
        .group_by(Subscription.project_id, EFFECTIVE_DUE, signed)).all()
    for project_id, due, is_signed, lines, deals in rows:
        for level, day in thresholds[project_id].items():
            on = due + dt.timedelta(days=day)
            if on not in plan:
                continue
            if level == "forfeit":  # a signed contract goes to the rescission worklist instead
                plan[on]["rescission" if is_signed else "forfeit"] += lines if is_signed else deals
            else:
                plan[on][level] += lines
    return [{"on": on, **{lvl: plan[on][lvl] for lvl in ("warning", "lawyer_letter", "forfeit", "rescission")}}
            for on in sorted(plan)]


# --- Extensions (R-PAY-6) ------------------------------------------------------------------------

def _days(days) -> int:
    try:
        days = int(days)
    except (TypeError, ValueError):
        raise RuleViolation(_l("The extension is a whole number of days."), rule="R-PAY-6") from None
    if days <= 0 or days > 365:
        raise RuleViolation(_l("An extension is between 1 and 365 days."), rule="R-PAY-6")
    return days


def _reason(reason) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the customer needs more time."), rule="R-PAY-6")
    return reason


def _open_request(session, extension: Extension) -> Extension:
    """Insert a waiting request; the partial unique index refuses a second one for the subject."""
    from sqlalchemy.exc import IntegrityError
    try:
        with session.begin_nested(), audit_context(session, action="request_extension"):
            session.add(extension)
            session.flush()
    except IntegrityError:
        raise RuleViolation(_l("An extension of this is already waiting for a decision."),
                            rule="R-PAY-6") from None
    _tell_deciders(session, extension)
    return extension


def extension_refusal(by, line: Instalment) -> RuleViolation | None:
    """Why `by` may not ask to extend `line` (None: they may): the role, one of their customers,
    an open line of a live deal (R-PAY-6). The plan grid's button asks this same function."""
    if not can_do(by, "extension.request"):
        return RuleViolation(_l("Your role does not allow this operation."), rule="R-ALL-1")
    if not works_on_deal(by, line.subscription):
        return RuleViolation(_l("This instalment does not exist, or is not one of your customers'."),
                             rule="R-PAY-3")
    if line.status not in OPEN_LINE or line.subscription.status not in LIVE_DEAL:
        return RuleViolation(_l("Only an open instalment of a live deal can be extended."), rule="R-PAY-6")
    return None


def request_extension(session, by, instalment_id: int, days: int, reason: str) -> Extension:
    """The agent asks to move an open instalment's due date by `days`, with a reason (R-PAY-6).
    Whoever may decide it is told: the manager, or the vice-president when the instalment's
    extensions would total more than the project's limit."""
    require(by, "extension.request")
    return _ask_extension(session, by, session.get(Instalment, instalment_id), "instalment_id", extension_refusal,
                          _l("This instalment does not exist, or is not one of your customers'."), days, reason)


def signing_extension_refusal(by, contract) -> RuleViolation | None:
    """Why `by` may not ask to move `contract`'s signing date (None: they may): the role, one of
    their customers, a booked sale contract of a deal whose deposit is in (R-CON-5, R-PAY-6). The
    contract grid's button asks this same function."""
    if not can_do(by, "signing.extension.request"):
        return RuleViolation(_l("Your role does not allow this operation."), rule="R-ALL-1")
    if not works_on_deal(by, contract.subscription):
        return RuleViolation(_l("This contract does not exist, or is not one of your customers'."),
                             rule="R-PAY-3")
    if contract.kind != "sale" or contract.status != "booked" or contract.subscription.status != "active":
        return RuleViolation(_l("Only the signing date of a booked sale contract can be extended."),
                             rule="R-CON-5")
    return None


def request_signing_extension(session, by, contract_id: int, days: int, reason: str) -> Extension:
    """The agent or the lawyer asks to move a booked sale contract's signing date (R-CON-5,
    R-PAY-6): decided like an instalment's extension, with the same limit in total."""
    require(by, "signing.extension.request")
    return _ask_extension(session, by, session.get(Contract, contract_id), "contract_id", signing_extension_refusal,
                          _l("This contract does not exist, or is not one of your customers'."), days, reason)


def _ask_extension(session, by, subject, subject_column: str, refusal, missing, days, reason) -> Extension:
    """An extension of `subject` (an instalment, or a contract's signing date) asked by `by`:
    `missing` when there is no such subject, `refusal(by, subject)` when they may not (R-PAY-6)."""
    if subject is None:
        raise RuleViolation(missing, rule="R-PAY-3")
    refused = refusal(by, subject)
    if refused is not None:
        raise refused
    days, reason = _days(days), _reason(reason)
    with audit_context(session, actor=by):
        return _open_request(session, Extension(subscription_id=subject.subscription_id, days=days, reason=reason,
                                                requested_by_id=by.id, **{subject_column: subject.id}))


def total_days(session, extension: Extension) -> int:
    """The days the same instalment (or signing date) would be extended by in all, were
    `extension` approved: its own and those already approved (R-PAY-6 holds in total)."""
    subject = (Extension.instalment_id == extension.instalment_id if extension.instalment_id is not None
               else Extension.contract_id == extension.contract_id)
    return extension.days + (session.scalar(select(func.coalesce(func.sum(Extension.days), 0)).where(
        subject, Extension.status == "approved", Extension.id != extension.id)) or 0)


def needs_vp(session, extension: Extension) -> bool:
    """Beyond the project's limit in total, not per request — 15 + 15 days is 30, the VP's."""
    return total_days(session, extension) > extension.subscription.project.extension_limit_days


def decider_refusal(by, extension: Extension) -> RuleViolation | None:
    """Why `by` may not decide `extension` (None: they may): the roles of the permission table —
    up to the project's limit in total the sales manager or the vice-president, beyond it only
    the vice-president (R-PAY-6). The grid's buttons and the decision ask this same function."""
    from sqlalchemy.orm import object_session
    if not can_do(by, "extension.decide"):
        return RuleViolation(_l("The sales manager or the vice-president decides extensions."),
                             rule="R-PAY-6")
    if can_do(by, "extension.decide_beyond_limit"):
        return None
    total, limit = total_days(object_session(extension), extension), extension.subscription.project.extension_limit_days
    if total > limit:
        return RuleViolation(_l("In total this would be extended by %(total)d days, over %(limit)d: only the "
                                "vice-president decides.", total=total, limit=limit), rule="R-PAY-6")
    return None


def _tell_deciders(session, extension: Extension) -> None:
    """Whoever must decide is told: the vice-president beyond the limit, else the managers."""
    beyond_limit = needs_vp(session, extension)
    deciders = users_who_may(session, "extension.decide_beyond_limit") if beyond_limit else \
        users_with_roles(session, {"sales_manager"})
    sub = extension.subscription
    notify(session, deciders, "extension_requested",
           {"no": sub.number, "name": sub.customer_name, "what": "signing" if extension.contract_id else "payment",
            "days": extension.days, "beyond": bool(beyond_limit)},
           "/admin/extension/?flt0_0=requested")


def decide_extension(session, by, extension_id: int, approve: bool) -> Extension:
    """The manager (up to the project's limit in total) or the vice-president approves or rejects
    an extension (R-PAY-6); approval moves the effective due date (or signing date) the ladder
    counts from.

    Decided under the deal's lock (the order payments and the ladder use), re-checking that the
    deal is live, by a conditional UPDATE on `requested`: of two decisions at once exactly one is
    recorded and the other is told who decided first; a forfeit and an approval never both happen."""
    require(by, "extension.decide")
    subscription_id = session.scalar(select(Extension.subscription_id).where(Extension.id == extension_id))
    if subscription_id is None:
        raise RuleViolation(_l("This extension is not waiting for a decision."), rule="R-PAY-6")
    sub = locked_subscription(session, subscription_id)
    extension = session.get(Extension, extension_id, populate_existing=True)
    if extension.status != "requested":
        raise already_decided(session, Extension, extension_id, rule="R-PAY-6")
    refused = decider_refusal(by, extension)
    if refused is not None:
        raise refused
    new_due = None
    if extension.instalment_id is not None:
        line = session.scalar(select(Instalment).where(Instalment.id == extension.instalment_id)
                              .with_for_update().execution_options(populate_existing=True))
        if sub.status not in LIVE_DEAL or (approve and line.status not in OPEN_LINE):
            raise RuleViolation(_l("This deal is %(status)s and the instalment %(paid)s: the extension can "
                                   "no longer be decided.", status=choice_label("subscription", "status", sub.status),
                                   paid=choice_label("instalment", "status", line.status)), rule="R-PAY-6")
        base = line.extended_due_on or line.due_on
    else:
        contract = extension.contract
        session.refresh(contract, with_for_update={"of": type(contract)})  # its row only: loaded by a grid with its deal outer-joined, FOR UPDATE of all is refused by PostgreSQL
        if sub.status != "active" or contract.status != "booked":
            raise RuleViolation(_l("This deal is %(status)s: the signing date can no longer be extended.",
                                   status=choice_label("subscription", "status", sub.status)), rule="R-PAY-6")
        base = contract.signing_due_on
    if approve:
        new_due = base + dt.timedelta(days=extension.days)
    if not decide_request(session, Extension, extension_id, by, "approved" if approve else "rejected",
                           "approve_extension" if approve else "reject_extension",
                           **({"new_due_on": new_due} if approve else {})):
        raise already_decided(session, Extension, extension_id, rule="R-PAY-6")
    if approve:
        with audit_context(session, actor=by, action="approve_extension"):
            if extension.instalment_id is not None:
                line.extended_due_on = new_due
            else:
                contract.signing_due_on = new_due
            session.flush()
    extension = session.get(Extension, extension_id, populate_existing=True)
    notify(session, [extension.requested_by_id], "extension_decided",
           {"_t": f"extension_decided.{'approved' if approve else 'rejected'}", "no": sub.number,
            "what": "signing" if extension.contract_id else "payment", "days": extension.days,
            **({"new_due": new_due} if approve else {})}, "/admin/extension/")
    return extension


def expire_unpaid(session, today: dt.date | None = None, dry_run: bool = False) -> int:
    """Subscriptions without their deposit (draft, or confirmed and unpaid) past the deposit line's
    due date (as an approved extension moved it) plus the project's grace expire (R-SUB-2): the
    unit goes back on sale, the customer stays (a visited customer again), open requests close,
    the agent is told; each in a transaction of its own, re-checked under the deal's lock. Part of
    the daily run. Returns how many expired."""
    today = today or office_today()

    def deposit_due(subscription_id):  # the deposit line's due date, moved by an approved extension
        return select(EFFECTIVE_DUE).where(Instalment.subscription_id == subscription_id,
                                           Instalment.kind == "deposit", in_force()).scalar_subquery()

    candidates = []
    for project_id, grace in session.execute(select(Project.id, Project.draft_grace_days).order_by(Project.id)):
        candidates += session.scalars(
            select(Subscription.id).where(Subscription.project_id == project_id,
                                          Subscription.status.in_(WITHDRAWABLE),
                                          deposit_due(Subscription.id) < today - dt.timedelta(days=grace))
            .order_by(Subscription.id)).all()
    expired = 0
    for sub_id in candidates:
        try:
            sub = locked_subscription(session, sub_id)
            due = session.scalar(select(deposit_due(sub.id)))
            late = due is not None and due + dt.timedelta(days=sub.project.draft_grace_days) < today
            if sub.status not in WITHDRAWABLE or not late or dry_run:
                if dry_run and sub.status in WITHDRAWABLE and late:
                    expired += 1  # would expire
                session.rollback()
                continue
            before, unit_id, lead = sub.status, sub.unit_id, sub.lead
            if not move_status(session, sub, None, (before,), "expired", "expire",
                         reason=str(due), expired_at=utcnow()):  # the deposit's due date: shown as words when read
                session.rollback()
                continue
            end_deal(session, sub_id, unit_id, None, "expire")
            with audit_context(session, action="expire"):
                if lead.stage == "subscribed":
                    lead.stage = "visited"
                session.flush()
            notify(session, [sub.agent_id], "subscription_expired",
                   {"_t": f"subscription_expired.{'draft' if before == 'draft' else 'confirmed'}",
                    "no": sub.number, "name": sub.customer_name, "due": due, "days": sub.project.draft_grace_days},
                   f"/admin/subscription/details/?id={sub_id}")
            session.commit()
            expired += 1
        except Exception:
            session.rollback()
            raise
    return expired
