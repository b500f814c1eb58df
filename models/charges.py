"""Money owed beyond the price plan (R-AFT-1, R-AFT-3): late fees (滞纳金) and area true-ups
(面积补差) the buyer pays. A charge is collected like a plan line — a payment names it
(`Payment.charge_id`), with a receipt from the same gap-free sequence — but never joins the plan:
the plan sums to the price, and a late fee never makes a paid instalment look unpaid.

One charge per late line (its late fee, accrued by the daily run) and one per true-up. Its
`amount` is what was charged (a late fee's grows each day until the line is paid, capped); what
is still owed is amount − waived − paid (`outstanding`), kept ≥ 0 by the database.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, and_, false, func, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow
from .deals import LIVE_DEAL, RequestedDecision, Subscription, via_subscription
from .users import User

CHARGE_KINDS = ("late_fee", "area_true_up")
WAIVER_STATUSES = ("requested", "approved", "rejected")
ZERO = Decimal("0.00")


class Charge(Base):
    """A sum the buyer owes beside the plan: a late fee on one plan line, or a true-up."""

    __tablename__ = "charge"
    __table_args__ = (
        CheckConstraint(in_list("kind", CHARGE_KINDS), name="kind_known"),
        CheckConstraint("amount >= 0 AND waived >= 0 AND paid >= 0 AND waived + paid <= amount",
                        name="settled_within_amount"),
        CheckConstraint("(kind = 'late_fee') = (instalment_id IS NOT NULL)", name="late_fee_has_line"),
        # One late fee per plan line, one charge per true-up.
        Index("uq_charge_instalment", "instalment_id", unique=True,
              sqlite_where=text("instalment_id IS NOT NULL"), postgresql_where=text("instalment_id IS NOT NULL")),
        Index("uq_charge_true_up", "true_up_id", unique=True,
              sqlite_where=text("true_up_id IS NOT NULL"), postgresql_where=text("true_up_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"))
    true_up_id: Mapped[int | None] = mapped_column(ForeignKey("true_up.id", ondelete="RESTRICT"))
    # A late fee: the daily rate (% of the overdue amount) and the cap it was computed with.
    rate_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    cap: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    amount: Mapped[Money] = mapped_column(default=ZERO)
    waived: Mapped[Money] = mapped_column(default=ZERO, server_default="0")
    paid: Mapped[Money] = mapped_column(default=ZERO, server_default="0")
    due_on: Mapped[dt.date | None]  # a true-up: payable by; a late fee: payable at once
    accrued_through: Mapped[dt.date | None]  # a late fee: the last day counted
    days: Mapped[int] = mapped_column(default=0, server_default="0")  # a late fee: days counted
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    instalment: Mapped["Instalment | None"] = relationship()  # noqa: F821 (models.payments)

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} {self.kind} #{self.id}"

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.waived - self.paid

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


OUTSTANDING = Charge.amount - Charge.waived - Charge.paid


def charges_owed(joined: bool = False):
    """A WHERE clause, the one definition of a charge still owed: something outstanding on a live
    deal. `joined`: the query joins `subscription` already."""
    live = Subscription.status.in_(LIVE_DEAL)
    return and_(OUTSTANDING > 0, live if joined else Charge.subscription_id.in_(select(Subscription.id).where(live)))


def owed_on_deal(session, subscription_id: int) -> Decimal:
    """What the deal's charges still ask of the buyer."""
    return session.scalar(select(func.coalesce(func.sum(OUTSTANDING), 0)).where(
        Charge.subscription_id == subscription_id, OUTSTANDING > 0)) or ZERO


class LateFeeWaiver(RequestedDecision, Base):
    """A request to waive part or all of a late fee (R-AFT-1): the manager decides, the VP when
    the deal's waivers in total pass the project's limit. One waits per charge."""

    __tablename__ = "late_fee_waiver"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(in_list("status", WAIVER_STATUSES), name="status_known"),
        Index("uq_late_fee_waiver_open", "charge_id", unique=True,
              sqlite_where=text("status = 'requested'"), postgresql_where=text("status = 'requested'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[int] = mapped_column(ForeignKey("charge.id", ondelete="RESTRICT"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    amount: Mapped[Money]
    needs_vp: Mapped[bool] = mapped_column(default=False, server_default=false())

    charge: Mapped[Charge] = relationship()
    subscription: Mapped[Subscription] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys="LateFeeWaiver.requested_by_id")
    decided_by: Mapped[User | None] = relationship(foreign_keys="LateFeeWaiver.decided_by_id")

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


def add_charge(session, sub: Subscription, kind: str, amount: Decimal, *, due_on: dt.date | None = None,
               instalment_id: int | None = None, true_up_id: int | None = None, note: str = "") -> Charge:
    """A new charge on `sub` (the caller checks the rule, audits within its own audit_context and
    commits): a late fee names its plan line, a true-up its true-up row."""
    if kind not in CHARGE_KINDS:
        raise ValueError(kind)
    charge = Charge(project_id=sub.project_id, subscription_id=sub.id, kind=kind, amount=amount, due_on=due_on,
                    instalment_id=instalment_id, true_up_id=true_up_id, note=note)
    session.add(charge)
    session.flush()
    return charge
