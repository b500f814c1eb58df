"""Opening day (开盘, issue 24, R-LCH-1…3, R-SC-2): a launch, its intent registrations (认筹), the
verifiable lottery (摇号) and the selection (选房) in timed slots.

A `launch` is one opening of a project: a set of its buildings, the registration dates, the
intent deposit and how long a card is valid (R-LCH-1), the lottery's published inputs and seed
(R-LCH-2), and the selection's rules: slot length, how many choose at once, what happens to a
buyer who misses the slot (R-LCH-3). Its phases, in order:

    registration → published (entrants and the seed's hash published, registration closed)
                 → drawn (the seed revealed, the order fixed) → selecting → closed

A `launch_entry` is one buyer's registration (认筹): identity, phone, the eligibility answers the
launch asks, the group (first-home buyers first, when the launch orders by group), the card
number, the intent deposit's state, then the lottery's `position` and the selection's queue and
slot. Its money is in `intent_payment`, an append-only ledger: the deposit (a receipt from the
project's gap-free receipt sequence), its refund (a voucher from the voucher sequence) or its
conversion into the deposit of the subscription chosen on the day — each at most once.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import LazyString, gettext, lazy_gettext as _l
from sqlalchemy import (JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, func, select, text, update)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context, record_many
from .base import Base, Money, in_list, office_local, office_time, office_today, utcnow
from .deals import LIVE_DEAL, TAKES_UNIT, Subscription, locked_subscription, move_status
from .errors import RuleViolation
from .identity import validate_id_document
from .inventory import Building
from .labels import choice_label
from .leads import Lead, protection_status, protection_text, register_lead, validate_phone
from .money import format_money, parse_money
from .notifications import MESSAGES, notify
from .payments import (PAYMENT_CHANNELS, Instalment, in_force, next_receipt_no, next_voucher_no,
                       take_payment)
from .permissions import require, sees_all_rows
from .projects import Project, check_entry_date
from .submissions import claim, settle
from .users import User

LAUNCH_STATUSES = ("registration", "published", "drawn", "selecting", "closed")
ENTRY_STATUSES = ("registered", "paid", "converted", "refunded", "expired", "withdrawn")
# R-LCH-3: where an entry stands in the selection.
SELECTION_STATUSES = ("waiting", "choosing", "chosen", "missed", "out")
MISSED_RULES = ("requeue", "out")  # a missed slot: to the end of the queue, or out of the launch
ENTRY_GROUPS = ("first_home", "other")  # drawn in this order when the launch orders by group
INTENT_PAYMENT_KINDS = ("deposit", "refund", "conversion")


class Launch(Base):
    """One opening (开盘) of a project: its buildings, dates, deposit, lottery and selection rules."""

    __tablename__ = "launch"
    __table_args__ = (
        CheckConstraint(in_list("status", LAUNCH_STATUSES), name="status_known"),
        CheckConstraint(in_list("missed_rule", MISSED_RULES), name="missed_rule_known"),
        CheckConstraint("intent_deposit > 0", name="deposit_positive"),
        CheckConstraint("slot_minutes >= 1 AND slot_size >= 1", name="slots_positive"),
        CheckConstraint("registration_closes_on >= registration_opens_on", name="registration_dates_ordered"),
        CheckConstraint("selection_on >= registration_closes_on", name="selection_after_registration"),
        # R-LCH-2: the seed is revealed only with its hash published before.
        CheckConstraint("seed IS NULL OR seed_hash IS NOT NULL", name="seed_after_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), default="registration")
    registration_opens_on: Mapped[dt.date]
    registration_closes_on: Mapped[dt.date]
    selection_on: Mapped[dt.date]  # the opening day
    intent_deposit: Mapped[Money]  # R-LCH-1: each entrant's 认筹金
    card_valid_until: Mapped[dt.date]  # R-LCH-1: the card's expiry; unconverted deposits refunded after
    # R-LCH-1: eligibility questions the buyer must answer yes to (e.g. 购房资格), one per element.
    questions: Mapped[list] = mapped_column(JSON, default=list)
    groups_ordered: Mapped[bool] = mapped_column(Boolean, default=False)  # first-home buyers drawn first
    # R-LCH-2: published before the draw, revealed at it.
    seed_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256 hex of the seed
    entrants_digest: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the published list
    seed: Mapped[str | None] = mapped_column(String(64))  # hex; NULL until the draw
    published_at: Mapped[dt.datetime | None]
    drawn_at: Mapped[dt.datetime | None]
    # R-LCH-3: the selection.
    slot_minutes: Mapped[int] = mapped_column(Integer, default=5)
    slot_size: Mapped[int] = mapped_column(Integer, default=10)  # how many choose at once
    missed_rule: Mapped[str] = mapped_column(String(20), default="requeue")
    selection_started_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()
    created_by: Mapped[User] = relationship()
    buildings: Mapped[list[Building]] = relationship(secondary="launch_building", order_by=Building.name)

    def __str__(self) -> str:
        return self.name


class LaunchBuilding(Base):
    """A building offered at a launch."""

    __tablename__ = "launch_building"

    launch_id: Mapped[int] = mapped_column(ForeignKey("launch.id", ondelete="CASCADE"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="RESTRICT"), primary_key=True)


class LaunchEntry(Base):
    """One buyer's intent registration (认筹) at a launch, and where he stands on the day."""

    __tablename__ = "launch_entry"
    __table_args__ = (
        UniqueConstraint("launch_id", "number"),
        UniqueConstraint("launch_id", "position"),  # the draw's order: one entrant per place
        UniqueConstraint("subscription_id"),
        CheckConstraint(in_list("status", ENTRY_STATUSES), name="status_known"),
        CheckConstraint(in_list("selection_status", SELECTION_STATUSES), name="selection_status_known"),
        CheckConstraint(in_list("group_name", ENTRY_GROUPS), name="group_known"),
        CheckConstraint("position IS NULL OR position >= 1", name="position_positive"),
        # one registration per phone and per identity document at a launch, while it counts
        Index("uq_launch_entry_phone", "launch_id", "phone", unique=True,
              sqlite_where=text("status IN ('registered', 'paid', 'converted')"),
              postgresql_where=text("status IN ('registered', 'paid', 'converted')")),
        Index("uq_launch_entry_id_number", "launch_id", "id_number", unique=True,
              sqlite_where=text("status IN ('registered', 'paid', 'converted')"),
              postgresql_where=text("status IN ('registered', 'paid', 'converted')")),
        Index("ix_launch_entry_queue", "launch_id", "selection_status", "queue_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    launch_id: Mapped[int] = mapped_column(ForeignKey("launch.id", ondelete="RESTRICT"))
    number: Mapped[str] = mapped_column(String(20))  # the card's number (认筹号), what the draw orders
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str] = mapped_column(String(20))  # normalised (models.leads.validate_phone)
    id_type: Mapped[str] = mapped_column(String(20))
    id_number: Mapped[str] = mapped_column(String(40))  # validated (models.identity)
    address: Mapped[str] = mapped_column(Text, default="")
    answers: Mapped[dict] = mapped_column(JSON, default=dict)  # question → True/False
    eligible: Mapped[bool] = mapped_column(Boolean, default=False)  # every question answered yes
    group_name: Mapped[str] = mapped_column(String(20), default="other")
    status: Mapped[str] = mapped_column(String(20), default="registered")
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # R-LCH-2: the draw.
    position: Mapped[int | None] = mapped_column(Integer)  # 1 = chooses first
    draw_key: Mapped[str | None] = mapped_column(String(64))  # HMAC-SHA-256(seed, number), hex
    # R-LCH-3: the selection.
    selection_status: Mapped[str] = mapped_column(String(20), default="waiting")
    queue_no: Mapped[int | None] = mapped_column(Integer)  # the place in the queue now (requeued: later)
    slot_starts_at: Mapped[dt.datetime | None]
    slot_ends_at: Mapped[dt.datetime | None]
    missed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"))
    chosen_at: Mapped[dt.datetime | None]

    launch: Mapped[Launch] = relationship()
    lead: Mapped[Lead] = relationship()
    agent: Mapped[User] = relationship()
    subscription: Mapped[Subscription | None] = relationship()

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.agent_id == user_id


class IntentPayment(Base):
    """The intent deposit's money (R-LCH-1): received (a receipt), refunded (a voucher) or converted
    into a subscription's deposit — each once per entry. Never edited or deleted."""

    __tablename__ = "intent_payment"
    __append_only__ = True
    __table_args__ = (
        UniqueConstraint("entry_id", "kind"),
        UniqueConstraint("project_id", "number"),
        CheckConstraint(in_list("kind", INTENT_PAYMENT_KINDS), name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(kind = 'conversion') = (subscription_id IS NOT NULL)", name="conversion_has_deal"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("launch_entry.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Money]
    number: Mapped[str] = mapped_column(String(30))  # receipt (deposit, conversion) or voucher (refund)
    paid_on: Mapped[dt.date]
    channel: Mapped[str | None] = mapped_column(String(30))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    entry: Mapped[LaunchEntry] = relationship()
    recorded_by: Mapped[User] = relationship()

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.entry_id.in_(select(LaunchEntry.id).where(LaunchEntry.agent_id == user_id))


# ---------------------------------------------------------------------------------------------
# Intent registration and its money (R-LCH-1). Each operation checks the role and the rule,
# changes rows in the caller's transaction (the caller commits) under a row lock, conditional
# updates and the unique indexes, and is audited. The lottery (models.lottery), the selection
# (models.selection) and the day's board (models.live) build on these rows.

COUNTING = ("registered", "paid", "converted")  # an entry holding its phone and document (the indexes)
SELECTION_SETTINGS = ("slot_minutes", "slot_size", "missed_rule")  # editable until the selection starts
LAUNCH_FIELDS = ("name", "building_ids", "registration_opens_on", "registration_closes_on", "selection_on",
                 "intent_deposit", "card_valid_until", "questions", "groups_ordered") + SELECTION_SETTINGS
INTENT_CHANNELS = tuple(c for c in PAYMENT_CHANNELS if c != "loan_disbursement")
MAX_QUESTIONS = 20


def _refuse(message, rule: str = "R-LCH-1") -> RuleViolation:
    return RuleViolation(message, rule=rule)


def _locked_launch(session, launch_id) -> Launch:
    launch = session.scalar(select(Launch).where(Launch.id == launch_id).with_for_update()
                            .execution_options(populate_existing=True)) if launch_id else None
    if launch is None:
        raise _refuse(_l("Choose the launch."))
    return launch


def _locked_entry(session, entry_id) -> LaunchEntry:
    entry = session.scalar(select(LaunchEntry).where(LaunchEntry.id == entry_id).with_for_update()
                           .execution_options(populate_existing=True)) if entry_id else None
    if entry is None:
        raise _refuse(_l("This intent registration does not exist."))
    return entry


def read_questions(questions) -> list[str]:
    """The eligibility questions as the launch keeps them: a list, or text one per line; blank
    lines and repeats dropped."""
    if isinstance(questions, str):
        questions = questions.splitlines()
    out: list[str] = []
    for question in questions or ():
        question = str(question).strip()
        if len(question) > 200:
            raise _refuse(_l("An eligibility question is at most 200 characters long."))
        if question and question not in out:
            out.append(question)
    if len(out) > MAX_QUESTIONS:
        raise _refuse(_l("A launch asks at most %(n)d eligibility questions.", n=MAX_QUESTIONS))
    return out


def _int_between(value, low: int, high: int, message) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _refuse(message) from None
    if not low <= number <= high:
        raise _refuse(message)
    return number


def _checked_fields(session, project: Project, launch_id: int | None, fields: dict) -> dict:
    """The launch's settings read and checked (R-LCH-1): the project's buildings only, none in
    another launch that is not closed; dates in order; a deposit; the selection's settings."""
    name = (fields.get("name") or "").strip()
    if not name:
        raise _refuse(_l("Name the launch."))
    if len(name) > 120:
        raise _refuse(_l("The launch's name is at most 120 characters long."))
    ids = sorted({int(i) for i in fields.get("building_ids") or ()})
    if not ids:
        raise _refuse(_l("Choose the buildings offered at the launch."))
    buildings = session.scalars(select(Building).where(Building.id.in_(ids))).all()
    if len(buildings) != len(ids) or any(b.project_id != project.id for b in buildings):
        raise _refuse(_l("A launch offers buildings of its own project only."))
    taken = session.execute(
        select(Building.name, Launch.name).join(LaunchBuilding, LaunchBuilding.building_id == Building.id)
        .join(Launch, Launch.id == LaunchBuilding.launch_id)
        .where(Building.id.in_(ids), Launch.status != "closed", Launch.id != (launch_id or 0))).first()
    if taken is not None:
        raise _refuse(_l("Building %(building)s is already offered at the launch %(launch)s, which is not "
                         "closed.", building=taken[0], launch=taken[1]))
    opens, closes = fields.get("registration_opens_on"), fields.get("registration_closes_on")
    selection_on, valid_until = fields.get("selection_on"), fields.get("card_valid_until")
    if not all(isinstance(d, dt.date) for d in (opens, closes, selection_on, valid_until)):
        raise _refuse(_l("Give the registration dates, the opening day and the card's expiry."))
    if not opens <= closes <= selection_on <= valid_until:
        raise _refuse(_l("The dates must follow each other: registration opens, registration closes, the "
                         "opening day, then the card's expiry."))
    deposit = parse_money(fields.get("intent_deposit"), _l("The intent deposit"), rule="R-LCH-1")
    missed_rule = fields.get("missed_rule") or "requeue"
    if missed_rule not in MISSED_RULES:
        raise _refuse(_l("Choose what happens to a buyer who misses his slot."), rule="R-LCH-3")
    return {"name": name, "buildings": buildings, "registration_opens_on": opens,
            "registration_closes_on": closes, "selection_on": selection_on, "card_valid_until": valid_until,
            "intent_deposit": deposit, "questions": read_questions(fields.get("questions")),
            "groups_ordered": bool(fields.get("groups_ordered")),
            "slot_minutes": _int_between(fields.get("slot_minutes", 5), 1, 240, _l(
                "A slot lasts from 1 to 240 minutes.")),
            "slot_size": _int_between(fields.get("slot_size", 10), 1, 1000, _l(
                "From 1 to 1,000 buyers choose at once.")),
            "missed_rule": missed_rule}


def create_launch(session, by: User, *, project_id: int, **fields) -> Launch:
    """The manager opens a launch (开盘) of a project (R-LCH-1): its buildings, registration dates,
    opening day, intent deposit and the card's expiry, the eligibility questions, whether first-home
    buyers are drawn first, and the selection's settings. A building is in at most one launch that
    is not closed: the project's row is locked while this is checked, so two launches made at once
    cannot both take it."""
    require(by, "launch.manage")
    project = session.scalar(select(Project).where(Project.id == project_id).with_for_update()) if project_id else None
    if project is None:
        raise _refuse(_l("Choose the project."))
    values = _checked_fields(session, project, None, fields)
    with audit_context(session, actor=by, action="launch_create"):
        launch = Launch(project_id=project.id, status="registration", created_by_id=by.id, created_at=utcnow(),
                        **values)
        session.add(launch)
        session.flush()
    return launch


def update_launch(session, by: User, launch_id: int, **fields) -> Launch:
    """The manager edits a launch (R-LCH-1): everything while registration is open; once the
    entrants are published (and after the draw) only the selection's settings; nothing once the
    selection has started. Fields not given keep their value."""
    require(by, "launch.manage")
    launch = _locked_launch(session, launch_id)
    current = {name: getattr(launch, name) for name in LAUNCH_FIELDS if name != "building_ids"}
    current["building_ids"] = [b.id for b in launch.buildings]
    wanted = {**current, **{k: v for k, v in fields.items() if k in LAUNCH_FIELDS}}
    project = session.scalar(select(Project).where(Project.id == launch.project_id).with_for_update())
    values = _checked_fields(session, project, launch.id, wanted)
    if launch.status in ("published", "drawn"):
        before = {**{k: current[k] for k in current if k != "building_ids"},
                  "buildings": sorted(current["building_ids"]), "questions": read_questions(current["questions"]),
                  "intent_deposit": Decimal(current["intent_deposit"]), "groups_ordered": bool(current["groups_ordered"])}
        after = {**values, "buildings": sorted(b.id for b in values["buildings"])}
        if any(before[k] != after[k] for k in after if k not in SELECTION_SETTINGS):
            raise _refuse(_l("The entrants are published: only the selection's settings (slot length, how many "
                             "choose at once, the missed-slot rule) may still change."), rule="R-LCH-2")
    elif launch.status != "registration":
        raise _refuse(_l("The selection has started: the launch can no longer be edited."), rule="R-LCH-3")
    with audit_context(session, actor=by, action="launch_update"):
        for name, value in values.items():
            if name == "buildings":
                if sorted(b.id for b in value) != sorted(current["building_ids"]):
                    launch.buildings = list(value)
            elif getattr(launch, name) != value:
                setattr(launch, name, value)
        session.flush()
    return launch


def registration_open(launch: Launch, today: dt.date) -> bool:
    return launch.status == "registration" and launch.registration_opens_on <= today <= launch.registration_closes_on


def _answers(launch: Launch, answers) -> dict:
    """Every question of the launch answered yes (True) or no (False)."""
    answers = answers or {}
    out = {}
    for question in launch.questions or ():
        value = answers.get(question)
        if isinstance(value, str):
            value = {"yes": True, "y": True, "1": True, "true": True, "是": True,
                     "no": False, "n": False, "0": False, "false": False, "否": False}.get(value.strip().lower())
        if not isinstance(value, bool):
            raise _refuse(_l("Answer every eligibility question yes or no: %(question)s", question=question))
        out[question] = value
    return out


def _joined(*parts) -> LazyString:
    """Several translatable sentences as one message, read in the reader's language."""
    return LazyString(lambda: " ".join(str(p) for p in parts))


def _not_his(lead: Lead, today: dt.date) -> RuleViolation:
    """An agent registering another agent's customer, told as the front desk's screen tells it
    (admin/rotation.answer_text, R-RCP-2, R-LEAD-5)."""
    said = protection_text(protection_status(lead.owner_id, lead.protected_until, today),
                           lead.owner.display_name if lead.owner else None,
                           lead.protected_until.isoformat() if lead.protected_until else None)
    return RuleViolation(_joined(said, _l("Only his agent or the sales manager registers him at a launch.")),
                         rule="R-LEAD-5")


def counting_entry(session, launch_id: int, phone: str, id_number: str) -> LaunchEntry | None:
    """The launch's registration still counting (registered, paid, converted) of this phone or
    identity document, or None: what the partial unique indexes hold."""
    return session.scalar(select(LaunchEntry).where(
        LaunchEntry.launch_id == launch_id, LaunchEntry.status.in_(COUNTING),
        (LaunchEntry.phone == phone) | (LaunchEntry.id_number == id_number)).limit(1))


def _already_registered(entry: LaunchEntry, phone: str) -> RuleViolation:
    if entry.phone == phone:
        return _refuse(_l("This phone is already registered at this launch (card %(card)s).", card=entry.number))
    return _refuse(_l("This identity document is already registered at this launch (card %(card)s).",
                      card=entry.number))


def card_number(launch: Launch, n: int) -> str:
    """The card's number (认筹号): RC<launch>-<n>, gap-free per launch."""
    return f"RC{launch.id:02d}-{n:04d}"


def register_entry(session, by: User, *, launch_id: int, name: str, phone: str, id_type: str | None,
                   id_number: str, address: str, answers, first_home: bool = False,
                   today: dt.date | None = None, key: str | None = None) -> LaunchEntry:
    """A buyer's intent registration (认筹, R-LCH-1), by his agent (the manager for anyone).

    The launch must be open for registration today. The phone (models.leads.validate_phone) and
    the identity document (models.identity) are read by the project's one rule each; every
    eligibility question is answered — a no is recorded (eligible = every answer yes), not
    refused, so the office sees why. The customer is the project's customer with this phone (the
    unique key of R-LEAD-5) or is registered now as the agent's; another agent's customer is
    refused as the front desk tells it. One registration per phone and per identity document
    while it counts: checked, and decided by the partial unique indexes in a race. The card's
    number is gap-free per launch, taken under the launch row's lock. `key`: the form's one-time
    key (a form sent twice registers once)."""
    require(by, "launch.register")
    if key is not None:
        claim(session, by, key, "launch_register", f"launch:{launch_id}", out_of_date=_l(
            "This registration form is out of date: open it again and register the buyer once more."))
    today = today or office_today()
    launch = _locked_launch(session, launch_id)
    if not registration_open(launch, today):
        raise _refuse(_l("Registration for %(launch)s is open from %(opens)s to %(closes)s, while the launch "
                         "takes registrations.", launch=launch.name, opens=launch.registration_opens_on.isoformat(),
                         closes=launch.registration_closes_on.isoformat()))
    name = (name or "").strip()
    if not name:
        raise _refuse(_l("The customer's name is required."))
    if len(name) > 80:
        raise _refuse(_l("The customer's name is too long (at most 80 characters)."))
    phone = validate_phone(phone)
    id_type, id_number = validate_id_document(id_type, id_number, today)
    address = (address or "").strip()
    if not address:
        raise _refuse(_l("Enter the customer's address."))
    given = _answers(launch, answers)
    earlier = counting_entry(session, launch.id, phone, id_number)
    if earlier is not None:
        raise _already_registered(earlier, phone)
    lead = session.scalar(select(Lead).where(Lead.project_id == launch.project_id, Lead.phone == phone))
    if lead is not None and not sees_all_rows(by) and lead.owner_id != by.id:
        raise _not_his(lead, today)
    if lead is None:
        lead = register_lead(session, by, project_id=launch.project_id, name=name, phone=phone, source="other",
                             today=today, id_type=id_type, id_number=id_number, address=address[:200])
    n = session.scalar(select(func.count()).select_from(LaunchEntry).where(LaunchEntry.launch_id == launch.id)) + 1
    entry = LaunchEntry(launch_id=launch.id, number=card_number(launch, n), lead_id=lead.id,
                        agent_id=lead.owner_id or by.id, name=name, phone=phone, id_type=id_type,
                        id_number=id_number, address=address, answers=given, eligible=all(given.values()),
                        group_name="first_home" if first_home else "other", status="registered",
                        registered_at=utcnow())
    try:
        with session.begin_nested(), audit_context(session, actor=by, action="launch_register"):
            session.add(entry)
            session.flush()
    except IntegrityError:  # the same phone or document registered at the same moment
        earlier = counting_entry(session, launch.id, phone, id_number)
        if earlier is None:
            raise
        raise _already_registered(earlier, phone) from None
    if key is not None:
        settle(session, key, entry.number)
    return entry


def _move_entry(session, by, entry: LaunchEntry, before: str, after: str, action: str, **values) -> None:
    done = session.execute(update(LaunchEntry).where(LaunchEntry.id == entry.id, LaunchEntry.status == before)
                           .values(status=after, **values).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise _refuse(_l("This registration changed meanwhile; reload it and try again."))
    record_many(session, "launch_entry", action, by, [(entry.id, {"status": [before, after]})])
    session.expire(entry)


def intent_payment(session, entry_id: int, kind: str) -> IntentPayment | None:
    return session.scalar(select(IntentPayment).where(IntentPayment.entry_id == entry_id, IntentPayment.kind == kind))


def _add_payment(session, by, action: str, **values) -> IntentPayment:
    with audit_context(session, actor=by, action=action):
        row = IntentPayment(recorded_by_id=by.id, recorded_at=utcnow(), **values)
        session.add(row)
        session.flush()
    return row


def record_intent_deposit(session, by: User, entry_id: int, *, paid_on: dt.date, channel: str, amount=None,
                          key: str | None = None, today: dt.date | None = None) -> IntentPayment:
    """Finance receives a registration's intent deposit (认筹金, R-LCH-1): the launch's amount, with
    a receipt number from the project's gap-free receipt sequence (the same as every payment's);
    the entry registered → paid by a conditional update. Once: a second time is refused, and the
    same form sent twice is told it was recorded (`key`)."""
    require(by, "launch.deposit")
    if key is not None:
        claim(session, by, key, "intent_deposit", f"launch_entry:{entry_id}")
    today = today or office_today()
    entry = _locked_entry(session, entry_id)
    launch = entry.launch
    if entry.status != "registered":
        received = intent_payment(session, entry.id, "deposit")
        if received is not None:
            raise _refuse(_l("The intent deposit of card %(card)s was already received (receipt %(receipt)s). "
                             "Nothing was recorded again.", card=entry.number, receipt=received.number))
        raise _refuse(_l("Card %(card)s no longer takes a deposit (it is %(status)s).", card=entry.number,
                         status=choice_label("launch_entry", "status", entry.status)))
    if launch.status != "registration":
        raise _refuse(_l("The intent deposit is received while the launch takes registrations."))
    amount = launch.intent_deposit if amount in (None, "") else parse_money(amount, rule="R-LCH-1")
    if amount != launch.intent_deposit:
        raise _refuse(_l("The intent deposit of this launch is %(deposit)s.", deposit=format_money(launch.intent_deposit)))
    if channel not in INTENT_CHANNELS:
        raise _refuse(_l("Choose how the money was paid."))
    check_entry_date(launch.project, paid_on, today, _l("The payment date"), "R-LCH-1",
                     not_before=launch.registration_opens_on)
    _move_entry(session, by, entry, "registered", "paid", "intent_deposit")
    row = _add_payment(session, by, "intent_deposit", project_id=launch.project_id, entry_id=entry.id,
                       kind="deposit", amount=amount, number=next_receipt_no(session, launch.project_id),
                       paid_on=paid_on, channel=channel)
    if key is not None:
        settle(session, key, f"{row.number} {format_money(amount)}")
    return row


def refund_intent_deposit(session, by: User, entry_id: int, *, paid_on: dt.date, channel: str, reason: str,
                          key: str | None = None, today: dt.date | None = None) -> IntentPayment:
    """Finance refunds an intent deposit (R-LCH-1) by a numbered voucher (the project's voucher
    sequence): a paid entry not converted (→ refunded), or the part of a converted one that the
    deal's deposit did not take (the entry stays converted). Refused while the published list is
    frozen (between the publication and the draw, R-LCH-2), while the buyer is choosing in his slot
    (the card is what lets him choose: finance waits the few minutes), and while the buyer's chosen
    deal holds its unit (convert instead). Once. The agent is told."""
    require(by, "launch.refund")
    if key is not None:
        claim(session, by, key, "intent_refund", f"launch_entry:{entry_id}")
    today = today or office_today()
    entry = _locked_entry(session, entry_id)
    launch = entry.launch
    done = intent_payment(session, entry.id, "refund")
    if done is not None:
        raise _refuse(_l("The intent deposit of card %(card)s was already refunded (voucher %(voucher)s). "
                         "Nothing was recorded again.", card=entry.number, voucher=done.number))
    if launch.status == "published":
        raise _refuse(_l("The entrants' list is published and frozen until the draw: refund after the draw."),
                      rule="R-LCH-2")
    received = intent_payment(session, entry.id, "deposit")
    if entry.status == "paid":
        if entry.selection_status == "choosing":  # the row is locked: his choice waits for this, or this for it
            raise _refuse(_l("The buyer of card %(card)s is choosing a unit now (his slot runs until %(until)s): "
                             "refund when his slot has ended, or after he has chosen.", card=entry.number,
                             until=office_time(entry.slot_ends_at, "%H:%M")))
        if entry.subscription is not None and entry.subscription.status in TAKES_UNIT:
            raise _refuse(_l("The buyer chose unit %(unit)s: convert the intent deposit into its deposit "
                             "instead (or withdraw that deal first).", unit=entry.subscription.unit.number))
        amount = received.amount
    elif entry.status == "converted":
        converted = intent_payment(session, entry.id, "conversion")
        amount = received.amount - converted.amount
        if amount <= 0:
            raise _refuse(_l("Card %(card)s was converted whole into the deal's deposit: nothing is left to "
                             "refund.", card=entry.number))
    else:
        raise _refuse(_l("Only a received intent deposit is refunded (card %(card)s is %(status)s).",
                         card=entry.number, status=choice_label("launch_entry", "status", entry.status)))
    if channel not in INTENT_CHANNELS:
        raise _refuse(_l("Say how the refund is paid."))
    reason = (reason or "").strip()
    if not reason:
        raise _refuse(_l("Give the reason for the refund."))
    check_entry_date(launch.project, paid_on, today, _l("The refund date"), "R-LCH-1", not_before=received.paid_on)
    if entry.status == "paid":
        _move_entry(session, by, entry, "paid", "refunded", "intent_refund")
    row = _add_payment(session, by, "intent_refund", project_id=launch.project_id, entry_id=entry.id, kind="refund",
                       amount=amount, number=next_voucher_no(session, launch.project_id), paid_on=paid_on,
                       channel=channel, reason=reason[:2000])
    if key is not None:
        settle(session, key, f"{row.number} {format_money(amount)}")
    notify(session, [entry.agent_id], "intent_refunded",
           {"card": entry.number, "name": entry.name, "amount": amount, "voucher": row.number},
           f"/admin/launch_entry/details/?id={entry.id}")
    return row


def may_not_choose(status: str, eligible: bool, card_valid_until: dt.date, day: dt.date) -> str | None:
    """Why a card does not let its buyer choose on `day` (R-LCH-1), or None when it does: the one
    definition, read by the selection (models.selection) and here. "not_paid": the deposit not in, or
    refunded, converted or expired; "not_eligible": an eligibility answer no; "card_expired"."""
    if status != "paid":
        return "not_paid"
    if not eligible:
        return "not_eligible"
    if card_valid_until < day:
        return "card_expired"
    return None


def entry_may_choose(entry: LaunchEntry, day: dt.date) -> bool:
    """Whether the card lets its buyer choose on `day` (`may_not_choose`)."""
    return may_not_choose(entry.status, entry.eligible, entry.launch.card_valid_until, day) is None


def convert_intent_deposit(session, by: User, entry_id: int, *, key: str | None = None,
                           today: dt.date | None = None) -> IntentPayment:
    """Finance converts the intent deposit into the deposit of the deal the buyer chose (R-LCH-1):
    the entry's subscription (set by the selection) must be live (confirmed by sales control). The
    intent deposit, up to the deposit still due, is recorded on the deal's deposit line through the
    money function every payment takes (receipt from the project's sequence, channel "other", the
    reason naming the card and its receipt); a deposit paid whole makes the deal active, as
    finance's deposit does. The ledger's conversion row carries that receipt. Once; the entry →
    converted. A remainder (an intent deposit larger than the deal's) is refunded by voucher."""
    require(by, "launch.convert")
    if key is not None:
        claim(session, by, key, "intent_convert", f"launch_entry:{entry_id}")
    today = today or office_today()
    entry = _locked_entry(session, entry_id)
    if entry.status == "converted":
        done = intent_payment(session, entry.id, "conversion")
        raise _refuse(_l("The intent deposit of card %(card)s was already converted (receipt %(receipt)s). "
                         "Nothing was recorded again.", card=entry.number, receipt=done.number if done else "—"))
    if entry.status != "paid":
        raise _refuse(_l("Only a received intent deposit is converted (card %(card)s is %(status)s).",
                         card=entry.number, status=choice_label("launch_entry", "status", entry.status)))
    if entry.subscription_id is None:
        raise _refuse(_l("The buyer of card %(card)s has not chosen a unit.", card=entry.number))
    chosen_on = office_local(entry.chosen_at).date() if entry.chosen_at else today
    if chosen_on > entry.launch.card_valid_until:
        raise _refuse(_l("Card %(card)s expired on %(until)s: its deposit is refunded, not converted.",
                         card=entry.number, until=entry.launch.card_valid_until.isoformat()))
    sub = locked_subscription(session, entry.subscription_id)
    if sub.status not in LIVE_DEAL:
        raise _refuse(_l("The deal %(no)s is %(status)s: the intent deposit is converted once sales control "
                         "has confirmed it.", no=sub.number, status=choice_label("subscription", "status", sub.status)))
    received = intent_payment(session, entry.id, "deposit")
    line = session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id, Instalment.kind == "deposit",
                                                   in_force()))
    due = (line.amount_due - line.amount_paid) if line is not None else Decimal("0")
    amount = min(received.amount, due)
    if amount <= 0:
        raise _refuse(_l("The deposit of deal %(no)s is already paid: refund the intent deposit instead.",
                         no=sub.number))
    note = gettext("Intent deposit of card %(card)s (receipt %(receipt)s) converted into the deposit.",
                   card=entry.number, receipt=received.number)
    payment = take_payment(session, by, sub, amount=amount, paid_on=today, channel="other", instalment_id=line.id,
                           today=today, note=note)
    session.refresh(line)
    if sub.status == "confirmed" and line.status == "paid":
        if not move_status(session, sub, by, ("confirmed",), "active", "deposit"):
            raise _refuse(_l("This registration changed meanwhile; reload it and try again."))
    _move_entry(session, by, entry, "paid", "converted", "intent_convert")
    row = _add_payment(session, by, "intent_convert", project_id=entry.launch.project_id, entry_id=entry.id,
                       kind="conversion", amount=amount, number=payment.receipt_no, paid_on=today, channel="other",
                       subscription_id=sub.id, reason=note)
    if key is not None:
        settle(session, key, f"{row.number} {format_money(amount)}")
    return row


def expire_entries(session, today: dt.date | None = None) -> int:
    """The daily run (R-LCH-1): registrations whose deposit never came expire once their launch's
    registration has closed (set-based, idempotent; the phone and document are free again).
    Returns how many."""
    today = today or office_today()
    ids = list(session.scalars(select(LaunchEntry.id).join(Launch, Launch.id == LaunchEntry.launch_id).where(
        LaunchEntry.status == "registered", Launch.registration_closes_on < today).order_by(LaunchEntry.id)
        .with_for_update(of=LaunchEntry)))
    expired = 0
    for start in range(0, len(ids), 5000):
        expired += session.execute(update(LaunchEntry).where(
            LaunchEntry.id.in_(ids[start:start + 5000]), LaunchEntry.status == "registered")
            .values(status="expired").execution_options(synchronize_session=False)).rowcount
    if ids:
        record_many(session, "launch_entry", "intent_expire", None, [(i, {"status": ["registered", "expired"]})
                                                                    for i in ids])
    return expired


def refund_due(today: dt.date | None = None):
    """A WHERE clause on LaunchEntry: a paid card past its expiry, never converted — its deposit is
    owed back (R-LCH-1)."""
    expired = select(Launch.id).where(Launch.card_valid_until < (today or office_today()))
    return (LaunchEntry.status == "paid") & LaunchEntry.launch_id.in_(expired)


def refunds_due(session, launch_id: int, today: dt.date | None = None) -> list[LaunchEntry]:
    """The launch's paid cards past their expiry and not converted: refunds due (R-LCH-1)."""
    return list(session.scalars(select(LaunchEntry).where(LaunchEntry.launch_id == launch_id, refund_due(today))
                                .order_by(LaunchEntry.number)))


MESSAGES.update({
    "intent_refunded": lambda p: gettext(
        "The intent deposit of card %(card)s (%(name)s) was refunded: %(amount)s, voucher %(voucher)s.", **p),
})
