"""Monthly sales targets per agent (R-ALL-3).

The sales manager (or the administrator) sets each agent's targets for a month: subscriptions
(a count), subscription amount and collections (money). The monthly review, which sets them
beside what each agent did that month, is a report (models/reports.py).
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context
from .base import Base, Money, utcnow
from .money import parse_money
from .errors import RuleViolation
from .permissions import require
from .users import User

MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class SalesTarget(Base):
    __tablename__ = "sales_target"
    __table_args__ = (
        UniqueConstraint("agent_id", "month"),
        CheckConstraint("subscriptions >= 0 AND amount >= 0 AND collections >= 0", name="not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # 2026-11
    subscriptions: Mapped[int] = mapped_column(default=0)
    amount: Mapped[Money] = mapped_column(default=Decimal("0"))
    collections: Mapped[Money] = mapped_column(default=Decimal("0"))
    set_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    agent: Mapped[User] = relationship(foreign_keys=[agent_id])


def parse_month(value) -> str:
    match = MONTH.match(str(value or "").strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2100:
        raise RuleViolation(_l("A month is written like 2026-11."), rule="R-ALL-3")
    return match.group(0)


def month_range(month: str) -> tuple[dt.date, dt.date]:
    year, number = int(month[:4]), int(month[5:7])
    return dt.date(year, number, 1), dt.date(year, number, calendar.monthrange(year, number)[1])


def _amount(value, what) -> Decimal:
    """A target amount: empty is none (0); otherwise read by the one money parser."""
    text = "" if value is None else str(value).strip()
    return parse_money(text or "0", what, allow_zero=True, rule="R-ALL-3")


def set_target(session, by, agent_id: int, month: str, *, subscriptions, amount, collections) -> SalesTarget:
    """The manager sets (or changes) an agent's targets for a month (R-ALL-3)."""
    require(by, "target.set")
    month = parse_month(month)
    agent = session.get(User, int(agent_id))
    if agent is None or not agent.has_role("agent"):
        raise RuleViolation(_l("Targets are set for sales agents."), rule="R-ALL-3")
    try:
        count = int(str(subscriptions).strip() or "0")
    except ValueError:
        raise RuleViolation(_l("The number of subscriptions is a whole number."), rule="R-ALL-3") from None
    if not 0 <= count <= 100000:
        raise RuleViolation(_l("The number of subscriptions is between 0 and 100,000."), rule="R-ALL-3")
    values = {"subscriptions": count, "amount": _amount(amount, _l("The subscription amount")),
              "collections": _amount(collections, _l("The collections"))}
    target = session.scalar(select(SalesTarget).where(SalesTarget.agent_id == agent.id, SalesTarget.month == month))
    with audit_context(session, actor=by, action="set_target"):
        if target is None:
            target = SalesTarget(agent_id=agent.id, month=month, set_by_id=by.id, **values)
            session.add(target)
        else:
            for key, value in values.items():
                setattr(target, key, value)
            target.set_by_id = by.id
        session.flush()
    return target
