"""Mortgage files (按揭) from documents to disbursement (R-AFT-2).

A loan line of a deal's plan (commercial or provident-fund loan) gets one file: the bank (a
managed list), the kind of loan, and its stage — collecting documents → 资料收齐 (documents
complete) → 银行面签 (signed at the bank) → 审批通过 (approved) → 抵押登记 (mortgage registered)
→ 放款 (disbursed). Each stage reached is a row (its date, who, a note), and the file says what
the customer must still supply (the agent is told). The disbursement is a receipt on the loan
line (a payment, channel `loan_disbursement`). A file in one stage beyond the project's limit
(`Project.loan_stage_limits`) is stuck: on finance's and the lawyer's worklists.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow
from .deals import Subscription, via_subscription
from .projects import DEFAULT_LOAN_STAGE_LIMITS  # noqa: F401  (days a file may stay in each stage)
from .users import User

LOAN_KINDS = ("commercial", "provident_fund", "combined")
LOAN_LINE_KINDS = ("commercial_loan", "provident_fund_loan")  # the plan lines a file is opened for
LOAN_STAGES = ("collecting", "documents_complete", "bank_interview", "approved", "mortgage_registered",
               "disbursed")
LOAN_STATUSES = ("open", "disbursed", "closed")  # closed: the deal ended, or the loan was refused


class Bank(Base):
    """A lending bank (or provident-fund centre) the office works with: a managed list."""

    __tablename__ = "bank"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    branch: Mapped[str] = mapped_column(String(100), default="", server_default="")
    contact: Mapped[str] = mapped_column(String(100), default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return f"{self.name} {self.branch}".strip()


class LoanFile(Base):
    """One loan line's mortgage file and where it stands."""

    __tablename__ = "loan_file"
    __table_args__ = (
        CheckConstraint(in_list("loan_kind", LOAN_KINDS), name="loan_kind_known"),
        CheckConstraint(in_list("line_kind", LOAN_LINE_KINDS), name="line_kind_known"),
        CheckConstraint(in_list("stage", LOAN_STAGES), name="stage_known"),
        CheckConstraint(in_list("status", LOAN_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(status = 'disbursed') = (stage = 'disbursed')", name="disbursed_at_last_stage"),
        # One file in progress per loan line of a deal.
        Index("uq_loan_file_open", "subscription_id", "line_kind", unique=True,
              sqlite_where=text("status <> 'closed'"), postgresql_where=text("status <> 'closed'")),
        # Ageing per bank and stage over live files.
        Index("ix_loan_file_ageing", "status", "stage", "bank_id", "stage_since"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    line_kind: Mapped[str] = mapped_column(String(30))  # the plan line's kind it finances
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="RESTRICT"))
    loan_kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Money]
    stage: Mapped[str] = mapped_column(String(30), default="collecting")
    stage_since: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(20), default="open")
    missing: Mapped[str] = mapped_column(Text, default="", server_default="")  # what the customer must still supply
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id", ondelete="RESTRICT"))  # the disbursement
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    bank: Mapped[Bank] = relationship()
    opened_by: Mapped[User] = relationship(foreign_keys=[opened_by_id])
    stages: Mapped[list["LoanStage"]] = relationship(back_populates="file", order_by="LoanStage.id")

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} {self.bank or ''}".strip()

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


class LoanStage(Base):
    """A stage a file reached: when, by whom, with a note (the file's history)."""

    __tablename__ = "loan_stage"
    __table_args__ = (UniqueConstraint("loan_file_id", "stage"),
                      CheckConstraint(in_list("stage", LOAN_STAGES), name="stage_known"))
    __append_only__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_file_id: Mapped[int] = mapped_column(ForeignKey("loan_file.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(String(30))
    on: Mapped[dt.date]
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    file: Mapped[LoanFile] = relationship(back_populates="stages")
    by: Mapped[User] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.loan_file_id.in_(select(LoanFile.id).where(LoanFile.owned_by(user_id)))
