"""Contracts (签约), their post-signing steps, and the contract archive (R-CON-1…7)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, and_, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, in_list, utcnow
from .deals import Subscription
from .users import User

CONTRACT_KINDS = ("sale", "mortgage")
CONTRACT_STATUSES = ("booked", "signed", "registered", "archived", "rescinded")
STEP_KINDS = ("online_filing", "notarisation", "mortgage", "registration")
STEP_STATUSES = ("pending", "in_progress", "done")


class Contract(Base):
    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint(in_list("kind", CONTRACT_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", CONTRACT_STATUSES), name="status_known"),
        CheckConstraint("status = 'booked' OR (number IS NOT NULL AND signed_on IS NOT NULL)",
                        name="signed_has_number"),
        Index("uq_contract_booked", "subscription_id", "kind", unique=True,
              sqlite_where=text("status = 'booked'"), postgresql_where=text("status = 'booked'")),
        Index("ix_contract_signed_on", "signed_on"),  # signings today and this month (dashboard)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    kind: Mapped[str] = mapped_column(String(20), default="sale")
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    appointment_at: Mapped[dt.datetime | None]
    signed_on: Mapped[dt.date | None]
    bank: Mapped[str | None] = mapped_column(String(100))
    lawyer_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(20), default="booked")
    booked_on: Mapped[dt.date | None]
    signing_due_on: Mapped[dt.date | None]  # R-CON-5: not signed by then → the ladder
    checklist: Mapped[str] = mapped_column(Text, default="")  # R-CON-3, as given to the customer
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    lawyer: Mapped[User | None] = relationship(foreign_keys=[lawyer_id])
    steps: Mapped[list["ContractStep"]] = relationship(back_populates="contract")

    def __str__(self) -> str:
        return self.number or f"#{self.id}"

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.subscription_id.in_(select(Subscription.id).where(Subscription.agent_id == user_id))


class ContractStep(Base):
    """A procedure after signing and what the customer must still supply (R-CON-6)."""

    __tablename__ = "contract_step"
    __table_args__ = (
        CheckConstraint(in_list("kind", STEP_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", STEP_STATUSES), name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    promised_on: Mapped[dt.date | None]
    done_on: Mapped[dt.date | None]
    customer_action: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")

    contract: Mapped[Contract] = relationship(back_populates="steps")

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.contract_id.in_(select(Contract.id).where(Contract.owned_by(user_id)))


class ArchiveRecord(Base):
    """Originals returned to the contract archive, and stamped copies issued (R-CON-7)."""

    __tablename__ = "archive_record"
    __table_args__ = (UniqueConstraint("contract_id"),)  # one register entry per contract

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"), index=True)
    received_on: Mapped[dt.date]
    location: Mapped[str] = mapped_column(String(100))
    notes: Mapped[str] = mapped_column(Text, default="")

    contract: Mapped[Contract] = relationship()


class StampedCopy(Base):
    """A stamped copy of an archived contract given to sales for a customer (R-CON-7)."""

    __tablename__ = "stamped_copy"

    id: Mapped[int] = mapped_column(primary_key=True)
    archive_record_id: Mapped[int] = mapped_column(ForeignKey("archive_record.id", ondelete="RESTRICT"),
                                                   index=True)
    issued_to_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    issued_on: Mapped[dt.date]
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(Text, default="")

    record: Mapped[ArchiveRecord] = relationship()
    issued_to: Mapped[User] = relationship(foreign_keys=[issued_to_id])


# ---------------------------------------------------------------------------------------------
# Domain operations (R-CON-1…4). The caller commits.

from decimal import Decimal  # noqa: E402

from flask_babel import lazy_gettext as _l  # noqa: E402
from sqlalchemy import update  # noqa: E402

from .audit import audit_context, record_many  # noqa: E402
from .base import office_to_utc, office_today, utcnow  # noqa: E402
from .payments import method_of, signing_gate, tell_finance_of_money_held  # noqa: E402
from .errors import RuleViolation  # noqa: E402
from .inventory import Unit  # noqa: E402
from .labels import choice_label  # noqa: E402
from .money import format_money  # noqa: E402
from .notifications import notify  # noqa: E402
from .permissions import can_do, require  # noqa: E402
from .users import users_who_may  # noqa: E402
from .archive import keep_apart  # noqa: E402
from .deals import deal_moved, end_deal, locked_subscription, works_on_deal  # noqa: E402
from .leads import Lead  # noqa: E402

FEN = Decimal("0.01")




def signing_checklist(session, sub: Subscription) -> str:
    """What the customer brings to the signing of `sub` (R-CON-3), one item per line: the
    project's list, which every deal brings, then the items of the deal's payment method (a
    mortgage's bank card and income proof only on a mortgage deal, the provident fund's deposit
    proof only on a fund loan). The one definition: the booking stores it on the contract, and
    the booking's message, the contract grid and the 签约预约单 show what was stored."""
    items = [line.strip() for text in (sub.project.signing_checklist, method_of(session, sub).signing_checklist)
             for line in (text or "").splitlines() if line.strip()]
    return "\n".join(dict.fromkeys(items))  # an item both lists name, once


def payment_refusal(session, sub: Subscription) -> RuleViolation | None:
    """Why `sub` may not be booked or signed for lack of money (None: paid enough, R-CON-1)."""
    required, paid = signing_gate(session, sub)
    if paid < required:
        return RuleViolation(_l("The down payment is not complete: %(missing)s is still missing "
                                "(%(paid)s of %(required)s paid). Signing is booked only after it.",
                                missing=format_money(required - paid), paid=format_money(paid),
                                required=format_money(required)), rule="R-CON-1")
    return None


def _require_paid(session, sub: Subscription) -> None:
    refused = payment_refusal(session, sub)
    if refused is not None:
        raise refused


def booking_refusal(session, by, sub: Subscription, kind: str = "sale") -> RuleViolation | None:
    """Why `by` may not book the signing of `sub` now (None: they may), in the order the booking
    checks (R-CON-1, R-CON-2): the role, the customer's agent, a live deal with its deposit in, no
    signed contract of the kind yet, the down payment complete. The 预约签约 button asks this
    same function: it is hidden where the step can never apply and shows the shortfall where
    money is missing."""
    if not can_do(by, "contract.book"):
        return RuleViolation(_l("Your role does not allow this operation."), rule="R-ALL-1")
    if not works_on_deal(by, sub):
        return RuleViolation(_l("This subscription does not exist, or is not one of yours."), rule="R-ALL-1")
    if sub.status != "active" and not (kind == "mortgage" and sub.status == "contracted"):
        return RuleViolation(_l("Only an active subscription (deposit in, not forfeited or withdrawn) "
                                "can be booked for signing."), rule="R-CON-2")
    if session.scalar(select(Contract.id).where(Contract.subscription_id == sub.id, Contract.kind == kind,
                                                Contract.status != "booked").limit(1)) is not None:
        return RuleViolation(_l("This contract is already signed."), rule="R-CON-4")
    return payment_refusal(session, sub)


def _lock(session, subscription_id: int) -> Subscription:
    return locked_subscription(session, subscription_id)


def book_signing(session, by, subscription_id: int, *, appointment_at: dt.datetime,
                 kind: str = "sale", lawyer_id: int | None = None, today: dt.date | None = None) -> Contract:
    """The agent or lawyer books the signing (at `appointment_at`, office time) from the payment
    progress (R-CON-2): refused while the down payment is short; the booking carries the
    project's checklist (R-CON-3) and goes on the lawyers' worklist. A deal has one booking per
    kind of contract (a partial unique index): booking again moves its appointment. The checklist
    follows the deal's payment method (`signing_checklist`)."""
    require(by, "contract.book")
    today = today or office_today()
    sub = _lock(session, subscription_id)
    if kind not in CONTRACT_KINDS:
        raise RuleViolation(_l("Choose the kind of contract."), rule="R-CON-2")
    refused = booking_refusal(session, by, sub, kind)
    if refused is not None:
        raise refused
    if appointment_at.date() < today:
        raise RuleViolation(_l("The appointment cannot be in the past."), rule="R-CON-2")
    booked = session.scalar(select(Contract).where(Contract.subscription_id == sub.id, Contract.kind == kind,
                                                   Contract.status == "booked").with_for_update())
    with audit_context(session, actor=by, action="book_signing"):
        if booked is not None:
            # Booking again moves the appointment, never the date the signing is due by: only an
            # approved extension moves that (R-CON-5, R-PAY-6), so a new booking is no new budget.
            contract = booked
            contract.appointment_at = office_to_utc(appointment_at)
            contract.lawyer_id = lawyer_id or contract.lawyer_id
            contract.checklist = signing_checklist(session, sub)  # the deal's method as it is now
        else:
            contract = Contract(subscription_id=sub.id, kind=kind, appointment_at=office_to_utc(appointment_at),
                                lawyer_id=lawyer_id, booked_by_id=by.id, booked_on=today,
                                signing_due_on=today + dt.timedelta(days=sub.project.signing_due_days),
                                checklist=signing_checklist(session, sub), status="booked")
            session.add(contract)
        session.flush()
    lawyers = [lawyer_id] if lawyer_id else users_who_may(session, "contract.sign")
    notify(session, lawyers, "signing_booked",
           {"no": sub.number, "name": sub.customer_name, "at": f"{appointment_at:%Y-%m-%d %H:%M}"},
           f"/admin/contract/details/?id={contract.id}")
    return contract


def sign_contract(session, by, contract_id: int, *, number: str, signed_on: dt.date,
                  bank: str | None = None, today: dt.date | None = None) -> Contract:
    """The lawyer enters the signed contract (R-CON-4). In one transaction, with the payment
    re-checked under lock (a reversal after booking blocks it, R-CON-1): contract signed; for the
    sale contract the subscription becomes contracted, the unit signed, the customer signed."""
    require(by, "contract.sign")
    today = today or office_today()
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise RuleViolation(_l("This contract does not exist."), rule="R-CON-4")
    sub = _lock(session, contract.subscription_id)
    session.refresh(contract, with_for_update={"of": Contract})  # its row only: loaded by a grid with its deal outer-joined, FOR UPDATE of all is refused by PostgreSQL
    if contract.status != "booked":
        raise RuleViolation(_l("This contract is already signed."), rule="R-CON-4")
    if sub.status not in ("active", "contracted") or (contract.kind == "sale" and sub.status != "active"):
        raise RuleViolation(_l("A withdrawn or forfeited subscription cannot be signed."), rule="R-CON-4")
    number = (number or "").strip()
    if not number:
        raise RuleViolation(_l("Enter the contract number."), rule="R-CON-4")
    if session.scalar(select(Contract.id).where(Contract.number == number)):
        raise RuleViolation(_l("The contract number %(number)s is already used.", number=number),
                            rule="R-CON-4")
    if signed_on > today or (contract.booked_on and signed_on < contract.booked_on):
        raise RuleViolation(_l("The signing date lies between the booking and today."), rule="R-CON-4")
    if contract.kind == "mortgage" and not (bank or "").strip():
        raise RuleViolation(_l("A mortgage contract names its bank."), rule="R-CON-4")
    _require_paid(session, sub)
    with audit_context(session, actor=by, action="sign_contract"):
        contract.number, contract.signed_on, contract.status = number, signed_on, "signed"
        contract.bank = (bank or "").strip() or None
        contract.lawyer_id = contract.lawyer_id or by.id
        if contract.kind == "sale":
            sub.status = "contracted"
            sub.lead.stage = "signed"
        session.flush()
    if contract.kind == "sale":
        matched = session.execute(update(Unit).where(Unit.id == sub.unit_id, Unit.status == "subscribed")
                                  .values(status="signed").execution_options(synchronize_session=False))
        if matched.rowcount != 1:
            raise RuleViolation(_l("The unit is no longer subscribed by this deal."), rule="R-CON-4")
        record_many(session, "unit", "sign_contract", by, [(sub.unit_id, {"status": ["subscribed", "signed"]})])
        with audit_context(session, actor=by, action="sign_contract"):
            create_steps(session, contract)
        deal_moved(session, sub.id, by, "sign_contract")  # the deal is contracted (models.commissions)
    return contract


# Post-signing procedures (R-CON-6): default steps and when they are usually done.
DEFAULT_STEPS = (("online_filing", 7), ("notarisation", 30), ("mortgage", 45), ("registration", 180))


def create_steps(session, contract: Contract) -> list[ContractStep]:
    """The procedures after signing a sale contract, with promised dates from the signing date;
    mortgage processing only for a mortgage or provident-fund deal."""
    mortgage = contract.subscription.payment_method in ("commercial_mortgage", "provident_fund")
    steps = [ContractStep(contract_id=contract.id, kind=kind,
                          promised_on=contract.signed_on + dt.timedelta(days=days))
             for kind, days in DEFAULT_STEPS if kind != "mortgage" or mortgage]
    session.add_all(steps)
    session.flush()
    return steps


def steps_late(today: dt.date):
    """A WHERE clause: procedures past their promised date, not done, of contracts still in force
    (a rescinded contract's procedures stopped) — the lawyer's worklist and home page (R-CON-6)."""
    return and_(ContractStep.status != "done", ContractStep.promised_on < today,
                ContractStep.contract_id.in_(select(Contract.id).where(Contract.status != "rescinded")))


def step_refusal(step: ContractStep, status: str, done_on: dt.date | None = None) -> RuleViolation | None:
    """Why `step` may not move to `status` (None: it may): a step starts (in progress or done)
    only once the steps the project makes it wait for are done on this contract, is done no
    earlier than they were, and a finished step is reopened only while none of the steps waiting
    for it has started (R-CON-6; Project.step_prerequisites). Steps the contract does not
    have (no mortgage on a one-off payment) do not hold it back."""
    contract = step.contract
    rules = contract.subscription.project.step_prerequisites or {}
    if step.status == "done" and status != "done":  # reopened: only while nothing after it started
        started = [s for s in contract.steps if step.kind in rules.get(s.kind, []) and s.status != "pending"]
        if started:
            return RuleViolation(_l("%(step)s cannot be reopened: %(after)s, which waits for it, has started.",
                                    step=choice_label("contract_step", "kind", step.kind),
                                    after="、".join(str(choice_label("contract_step", "kind", s.kind)) for s in started)),
                                 rule="R-CON-6")
    if status == "pending":
        return None
    steps = {s.kind: s for s in contract.steps}
    waiting = [steps[kind] for kind in rules.get(step.kind, []) if kind in steps]
    not_done = [s for s in waiting if s.status != "done"]
    if not_done:
        return RuleViolation(_l("%(step)s waits for %(before)s to be done first.",
                                step=choice_label("contract_step", "kind", step.kind),
                                before="、".join(str(choice_label("contract_step", "kind", s.kind)) for s in not_done)),
                             rule="R-CON-6")
    if status == "done" and done_on is not None:
        latest = max((s.done_on for s in waiting if s.done_on), default=None)
        if latest is not None and done_on < latest:
            return RuleViolation(_l("%(step)s cannot be done before the steps it waits for (%(on)s).",
                                    step=choice_label("contract_step", "kind", step.kind), on=latest.isoformat()),
                                 rule="R-CON-6")
    return None


def update_step(session, by, step_id: int, *, status: str, promised_on: dt.date | None = None,
                done_on: dt.date | None = None, customer_action: str | None = None,
                notes: str | None = None, today: dt.date | None = None) -> ContractStep:
    """The lawyer enters the progress of a procedure and what the customer must still supply
    (R-CON-6), so sales can answer. Steps follow the project's order (step_refusal); a finished
    step is reopened only while nothing waiting for it has started; the title registered marks
    the contract registered."""
    require(by, "contract.step")
    today = today or office_today()
    step = session.get(ContractStep, step_id)
    if step is None:
        raise RuleViolation(_l("This step does not exist."), rule="R-CON-6")
    session.refresh(step.contract, with_for_update={"of": Contract})  # one step of a contract at a time
    session.refresh(step)
    if step.contract.status == "rescinded":
        raise RuleViolation(_l("This contract was rescinded: its procedures stopped."), rule="R-CON-6")
    if status not in STEP_STATUSES:
        raise RuleViolation(_l("Choose the status of the step."), rule="R-CON-6")
    if status == "done":
        done_on = done_on or step.done_on or today
        if done_on > today or done_on < step.contract.signed_on:
            raise RuleViolation(_l("The date done lies between the signing and today."), rule="R-CON-6")
    elif done_on is not None:
        raise RuleViolation(_l("Only a finished step has a date done."), rule="R-CON-6")
    refused = step_refusal(step, status, done_on)
    if refused is not None:
        raise refused
    with audit_context(session, actor=by, action="contract_step"):
        step.status, step.done_on = status, done_on if status == "done" else None
        if promised_on is not None:
            step.promised_on = promised_on
        if customer_action is not None:
            step.customer_action = customer_action.strip()
        if notes is not None:
            step.notes = notes.strip()
        if step.kind == "registration" and status == "done" and step.contract.status == "signed":
            step.contract.status = "registered"
        session.flush()
    if step.customer_action:
        notify(session, [step.contract.subscription.agent_id], "contract_step",
               {"no": step.contract.number, "action": step.customer_action[:60]},
               f"/admin/contract_step/details/?id={step.id}")
    return step


def receive_original(session, by, contract_id: int, *, received_on: dt.date, location: str,
                     today: dt.date | None = None) -> ArchiveRecord:
    """The contract archive records the original returned after notarisation and registration
    (R-CON-7): where it is kept; the contract becomes archived."""
    require(by, "contract.archive")
    today = today or office_today()
    contract = session.get(Contract, contract_id)
    if contract is None or contract.status != "registered":
        raise RuleViolation(_l("Only a registered contract's original is archived."), rule="R-CON-7")
    location = (location or "").strip()
    if not location:
        raise RuleViolation(_l("Say where the original is kept (box, shelf)."), rule="R-CON-7")
    if received_on > today or received_on < contract.signed_on:
        raise RuleViolation(_l("The date received lies between the signing and today."), rule="R-CON-7")
    with audit_context(session, actor=by, action="archive_original"):
        record = ArchiveRecord(contract_id=contract.id, received_on=received_on, location=location)
        session.add(record)
        contract.status = "archived"
        session.flush()
    return record


def issue_stamped_copy(session, by, record_id: int, *, to_user_id: int, issued_on: dt.date,
                       note: str = "", today: dt.date | None = None) -> StampedCopy:
    """The archive gives sales a stamped copy for a customer who asks (R-CON-7)."""
    require(by, "contract.archive")
    today = today or office_today()
    record = session.get(ArchiveRecord, record_id)
    if record is None:
        raise RuleViolation(_l("This archive entry does not exist."), rule="R-CON-7")
    if session.get(User, to_user_id) is None:
        raise RuleViolation(_l("Choose who receives the copy."), rule="R-CON-7")
    if issued_on > today or issued_on < record.received_on:
        raise RuleViolation(_l("The date issued lies between the archiving and today."), rule="R-CON-7")
    with audit_context(session, actor=by, action="stamped_copy"):
        copy = StampedCopy(archive_record_id=record.id, issued_to_id=to_user_id, issued_on=issued_on,
                           issued_by_id=by.id, note=(note or "").strip())
        session.add(copy)
        session.flush()
    return copy


def validate_step_prerequisites(rules) -> dict:
    """A project's order of post-signing steps (R-CON-6): {step: [steps done before it]}, known
    steps only, none waiting for itself or, through others, for a step that waits for it."""
    if not isinstance(rules, dict) or not all(
            kind in STEP_KINDS and isinstance(before, list) and all(b in STEP_KINDS and b != kind for b in before)
            for kind, before in rules.items()):
        raise RuleViolation(_l("The order of the post-signing steps names each step with the steps done before "
                               "it (%(kinds)s).", kinds=", ".join(STEP_KINDS)), rule="R-CON-6")

    def reaches(kind, target, seen=()):
        return any(b == target or (b not in seen and reaches(b, target, (*seen, b))) for b in rules.get(kind, []))
    if any(reaches(kind, kind) for kind in rules):
        raise RuleViolation(_l("The order of the post-signing steps goes round in a circle."), rule="R-CON-6")
    return rules


def rescind(session, by, subscription_id: int, *, reason: str, today: dt.date | None = None) -> Subscription:
    """解约: the decision of the rescission review on a signed deal whose money reached the forfeit
    day (R-PAY-4, R-PAY-5). In the caller's transaction, under the deal's lock: the subscription
    and its contracts rescinded, the unit back on sale, the customer's records kept apart (as a
    forfeit keeps them), waiting requests closed; the money held goes on finance's settlement
    worklist (R-CHG-5). Refused unless the deal is signed."""
    require(by, "rescission.decide")
    today = today or office_today()
    sub = _lock(session, subscription_id)
    if sub.status != "contracted":
        raise RuleViolation(_l("Only a signed deal is rescinded (this one is %(status)s).",
                               status=choice_label("subscription", "status", sub.status)), rule="R-PAY-5")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Give the reason for the decision."), rule="R-PAY-5")
    lead = session.get(Lead, sub.lead_id)
    contracts = session.scalars(select(Contract).where(Contract.subscription_id == sub.id,
                                                       Contract.status != "rescinded").with_for_update()).all()
    with audit_context(session, actor=by, action="rescind"):
        keep_apart(session, sub, lead, "rescission", today, by, reason=reason)
        sub.status = "rescinded"
        sub.rescinded_at = utcnow()
        lead.stage = "lost"
        for contract in contracts:
            contract.status = "rescinded"
        session.flush()
    end_deal(session, sub.id, sub.unit_id, by, "rescind", unit_was="signed")
    tell_finance_of_money_held(session, sub, {"_t": "settlement_due.rescind", "no": sub.number,
                                              "name": sub.customer_name})
    return sub
