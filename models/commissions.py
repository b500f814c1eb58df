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
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import (JSON, Boolean, CheckConstraint, ForeignKey, Index, Numeric, String, Text,
                        UniqueConstraint, and_, case, delete, exists, func, insert, or_, select, text, true, update)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context, record_many
from .base import Base, Money, in_list, office_today, utcnow
from .deals import DEAD_DEAL, Subscription, locked_subscription
from .errors import RuleViolation
from .permissions import require
from .projects import Project
from .users import User, users_with_roles

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
    # When the rule was last saved, and when a run of `apply_rules` that began after that save
    # finished recomputing the project's deals (NULL, or earlier than changed_at: not yet applied).
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())
    applied_at: Mapped[dt.datetime | None]

    project: Mapped[Project] = relationship()
    payee_user: Mapped[User | None] = relationship(foreign_keys=[payee_user_id])

    @property
    def applied(self) -> bool:
        """Whether the project's deals were recomputed since the rule was last saved."""
        return self.applied_at is not None and self.applied_at >= self.changed_at


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

    @classmethod
    def owned_by(cls, user_id: int):
        """An agent sees the splits he is part of, and those of his own deals."""
        from .deals import via_subscription

        return or_(cls.agent_id == user_id, via_subscription(cls.subscription_id, user_id))


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


# --- the engine (R-COM-2) ------------------------------------------------------------------------------
#
# Stages (decided here, the one place): a deal reaches
#   subscribed    when its deposit is in: status active or contracted;
#   signed        when its sale contract is signed: status contracted;
#   down_payment  when the plan in force has its deposit and down-payment lines fully paid (a plan
#                 without a down-payment line — one-off — when every line but the loans is paid);
#   disbursed     when the plan's loan lines are fully paid (a plan without loans: every line paid).
# Every stage needs a deal in force (active / contracted); an ended deal (forfeited, withdrawn,
# expired, rescinded, cancelled) earns 0, so its lines are clawed back to 0.
#
# Tiers (Project.commission_tiered): a deal's rate is the tier of its PLACE in its payee's month —
# the payee's n-th LIVE deal (active or contracted: `TIER_COUNTED`) subscribed that month, by
# (subscribed_on, id). A later deal of the month never re-tiers an earlier one: the 11th deal earns
# the 11th-deal rate, the first ten keep theirs. A deal whose deposit comes in late moves the later
# deals of its month up one place, and a deal that ends (cancelled, rescinded, forfeited…) moves
# them down one: they are recomputed with it (`_tier_followers`) — a fake deal raises no tier.
#
# Rules never rewrite history silently: a rule changed (rate, shares, deactivated) changes what the
# project's deals earn from now, and their recompute writes the difference as `adjustment` lines in
# the open month; what was earned before stays on its lines (and on closed statements).

LOAN_KINDS = ("commercial_loan", "provident_fund_loan")
IN_FORCE_DEAL = ("active", "contracted")  # the deals that earn (deposit in, not over)
TIER_COUNTED = IN_FORCE_DEAL  # the deals that hold a place in a tier: live ones (an ended deal gives its place up)
CENT = Decimal("0.01")
# Called by recompute as hook(session, subscription_id) after lines were written (statements may
# follow). Empty here.
LINES_WRITTEN: list = []


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _payee_is(model, payee_user_id, payee_company_id):
    return (model.payee_user_id == payee_user_id) if payee_user_id is not None \
        else (model.payee_company_id == payee_company_id)


def line_month(session, project_id: int, payee_user_id: int | None, payee_company_id: int | None,
               on: dt.date) -> dt.date:
    """The month (its first day) a line computed on `on` belongs to: `on`'s month, unless the
    payee's statement of that month is approved (closed) — then the next month not approved."""
    month = on.replace(day=1)
    # The payee's statements from that month on, whatever their status, FOR SHARE: an approval
    # running now has either finished (the line goes to the next month) or the line's transaction
    # waits for it (a WHERE on the status would skip the draft being approved without waiting).
    closed = {m for m, status in session.execute(select(CommissionStatement.month, CommissionStatement.status).where(
        CommissionStatement.project_id == project_id, CommissionStatement.month >= month,
        _payee_is(CommissionStatement, payee_user_id, payee_company_id)).with_for_update(read=True))
        if status == "approved"}
    while month in closed:
        month = _next_month(month)
    return month


def plan_facts(session, subscription_ids) -> dict:
    """{deal id: (lines, first_unpaid, loans, loans_unpaid, unpaid)} of the plans in force, in one
    aggregate query: the counts `reached` reads (a plan with a down-payment line counts deposit and
    down payment as "first"; without one, every line but the loans)."""
    from .payments import Instalment, in_force

    I = Instalment
    if isinstance(subscription_ids, (list, tuple, set)):
        if not subscription_ids:
            return {}
        scope = I.subscription_id.in_(list(subscription_ids))
    else:  # a SELECT of deal ids
        scope = I.subscription_id.in_(subscription_ids)
    unpaid = I.amount_paid < I.amount_due
    loan = I.kind.in_(LOAN_KINDS)
    has_down = func.max(case((I.kind == "down_payment", 1), else_=0))
    rows = session.execute(select(
        I.subscription_id, func.count().label("lines"), has_down.label("has_down"),
        func.sum(case((and_(unpaid, I.kind.in_(("deposit", "down_payment"))), 1), else_=0)).label("dp_unpaid"),
        func.sum(case((and_(unpaid, ~loan), 1), else_=0)).label("nonloan_unpaid"),
        func.sum(case((loan, 1), else_=0)).label("loans"),
        func.sum(case((and_(unpaid, loan), 1), else_=0)).label("loans_unpaid"),
        func.sum(case((unpaid, 1), else_=0)).label("unpaid"))
        .where(scope, in_force()).group_by(I.subscription_id)).all()
    return {r.subscription_id: (r.lines, r.dp_unpaid if r.has_down else r.nonloan_unpaid, r.loans, r.loans_unpaid,
                                r.unpaid) for r in rows}


def reached(status: str, facts) -> set[str]:
    """The stages a deal of `status` whose plan is `facts` (`plan_facts`) has reached now (see
    above: the one definition)."""
    if status not in IN_FORCE_DEAL:
        return set()
    stages = {"subscribed"}
    if status == "contracted":
        stages.add("signed")
    lines, first_unpaid, loans, loans_unpaid, unpaid = facts or (0, 0, 0, 0, 0)
    if lines and not first_unpaid:
        stages.add("down_payment")
    if lines and not (loans_unpaid if loans else unpaid):
        stages.add("disbursed")
    return stages


def stages_reached(session, sub: Subscription) -> set[str]:
    """The stages `sub` has reached now."""
    return reached(sub.status, plan_facts(session, [sub.id]).get(sub.id))


def apportion(total: Decimal, weights: list[tuple]) -> dict:
    """Split `total` (to the fen) over [(key, weight ≥ 0)] in proportion, the fens left by rounding
    down going to the largest remainders (ties: the smaller key): the parts add up to `total`
    exactly, and the same inputs always give the same parts."""
    cents = int((Decimal(total) * 100).to_integral_value(ROUND_HALF_UP))
    whole = sum((Decimal(w) for _k, w in weights), Decimal("0"))
    if not weights or whole <= 0:
        return {k: Decimal("0.00") for k, _w in weights}
    exact = [(k, cents * Decimal(w) / whole) for k, w in weights]
    parts = {k: int(e) for k, e in exact}  # cents ≥ 0: int() rounds down
    left = cents - sum(parts.values())
    for k, e in sorted(exact, key=lambda ke: (-(ke[1] - int(ke[1])), ke[0]))[:left]:
        parts[k] += 1
    return {k: (Decimal(c) / 100).quantize(CENT) for k, c in parts.items()}


def _rules(session, project_id: int) -> list[CommissionRule]:
    return list(session.scalars(select(CommissionRule).where(CommissionRule.project_id == project_id,
                                                             CommissionRule.active.is_(True))
                                .order_by(CommissionRule.id)))


def channel_company_of(session, sub: Subscription) -> int | None:
    """The deal's channel: the company of a confirmed registration of its customer in its project."""
    from .channels import ChannelRegistration

    return session.scalar(select(ChannelRegistration.company_id).where(
        ChannelRegistration.lead_id == sub.lead_id, ChannelRegistration.project_id == sub.project_id,
        ChannelRegistration.status == "confirmed").order_by(ChannelRegistration.id).limit(1))


def deal_agents(session, subscription_id: int, agent_id: int) -> list[tuple[int, Decimal]]:
    """[(agent, percent)]: the deal's split (分单) if any, else its agent at 100 %."""
    split = session.execute(select(DealSplit.agent_id, DealSplit.percent).where(
        DealSplit.subscription_id == subscription_id).order_by(DealSplit.agent_id)).all()
    return [(a, Decimal(p)) for a, p in split] or [(agent_id, Decimal("100"))]


def _deals_of_payee(role: str, payee: int):
    """A WHERE clause on Subscription: the deals on which `payee` earns under a rule of `role`."""
    from .channels import ChannelRegistration

    if role == "manager":
        return true()
    if role == "channel":
        return exists().where(ChannelRegistration.lead_id == Subscription.lead_id,
                              ChannelRegistration.project_id == Subscription.project_id,
                              ChannelRegistration.status == "confirmed", ChannelRegistration.company_id == payee)
    split = exists().where(DealSplit.subscription_id == Subscription.id)
    return or_(and_(~split, Subscription.agent_id == payee),
               exists().where(DealSplit.subscription_id == Subscription.id, DealSplit.agent_id == payee))


def tier_place(session, sub: Subscription, role: str, payee: int) -> int:
    """The deal's place among its payee's deals of its month (see Tiers above)."""
    month = sub.subscribed_on.replace(day=1)
    return session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.project_id == sub.project_id, Subscription.status.in_(TIER_COUNTED),
        Subscription.subscribed_on >= month, Subscription.subscribed_on < _next_month(month),
        or_(Subscription.subscribed_on < sub.subscribed_on,
            and_(Subscription.subscribed_on == sub.subscribed_on, Subscription.id <= sub.id)),
        _deals_of_payee(role, payee))) or 1


def rule_rate(rule: CommissionRule, place: int | None) -> Decimal:
    """The rule's rate for a deal at `place` in its payee's month (None: not tiered)."""
    rate = Decimal(rule.rate_percent or 0)
    if place is not None:
        for tier in rule.tiers or []:
            if int(tier["from"]) <= place:
                rate = Decimal(str(tier["rate_percent"]))
    return rate


def deal_commission(session, sub: Subscription, today: dt.date | None = None) -> dict:
    """THE one definition of what a deal earns now (R-COM-2):
    {(role, payee_user_id, payee_company_id, stage, rule_id): Decimal}, the stages reached only.

    For each active rule of the project: agents (the deal's agent, or its split's agents by their
    percentages), the manager the rule names, the deal's channel company (a rule for that company
    wins over the generic channel rules). A rule's amount (rate × the deal's price now, or its fixed
    amount) goes to the stages by `stage_shares`, then to the agents by their percentages, each
    to the fen with the remainders apportioned deterministically: the parts add up exactly.
    An ended deal earns nothing. `today` is accepted for the callers' symmetry (the deal's own
    month decides the tiers, not today). The batch path (`recompute_project`) loads the same
    facts for many deals at once and computes with the same `earned`."""
    stages = stages_reached(session, sub)
    if not stages:
        return {}
    rules = _rules(session, sub.project_id)
    company = channel_company_of(session, sub) if any(r.role == "channel" for r in rules) else None
    place = (lambda role, payee: tier_place(session, sub, role, payee)) if sub.project.commission_tiered else None
    return earned(sub.price, stages, rules, deal_agents(session, sub.id, sub.agent_id), company, place)


def earned(price, stages: set, rules, agents, company, place=None) -> dict:
    """What a deal at `price` that reached `stages` earns under `rules` (see deal_commission):
    `agents` [(agent, percent)], `company` its channel or None, `place(role, payee)` its place in
    the payee's month (None: the project is not tiered)."""
    if not stages:
        return {}
    if company is not None and any(r.role == "channel" and r.company_id == company for r in rules):
        rules = [r for r in rules if r.role != "channel" or r.company_id == company]
    else:
        rules = [r for r in rules if r.role != "channel" or r.company_id is None]
    out: dict = {}
    for rule in rules:
        if rule.role == "agent":
            payees = [((a, None), pct) for a, pct in agents]
        elif rule.role == "manager":
            payees = [((rule.payee_user_id, None), Decimal("100"))]
        elif company is not None:
            payees = [((None, company), Decimal("100"))]
        else:
            continue
        # each payee's exact amount (its own tier), then the rule's total to the fen
        weights = []
        for (user_id, company_id), pct in payees:
            if rule.basis == "fixed":
                whole = Decimal(rule.amount)
            else:
                at = place(rule.role, user_id or company_id) if place is not None and rule.tiers else None
                whole = Decimal(price) * rule_rate(rule, at) / 100
            weights.append(((user_id or 0, company_id or 0), whole * pct / 100))
        total = sum((w for _k, w in weights), Decimal("0")).quantize(CENT, ROUND_HALF_UP)
        shares = rule.stage_shares or DEFAULT_STAGE_SHARES
        by_stage = apportion(total, [(COMMISSION_STAGES.index(s), Decimal(str(shares.get(s, 0))))
                                     for s in COMMISSION_STAGES])
        for n, stage in enumerate(COMMISSION_STAGES):
            if stage not in stages:
                continue
            for (user_id, company_id), amount in apportion(by_stage[n], weights).items():
                key = (rule.role, user_id or None, company_id or None, stage, rule.id)
                out[key] = out.get(key, Decimal("0")) + amount
    return out


def lines_by_key(session, subscription_id: int) -> dict:
    """What the deal's lines add up to now, per (role, payee_user_id, payee_company_id, stage, rule_id)."""
    L = CommissionLine
    return {(r.role, r.payee_user_id, r.payee_company_id, r.stage, r.rule_id): Decimal(r.total)
            for r in session.execute(select(L.role, L.payee_user_id, L.payee_company_id, L.stage, L.rule_id,
                                            func.sum(L.amount).label("total"))
                                     .where(L.subscription_id == subscription_id)
                                     .group_by(L.role, L.payee_user_id, L.payee_company_id, L.stage, L.rule_id))}


def differences(due: dict, have: dict, ended: bool):
    """[(key, amount, kind)] of the lines that bring `have` to `due`, in a stable order: `earned` for
    a key without lines, `clawback` for money taken back from an ended deal, `adjustment` otherwise."""
    out = []
    for key in sorted(set(due) | set(have), key=lambda k: tuple("" if v is None else str(v) for v in k)):
        diff = due.get(key, Decimal("0")) - have.get(key, Decimal("0"))
        if diff:
            out.append((key, diff, "clawback" if ended and diff < 0 else "earned" if key not in have
                        else "adjustment"))
    return out


def _recompute(session, subscription_id: int, today: dt.date, by=None, reason: str = "") -> int:
    """The lines `recompute_deal` writes, without the role check (the hooks and the sweep)."""
    sub = locked_subscription(session, subscription_id)
    due = deal_commission(session, sub, today)
    have = lines_by_key(session, sub.id)
    months: dict = {}
    rows = []
    for (role, user_id, company_id, stage, rule_id), diff, kind in differences(due, have, sub.status in DEAD_DEAL):
        payee = (user_id, company_id)
        if payee not in months:
            months[payee] = line_month(session, sub.project_id, user_id, company_id, today)
        rule = session.get(CommissionRule, rule_id) if rule_id is not None else None
        base = Decimal(rule.amount) if rule is not None and rule.basis == "fixed" else Decimal(sub.price)
        rows.append(CommissionLine(project_id=sub.project_id, subscription_id=sub.id, rule_id=rule_id, role=role,
                                   stage=stage, payee_user_id=user_id, payee_company_id=company_id, kind=kind,
                                   base=base, amount=diff, month=months[payee], earned_on=today,
                                   reason=(reason or "recompute")[:500]))
    if rows:
        with audit_context(session, actor=by, action="commission"):
            session.add_all(rows)
            session.flush()
        for hook in LINES_WRITTEN:
            hook(session, sub.id)
    return len(rows)


def _recompute_many(session, ids, today: dt.date, by=None, reason: str = "") -> int:
    """`_recompute` of many deals at once (a rule saved, the daily sweep): the same facts and the same
    `earned`, loaded by a handful of set-based queries, the deals locked together, the lines
    inserted and audited in bulk. `ids`: a SELECT of deal ids. Deals of a tiered project go one by
    one (a tier's place reads the other deals of the month)."""
    from .channels import ChannelRegistration

    L, S = CommissionLine, Subscription
    subs = session.execute(select(S.id, S.project_id, S.status, S.price, S.agent_id, S.lead_id)
                           .where(S.id.in_(ids)).order_by(S.id).with_for_update()).all()
    if not subs:
        return 0
    projects = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_({s.project_id for s in subs})))}
    written = 0
    tiered = [s.id for s in subs if projects[s.project_id].commission_tiered]
    for sub_id in tiered:
        written += _recompute(session, sub_id, today, by, reason)
    subs = [s for s in subs if not projects[s.project_id].commission_tiered]
    if not subs:
        return written
    rules = {pid: _rules(session, pid) for pid in {s.project_id for s in subs}}
    every_rule = {r.id: r for r in session.scalars(select(CommissionRule).where(
        CommissionRule.project_id.in_(rules)))}
    facts = plan_facts(session, ids)
    agents: dict = {}
    for sub_id, agent_id, percent in session.execute(select(DealSplit.subscription_id, DealSplit.agent_id,
                                                            DealSplit.percent)
                                                     .where(DealSplit.subscription_id.in_(ids))
                                                     .order_by(DealSplit.subscription_id, DealSplit.agent_id)):
        agents.setdefault(sub_id, []).append((agent_id, Decimal(percent)))
    companies: dict = {}
    if any(r.role == "channel" for rs in rules.values() for r in rs):
        for lead_id, project_id, company_id in session.execute(
                select(ChannelRegistration.lead_id, ChannelRegistration.project_id, ChannelRegistration.company_id)
                .where(ChannelRegistration.status == "confirmed",
                       ChannelRegistration.lead_id.in_(select(S.lead_id).where(S.id.in_(ids))))
                .order_by(ChannelRegistration.id)):
            companies.setdefault((lead_id, project_id), company_id)
    have: dict = {}
    for r in session.execute(select(L.subscription_id, L.role, L.payee_user_id, L.payee_company_id, L.stage, L.rule_id,
                                    func.sum(L.amount).label("total")).where(L.subscription_id.in_(ids))
                             .group_by(L.subscription_id, L.role, L.payee_user_id, L.payee_company_id, L.stage,
                                       L.rule_id)):
        have.setdefault(r.subscription_id, {})[(r.role, r.payee_user_id, r.payee_company_id, r.stage, r.rule_id)] = \
            Decimal(r.total)
    months: dict = {}
    rows = []
    for sub in subs:
        due = earned(sub.price, reached(sub.status, facts.get(sub.id)), rules[sub.project_id],
                     agents.get(sub.id) or [(sub.agent_id, Decimal("100"))],
                     companies.get((sub.lead_id, sub.project_id)))
        for (role, user_id, company_id, stage, rule_id), diff, kind in differences(
                due, have.get(sub.id, {}), sub.status in DEAD_DEAL):
            payee = (sub.project_id, user_id, company_id)
            if payee not in months:
                months[payee] = line_month(session, sub.project_id, user_id, company_id, today)
            rule = every_rule.get(rule_id)
            rows.append({"project_id": sub.project_id, "subscription_id": sub.id, "rule_id": rule_id, "role": role,
                         "stage": stage, "payee_user_id": user_id, "payee_company_id": company_id, "kind": kind,
                         "base": Decimal(rule.amount) if rule is not None and rule.basis == "fixed"
                         else Decimal(sub.price), "amount": diff, "month": months[payee], "earned_on": today,
                         "reason": (reason or "recompute")[:500], "created_at": utcnow()})
    if rows:
        new_ids = session.execute(insert(L).returning(L.id, sort_by_parameter_order=True), rows).scalars().all()
        record_many(session, "commission_line", "commission", by,
                    [(line_id, {k: [None, v] for k, v in row.items() if k != "created_at"})
                     for line_id, row in zip(new_ids, rows)])
        for sub_id in sorted({row["subscription_id"] for row in rows}):
            for hook in LINES_WRITTEN:
                hook(session, sub_id)
    return written + len(rows)


def recompute_deal(session, subscription_id: int, today: dt.date, by=None, reason: str = "") -> int:
    """Bring a deal's commission lines to what it earns now (R-COM-2): under the deal's lock, the
    difference between `deal_commission` and the sum of its lines per key is written as new lines
    — `earned` when a stage is first reached, `adjustment` after a change, `clawback` (negative)
    after the deal ended — never editing a line. A second call writes nothing. Each line is
    audited (action `commission`). Returns the number of lines written. `by`: a person (who must
    hold commission.compute) or None for the system (hooks, the daily sweep)."""
    if by is not None:
        require(by, "commission.compute")
    return _recompute(session, subscription_id, today, by, reason)


def _tier_followers(session, sub: Subscription) -> list[int]:
    """The deals whose place in a tiered month this deal's deposit moved (later ones, same month)."""
    if not sub.project.commission_tiered:
        return []
    month = sub.subscribed_on.replace(day=1)
    return list(session.scalars(select(Subscription.id).where(
        Subscription.project_id == sub.project_id, Subscription.status.in_(IN_FORCE_DEAL),
        Subscription.subscribed_on >= month, Subscription.subscribed_on < _next_month(month),
        Subscription.id != sub.id,
        or_(Subscription.subscribed_on > sub.subscribed_on,
            and_(Subscription.subscribed_on == sub.subscribed_on, Subscription.id > sub.id)))
        .order_by(Subscription.id)))


def deal_changed(session, subscription_id: int, by=None, action: str = "", today: dt.date | None = None) -> int:
    """THE hook every path that changes what a deal earns calls, in its transaction (R-COM-2):
    models.deals (DEAL_MOVED: a status moved; DEAL_ENDED), models.payments (PAYMENT_TAKEN,
    PAYMENT_REVERSED, PLAN_REGENERATED: swaps, price and method changes), models.contracts
    (DEAL_MOVED from sign_contract), splits and rules here. Lines are dated `today` (default:
    the office's today)."""
    today = today or office_today()
    written = _recompute(session, subscription_id, today, by, action)
    if action in ("deposit", "split"):
        sub = session.get(Subscription, subscription_id)
        for other in _tier_followers(session, sub):
            written += _recompute(session, other, today, by, f"{action}: tier")
    return written


def _on_deal_event(session, subscription_id, by, action):
    deal_changed(session, subscription_id, by, action)


def _on_payment_reversed(session, by, original, reversal):
    deal_changed(session, original.subscription_id, by, "reverse_payment", today=reversal.paid_on)


def _on_deal_ended(session, subscription_id, by, action):
    """A deal ended: its lines clawed back, and in a tiered month the later deals of its payees
    re-tiered (an ended deal holds no place: `tier_place` counts live deals only)."""
    written = deal_changed(session, subscription_id, by, action)
    sub = session.get(Subscription, subscription_id)
    for other in _tier_followers(session, sub):
        written += _recompute(session, other, office_today(), by, f"{action}: tier")
    return written


def _on_attribution_changed(session, lead_id, project_id, by, today):
    """models.channels: a customer's channel changed (confirmed by a visit, or awarded to the later
    channel): each of his deals in the project recomputed, the channel's lines moving to the
    company now confirmed (R-COM-1, R-COM-2)."""
    for sub_id in session.scalars(select(Subscription.id).where(
            Subscription.lead_id == lead_id, Subscription.project_id == project_id).order_by(Subscription.id)):
        deal_changed(session, sub_id, by, "channel", today=today)


def _register_hooks() -> None:
    from . import channels, deals, payments

    for hooks, hook in ((deals.DEAL_MOVED, _on_deal_event), (deals.DEAL_ENDED, _on_deal_ended),
                        (payments.PLAN_REGENERATED, _on_deal_event), (payments.PAYMENT_TAKEN, _on_deal_event),
                        (payments.PAYMENT_REVERSED, _on_payment_reversed),
                        (channels.ATTRIBUTION_CHANGED, _on_attribution_changed)):
        if hook not in hooks:
            hooks.append(hook)



# --- rules ----------------------------------------------------------------------------------------------

RULE_FIELDS = ("name", "role", "company_id", "payee_user_id", "basis", "rate_percent", "amount", "tiers",
               "stage_shares", "active")


def _number(value, message) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise RuleViolation(message, rule="R-COM-2") from None
    if not number.is_finite():
        raise RuleViolation(message, rule="R-COM-2")
    return number


def validate_rule(session, values: dict) -> dict:
    """The rule as it will be stored, or RuleViolation (R-COM-2): stage_shares the four stages,
    numbers ≥ 0 summing to 100; tiers `from` ascending whole numbers ≥ 1, rates 0–100; a rate
    0–100 or a fixed amount ≥ 0; a manager rule names its payee (a sales manager); a company only
    on a channel rule (a rule for one company wins over the generic channel rule)."""
    role, basis = values.get("role"), values.get("basis") or "rate"
    if role not in COMMISSION_ROLES:
        raise RuleViolation(_l("Choose whom the rule pays: agents, a manager or a channel."), rule="R-COM-2")
    if basis not in COMMISSION_BASES:
        raise RuleViolation(_l("Choose a rate on the deal price or a fixed amount."), rule="R-COM-2")
    clean = {"name": (values.get("name") or "").strip()[:100], "role": role, "basis": basis,
             "active": bool(values.get("active", True)), "company_id": None, "payee_user_id": None,
             "rate_percent": None, "amount": None}
    if basis == "rate":
        rate = _number(values.get("rate_percent"), _l("The rate is a percentage from 0 to 100."))
        if not 0 <= rate <= 100:
            raise RuleViolation(_l("The rate is a percentage from 0 to 100."), rule="R-COM-2")
        clean["rate_percent"] = rate.quantize(Decimal("0.0001"))
    else:
        amount = _number(values.get("amount"), _l("The fixed amount is a sum of money, 0 or more."))
        if amount < 0 or amount != amount.quantize(CENT):
            raise RuleViolation(_l("The fixed amount is a sum of money, 0 or more."), rule="R-COM-2")
        clean["amount"] = amount
    shares = values.get("stage_shares") or dict(DEFAULT_STAGE_SHARES)
    if not isinstance(shares, dict) or set(shares) != set(COMMISSION_STAGES):
        raise RuleViolation(_l("The stage shares name the four stages: subscribed, signed, down_payment, "
                               "disbursed."), rule="R-COM-2")
    parts = {s: _number(shares[s], _l("Each stage's share is a number, 0 or more.")) for s in COMMISSION_STAGES}
    if any(v < 0 for v in parts.values()):
        raise RuleViolation(_l("Each stage's share is a number, 0 or more."), rule="R-COM-2")
    if sum(parts.values()) != 100:
        raise RuleViolation(_l("The stage shares add up to 100 (they add up to %(total)s).",
                               total=sum(parts.values())), rule="R-COM-2")
    clean["stage_shares"] = {s: (int(v) if v == int(v) else str(v)) for s, v in parts.items()}
    tiers = values.get("tiers") or []
    if not isinstance(tiers, list):
        raise RuleViolation(_l("Tiers are a list of {\"from\": n, \"rate_percent\": r}."), rule="R-COM-2")
    clean_tiers, last = [], 0
    for tier in tiers:
        if not isinstance(tier, dict) or set(tier) != {"from", "rate_percent"}:
            raise RuleViolation(_l("Tiers are a list of {\"from\": n, \"rate_percent\": r}."), rule="R-COM-2")
        start = _number(tier["from"], _l("A tier starts from a deal number, 1 or more, in ascending order."))
        rate = _number(tier["rate_percent"], _l("A tier's rate is a percentage from 0 to 100."))
        if start != int(start) or start < 1 or start <= last:
            raise RuleViolation(_l("A tier starts from a deal number, 1 or more, in ascending order."),
                                rule="R-COM-2")
        if not 0 <= rate <= 100:
            raise RuleViolation(_l("A tier's rate is a percentage from 0 to 100."), rule="R-COM-2")
        last = int(start)
        clean_tiers.append({"from": last, "rate_percent": str(rate)})
    if clean_tiers and basis != "rate":
        raise RuleViolation(_l("Only a rate is tiered."), rule="R-COM-2")
    clean["tiers"] = clean_tiers
    if role == "manager":
        payee = values.get("payee_user_id")
        if not payee or int(payee) not in users_with_roles(session, ("sales_manager",)):
            raise RuleViolation(_l("A manager rule names the sales manager it pays."), rule="R-COM-2")
        clean["payee_user_id"] = int(payee)
    elif values.get("payee_user_id"):
        raise RuleViolation(_l("Only a manager rule names a payee: agents and channels follow the deal."),
                            rule="R-COM-2")
    if role == "channel" and values.get("company_id"):
        from .channels import ChannelCompany
        if session.get(ChannelCompany, int(values["company_id"])) is None:
            raise RuleViolation(_l("This channel company does not exist."), rule="R-COM-2")
        clean["company_id"] = int(values["company_id"])
    elif values.get("company_id"):
        raise RuleViolation(_l("Only a channel rule names a company."), rule="R-COM-2")
    return clean


def save_rule(session, by, project_id: int, values: dict, rule_id: int | None = None) -> CommissionRule:
    """Create or change a project's commission rule (R-COM-2, commission.rules), audited, stamped
    `changed_at`. It recomputes nothing: the project's deals are brought to the rule by
    `apply_rules` — the job the screen enqueues once this is committed, or else the daily run (a
    rule whose `applied_at` is unset or older than its `changed_at` is not yet applied)."""
    require(by, "commission.rules")
    clean = validate_rule(session, values)
    if session.get(Project, project_id) is None:
        raise RuleViolation(_l("Choose the project."), rule="R-COM-2")
    with audit_context(session, actor=by, action="commission_rule"):
        if rule_id is None:
            rule = CommissionRule(project_id=project_id, created_by_id=by.id, changed_at=utcnow(), **clean)
            session.add(rule)
        else:
            rule = session.scalar(select(CommissionRule).where(CommissionRule.id == rule_id).with_for_update())
            if rule is None or rule.project_id != project_id:
                raise RuleViolation(_l("This commission rule does not exist."), rule="R-COM-2")
            for key, value in clean.items():
                setattr(rule, key, value)
            rule.changed_at = utcnow()
        session.flush()
    return rule


def _project_deals(project_id: int):
    """The deals of a project a rule can change: those that earn now or have lines."""
    return select(Subscription.id).where(
        Subscription.project_id == project_id,
        or_(Subscription.status.in_(IN_FORCE_DEAL),
            Subscription.id.in_(select(CommissionLine.subscription_id).where(
                CommissionLine.project_id == project_id))))


def recompute_project(session, project_id: int, today: dt.date, by=None, reason: str = "") -> int:
    """Recompute every deal of a project that earns now or has lines, in bulk, in the caller's
    transaction (a small project; `apply_rules` is the chunked, committed way)."""
    return _recompute_many(session, _project_deals(project_id), today, by, reason)


def apply_rules(session, project_id: int, today: dt.date) -> int:
    """Bring every deal of a project to its rules as they stand (R-COM-2): the deals recomputed
    SWEEP_CHUNK at a time, a commit per chunk, then the rules seen at the start marked applied
    (`applied_at` = when this run started) — each only if it was not saved again since (its
    `changed_at` still the one seen, and not after the start). Run by the job a saved rule
    enqueues (jobs/commissions.py) and by the daily sweep for any rule not yet applied.

    Idempotent: a second run writes no lines. Killed at any statement, it leaves its committed
    chunks (right: each deal's lines add up to what it earns under the rules it read) and the
    rules unmarked, so the next run (the daily sweep) does it again. Returns the lines written."""
    started = utcnow()
    R = CommissionRule
    # A rule saved but not yet committed is seen here as it was (or not at all): not marked below.
    seen = session.execute(select(R.id, R.changed_at).where(R.project_id == project_id).order_by(R.id)).all()
    ids = list(session.scalars(_project_deals(project_id).order_by(Subscription.id)))
    session.commit()
    written = 0
    for start in range(0, len(ids), SWEEP_CHUNK):
        chunk = ids[start:start + SWEEP_CHUNK]
        try:
            written += _recompute_many(session, select(Subscription.id).where(Subscription.id.in_(chunk)),
                                       today, None, "commission_rule")
            session.commit()
        except Exception:
            session.rollback()
            raise
    for rule_id, changed_at in seen:
        session.execute(update(R).where(R.id == rule_id, R.project_id == project_id, R.changed_at == changed_at,
                                        R.changed_at <= started)
                        .values(applied_at=started).execution_options(synchronize_session=False))
    session.commit()
    return written


def projects_to_apply(session) -> list[int]:
    """The projects with a rule saved since it was last applied (or never applied)."""
    R = CommissionRule
    return list(session.scalars(select(R.project_id).where(or_(R.applied_at.is_(None), R.applied_at < R.changed_at))
                                .distinct().order_by(R.project_id)))


# --- splits (分单) ----------------------------------------------------------------------------------------

def set_split(session, by, subscription_id: int, shares, reason: str, today: dt.date | None = None) -> list:
    """Share a deal between agents (R-COM-2, commission.split): [(agent_id, percent)], each > 0, adding up
    to 100, each an agent; replaces the deal's previous split (audited, before → after, with the
    reason) and recomputes the deal. An empty list ends the split (the deal's agent alone)."""
    require(by, "commission.split")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the deal is shared."), rule="R-COM-2")
    parsed = {}
    for agent_id, percent in shares or []:
        pct = _number(percent, _l("Each agent's share is a percentage above 0."))
        if pct <= 0 or pct != pct.quantize(CENT):
            raise RuleViolation(_l("Each agent's share is a percentage above 0."), rule="R-COM-2")
        if int(agent_id) in parsed:
            raise RuleViolation(_l("Name each agent once."), rule="R-COM-2")
        parsed[int(agent_id)] = pct
    if parsed and sum(parsed.values()) != 100:
        raise RuleViolation(_l("The shares add up to 100 (they add up to %(total)s).",
                               total=sum(parsed.values())), rule="R-COM-2")
    agents = set(users_with_roles(session, ("agent",)))
    if any(a not in agents for a in parsed):
        raise RuleViolation(_l("A deal is shared between agents only."), rule="R-COM-2")
    sub = locked_subscription(session, subscription_id)
    if sub.status in DEAD_DEAL:
        raise RuleViolation(_l("This deal is over: its commission is clawed back, not shared."), rule="R-COM-2")
    before = {str(a): str(Decimal(p).quantize(CENT)) for a, p in session.execute(select(DealSplit.agent_id, DealSplit.percent).where(
        DealSplit.subscription_id == sub.id).order_by(DealSplit.agent_id))}
    after = {str(a): str(p.quantize(CENT)) for a, p in sorted(parsed.items())}
    if before == after:
        return []  # sent again: nothing to do
    session.execute(delete(DealSplit).where(DealSplit.subscription_id == sub.id))
    rows = [DealSplit(subscription_id=sub.id, agent_id=a, percent=p, created_by_id=by.id)
            for a, p in sorted(parsed.items())]
    with audit_context(session, actor=by, action="split_deal"):
        session.add_all(rows)
        session.flush()
    record_many(session, "subscription", "split_deal", by,
                [(sub.id, {"split": [before, after], "reason": [None, reason]})])
    deal_changed(session, sub.id, by, "split", today=today)
    return rows


# --- the daily sweep --------------------------------------------------------------------------------------

def sweep_candidates(session):
    """The deals whose lines may not match what they earn, found set-based (two aggregates joined to
    the deals, no deal read alone): an ended deal whose lines do not add up to 0; a deal in force,
    in a project with rules, without lines at a stage it reached (subscribed; signed; down payment
    paid), whose rate lines were not computed on its price now, or whose customer a channel
    confirmed with no channel line while the project pays channels, or whose channel lines pay a
    company other than the one confirmed (an award to the later channel). What it finds is recomputed;
    a deal already right writes nothing (a project whose rules pay 0 at a stage brings its deals
    back each day: harmless, and cheap in bulk)."""
    from .channels import ChannelRegistration
    from .payments import Instalment, in_force

    L, S, I, R = CommissionLine, Subscription, Instalment, CommissionRule

    def flag(condition):
        return func.max(case((condition, 1), else_=0))

    lines = (select(L.subscription_id.label("sid"), func.sum(L.amount).label("net"),
                    flag(L.stage == "subscribed").label("subscribed"), flag(L.stage == "signed").label("signed"),
                    flag(L.stage == "down_payment").label("down"), flag(L.role == "channel").label("channel"),
                    flag(L.base == S.price).label("priced"), flag(R.basis == "rate").label("rated"))
             .join(S, S.id == L.subscription_id).outerjoin(R, R.id == L.rule_id)
             .group_by(L.subscription_id).subquery())
    unpaid = I.amount_paid < I.amount_due
    plans = (select(I.subscription_id.label("sid"), func.count().label("n"),
                    flag(I.kind == "down_payment").label("has_down"),
                    func.sum(case((and_(unpaid, I.kind.in_(("deposit", "down_payment"))), 1), else_=0)).label("dp"),
                    func.sum(case((and_(unpaid, I.kind.notin_(LOAN_KINDS)), 1), else_=0)).label("nonloan"))
             .where(in_force()).group_by(I.subscription_id).subquery())
    ruled = select(R.project_id).where(R.active.is_(True)).distinct()
    channels_paid = select(R.project_id).where(R.active.is_(True), R.role == "channel").distinct()
    confirmed = exists().where(ChannelRegistration.lead_id == S.lead_id,
                               ChannelRegistration.project_id == S.project_id,
                               ChannelRegistration.status == "confirmed")

    def no(column):
        return func.coalesce(column, 0) == 0

    first_paid = and_(func.coalesce(plans.c.n, 0) > 0,
                      case((plans.c.has_down == 1, plans.c.dp), else_=plans.c.nonloan) == 0)
    live = (select(S.id).outerjoin(lines, lines.c.sid == S.id).outerjoin(plans, plans.c.sid == S.id)
            .where(S.status.in_(IN_FORCE_DEAL), S.project_id.in_(ruled), or_(
                no(lines.c.subscribed),
                and_(S.status == "contracted", no(lines.c.signed)),
                and_(first_paid, no(lines.c.down)),
                and_(lines.c.rated == 1, lines.c.priced == 0),
                and_(S.project_id.in_(channels_paid), no(lines.c.channel), confirmed))))
    dead = select(lines.c.sid).join(S, S.id == lines.c.sid).where(S.status.in_(DEAD_DEAL), lines.c.net != 0)
    # a deal in force whose channel lines pay a company that is not the customer's confirmed one (a
    # conflict awarded to the later channel by a path that did not recompute)
    wrong_channel = (select(L.subscription_id).join(S, S.id == L.subscription_id)
                     .where(S.status.in_(IN_FORCE_DEAL), L.role == "channel", L.payee_company_id.isnot(None),
                            ~exists().where(ChannelRegistration.lead_id == S.lead_id,
                                            ChannelRegistration.project_id == S.project_id,
                                            ChannelRegistration.status == "confirmed",
                                            ChannelRegistration.company_id == L.payee_company_id))
                     .group_by(L.subscription_id, L.payee_company_id).having(func.sum(L.amount) != 0))
    return sorted(set(session.scalars(dead)) | set(session.scalars(live)) | set(session.scalars(wrong_channel)))


SWEEP_CHUNK = 1000  # deals recomputed (and committed) together by the daily sweep and apply_rules


def recompute_commissions(session, today: dt.date, dry_run: bool = False) -> int:
    """The daily safety net (R-COM-2): first every project with a rule not yet applied (its job
    never ran, failed or was killed) is brought to its rules by `apply_rules`; then the candidates
    `sweep_candidates` finds are recomputed in bulk, a transaction per chunk of deals. Returns the
    number of lines written (dry run: of deals found)."""
    pending = projects_to_apply(session)
    if dry_run:
        found = set(sweep_candidates(session))
        for project_id in pending:
            found.update(session.scalars(_project_deals(project_id)))
        return len(found)
    written = sum(apply_rules(session, project_id, today) for project_id in pending)
    ids = sweep_candidates(session)
    for start in range(0, len(ids), SWEEP_CHUNK):
        chunk = ids[start:start + SWEEP_CHUNK]
        try:
            written += _recompute_many(session, select(Subscription.id).where(Subscription.id.in_(chunk)),
                                       today, None, "daily")
            session.commit()
        except Exception:
            session.rollback()
            raise
    return written



_register_hooks()
