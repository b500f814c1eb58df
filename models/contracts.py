"""Contracts (签约), their post-signing steps, and the contract archive (R-CON-1…7)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, in_list, utcnow
from .deals import Subscription
from .users import User

CONTRACT_KINDS = ("sale", "mortgage")
CONTRACT_STATUSES = ("booked", "signed", "registered", "archived")
STEP_KINDS = ("online_filing", "notarisation", "mortgage", "registration")
STEP_STATUSES = ("pending", "in_progress", "done")


class Contract(Base):
    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint(in_list("kind", CONTRACT_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", CONTRACT_STATUSES), name="status_known"),
        CheckConstraint("status = 'booked' OR (number IS NOT NULL AND signed_on IS NOT NULL)",
                        name="signed_has_number"),
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

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"), index=True)
    received_on: Mapped[dt.date]
    location: Mapped[str] = mapped_column(String(100))
    stamped_copy_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    stamped_copy_on: Mapped[dt.date | None]
    notes: Mapped[str] = mapped_column(Text, default="")

    contract: Mapped[Contract] = relationship()
