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

from sqlalchemy import (JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, select, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow
from .deals import Subscription
from .inventory import Building
from .leads import Lead
from .projects import Project
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
