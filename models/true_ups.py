"""Area true-up (面积补差, R-AFT-3), by 《商品房销售管理办法》 art. 20.

The surveyed area (实测面积) of a unit is entered, or imported per building; each live deal on it
is trued up against its contract area (the unit's area when the deal was made): the error ratio
= (surveyed − contract) / contract. Within ±3 % (inclusive) the difference is settled at the
contract unit price (price ÷ contract area); above +3 % the buyer pays only the 3 % part and the
developer bears the rest; below −3 % the developer refunds the 3 % part and refunds double beyond
it; beyond ±3 % either way the buyer may cancel (a cancellation change, R-CHG-4). What the buyer
pays becomes a charge (models.charges); what the developer refunds, a refund voucher. A building's
true-up is one batch with its totals.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow
from .deals import Subscription, via_subscription
from .inventory import Building, Unit
from .users import User

TRUE_UP_STATUSES = ("computed", "applied", "void")  # applied: its charge or voucher made
BATCH_STATUSES = ("draft", "applied")
LIMIT_PERCENT = Decimal("3")  # art. 20: ±3 %


class TrueUpBatch(Base):
    """A building's true-up: its deals computed together, applied together."""

    __tablename__ = "true_up_batch"
    __table_args__ = (CheckConstraint(in_list("status", BATCH_STATUSES), name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    surveyed_on: Mapped[dt.date]
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    applied_at: Mapped[dt.datetime | None]

    building: Mapped[Building] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    true_ups: Mapped[list["TrueUp"]] = relationship(back_populates="batch", order_by="TrueUp.id")

    def __str__(self) -> str:
        return f"{self.building} {self.surveyed_on.isoformat() if self.surveyed_on else ''}".strip()


class TrueUp(Base):
    """One deal's true-up: the areas, the ratio, and what each side pays."""

    __tablename__ = "true_up"
    __table_args__ = (
        CheckConstraint(in_list("status", TRUE_UP_STATUSES), name="status_known"),
        CheckConstraint("contract_area > 0 AND surveyed_area > 0", name="areas_positive"),
        CheckConstraint("buyer_pays >= 0 AND refund >= 0 AND developer_bears >= 0", name="amounts_not_negative"),
        CheckConstraint("buyer_pays = 0 OR refund = 0", name="one_direction"),
        # One true-up in force per deal.
        Index("uq_true_up_live", "subscription_id", unique=True,
              sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("true_up_batch.id", ondelete="RESTRICT"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="RESTRICT"), index=True)
    contract_area: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    surveyed_area: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    ratio_percent: Mapped[Decimal] = mapped_column(Numeric(9, 4))  # (surveyed − contract) / contract × 100
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 4))  # price ÷ contract area
    buyer_pays: Mapped[Money] = mapped_column(default=Decimal("0"))
    refund: Mapped[Money] = mapped_column(default=Decimal("0"))
    refund_double_part: Mapped[Money] = mapped_column(default=Decimal("0"), server_default="0")  # of `refund`
    developer_bears: Mapped[Money] = mapped_column(default=Decimal("0"))
    may_cancel: Mapped[bool] = mapped_column(default=False)  # beyond ±3 %
    status: Mapped[str] = mapped_column(String(20), default="computed")
    applied_on: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    batch: Mapped[TrueUpBatch | None] = relationship(back_populates="true_ups")
    subscription: Mapped[Subscription] = relationship()
    unit: Mapped[Unit] = relationship()

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} {self.ratio_percent}%"

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)
