"""Changing a live deal (R-CHG-1): request, decide step by step, send back and resubmit, withdraw.

A change of a deal's terms — its unit, buyers, payment method or price, or its cancellation — is
asked for by the agent (or the manager) with a reason (`request_change`) and decided by the roles
the project's chain names for its kind, one step after another (`chain_for`, `decide_change`).
Each step approves, rejects (with a reason) or sends the request back to its requester, who
resubmits it (a new round from the first step) or withdraws it. The last approval applies the
change in the same transaction (models.change_apply.apply_change); the database's terms guard
(migration d21a00000001) refuses any other write of a live deal's terms.

Like every decision here: the deal is locked first (models.deals.locked_subscription, the order
payments and the ladder use), the request changes by a conditional UPDATE on what the decider saw
(its status, step and round), and a step is recorded once (change_step is unique per request,
round and step); a form's one-time key (models.submissions) makes a repeated submission do
nothing the second time. One change of a deal waits at a time (uq_change_request_open).
The caller commits.
"""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from .audit import audit_context, record_many
from .base import office_time, office_today, utcnow
from .change_apply import apply_change, check_proposal, difference
from .changes import (CHANGE_KINDS, OPEN_CHANGE, ChangeRequest, ChangeStep, current_buyers, manager_price_floor,
                      open_change, validate_change_chains)
from .deals import DEAD_DEAL, Subscription, locked_subscription, works_on_deal
from .documents import request_addendum
from .errors import RuleViolation
from .labels import choice_label
from .money import FEN, parse_money
from .notifications import notify
from .payments import money_held
from .permissions import can_do, require, role_label
from .projects import DEFAULT_CHANGE_CHAINS
from .submissions import claim, settle
from .users import User, users_with_roles

CHANGEABLE = ("active", "contracted")  # a deal whose deposit is in (before it: withdraw and subscribe again)
# What the signed contract fixes (R-CON-4): a contracted deal changes them only after a rescission.
FIXED_BY_CONTRACT = ("unit_swap", "price")
DECISIONS = {"approve": "approved", "reject": "rejected", "send_back": "sent_back"}
ACTIONS = {"approved": "approve_change", "rejected": "reject_change", "sent_back": "send_back_change"}
_OUT_OF_DATE = _l("This form is out of date: open the change request again.")


def _link(change_id: int) -> str:
    return f"/admin/change_request/details/?id={change_id}"


def _kind(kind: str):
    return choice_label("change_request", "kind", kind)


# --- who approves --------------------------------------------------------------------------------

def chain_for(session, sub: Subscription, kind: str, proposal: dict) -> list[str]:
    """The roles that approve a change of `kind` of deal `sub`, in order (R-CHG-1): the project's
    chain for the kind (Project.change_chains, else models.projects.DEFAULT_CHANGE_CHAINS); a price
    change leaving the price below the list price by more than the manager's authority
    (Project.manager_price_limit_percent) goes on to the vice-president. Chains that
    models.changes.validate_change_chains refuses (a role that may not decide changes: nobody could
    ever decide it) are refused here too."""
    project = sub.project
    try:
        chains = validate_change_chains(project.change_chains)
    except RuleViolation as exc:
        raise RuleViolation(_l("Project %(project)s's approval chains cannot be followed: %(problem)s Ask the "
                               "administrator to correct them.", project=project.name, problem=exc.message),
                            rule="R-CHG-1") from exc
    chain = list(chains.get(kind, DEFAULT_CHANGE_CHAINS[kind]))
    if kind == "price" and "vp" not in chain:
        price = parse_money(proposal.get("price"), _l("The new price"), rule="R-CHG-1")
        if price < manager_price_floor(project, sub.unit.list_price):
            chain.append("vp")  # R-PRICE-2: beyond the manager's authority
    return chain


def terms_now(session, sub: Subscription) -> dict:
    """The deal's terms as they are (`ChangeRequest.before`), JSON-safe: unit, price, deposit,
    payment method, buyers and the money paid (models.payments.money_held)."""
    return {"unit_id": sub.unit_id, "unit": sub.unit.number, "price": str(sub.price), "deposit": str(sub.deposit),
            "payment_method": sub.payment_method, "paid": str(money_held(session, sub.id).quantize(FEN)),
            "buyers": [{"name": b.name, "id_type": b.id_type, "id_number": b.id_number, "phone": b.phone,
                        "share": str(b.share)} for b in current_buyers(session, sub.id)]}


def _deciders(session, change: ChangeRequest) -> list[int]:
    """Whoever holds the role of the request's current step: told it waits for them. Not the
    requester (someone else decides: `decision_refusal`)."""
    role = change.roles[change.step]
    return [uid for uid in users_with_roles(session, {role}) if uid != change.requested_by_id]


def _tell_deciders(session, sub: Subscription, change: ChangeRequest, by: User) -> None:
    notify(session, _deciders(session, change), "change_requested",
           {"no": str(change), "kind": change.kind, "deal": sub.number, "name": sub.customer_name,
            "by": by.display_name}, _link(change.id))


# --- asking ---------------------------------------------------------------------------------------

def _changeable(sub: Subscription, kind: str) -> None:
    """A deal may change while its deposit is in and it is not over; a contracted deal keeps the
    unit and the price its contract names (R-CHG-1)."""
    status = choice_label("subscription", "status", sub.status)
    if sub.status in ("draft", "confirmed"):
        raise RuleViolation(_l("This deal has no deposit yet (it is %(status)s): withdraw it and subscribe again "
                               "instead of changing it.", status=status), rule="R-CHG-1")
    if sub.status not in CHANGEABLE:
        raise RuleViolation(_l("This deal is %(status)s: it can no longer be changed.", status=status),
                            rule="R-CHG-1")
    if kind == "cancellation" and sub.handed_over_on is not None:
        raise RuleViolation(_l("The keys of this home were handed over on %(on)s: it can no longer be cancelled "
                               "by a change (the unit would go back on sale while the buyer lives in it).",
                               on=sub.handed_over_on.isoformat()), rule="R-AFT-4")
    if sub.status == "contracted" and kind in FIXED_BY_CONTRACT:
        raise RuleViolation(_l("The signed contract names the unit and the price: a %(kind)s of a contracted deal "
                               "needs the contract rescinded first.", kind=_kind(kind)), rule="R-CHG-1")


def _reason(reason) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the deal changes."), rule="R-CHG-1")
    return reason


def _waiting_refusal(change: ChangeRequest) -> RuleViolation:
    """The refusal of a second change while `change` is open (R-CHG-1): which one, by whom, when."""
    values = {"no": str(change), "kind": _kind(change.kind), "who": change.requested_by.display_name,
              "on": office_time(change.requested_at, "%Y-%m-%d")}
    if change.status == "sent_back":
        return RuleViolation(_l("A change of this deal was sent back (%(no)s, %(kind)s, requested by %(who)s on "
                                "%(on)s): resubmit or withdraw it first.", **values), rule="R-CHG-1")
    return RuleViolation(_l("A change of this deal is already waiting (%(no)s, %(kind)s, requested by %(who)s on "
                            "%(on)s): decide or withdraw it first.", **values), rule="R-CHG-1")


def _deal_for(session, by: User, subscription_id: int) -> Subscription:
    sub = locked_subscription(session, subscription_id)
    if not works_on_deal(by, sub):
        raise RuleViolation(_l("This deal does not exist, or is not one of yours."), rule="R-ALL-1")
    return sub


def request_change(session, by: User, subscription_id: int, kind: str, *, reason: str, proposal: dict,
                   key: str | None = None, today: dt.date | None = None) -> ChangeRequest:
    """Ask to change a live deal (R-CHG-1): an agent on own deals, or the manager. Only a deal whose
    deposit is in (active or contracted; a contracted one not its unit or price); a reason is
    required; the proposal is checked and normalised (models.change_apply.check_proposal); the
    deal's terms now (`before`), what the change does to the money (`difference`) and the chain of
    approvers are kept with it. One open change per deal: a second is refused, naming the first.
    Whoever decides the first step is told. `key`: the form's one-time key (a second submission
    records nothing). Raises RuleViolation; nothing is written then."""
    require(by, "change.request")
    if kind not in CHANGE_KINDS:
        raise RuleViolation(_l("Choose the kind of change."), rule="R-CHG-1")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "change_request", f"subscription:{subscription_id}", out_of_date=_OUT_OF_DATE)
    sub = _deal_for(session, by, subscription_id)
    _changeable(sub, kind)
    reason = _reason(reason)
    waiting = open_change(session, sub.id)
    if waiting is not None:
        raise _waiting_refusal(waiting)
    proposal = check_proposal(session, sub, kind, proposal, today)
    change = ChangeRequest(subscription_id=sub.id, kind=kind, chain=",".join(chain_for(session, sub, kind, proposal)),
                           step=0, round=1, proposal=proposal, before=terms_now(session, sub),
                           difference=difference(session, sub, kind, proposal, today), reason=reason,
                           status="requested", requested_by_id=by.id)
    try:
        with session.begin_nested(), audit_context(session, actor=by, action="request_change"):
            session.add(change)
            session.flush()
    except IntegrityError:  # another request of this deal got in first (uq_change_request_open)
        waiting = open_change(session, sub.id)
        if waiting is None:
            raise
        raise _waiting_refusal(waiting) from None
    _tell_deciders(session, sub, change, by)
    if key is not None:
        settle(session, key, str(change))
    return change


# --- deciding -------------------------------------------------------------------------------------

def _already_decided(session, change_id: int) -> RuleViolation:
    """The refusal for a step decided meanwhile: by whom, and how it stands now."""
    change = session.get(ChangeRequest, change_id, populate_existing=True)
    who = session.get(User, change.decided_by_id).display_name if change.decided_by_id else "—"
    return RuleViolation(_l("This change request was already decided by %(who)s (it is now %(status)s); nothing "
                            "was changed.", who=who,
                            status=choice_label("change_request", "status", change.status)), rule="R-CHG-1")


def decision_refusal(session, user: User, change: ChangeRequest) -> RuleViolation | None:
    """Why `user` may not decide `change`'s current step now (None: they may). The decision and the
    buttons ask this same function (R-CHG-1): the role to decide changes and the role the chain names
    for this step (the administrator does not stand in); not the requester, nor whoever decided an
    earlier step of this round (someone else decides); a request waiting for a decision, of a deal
    not over."""
    if not can_do(user, "change.decide"):
        return RuleViolation(_l("Your role does not allow this operation."), rule="R-ALL-1")
    if change.status != "requested":
        if change.decided_by_id is not None:
            return _already_decided(session, change.id)
        return RuleViolation(_l("This change request is not waiting for a decision (it is %(status)s).",
                                status=choice_label("change_request", "status", change.status)), rule="R-CHG-1")
    roles = change.roles
    role = roles[change.step] if change.step < len(roles) else None
    if role is None or not user.has_role(role):
        return RuleViolation(_l("This step of %(no)s is decided by the %(role)s.", no=str(change),
                                role=role_label(role or "—")), rule="R-CHG-1")
    if user.id == change.requested_by_id:
        return RuleViolation(_l("You asked for this change: someone else decides it."), rule="R-CHG-1")
    if session.scalar(select(ChangeStep.id).where(ChangeStep.change_request_id == change.id,
                                                  ChangeStep.round == change.round,
                                                  ChangeStep.decided_by_id == user.id).limit(1)):
        return RuleViolation(_l("You approved an earlier step of this change: someone else decides this one."),
                             rule="R-CHG-1")
    sub = change.subscription
    if sub.status in DEAD_DEAL:
        return RuleViolation(_l("This deal is %(status)s: its change can no longer be decided.",
                                status=choice_label("subscription", "status", sub.status)), rule="R-CHG-1")
    return None


def _difference_now(session, sub: Subscription, change: ChangeRequest, today: dt.date, status: str) -> dict:
    """What the change does to the money today, for the decider to read. A proposal that no longer
    fits (the new unit was sold meanwhile) refuses an approval, never a rejection or a send-back:
    those keep the figures computed before."""
    try:
        return difference(session, sub, change.kind, change.proposal, today)
    except RuleViolation:
        if status == "approved":
            raise
        return change.difference


def decide_change(session, by: User, change_id: int, decision: str, *, note: str = "", key: str | None = None,
                  today: dt.date | None = None) -> ChangeRequest:
    """One step of a change request decided (R-CHG-1): "approve", "reject" or "send_back" (the last
    two with the reason in `note`), by whoever holds the role the chain names for the step
    (`decision_refusal`). Approving a step that is not the last passes the request to the next
    role; approving the last applies the change (models.change_apply.apply_change) in this same
    transaction — if it cannot be applied (the new unit was taken meanwhile…) nothing of the
    decision is written and the refusal says why. Sending back returns it to its requester
    (`resubmit_change` or `withdraw_change`). The requester is told of the outcome.

    Under the deal's lock, by a conditional UPDATE on the status, step and round the decider saw,
    with the step's row (unique per request, round and step): of two clicks or two deciders at
    once exactly one decision is recorded; the other is told who decided first."""
    require(by, "change.decide")
    status = DECISIONS.get(decision)
    if status is None:
        raise RuleViolation(_l("Approve, reject or send back."), rule="R-CHG-1")
    note = (note or "").strip()
    if status != "approved" and not note:
        raise RuleViolation(_l("Say why the change is rejected or sent back."), rule="R-CHG-1")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "change_decision", f"change_request:{change_id}", out_of_date=_OUT_OF_DATE)
    subscription_id = session.scalar(select(ChangeRequest.subscription_id).where(ChangeRequest.id == change_id))
    if subscription_id is None:
        raise RuleViolation(_l("This change request does not exist."), rule="R-CHG-1")
    sub = locked_subscription(session, subscription_id)
    change = session.get(ChangeRequest, change_id, populate_existing=True)
    refused = decision_refusal(session, by, change)
    if refused is not None:
        raise refused
    if status == "approved":
        _changeable(sub, change.kind)  # contracted meanwhile: the contract fixes the unit and price
    step, round_, roles = change.step, change.round, change.roles
    last = step == len(roles) - 1
    after = "requested" if status == "approved" and not last else status
    now = utcnow()
    values = {"status": after, "step": step + 1 if after == "requested" else step, "decided_by_id": by.id,
              "decided_at": now, "difference": _difference_now(session, sub, change, today, status)}
    if status != "approved":
        values["decision_note"] = note
    with session.begin_nested():  # the whole decision, or nothing of it (an approval that cannot be applied)
        matched = session.execute(
            update(ChangeRequest).where(ChangeRequest.id == change.id, ChangeRequest.status == "requested",
                                        ChangeRequest.step == step, ChangeRequest.round == round_)
            .values(**values).execution_options(synchronize_session=False)).rowcount
        if matched != 1:
            raise _already_decided(session, change_id)
        try:
            with session.begin_nested():
                session.execute(insert(ChangeStep).values(change_request_id=change.id, round=round_, seq=step,
                                                          role=roles[step], decision=status, note=note,
                                                          decided_by_id=by.id, decided_at=now))
        except IntegrityError:  # the step's row is there already: someone decided it first
            raise _already_decided(session, change_id) from None
        record_many(session, "change_request", ACTIONS[status], by,
                    [(change.id, {"status": ["requested", after], "step": [step, values["step"]],
                                  "round": [round_, round_], "role": [None, roles[step]],
                                  **({"note": [None, note]} if note else {})})])
        session.expire(change)
        if after == "approved":
            change = session.get(ChangeRequest, change_id, populate_existing=True)
            try:
                apply_change(session, by, change, today)
            except RuleViolation as exc:
                raise RuleViolation(_l("The change cannot be applied: %(why)s Nothing was recorded; reject it "
                                       "or send it back.", why=exc.message), rule=exc.rule or "R-CHG-1") from None
            session.execute(update(ChangeRequest).where(ChangeRequest.id == change.id,
                                                        ChangeRequest.applied_at.is_(None))
                            .values(applied_at=utcnow()).execution_options(synchronize_session=False))
            # R-CHG-3 / item 7: the addendum of every approved change, requested with the change
            # (nothing approved goes without one); the caller sends it after its commit.
            request_addendum(session, by, change)
    change = session.get(ChangeRequest, change_id, populate_existing=True)
    sub = session.get(Subscription, subscription_id, populate_existing=True)
    if after == "requested":
        _tell_deciders(session, sub, change, session.get(User, change.requested_by_id))
    else:
        notify(session, [change.requested_by_id], "change_decided",
               {"_t": f"change_decided.{after}", "no": str(change), "kind": change.kind, "deal": sub.number,
                "name": sub.customer_name, "by": by.display_name, "note": note}, _link(change.id))
    if key is not None:
        settle(session, key, f"{change} {ACTIONS[status]}")
    return change


# --- the requester's answers to a send-back, and withdrawal ---------------------------------------

def _own_open(session, by: User, change_id: int, statuses: tuple) -> tuple[Subscription, ChangeRequest]:
    """The deal (locked) and the change request `by` answers for: theirs, or of a deal they work on."""
    subscription_id = session.scalar(select(ChangeRequest.subscription_id).where(ChangeRequest.id == change_id))
    if subscription_id is None:
        raise RuleViolation(_l("This change request does not exist."), rule="R-CHG-1")
    sub = locked_subscription(session, subscription_id)
    change = session.get(ChangeRequest, change_id, populate_existing=True)
    if change.requested_by_id != by.id and not works_on_deal(by, sub):
        raise RuleViolation(_l("This deal does not exist, or is not one of yours."), rule="R-ALL-1")
    if change.status not in statuses:
        raise RuleViolation(_l("This change request is %(status)s: there is nothing to do on it.",
                               status=choice_label("change_request", "status", change.status)), rule="R-CHG-1")
    return sub, change


def resubmit_change(session, by: User, change_id: int, *, reason: str, proposal: dict, key: str | None = None,
                    today: dt.date | None = None) -> ChangeRequest:
    """The requester — only they — answers a send-back (R-CHG-1): the corrected proposal and reason start a new
    round from the chain's first step — the proposal checked again, the chain, the deal's terms
    and the difference computed anew — and the first decider is told."""
    require(by, "change.request")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "change_resubmit", f"change_request:{change_id}", out_of_date=_OUT_OF_DATE)
    sub, change = _own_open(session, by, change_id, ("sent_back",))
    if change.requested_by_id != by.id:
        # Only its requester answers a send-back: anyone else re-writing the proposal would ask for a
        # change they might then approve themselves (a manager who works on every deal). They may
        # withdraw it and ask anew — then they are its requester, and someone else decides.
        raise RuleViolation(_l("Only %(who)s, who asked for this change, may resubmit it; withdraw it and ask "
                               "anew if the deal must change otherwise.", who=change.requested_by.display_name),
                            rule="R-CHG-1")
    _changeable(sub, change.kind)
    reason = _reason(reason)
    proposal = check_proposal(session, sub, change.kind, proposal, today)
    chain = ",".join(chain_for(session, sub, change.kind, proposal))
    round_ = change.round
    matched = session.execute(
        update(ChangeRequest).where(ChangeRequest.id == change.id, ChangeRequest.status == "sent_back",
                                    ChangeRequest.round == round_)
        .values(status="requested", round=round_ + 1, step=0, chain=chain, proposal=proposal, reason=reason,
                before=terms_now(session, sub), difference=difference(session, sub, change.kind, proposal, today))
        .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        raise RuleViolation(_l("This change request changed meanwhile; reload and try again."), rule="R-CHG-1")
    record_many(session, "change_request", "resubmit_change", by,
                [(change.id, {"status": ["sent_back", "requested"], "round": [round_, round_ + 1],
                              "reason": [change.reason, reason]})])
    change = session.get(ChangeRequest, change_id, populate_existing=True)
    _tell_deciders(session, sub, change, by)
    if key is not None:
        settle(session, key, f"{change} resubmit_change")
    return change


def withdraw_change(session, by: User, change_id: int, *, reason: str) -> ChangeRequest:
    """The requester (or whoever works on the deal: its agent, the manager) takes an open change
    request back, with a reason (R-CHG-1); the deal may then change otherwise."""
    require(by, "change.withdraw")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the change request is withdrawn."), rule="R-CHG-1")
    sub, change = _own_open(session, by, change_id, OPEN_CHANGE)
    was = change.status
    matched = session.execute(
        update(ChangeRequest).where(ChangeRequest.id == change.id, ChangeRequest.status == was)
        .values(status="withdrawn", decided_by_id=by.id, decided_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        raise _already_decided(session, change_id)
    record_many(session, "change_request", "withdraw_change", by,
                [(change.id, {"status": [was, "withdrawn"], "reason": [None, reason]})])
    return session.get(ChangeRequest, change_id, populate_existing=True)
