"""Subscriptions (认购), their payment plans, payments, extensions and overdue events."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow
from .inventory import Project, Unit
from .leads import Lead
from .users import User

SUBSCRIPTION_STATUSES = ("draft", "confirmed", "active", "contracted", "forfeited", "withdrawn")
LIVE_SUBSCRIPTION_STATUSES = ("draft", "confirmed", "active", "contracted")
PAYMENT_METHODS = ("one_off", "instalments", "commercial_mortgage", "provident_fund")
INSTALMENT_KINDS = ("deposit", "down_payment", "instalment", "commercial_loan",
                    "provident_fund_loan", "balance")
INSTALMENT_STATUSES = ("pending", "partly_paid", "paid")
PAYMENT_CHANNELS = ("bank_transfer", "pos", "cash", "cheque", "loan_disbursement", "other")
EXTENSION_STATUSES = ("requested", "approved", "rejected")
LADDER_LEVELS = ("reminder", "warning", "lawyer_letter", "forfeit")

_LIVE_WHERE = text(in_list("status", LIVE_SUBSCRIPTION_STATUSES))


class Subscription(Base):
    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint(in_list("status", SUBSCRIPTION_STATUSES), name="status_known"),
        CheckConstraint(in_list("payment_method", PAYMENT_METHODS), name="payment_method_known"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("deposit >= 0 AND deposit <= price", name="deposit_within_price"),
        # R-SC-2: a unit can never be sold twice — at most one live subscription per unit.
        Index("uq_subscription_live_unit", "unit_id", unique=True,
              sqlite_where=_LIVE_WHERE, postgresql_where=_LIVE_WHERE),
        Index("ix_subscription_agent_status", "agent_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"), index=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="RESTRICT"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    price: Mapped[Money]
    deposit: Mapped[Money]
    payment_method: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    subscribed_on: Mapped[dt.date]
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    checked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()
    lead: Mapped[Lead] = relationship()
    unit: Mapped[Unit] = relationship()
    agent: Mapped[User] = relationship(foreign_keys=[agent_id])
    checked_by: Mapped[User | None] = relationship(foreign_keys=[checked_by_id])
    instalments: Mapped[list["Instalment"]] = relationship(back_populates="subscription",
                                                           order_by="Instalment.seq")

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.agent_id == user_id


def _via_subscription(column, user_id: int):
    return column.in_(select(Subscription.id).where(Subscription.agent_id == user_id))


class Instalment(Base):
    """One line of a payment plan (R-PAY-2). Overdue is derived from due date and balance."""

    __tablename__ = "instalment"
    __table_args__ = (
        UniqueConstraint("subscription_id", "seq"),
        CheckConstraint(in_list("kind", INSTALMENT_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", INSTALMENT_STATUSES), name="status_known"),
        CheckConstraint("amount_due > 0", name="amount_due_positive"),
        CheckConstraint("amount_paid >= 0 AND amount_paid <= amount_due", name="paid_within_due"),
        Index("ix_instalment_open_due", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(30))
    due_on: Mapped[dt.date]
    extended_due_on: Mapped[dt.date | None]  # set by an approved extension (R-PAY-6)
    amount_due: Mapped[Money]
    amount_paid: Mapped[Money] = mapped_column(default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    agent_note: Mapped[str] = mapped_column(Text, default="")  # what the customer said (R-PAY-4)

    subscription: Mapped[Subscription] = relationship(back_populates="instalments")

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} #{self.seq}"

    @property
    def effective_due_on(self) -> dt.date:
        return self.extended_due_on or self.due_on

    @property
    def balance(self) -> Decimal:
        return self.amount_due - self.amount_paid

    @classmethod
    def owned_by(cls, user_id: int):
        return _via_subscription(cls.subscription_id, user_id)


class Payment(Base):
    """Money received (收款, R-PAY-1). Immutable: a correction is a reversal row."""

    __tablename__ = "payment"
    __append_only__ = True  # never edited or deleted; see models.audit
    __table_args__ = (
        UniqueConstraint("project_id", "receipt_no"),
        UniqueConstraint("reverses_id"),  # a payment is reversed at most once
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint(in_list("channel", PAYMENT_CHANNELS), name="channel_known"),
        CheckConstraint("(reverses_id IS NULL) = (amount > 0)", name="reversal_is_negative"),
        Index("uq_payment_bank_ref", "project_id", "bank_ref", unique=True,
              sqlite_where=text("bank_ref IS NOT NULL AND reverses_id IS NULL"),
              postgresql_where=text("bank_ref IS NOT NULL AND reverses_id IS NULL")),
        Index("ix_payment_paid_on", "paid_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"),
                                                      index=True)
    amount: Mapped[Money]
    paid_on: Mapped[dt.date]
    channel: Mapped[str] = mapped_column(String(30))
    bank_ref: Mapped[str | None] = mapped_column(String(60))
    receipt_no: Mapped[str | None] = mapped_column(String(30))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    instalment: Mapped[Instalment | None] = relationship()
    recorded_by: Mapped[User] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return _via_subscription(cls.subscription_id, user_id)


class Extension(Base):
    """A request to move an instalment's due date (R-PAY-6)."""

    __tablename__ = "extension"
    __table_args__ = (
        CheckConstraint("days > 0", name="days_positive"),
        CheckConstraint(in_list("status", EXTENSION_STATUSES), name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"),
                                               index=True)
    days: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    decided_at: Mapped[dt.datetime | None]
    new_due_on: Mapped[dt.date | None]

    instalment: Mapped[Instalment] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.instalment_id.in_(
            select(Instalment.id).where(_via_subscription(Instalment.subscription_id, user_id)))


class OverdueEvent(Base):
    """A rung of the overdue ladder reached by an instalment (R-PAY-4, R-PAY-5).

    Unique per instalment, due date and level, so a ladder run twice writes each event once.
    """

    __tablename__ = "overdue_event"
    __table_args__ = (
        UniqueConstraint("instalment_id", "due_on", "level"),
        CheckConstraint(in_list("level", LADDER_LEVELS), name="level_known"),
        Index("ix_overdue_event_on_level", "on", "level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"))
    due_on: Mapped[dt.date]
    level: Mapped[str] = mapped_column(String(20))
    on: Mapped[dt.date]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    instalment: Mapped[Instalment] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.instalment_id.in_(
            select(Instalment.id).where(_via_subscription(Instalment.subscription_id, user_id)))
