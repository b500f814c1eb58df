"""Commissions (issue 23, R-COM-2, 佣金): the project's rules, the lines each deal earns, and the
monthly statements.

A `commission_rule` says who earns (an agent, the manager named on the rule, or a channel —
any channel or one company), how much (a rate % on the deal price, tiered by the payee's monthly
volume when the project says so, or a fixed amount) and in which stages (认购 / 签约 / 首付到账 /
放款, `stage_shares`: % per stage, summing to 100).

A `commission_line` is money earned or taken back, never edited: a deal's lines are recomputed
from the deal as it stands (price, unit, status, the agents' `deal_split` percentages), and the
difference from what the lines already add up to is written as a new line — an `adjustment`
after a swap or a price change, a `clawback` (negative) after a cancellation or a forfeit. So
for every deal, payee and stage the lines add up to what the deal earns now.

A line belongs to a month (`month`, its first day). A `commission_statement` gathers a payee's
lines of a month; approved (by the manager, by the vice-president above the project's limit),
the month is closed for that payee: a line computed later goes to the next open month.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (JSON, Boolean, CheckConstraint, ForeignKey, Index, Numeric, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow
from .deals import Subscription
from .projects import Project
from .users import User

COMMISSION_ROLES = ("agent", "manager", "channel")
COMMISSION_BASES = ("rate", "fixed")
# 认购 / 签约 / 首付到账 / 放款
COMMISSION_STAGES = ("subscribed", "signed", "down_payment", "disbursed")
LINE_KINDS = ("earned", "adjustment", "clawback")
STATEMENT_STATUSES = ("draft", "approved")
DEFAULT_STAGE_SHARES = {"subscribed": 30, "signed": 40, "down_payment": 30, "disbursed": 0}
_USER_WHERE = text("payee_user_id IS NOT NULL")
_COMPANY_WHERE = text("payee_company_id IS NOT NULL")


class CommissionRule(Base):
    """One way a project pays commission (R-COM-2)."""

    __tablename__ = "commission_rule"
    __table_args__ = (
        CheckConstraint(in_list("role", COMMISSION_ROLES), name="role_known"),
        CheckConstraint(in_list("basis", COMMISSION_BASES), name="basis_known"),
        CheckConstraint("(basis = 'rate' AND rate_percent IS NOT NULL AND rate_percent >= 0 AND rate_percent <= 100)"
                        " OR (basis = 'fixed' AND amount IS NOT NULL AND amount >= 0)", name="basis_has_value"),
        CheckConstraint("role = 'channel' OR company_id IS NULL", name="company_only_for_channels"),
        CheckConstraint("role <> 'manager' OR payee_user_id IS NOT NULL", name="manager_rule_names_payee"),
        Index("ix_commission_rule_project", "project_id", "role", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    role: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("channel_company.id", ondelete="RESTRICT"))
    payee_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))  # the manager
    basis: Mapped[str] = mapped_column(String(10), default="rate")
    rate_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # Tiered by the payee's deals (subscriptions) in the month, when Project.commission_tiered:
    # [{"from": 1, "rate_percent": "0.5"}, {"from": 11, "rate_percent": "0.8"}], `from` ascending.
    tiers: Mapped[list] = mapped_column(JSON, default=list)
    stage_shares: Mapped[dict] = mapped_column(JSON, default=lambda: dict(DEFAULT_STAGE_SHARES))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()
    payee_user: Mapped[User | None] = relationship(foreign_keys=[payee_user_id])


class DealSplit(Base):
    """A deal shared between agents (分单): each agent's % of the agents' commission."""

    __tablename__ = "deal_split"
    __table_args__ = (
        UniqueConstraint("subscription_id", "agent_id"),
        CheckConstraint("percent > 0 AND percent <= 100", name="percent_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    agent: Mapped[User] = relationship(foreign_keys=[agent_id])


class CommissionLine(Base):
    """Commission earned (or taken back) by one payee on one deal at one stage."""

    __tablename__ = "commission_line"
    __table_args__ = (
        CheckConstraint(in_list("role", COMMISSION_ROLES), name="role_known"),
        CheckConstraint(in_list("stage", COMMISSION_STAGES), name="stage_known"),
        CheckConstraint(in_list("kind", LINE_KINDS), name="kind_known"),
        CheckConstraint("(payee_user_id IS NULL) <> (payee_company_id IS NULL)", name="one_payee"),
        CheckConstraint("kind <> 'clawback' OR amount < 0", name="clawback_negative"),
        Index("ix_commission_line_user_month", "payee_user_id", "month"),
        Index("ix_commission_line_company_month", "payee_company_id", "month"),
        Index("ix_commission_line_project_month", "project_id", "month"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("commission_rule.id", ondelete="RESTRICT"))
    role: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    payee_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    payee_company_id: Mapped[int | None] = mapped_column(ForeignKey("channel_company.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(20), default="earned")
    base: Mapped[Money]  # the deal price (or the fixed amount) it was computed on
    amount: Mapped[Money]  # signed: a clawback is negative
    month: Mapped[dt.date]  # first day of the statement month it belongs to
    earned_on: Mapped[dt.date]  # the office's day the stage was reached (or the change made)
    statement_id: Mapped[int | None] = mapped_column(ForeignKey("commission_statement.id", ondelete="RESTRICT"),
                                                     index=True)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    payee_user: Mapped[User | None] = relationship(foreign_keys=[payee_user_id])

    @classmethod
    def owned_by(cls, user_id: int):
        from .channels import ChannelMember
        from sqlalchemy import or_, select

        return or_(cls.payee_user_id == user_id,
                   cls.payee_company_id == select(ChannelMember.company_id)
                   .where(ChannelMember.user_id == user_id).scalar_subquery())


class CommissionStatement(Base):
    """A payee's commission for one month of one project (R-COM-2)."""

    __tablename__ = "commission_statement"
    __table_args__ = (
        CheckConstraint(in_list("status", STATEMENT_STATUSES), name="status_known"),
        CheckConstraint("(payee_user_id IS NULL) <> (payee_company_id IS NULL)", name="one_payee"),
        CheckConstraint("status <> 'approved' OR approved_by_id IS NOT NULL", name="approved_by_someone"),
        Index("uq_commission_statement_user", "project_id", "month", "payee_user_id", unique=True,
              sqlite_where=_USER_WHERE, postgresql_where=_USER_WHERE),
        Index("uq_commission_statement_company", "project_id", "month", "payee_company_id", unique=True,
              sqlite_where=_COMPANY_WHERE, postgresql_where=_COMPANY_WHERE),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    month: Mapped[dt.date]  # its first day
    payee_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    payee_company_id: Mapped[int | None] = mapped_column(ForeignKey("channel_company.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    earned: Mapped[Money] = mapped_column(default=Decimal("0"))  # the positive lines
    clawed_back: Mapped[Money] = mapped_column(default=Decimal("0"))  # the negative lines (≤ 0)
    total: Mapped[Money] = mapped_column(default=Decimal("0"))
    line_count: Mapped[int] = mapped_column(default=0)
    needs_vp: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    approved_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()
    payee_user: Mapped[User | None] = relationship(foreign_keys=[payee_user_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])

    @classmethod
    def owned_by(cls, user_id: int):
        from .channels import ChannelMember
        from sqlalchemy import or_, select

        return or_(cls.payee_user_id == user_id,
                   cls.payee_company_id == select(ChannelMember.company_id)
                   .where(ChannelMember.user_id == user_id).scalar_subquery())


def line_month(session, project_id: int, payee_user_id: int | None, payee_company_id: int | None,
               on: dt.date) -> dt.date:  # interim: replaced at merge (the commission engine owns it)
    """The statement month a line earned on `on` belongs to: the first day of `on`'s month,
    unless that payee's statement of that month is approved (the month is closed for him): then
    the next month not closed. Reads the statement FOR SHARE, so an approval running now either
    finished (the line goes on) or waits for the line's transaction (and then sees the line)."""
    from sqlalchemy import select

    month = on.replace(day=1)
    payee = (CommissionStatement.payee_user_id == payee_user_id if payee_user_id is not None
             else CommissionStatement.payee_company_id == payee_company_id)
    for _ in range(1200):
        status = session.scalar(select(CommissionStatement.status).where(
            CommissionStatement.project_id == project_id, CommissionStatement.month == month, payee)
            .with_for_update(read=True))
        if status != "approved":
            return month
        month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return month
