"""What waits for a person (R-PAY-5, R-PAY-6, R-PRICE-2, R-CHG-5): each worklist defined once,
as a WHERE clause its grid filters by and the home page counts with, so the page that says
"3 waiting for you" and the list behind it never disagree.

- lawyer's letters to send (the lawyer marks each sent, or not needed once paid);
- signed deals on the forfeit day, the rescission (解约) worklist: the manager, the lawyer or the
  vice-president decides to keep chasing or to rescind;
- prices below list, for the vice-president; extensions, for whoever may decide each one;
- money held on deals that are over, for finance (models.payments.awaiting_settlement);
- duplicate registrations, for the manager.
"""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update

from .audit import record_many
from .base import office_today
from .deals import LIVE_DEAL, PriceApproval, Subscription
from .handovers import Handover, handovers_booked_on
from .ladder import EVENT_OUTCOMES, Extension, OverdueEvent
from .loans import LoanFile, stuck
from .payments import Instalment, in_force
from .errors import RuleViolation
from .labels import choice_label
from .notifications import notify
from .permissions import can_do, require
from .users import User, users_who_may, users_with_roles

# Who handles which waiting event, and how it may end.
EVENT_WORK = {
    "lawyer_letter": ("letter.mark_sent", ("sent", "not_needed")),
    "rescission": ("rescission.decide", ("continue", "rescind")),
}


def _deal_of_event_is(statuses):
    """Events of deals in `statuses`: of the plan in force's lines (a change's replaced lines are
    chased afresh on the new plan, R-CHG-2), and signing events on any plan's deposit line (the
    signing's ladder does not restart: models.ladder._signing_overdue)."""
    lines = (select(Instalment.id).join(Subscription, Subscription.id == Instalment.subscription_id)
             .where(Subscription.status.in_(statuses)))
    return or_(OverdueEvent.instalment_id.in_(lines.where(in_force())),
               and_(OverdueEvent.cause == "signing", OverdueEvent.instalment_id.in_(lines)))


def letters_to_send():
    """Lawyer's letters prompted by the ladder, not yet sent, of deals still live."""
    return and_(OverdueEvent.level == "lawyer_letter", OverdueEvent.outcome.is_(None),
                _deal_of_event_is(LIVE_DEAL))


def rescissions_to_decide():
    """Signed deals whose line reached the forfeit day, not yet decided."""
    return and_(OverdueEvent.level == "rescission", OverdueEvent.outcome.is_(None),
                _deal_of_event_is(("contracted",)))


def prices_to_decide():
    return and_(PriceApproval.status == "requested",
                PriceApproval.subscription_id.in_(select(Subscription.id).where(Subscription.status == "draft")))


def extensions_for(session, user) -> list[Extension]:
    """Extensions waiting for `user`: the vice-president's are those beyond the manager's limit
    (models.ladder.needs_vp), the manager's those within it."""
    from .ladder import decider_refusal, needs_vp
    if not can_do(user, "extension.decide"):
        return []
    vp = can_do(user, "extension.decide_beyond_limit")
    waiting = session.scalars(select(Extension).where(Extension.status == "requested")
                              .order_by(Extension.id)).all()
    return [e for e in waiting if needs_vp(session, e) == vp and decider_refusal(user, e) is None]


def waivers_to_decide(user):
    """A WHERE clause: the late-fee waivers `user` may decide (R-AFT-1) — waiting, not their own;
    the vice-president only those beyond the manager's limit, the manager only those within it."""
    from .charges import LateFeeWaiver
    beyond = can_do(user, "late_fee.waive_beyond_limit")
    return and_(LateFeeWaiver.status == "requested", LateFeeWaiver.requested_by_id != user.id,
                LateFeeWaiver.needs_vp.is_(beyond))


def waiting_for(session, user) -> list[dict]:
    """What waits for `user`'s decision or action, for the home page: label, count, link."""
    from .charges import LateFeeWaiver
    from .leads import LeadConflict
    from .payments import awaiting_settlement
    items = []

    def add(label, count, link):
        if count:
            items.append({"label": label, "count": count, "link": link})

    def count(model, clause):
        return session.scalar(select(func.count()).select_from(model).where(clause))

    if can_do(user, "price.decide"):
        add(_l("Prices below list to decide"), count(PriceApproval, prices_to_decide()),
            "/admin/price_approval/?flt0_0=requested")
    if can_do(user, "extension.decide"):
        add(_l("Extensions to decide"), len(extensions_for(session, user)), "/admin/extension/?flt0_0=requested")
    if can_do(user, "late_fee.waive"):
        add(_l("Late-fee waivers to decide"), count(LateFeeWaiver, waivers_to_decide(user)),
            "/admin/late_fee_waiver/?flt0_0=requested")
    if can_do(user, "letter.mark_sent"):
        add(_l("Lawyer's letters to send"), count(OverdueEvent, letters_to_send()), "/admin/lawyer_letter_due/")
    if can_do(user, "rescission.decide"):
        add(_l("Rescissions to decide"), count(OverdueEvent, rescissions_to_decide()), "/admin/rescission/")
    if can_do(user, "settlement.record"):
        add(_l("Money to settle on deals that are over"), count(Subscription, awaiting_settlement()),
            "/admin/settlement/")
    if can_do(user, "loan.stage"):  # R-AFT-2: finance and the lawyer
        add(_l("Mortgage files stuck"), count(LoanFile, stuck(session, office_today())), "/admin/loan_stuck/")
    if can_do(user, "handover.inspect"):  # R-AFT-4: customer service meets these buyers today
        today = office_today()
        add(_l("Handovers booked today"), count(Handover, handovers_booked_on(today)),
            f"/admin/handover/?day={today.isoformat()}")
    from .permissions import scope_filter
    from .tickets import OPEN_TICKET, Ticket, surveys_due, tickets_overdue
    if can_do(user, "ticket.route") and not user.has_role("admin"):  # customer service and the manager
        add(_l("After-sales tickets overdue"), count(Ticket, tickets_overdue()), "/admin/ticket_due/")
    add(_l("Tickets assigned to me"),
        count(Ticket, and_(Ticket.assigned_to_id == user.id, Ticket.status.in_(OPEN_TICKET))), "/admin/ticket/?mine=1")
    if can_do(user, "survey.record"):
        mine = None if scope_filter(Subscription, user) is None else user.id
        add(_l("Surveys due"), len(surveys_due(session, agent_id=mine)), "/admin/survey/due/")
    if can_do(user, "lead.resolve_conflict") and not user.has_role("admin"):
        add(_l("Duplicate registrations to decide"), count(LeadConflict, LeadConflict.status == "open"),
            "/admin/lead_conflict/?flt0_0=open")
    if can_do(user, "channel.resolve"):  # R-COM-1
        from .channels import ChannelConflict
        add(_l("Channel conflicts to decide"), count(ChannelConflict, ChannelConflict.status == "open"),
            "/admin/channel_conflict/?flt0_0=open")
    return items


def handle_event(session, by, event_id: int, outcome: str, note: str = "",
                 today: dt.date | None = None) -> OverdueEvent:
    """A person acts on an event that waits for one: the lawyer marks a lawyer's letter sent (or
    not needed: once paid, or with a reason); the manager, the lawyer or the vice-president decides
    a rescission — keep chasing, or rescind (models.contracts.rescind: the deal ends), with a
    reason (R-PAY-5). A conditional UPDATE on the event being
    undecided: a double click or two people at once record it once, and the second is told."""
    today = today or office_today()
    event = session.get(OverdueEvent, event_id)
    if event is None or event.level not in EVENT_WORK:
        raise RuleViolation(_l("Nothing waits to be done about this event."), rule="R-PAY-5")
    operation, outcomes = EVENT_WORK[event.level]
    require(by, operation)
    if outcome not in outcomes:
        raise RuleViolation(_l("Choose what was done."), rule="R-PAY-5")
    note = (note or "").strip()
    if event.level == "rescission" and not note:
        raise RuleViolation(_l("Give the reason for the decision."), rule="R-PAY-5")
    if outcome == "not_needed" and not note and not _settled(session, event):
        raise RuleViolation(_l("The money is still owed: send the letter, or say why it is not needed."),
                            rule="R-PAY-5")
    if outcome == "rescind":  # the deal first, in the order payments and the ladder lock
        from .deals import locked_subscription
        locked_subscription(session, event.instalment.subscription_id)
    matched = session.execute(
        update(OverdueEvent).where(OverdueEvent.id == event.id, OverdueEvent.outcome.is_(None))
        .values(outcome=outcome, handled_on=today, handled_by_id=by.id, handling_note=note)
        .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        session.refresh(event)
        who = session.get(User, event.handled_by_id)
        raise RuleViolation(_l("This was already done (%(outcome)s by %(who)s on %(on)s); nothing was changed.",
                               outcome=choice_label("overdue_event", "outcome", event.outcome),
                               who=who.display_name if who else "—", on=event.handled_on), rule="R-PAY-5")
    record_many(session, "overdue_event", f"event_{outcome}", by,
                [(event.id, {"outcome": [None, outcome], "handled_on": [None, today], "note": [None, note]})])
    session.refresh(event)
    if outcome == "rescind":  # the decision takes effect in the same transaction
        from .contracts import rescind
        rescind(session, by, event.instalment.subscription_id, reason=note, today=today)
    if event.level == "rescission":
        sub = event.instalment.subscription
        people = set(users_who_may(session, "rescission.decide")) | {sub.agent_id}
        if outcome == "rescind":
            people |= set(users_with_roles(session, {"finance"}))
        notify(session, sorted(people - {by.id}), "rescission_decided",
               {"_t": f"rescission_decided.{'continue' if outcome == 'continue' else 'rescind'}",
                "no": sub.number, "name": sub.customer_name, "by": by.display_name, "note": note[:60]},
               f"/admin/subscription/details/?id={sub.id}")
    return event


def _settled(session, event: OverdueEvent) -> bool:
    """Whether what the event chased is done: the line paid, or (signing overdue) the contract signed."""
    line = event.instalment
    if event.cause == "signing":
        from .contracts import Contract
        return session.scalar(select(Contract.id).where(Contract.subscription_id == line.subscription_id,
                                                        Contract.kind == "sale", Contract.status != "booked")
                              .limit(1)) is not None
    return line.status == "paid"


def outcomes_of(level: str) -> tuple[str, ...]:
    return EVENT_WORK.get(level, (None, ()))[1]


assert all(set(o) <= set(EVENT_OUTCOMES) for _, o in EVENT_WORK.values())
