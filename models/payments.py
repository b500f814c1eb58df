"""Payment plans and payments (R-PAY-1, R-PAY-2, R-PAY-3, R-PAY-7). The caller commits.

A plan is generated from the project's payment method when the subscription is made: the
deposit first, then the method's lines (percentages of the price summing to 100 %, or fixed
amounts), rounded to the fen with the remainder on the last line, so the plan always sums to
the price. The deposit and fixed amounts count toward the next percentage line.

Payments are never edited or deleted: a correction is a reversal row. Each payment is allocated
to instalments (payment_allocation); an instalment's amount_paid is kept equal to the sum of
its allocations in the same transaction, under the CHECK 0 ≤ amount_paid ≤ amount_due.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import (CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, and_, exists,
                        func, select, text, update)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from .audit import audit_context, record_many
# Re-exported for models.deals.subscribe's one lazy import (a new deal's plan and its first buyer).
from .changes import add_first_buyer  # noqa: F401
from .base import Base, Money, in_list, office_today, utcnow
from .deals import (DEAD_DEAL, DEFAULTED, LIVE_DEAL, PAYMENT_METHODS, Subscription, locked_subscription, move_status,
                    via_subscription, works_on_deal)
from .changes import ChangeRequest
from .errors import RuleViolation
from .labels import choice_label
from .money import format_money, parse_money
from .notifications import notify
from .projects import Project, check_entry_date
from .submissions import claim, settle
from .users import User, users_who_may
from .permissions import require

INSTALMENT_KINDS = ("deposit", "down_payment", "instalment", "commercial_loan",
                    "provident_fund_loan", "balance")
INSTALMENT_STATUSES = ("pending", "partly_paid", "paid", "replaced")
# A line of a plan that a change replaced (R-CHG-2): its money moved to the new plan, it is owed
# by nobody and shown only in the deal's history.
OPEN_LINE = ("pending", "partly_paid")
PAYMENT_CHANNELS = ("bank_transfer", "pos", "cash", "cheque", "loan_disbursement", "other")
VOUCHER_KINDS = ("refund", "retained")


class PaymentMethodTemplate(Base):
    """A project's payment method (R-PAY-2, R-PAY-7): the plan lines a subscription gets."""

    __tablename__ = "payment_method_template"
    __table_args__ = (
        UniqueConstraint("project_id", "code"),
        CheckConstraint(in_list("code", PAYMENT_METHODS), name="code_known"),
        CheckConstraint("signing_threshold_percent IS NULL OR signing_threshold_amount IS NULL",
                        name="one_signing_threshold"),
        CheckConstraint("signing_threshold_percent IS NULL OR (signing_threshold_percent > 0 AND "
                        "signing_threshold_percent <= 100)", name="signing_percent_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(60))
    active: Mapped[bool] = mapped_column(default=True)
    # R-CON-1: what must be paid before signing — a % of the price or an amount; by default the
    # deposit and down-payment lines (all lines when the method has no down payment).
    signing_threshold_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    signing_threshold_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # R-CON-3: what a deal of this method brings to the signing beyond the project's list (one
    # item per line): the mortgage's bank card only on a mortgage deal (models.contracts.signing_checklist).
    signing_checklist: Mapped[str] = mapped_column(Text, default="", server_default="")

    project: Mapped[Project] = relationship()
    lines: Mapped[list["PlanLineTemplate"]] = relationship(back_populates="method",
                                                           order_by="PlanLineTemplate.seq")

    def __str__(self) -> str:
        return self.name


class PlanLineTemplate(Base):
    """One line of a payment method: a % of the price or a fixed amount, due an offset of days
    after the subscription or on a fixed date. The deposit is not a line: it is agreed per
    subscription and counts toward the first line."""

    __tablename__ = "plan_line_template"
    __table_args__ = (
        UniqueConstraint("method_id", "seq"),
        CheckConstraint(in_list("kind", INSTALMENT_KINDS), name="kind_known"),
        CheckConstraint("(percent IS NULL) <> (fixed_amount IS NULL)", name="percent_or_fixed"),
        CheckConstraint("percent IS NULL OR (percent > 0 AND percent <= 100)", name="percent_range"),
        CheckConstraint("fixed_amount IS NULL OR fixed_amount > 0", name="fixed_positive"),
        CheckConstraint("(due_offset_days IS NULL) <> (due_on IS NULL)", name="offset_or_date"),
        CheckConstraint("due_offset_days IS NULL OR due_offset_days >= 0", name="offset_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    method_id: Mapped[int] = mapped_column(ForeignKey("payment_method_template.id", ondelete="RESTRICT"))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(30))
    percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    fixed_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    due_offset_days: Mapped[int | None]
    due_on: Mapped[dt.date | None]

    method: Mapped[PaymentMethodTemplate] = relationship(back_populates="lines")


class PaymentAllocation(Base):
    """How much of a payment (or of its reversal, negative) went to which instalment."""

    __tablename__ = "payment_allocation"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_not_zero"),)
    __append_only__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id", ondelete="RESTRICT"), index=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"), index=True)
    amount: Mapped[Money]

    instalment: Mapped["Instalment"] = relationship(viewonly=True)


class ReceiptCounter(Base):
    """The last receipt number issued per project: a gap-free sequence (R-PAY-1)."""

    __tablename__ = "receipt_counter"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"),
                                            primary_key=True)
    last_no: Mapped[int] = mapped_column(default=0)



class Instalment(Base):
    """One line of a payment plan (R-PAY-2). Overdue is derived from due date and balance."""

    __tablename__ = "instalment"
    __table_args__ = (
        # One line per place in each plan of a deal (a change starts the next plan: R-CHG-2).
        Index("uq_instalment_subscription_id_plan_no_seq", "subscription_id", "plan_no", "seq", unique=True),
        CheckConstraint(in_list("kind", INSTALMENT_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", INSTALMENT_STATUSES), name="status_known"),
        CheckConstraint("amount_due > 0", name="amount_due_positive"),
        CheckConstraint("amount_paid >= 0 AND amount_paid <= amount_due", name="paid_within_due"),
        Index("ix_instalment_open_due", "status", "due_on"),
        Index("ix_instalment_due_on", "due_on", "id"),  # the plan grid's default sort
        # The ladder's scan: open instalments by effective due date (extension or original).
        Index("ix_instalment_open_effective_due", text("coalesce(extended_due_on, due_on)"),
              sqlite_where=text("status <> 'paid'"), postgresql_where=text("status <> 'paid'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"))
    plan_no: Mapped[int] = mapped_column(default=1, server_default="1")  # Subscription.plan_no it belongs to
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(30))
    due_on: Mapped[dt.date]
    extended_due_on: Mapped[dt.date | None]  # set by an approved extension (R-PAY-6)
    amount_due: Mapped[Money]
    amount_paid: Mapped[Money] = mapped_column(default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    agent_note: Mapped[str] = mapped_column(Text, default="")  # what the customer said (R-PAY-4)

    subscription: Mapped[Subscription] = relationship()
    # Its late fee (R-AFT-1), if one accrued: beside the line, never part of it (models.charges).
    late_fee: Mapped["Charge | None"] = relationship(  # noqa: F821
        "Charge", primaryjoin="Charge.instalment_id == Instalment.id", viewonly=True, uselist=False)

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
        return via_subscription(cls.subscription_id, user_id)


def in_force():
    """A WHERE clause, the one definition of a deal's plan in force (R-CHG-2): its lines not replaced
    by a change. A change marks every line of the plan it ends `replaced` and starts plan_no + 1, so
    this is exactly `Instalment.plan_no == Subscription.plan_no` without joining the deal."""
    return Instalment.status != "replaced"


def open_line():
    """A WHERE clause: a line of the plan in force with money still due (OPEN_LINE). Written as two
    inequalities so that the ladder's partial index (ix_instalment_open_effective_due, WHERE status
    <> 'paid') still serves every query that asks for open lines."""
    return and_(Instalment.status != "paid", in_force())


# An instalment's due date as the ladder counts it: the extended one once an extension is
# approved (R-PAY-6). The same expression as the index ix_instalment_open_effective_due.
EFFECTIVE_DUE = func.coalesce(Instalment.extended_due_on, Instalment.due_on)


def owed(joined: bool = False):
    """A WHERE clause: plan lines whose deal is live, so their money is owed (R-PAY-5). `joined`:
    the query joins `subscription` already; otherwise a subquery finds the deal."""
    live = Subscription.status.in_(LIVE_DEAL)
    return live if joined else Instalment.subscription_id.in_(select(Subscription.id).where(live))


def late_on(today: dt.date):
    """The line's own part of `overdue_on`: open and past its effective due date on `today`. Only
    for a query that already keeps to owed lines (`owed`), such as the dashboards' one pass."""
    return and_(open_line(), EFFECTIVE_DUE < today)


def overdue_on(today: dt.date, joined: bool = False):
    """A WHERE clause, the one definition of money owed now and late: open lines of live deals
    past their effective due date on `today` (`late_on` and `owed`). The dashboards, the plan
    grid, the exports, the statements and the ladder all count with it (or with `days_overdue`
    for a loaded line)."""
    return and_(late_on(today), owed(joined))


def days_late(line_status: str, effective_due: dt.date, deal_status: str, today: dt.date) -> int:
    """Days a line is late on `today` by `overdue_on`'s definition, from its values (0 when it is
    not: paid, not yet due, or its deal is over) — for rows read without the ORM (exports)."""
    if line_status not in OPEN_LINE or deal_status not in LIVE_DEAL:
        return 0
    return max((today - effective_due).days, 0)


def days_overdue(line: Instalment, today: dt.date, deal_status: str | None = None) -> int:
    """`days_late` of a loaded line; `deal_status` spares loading the subscription."""
    status = deal_status if deal_status is not None else line.subscription.status
    return days_late(line.status, line.effective_due_on, status, today)


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
    # R-AFT-1/3: a payment of a charge beside the plan (a late fee, a true-up): no allocations.
    charge_id: Mapped[int | None] = mapped_column(ForeignKey("charge.id", ondelete="RESTRICT"), index=True)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    instalment: Mapped[Instalment | None] = relationship()
    recorded_by: Mapped[User] = relationship()
    reverses: Mapped["Payment | None"] = relationship(remote_side=[id], viewonly=True)
    # The plan lines it paid (or, for a reversal, took back): models.payments.lines_paid reads them.
    allocations: Mapped[list[PaymentAllocation]] = relationship(viewonly=True, order_by=PaymentAllocation.id)

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)



class VoucherCounter(Base):
    """The last settlement voucher number issued per project: a gap-free sequence (R-CHG-5)."""

    __tablename__ = "voucher_counter"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"),
                                            primary_key=True)
    last_no: Mapped[int] = mapped_column(default=0)


class Voucher(Base):
    """Money held on a deal that is over, settled (R-CHG-5): paid back to the customer (refund)
    or kept by the developer as the agreement says (retained). Numbered gap-free per project;
    never edited or deleted — the payments it settles stay as they were."""

    __tablename__ = "voucher"
    __append_only__ = True
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        CheckConstraint(in_list("kind", VOUCHER_KINDS), name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(kind = 'refund') = (channel IS NOT NULL)", name="refund_has_channel"),
        # R-AFT-3: a true-up is refunded once (migration 0022d).
        Index("uq_voucher_true_up", "true_up_id", unique=True,
              sqlite_where=text("true_up_id IS NOT NULL"), postgresql_where=text("true_up_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    number: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Money]
    issued_on: Mapped[dt.date]
    channel: Mapped[str | None] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text, default="")
    # R-AFT-3: a refund of a true-up on a live deal (the surveyed area smaller than contracted).
    true_up_id: Mapped[int | None] = mapped_column(ForeignKey("true_up.id", ondelete="RESTRICT"), index=True)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    recorded_by: Mapped[User] = relationship()

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


FEN = Decimal("0.01")
HUNDRED = Decimal("100")

DEFAULT_METHODS = [  # code, name, [(kind, percent, days after subscription)] — as migration 0004
    ("one_off", "一次性付款", [("balance", 100, 7)]),
    ("instalments", "分期付款", [("down_payment", 30, 15), ("instalment", 30, 90),
                                ("instalment", 20, 180), ("balance", 20, 365)]),
    ("commercial_mortgage", "商业按揭", [("down_payment", 30, 15), ("commercial_loan", 70, 60)]),
    ("provident_fund", "公积金贷款", [("down_payment", 30, 15), ("provident_fund_loan", 70, 90)]),
]


# R-CON-3: what a deal of each method brings to the signing beyond the project's own list
# (Project.signing_checklist) — a project edits them on its payment methods; as migration 0019e.
DEFAULT_SIGNING_CHECKLISTS = {
    "one_off": "全部房款收据",
    "instalments": "首期款收据\n已付分期款收据",
    "commercial_mortgage": "首期款收据\n收入证明\n近六个月银行流水\n银行卡（用于按揭还款）",
    "provident_fund": "首期款收据\n住房公积金缴存证明\n银行卡（用于公积金贷款还款）",
}


def ensure_default_methods(session, project: Project) -> None:
    """Give a project the four default payment methods if it has none."""
    if session.scalar(select(PaymentMethodTemplate.id).where(
            PaymentMethodTemplate.project_id == project.id).limit(1)):
        return
    for code, name, lines in DEFAULT_METHODS:
        method = PaymentMethodTemplate(project_id=project.id, code=code, name=name,
                                       signing_checklist=DEFAULT_SIGNING_CHECKLISTS[code])
        method.lines = [PlanLineTemplate(seq=i, kind=kind, percent=Decimal(pct), due_offset_days=days)
                        for i, (kind, pct, days) in enumerate(lines, start=1)]
        session.add(method)
    session.flush()


def validate_method_lines(lines) -> None:
    """A method's lines: known kinds, a % or a fixed amount each, due an offset or a date each,
    and the percentages summing to exactly 100 % (R-PAY-2). Raises RuleViolation."""
    if not lines:
        raise RuleViolation(_l("A payment method needs at least one line."), rule="R-PAY-2")
    total = Decimal("0")
    for line in lines:
        if line.kind not in INSTALMENT_KINDS or line.kind == "deposit":
            raise RuleViolation(_l("Each line needs a kind (the deposit is agreed per subscription)."),
                                rule="R-PAY-2")
        if (line.percent is None) == (line.fixed_amount is None):
            raise RuleViolation(_l("Each line is either a percentage of the price or a fixed amount."),
                                rule="R-PAY-2")
        if (line.due_offset_days is None) == (line.due_on is None):
            raise RuleViolation(_l("Each line is due either some days after the subscription or on a "
                                   "fixed date."), rule="R-PAY-2")
        if line.percent is not None:
            if not Decimal("0") < Decimal(line.percent) <= HUNDRED:
                raise RuleViolation(_l("A percentage lies between 0 and 100."), rule="R-PAY-2")
            total += Decimal(line.percent)
        elif Decimal(line.fixed_amount) <= 0:
            raise RuleViolation(_l("A fixed amount must be more than zero."), rule="R-PAY-2")
        if line.due_offset_days is not None and line.due_offset_days < 0:
            raise RuleViolation(_l("Days after the subscription cannot be negative."), rule="R-PAY-2")
    if total != HUNDRED:
        raise RuleViolation(_l("The percentages of the lines add up to %(total)s %%, not 100 %%.",
                               total=f"{total.normalize():f}"), rule="R-PAY-2")
    if lines[-1].percent is None:
        raise RuleViolation(_l("The last line must be a percentage: it takes the rounding remainder."),
                            rule="R-PAY-2")


def plan_lines(price: Decimal, deposit: Decimal, subscribed_on: dt.date, deposit_due_on: dt.date,
               lines) -> list[tuple[str, dt.date, Decimal]]:
    """(kind, due date, amount) of a plan: deposit first; sums exactly to `price` (R-PAY-2)."""
    validate_method_lines(lines)
    plan = [["deposit", deposit_due_on, deposit]]
    carried = deposit  # deposit and fixed amounts count toward the next percentage line
    for line in lines:
        due = (subscribed_on + dt.timedelta(days=line.due_offset_days) if line.due_offset_days is not None
               else max(line.due_on, subscribed_on))
        if line.fixed_amount is not None:
            amount = Decimal(line.fixed_amount).quantize(FEN)
            plan.append([line.kind, due, amount])
            carried += amount
            continue
        share = (price * Decimal(line.percent) / HUNDRED).quantize(FEN, rounding=ROUND_HALF_UP)
        plan.append([line.kind, due, share - carried])
        carried = Decimal("0")
    plan[-1][2] += price - sum(amount for _, _, amount in plan)  # the rounding remainder
    if carried or any(amount <= 0 for _, _, amount in plan):
        raise RuleViolation(_l("The deposit and fixed amounts exceed the line they count toward; "
                               "lower the deposit or choose another payment method."), rule="R-PAY-2")
    assert sum(amount for _, _, amount in plan) == price
    return [(kind, due, amount) for kind, due, amount in plan]


def lines_paid(parts, kind_labels: dict | None = None, numbered: str | None = None,
               separator: str | None = None) -> str:
    """What a payment paid, line by line, in plan order: "首付款 ¥400,000.00；第3期 ¥50,000.00".
    `parts`: (seq, kind, amount) of its allocations (a reversal's are negative). A line reads as
    its kind, the plan's numbered instalments (分期款) as their number. The labels are the
    current language's unless given (an export in another language)."""
    from .labels import choice_label
    numbered = numbered if numbered is not None else gettext("Instalment %(n)s")
    separator = separator if separator is not None else gettext("; ")
    texts = []
    for seq, kind, amount in net_lines(parts):
        if kind == "instalment":
            name = numbered % {"n": seq}
        elif kind_labels is not None:
            name = kind_labels.get(kind, kind)
        else:
            name = str(choice_label("instalment", "kind", kind))
        texts.append(f"{name} {format_money(Decimal(amount))}")
    return separator.join(texts)


def net_lines(parts) -> list[tuple[int, str, Decimal]]:
    """(seq, kind, amount) of a payment's allocations summed per place in the plan, in plan order,
    those netting to nothing left out: a change moves a payment's money off the lines it replaced
    onto the same places of the next plan (R-CHG-2), so the payment reads as what it pays now."""
    net: dict[tuple[int, str], Decimal] = {}
    for seq, kind, amount in parts:
        net[(seq, kind)] = net.get((seq, kind), Decimal("0")) + Decimal(amount)
    return [(seq, kind, amount) for (seq, kind), amount in sorted(net.items(), key=lambda item: item[0][0])
            if amount]


def payment_lines_paid(payment: Payment) -> str:
    """`lines_paid` of a loaded payment (its allocations and their lines loaded with the page);
    a payment recorded before allocations existed shows its one chosen line."""
    if payment.allocations:
        return lines_paid((a.instalment.seq, a.instalment.kind, a.amount) for a in payment.allocations)
    line = payment.instalment
    return lines_paid([(line.seq, line.kind, payment.amount)]) if line is not None else ""


def method_of(session, subscription: Subscription) -> PaymentMethodTemplate:
    return method_for(session, subscription.project_id, subscription.payment_method)


def method_for(session, project_id: int, code: str) -> PaymentMethodTemplate:
    """The project's active payment method `code` (R-PAY-7); RuleViolation when it has none."""
    method = session.scalar(select(PaymentMethodTemplate).where(
        PaymentMethodTemplate.project_id == project_id, PaymentMethodTemplate.code == code,
        PaymentMethodTemplate.active.is_(True)))
    if method is None:
        raise RuleViolation(_l("This project has no active payment method “%(code)s”.",
                               code=code), rule="R-PAY-7")
    return method


def generate_plan(session, subscription: Subscription, new: bool = False) -> list[Instalment]:
    """(Re)generate the payment plan of a subscription — only while nothing is paid and no change
    replaced a plan (R-PAY-2); a change regenerates it by `regenerate_plan` (R-CHG-2). `new`: the
    subscription was inserted in this very transaction (models.deals.place_subscription), so no
    line of it can exist yet — neither the lines' lock nor the delete is needed."""
    existing = [] if new else session.scalars(select(Instalment).where(Instalment.subscription_id == subscription.id)
                                              .with_for_update()).all()
    if any(i.amount_paid or i.status == "replaced" for i in existing):
        raise RuleViolation(_l("The plan cannot change once a payment is recorded."), rule="R-PAY-2")
    method = method_of(session, subscription)
    lines = plan_lines(subscription.price, subscription.deposit, subscription.subscribed_on,
                       subscription.deposit_due_on or subscription.subscribed_on, method.lines)
    with audit_context(session, action="generate_plan"):
        if existing:
            for old in existing:
                session.delete(old)
            session.flush()
        rows = [Instalment(subscription_id=subscription.id, plan_no=subscription.plan_no, seq=n, kind=kind,
                           due_on=due, amount_due=amount)
                for n, (kind, due, amount) in enumerate(lines, start=1)]
        session.add_all(rows)
        session.flush()
    return rows


# Called by `regenerate_plan` as hook(session, by, sub, replaced, lines, today) once the new plan holds
# the money, in its transaction, the deal locked: what modules above this one carry from the plan's
# replaced lines to the lines that replace them (models.charges: a late line's late fee).
LINES_REPLACED: list = []
# Called by `regenerate_plan` as hook(session, subscription_id, by, action) once the new plan is in
# force, in its transaction: what modules above this one follow (models.loans: the mortgage files).
PLAN_REGENERATED: list = []


def regenerate_plan(session, by, sub: Subscription, *, price: Decimal, payment_method: str, deposit: Decimal,
                    change, today: dt.date, **terms) -> list[Instalment]:
    """A change's new plan, every payment carried over (R-CHG-2, R-PAY-2). The caller has locked
    `sub` (models.deals.locked_subscription) and approved `change`; the caller commits.

    The lines of the plan in force become `replaced` (their money moved out, amount_paid 0) and
    plan_no + 1 starts from the project's method `payment_method` at `price`, dated from the
    original subscription date (a due date already past stays past: the ladder counts it). Each
    payment's money on the old lines (its allocations, less its reversal's) gets a negative
    allocation there and goes to the new lines in plan order under the same payment: receipts
    unchanged, allocations append-only, 0 ≤ paid ≤ due on every line. The deal's terms — price,
    method, deposit, and `terms` (unit_id, price_reason…) — change in the same UPDATE as plan_no,
    naming `change` in last_change_id (the terms guard, R-CHG-1). Refused (nothing written) when
    more is paid than the new price: no credit is invented. Extensions approved on the old lines
    do not follow (the new plan is as its method says)."""
    method = method_for(session, sub.project_id, payment_method)
    planned = plan_lines(price, deposit, sub.subscribed_on, sub.deposit_due_on or sub.subscribed_on, method.lines)
    old = session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id, in_force())
                          .order_by(Instalment.seq).with_for_update()
                          .execution_options(populate_existing=True)).all()
    # Each payment's money on the old lines: a payment and its reversal count as one (their sum).
    root = func.coalesce(Payment.reverses_id, Payment.id)
    moved: dict[tuple[int, int], Decimal] = {}
    for payment_id, line_id, amount in session.execute(
            select(root, PaymentAllocation.instalment_id, PaymentAllocation.amount)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(PaymentAllocation.instalment_id.in_([line.id for line in old]))
            .order_by(PaymentAllocation.id)):
        moved[(payment_id, line_id)] = moved.get((payment_id, line_id), Decimal("0")) + Decimal(amount)
    moved = {key: amount for key, amount in moved.items() if amount}
    paid = sum(moved.values(), Decimal("0"))
    if paid != sum((line.amount_paid for line in old), Decimal("0")) or any(a < 0 for a in moved.values()):
        raise RuntimeError(f"the allocations of {sub.number} do not match its plan")  # never: the CHECKs hold it
    if paid > price:
        raise RuleViolation(_l("Paid %(paid)s exceeds the new price %(price)s: the change would owe the customer "
                               "money. Refund first, or choose another price.", paid=format_money(paid),
                               price=format_money(price)), rule="R-CHG-2")
    by_payment: dict[int, Decimal] = {}
    for (payment_id, _line), amount in moved.items():
        by_payment[payment_id] = by_payment.get(payment_id, Decimal("0")) + amount
    before = {"price": sub.price, "payment_method": sub.payment_method, "deposit": sub.deposit,
              "plan_no": sub.plan_no, **{key: getattr(sub, key) for key in terms}}
    plan_no = sub.plan_no + 1
    values = {"price": price, "payment_method": payment_method, "deposit": deposit, "plan_no": plan_no,
              "last_change_id": change.id, **terms}
    matched = session.execute(
        update(Subscription).where(Subscription.id == sub.id, Subscription.plan_no == before["plan_no"],
                                   Subscription.status == sub.status)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        raise RuleViolation(_l("This deal changed meanwhile; reload and try again."), rule="R-CHG-1")
    record_many(session, "subscription", change_action(change.kind), by,
                [(sub.id, {key: [before[key], values[key]] for key in before if before[key] != values[key]})])
    session.expire(sub)
    with audit_context(session, actor=by, action=change_action(change.kind)):
        for (payment_id, line_id), amount in moved.items():
            session.add(PaymentAllocation(payment_id=payment_id, instalment_id=line_id, amount=-amount))
        for line in old:
            line.amount_paid, line.status = Decimal("0.00"), "replaced"
        rows = [Instalment(subscription_id=sub.id, plan_no=plan_no, seq=n, kind=kind, due_on=due,
                           amount_due=amount, amount_paid=Decimal("0.00"))
                for n, (kind, due, amount) in enumerate(planned, start=1)]
        session.add_all(rows)
        session.flush()
        lines = iter(rows)
        line = next(lines, None)
        for payment_id in sorted(by_payment):  # the order the money came in
            rest = by_payment[payment_id]
            while rest:
                part = min(rest, line.amount_due - line.amount_paid)
                if part:
                    session.add(PaymentAllocation(payment_id=payment_id, instalment_id=line.id, amount=part))
                    line.amount_paid += part
                    rest -= part
                if line.amount_paid == line.amount_due:
                    line = next(lines, None)
        for row in rows:
            row.status = _status(row.amount_paid, row.amount_due)
        session.flush()
    for hook in LINES_REPLACED:  # models.charges: the late fees of replaced lines go on with the new ones
        hook(session, by, sub, old, rows, today)
    for hook in PLAN_REGENERATED:  # what later modules follow (models.loans: files on lines gone)
        hook(session, sub.id, by, change_action(change.kind))
    return rows


CHANGE_ACTIONS = {"unit_swap": "swap_unit", "buyers": "change_buyers", "payment_method": "change_payment_method",
                  "price": "change_price", "cancellation": "cancel_deal"}


def change_action(kind: str) -> str:
    """The audit action of an applied change of `kind` (the deal's history reads them)."""
    return CHANGE_ACTIONS[kind]


def signing_gate(session, sub: Subscription) -> tuple[Decimal, Decimal]:
    """(required, paid) before signing (R-CON-1): the payment method's threshold — a % of the
    price or an amount — or by default the deposit and down-payment lines (all lines when the
    method has none), of the plan in force (`in_force`). Paid is all money received on the plan,
    reversals deducted."""
    method = method_of(session, sub)
    lines = session.execute(select(Instalment.kind, Instalment.amount_due, Instalment.amount_paid)
                            .where(Instalment.subscription_id == sub.id, in_force())).all()
    paid = sum((l.amount_paid for l in lines), Decimal("0"))
    return required_to_sign(method, sub.price, [(l.kind, l.amount_due) for l in lines]), paid


def required_to_sign(method: PaymentMethodTemplate, price: Decimal, lines) -> Decimal:
    """`signing_gate`'s required amount of a plan of `method` at `price`, from its (kind, amount
    due) lines — a plan in force, or one a change proposes (models.change_apply.difference)."""
    if method.signing_threshold_percent is not None:
        return (price * method.signing_threshold_percent / 100).quantize(FEN)
    if method.signing_threshold_amount is not None:
        return min(method.signing_threshold_amount, price)
    kinds = {"deposit", "down_payment"} if any(kind == "down_payment" for kind, _ in lines) else None
    return sum((amount for kind, amount in lines if kinds is None or kind in kinds), Decimal("0"))


def _status(amount_paid: Decimal, amount_due: Decimal) -> str:
    return "pending" if amount_paid == 0 else ("paid" if amount_paid == amount_due else "partly_paid")



def take_payment(session, by, sub: Subscription, *, amount, paid_on: dt.date, channel: str,
                 bank_ref: str | None = None, instalment_id: int | None = None,
                 today: dt.date | None = None, note: str = "") -> Payment:
    """Record money received and allocate it (oldest open instalments first, or to the chosen
    one). The caller has locked `sub` and checked its status. Raises RuleViolation."""
    today = today or office_today()
    amount = parse_money(amount)
    if channel not in PAYMENT_CHANNELS:
        raise RuleViolation(_l("Choose how the money was paid."), rule="R-PAY-1")
    check_entry_date(sub.project, paid_on, today, _l("The payment date"), "R-PAY-1",
                     not_before=sub.subscribed_on)
    bank_ref = (bank_ref or "").strip() or None
    if bank_ref and session.scalar(select(Payment.id).where(
            Payment.project_id == sub.project_id, Payment.bank_ref == bank_ref,
            Payment.reverses_id.is_(None))):
        raise RuleViolation(_l("The bank reference %(ref)s has already been recorded.", ref=bank_ref),
                            rule="R-PAY-1")
    open_lines = session.scalars(
        select(Instalment).where(Instalment.subscription_id == sub.id, open_line())
        .order_by(Instalment.seq).with_for_update().execution_options(populate_existing=True)).all()
    if instalment_id is not None:
        open_lines = [i for i in open_lines if i.id == instalment_id]
        if not open_lines:
            raise RuleViolation(_l("This instalment is not open on this subscription."), rule="R-PAY-1")
    balance = sum((i.amount_due - i.amount_paid for i in open_lines), Decimal("0"))
    if amount > balance:
        raise RuleViolation(_l("%(amount)s is more than the balance still due, %(balance)s.",
                               amount=format_money(amount), balance=format_money(balance)), rule="R-PAY-1")
    with audit_context(session, actor=by, action="payment"):
        payment = Payment(project_id=sub.project_id, subscription_id=sub.id,
                          instalment_id=open_lines[0].id if len(open_lines) == 1 or instalment_id else None,
                          amount=amount, paid_on=paid_on, channel=channel, bank_ref=bank_ref,
                          receipt_no=next_receipt_no(session, sub.project_id), recorded_by_id=by.id,
                          reason=(note or "").strip())
        session.add(payment)
        try:
            session.flush()
        except IntegrityError:
            raise RuleViolation(_l("The bank reference %(ref)s has already been recorded.",
                                   ref=bank_ref), rule="R-PAY-1") from None
        rest = amount
        for line in open_lines:
            if not rest:
                break
            part = min(rest, line.amount_due - line.amount_paid)
            session.add(PaymentAllocation(payment_id=payment.id, instalment_id=line.id, amount=part))
            line.amount_paid += part
            line.status = _status(line.amount_paid, line.amount_due)
            rest -= part
        session.flush()
    for hook in PAYMENT_TAKEN:  # models.commissions: a stage reached (R-COM-2)
        hook(session, sub.id, by, "payment")
    return payment


# Called by `take_payment` as hook(session, subscription_id, by, action) once the money is on the
# lines, in its transaction, the deal locked: what modules above this one follow (models.commissions).
PAYMENT_TAKEN: list = []


def record_payment(session, by, subscription_id: int, *, amount, paid_on: dt.date, channel: str,
                   bank_ref: str | None = None, instalment_id: int | None = None,
                   key: str | None = None, today: dt.date | None = None) -> Payment:
    """Finance records a payment on an active or contracted subscription (R-PAY-1). `key`: the
    form's one-time submission key (models.submissions): the same form sent twice, or ten times
    at once, records the money once and tells the repeats so."""
    require(by, "payment.record")
    if key is not None:
        claim(session, by, key, "payment", f"subscription:{subscription_id}")
    sub = locked_subscription(session, subscription_id)
    if sub.status not in ("active", "contracted"):
        from .labels import choice_label
        raise RuleViolation(_l("Payments are recorded on subscriptions whose deposit is in (this one "
                               "is %(status)s).", status=choice_label("subscription", "status", sub.status)),
                            rule="R-PAY-1")
    payment = take_payment(session, by, sub, amount=amount, paid_on=paid_on, channel=channel,
                           bank_ref=bank_ref, instalment_id=instalment_id, today=today)
    if key is not None:
        settle(session, key, f"{payment.receipt_no} {format_money(payment.amount)}")
    return payment


def stands():
    """A WHERE clause on Payment: a payment that stands — neither reversed nor itself a reversal. A
    reversal corrects a payment (R-PAY-1): the money never arrived, so for a reading day by day (the
    late fee's, models.charges) neither counts on its own date; sums need no filter (they net)."""
    reversal = aliased(Payment)
    return and_(Payment.reverses_id.is_(None), ~exists().where(reversal.reverses_id == Payment.id))


# Called by `reverse_payment` as hook(session, by, original, reversal), in its transaction, the deal
# locked: what modules above this one undo with a payment (models.loans: a disbursed mortgage file).
PAYMENT_REVERSED: list = []


def reverse_payment(session, by, payment_id: int, reason: str, today: dt.date | None = None,
                    key: str | None = None) -> Payment:
    """Correct a payment by a reversal row: the original stays, the balances come back (R-PAY-1).
    `key`: the form's one-time submission key, as for payments."""
    require(by, "payment.reverse")
    if key is not None:
        claim(session, by, f"{key}:{payment_id}", "reversal", f"payment:{payment_id}")
    original = session.get(Payment, payment_id)
    if original is None or original.reverses_id is not None:
        raise RuleViolation(_l("Only a payment can be reversed, not a reversal."), rule="R-PAY-1")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the payment is reversed."), rule="R-PAY-1")
    sub = locked_subscription(session, original.subscription_id)
    if sub.status == "contracted" and original.charge_id is None:  # a charge's money is not the plan's
        required, paid = signing_gate(session, sub)
        if paid - original.amount < required:
            raise RuleViolation(_l("The contract is signed: this reversal would leave the down payment "
                                   "short. Settle it with the lawyer first."), rule="R-CON-1")
    if sub.status in DEAD_DEAL and money_held(session, sub.id) < original.amount:
        raise RuleViolation(_l("This deal is over and part of this payment has already been refunded or "
                               "retained by voucher: it can no longer be reversed."), rule="R-CHG-5")
    if session.scalar(select(Payment.id).where(Payment.reverses_id == original.id)):
        raise RuleViolation(_l("This payment has already been reversed."), rule="R-PAY-1")
    # What the payment holds on each line now: a change moved it off the lines it replaced (a
    # negative allocation there, the money on the new plan: R-CHG-2), so those net to nothing.
    held_on: dict[int, Decimal] = {}
    for allocation in session.scalars(select(PaymentAllocation).where(
            PaymentAllocation.payment_id == original.id).order_by(PaymentAllocation.id)):
        held_on[allocation.instalment_id] = held_on.get(allocation.instalment_id, Decimal("0")) + allocation.amount
    with audit_context(session, actor=by, action="reverse_payment"):
        reversal = Payment(project_id=original.project_id, subscription_id=original.subscription_id,
                           instalment_id=original.instalment_id, amount=-original.amount,
                           paid_on=today or office_today(), channel=original.channel,
                           receipt_no=next_receipt_no(session, original.project_id),
                           reverses_id=original.id, reason=reason, recorded_by_id=by.id,
                           charge_id=original.charge_id)
        session.add(reversal)
        try:
            session.flush()
        except IntegrityError:
            raise RuleViolation(_l("This payment has already been reversed."), rule="R-PAY-1") from None
        if original.charge_id is not None:  # a late fee or a true-up paid (R-AFT-1): no allocations
            _charge_paid_back(session, by, original)
        for instalment_id, amount in held_on.items():
            if not amount:
                continue
            line = session.scalar(select(Instalment).where(Instalment.id == instalment_id)
                                  .with_for_update().execution_options(populate_existing=True))
            session.add(PaymentAllocation(payment_id=reversal.id, instalment_id=line.id, amount=-amount))
            line.amount_paid -= amount
            line.status = _status(line.amount_paid, line.amount_due)
        session.flush()
    for hook in PAYMENT_REVERSED:  # models.loans: a disbursement's mortgage file goes back a stage
        hook(session, by, original, reversal)
    if key is not None:
        settle(session, f"{key}:{payment_id}", f"{reversal.receipt_no} {format_money(reversal.amount)}")
    return reversal


def _charge_paid_back(session, by, original: Payment) -> None:
    """A reversed payment of a charge (a late fee, a true-up: models.charges): the charge's `paid`
    comes down by it — one conditional UPDATE, which takes the charge's row lock (the deal is
    locked already) — with its audit row. The table by name: models.charges builds on this module."""
    charge = Base.metadata.tables["charge"]
    paid = session.execute(update(charge).where(charge.c.id == original.charge_id)
                           .values(paid=charge.c.paid - original.amount).returning(charge.c.paid)).scalar_one()
    record_many(session, "charge", "reverse_payment", by,
                [(original.charge_id, {"paid": [paid + original.amount, paid]})])
    loaded = [o for o in session.identity_map.values()
              if getattr(o, "__tablename__", None) == "charge" and o.id == original.charge_id]
    for row in loaded:
        session.expire(row)


def note_on_instalment(session, by, instalment_id: int, note: str, today: dt.date | None = None) -> Instalment:
    """The agent records what the customer said about a payment (R-PAY-4, R-PAY-8)."""
    require(by, "instalment.note")
    line = session.get(Instalment, instalment_id)
    if line is None or not works_on_deal(by, line.subscription):
        raise RuleViolation(_l("This instalment does not exist, or is not one of your customers'."),
                            rule="R-PAY-3")
    note = (note or "").strip()
    if not note:
        raise RuleViolation(_l("Write what the customer said."), rule="R-PAY-8")
    stamp = f"{(today or office_today()).isoformat()} {by.display_name}：{note}"
    with audit_context(session, actor=by, action="payment_follow_up"):
        line.agent_note = f"{line.agent_note}\n{stamp}".strip()
        session.flush()
    return line



# --- Money held on deals that are over (R-CHG-5) -------------------------------------------------

def held_amount():
    """SQL: what the office still holds of the money of the subscription of the enclosing query:
    received (reversals deducted) less what refund and retention vouchers have settled. The
    database keeps that figure on the deal (`Subscription.held`: triggers add each payment and
    take off each voucher as it is inserted, migration d21c00000001) — two sums per dead deal
    took 180 ms to count the worklist of the large office; the kept figure and its index, 3 ms."""
    return Subscription.held


def money_held(session, subscription_id: int) -> Decimal:
    """`held_amount` of one deal."""
    return Decimal(session.scalar(select(held_amount()).where(Subscription.id == subscription_id)))


def tell_finance_of_money_held(session, sub: Subscription, what: dict) -> None:
    """A deal ended holding money: finance is told it waits on the settlement worklist (R-CHG-5).
    `what`: the notification's message and values (models.notifications, "settlement_due.*")."""
    held = money_held(session, sub.id)
    if held > 0:
        notify(session, users_who_may(session, "settlement.record"), "settlement_due",
               {**what, "held": held}, "/admin/settlement/")


def awaiting_settlement():
    """A WHERE clause on `subscription`, the one definition of finance's settlement worklist:
    deals that are over and still hold money (R-CHG-5). Matches the partial index
    ix_subscription_awaiting_settlement: the worklist's count and first page read it alone."""
    return and_(Subscription.status.in_(DEAD_DEAL), held_amount() > 0)


def agreed_retention(session, sub: Subscription) -> Decimal:
    """What the developer may keep of a deal that is over, in all (R-CHG-4, R-CHG-5): on a forfeit
    or a rescission the buyer defaulted and the deposit is retained (定金罚则); on a cancellation
    what its approved request computed (models.change_apply: the deposit if the agreement
    retains it, and the fee); otherwise nothing."""
    if sub.status in DEFAULTED:
        return sub.deposit
    if sub.status == "cancelled":
        proposal = session.scalar(select(ChangeRequest.proposal).where(
            ChangeRequest.subscription_id == sub.id, ChangeRequest.kind == "cancellation",
            ChangeRequest.status == "approved").order_by(ChangeRequest.id.desc()).limit(1))
        return Decimal((proposal or {}).get("retained") or "0")
    return Decimal("0")


def agreed_interest(session, sub: Subscription) -> Decimal:
    """The interest a cancellation beyond ±3 % approved with its refund (R-AFT-3, art. 20:
    models.change_apply.true_up_interest), paid by the refund voucher beside the money held;
    otherwise nothing."""
    if sub.status != "cancelled":
        return Decimal("0")
    proposal = session.scalar(select(ChangeRequest.proposal).where(
        ChangeRequest.subscription_id == sub.id, ChangeRequest.kind == "cancellation",
        ChangeRequest.status == "approved").order_by(ChangeRequest.id.desc()).limit(1))
    return Decimal((proposal or {}).get("interest") or "0")


def settlement_proposal(session, sub: Subscription) -> dict:
    """What the agreement says of the money held (R-CHG-5): the developer retains what
    `agreed_retention` allows, less what retention vouchers kept already, at most what is held;
    the rest is refunded — with, on a cancellation beyond ±3 %, the interest approved not yet
    paid (`interest`: refunds beyond the money received paid it; `held` then goes below 0 by it)."""
    held = money_held(session, sub.id)
    retained_before = session.scalar(select(func.coalesce(func.sum(Voucher.amount), 0)).where(
        Voucher.subscription_id == sub.id, Voucher.kind == "retained"))
    retain = max(min(agreed_retention(session, sub) - Decimal(retained_before), held), Decimal("0"))
    interest = max(agreed_interest(session, sub) + min(held, Decimal("0")), Decimal("0"))
    out = {"held": held, "retain": retain, "refund": max(held, Decimal("0")) - retain + interest}
    if interest:
        out["interest"] = interest
    return out


def record_voucher(session, by, subscription_id: int, *, kind: str, amount, issued_on: dt.date,
                   reason: str, channel: str | None = None, key: str | None = None,
                   today: dt.date | None = None) -> Voucher:
    """Finance settles money held on a deal that is over (R-CHG-5): a refund paid back to the
    customer, or an amount retained as the agreement says (`settlement_proposal`: at most the
    deposit, on a buyer's default), as a numbered voucher. Never more than is held; the payments
    stay as they were. `key`: the form's one-time submission key."""
    require(by, "settlement.record")
    if key is not None:
        claim(session, by, key, "voucher", f"subscription:{subscription_id}")
    today = today or office_today()
    sub = locked_subscription(session, subscription_id)
    if sub.status not in DEAD_DEAL:
        raise RuleViolation(_l("Refund and retention vouchers settle deals that are over (forfeited, "
                               "withdrawn or expired); this one is live."), rule="R-CHG-5")
    if kind not in VOUCHER_KINDS:
        raise RuleViolation(_l("Choose a refund or a retention."), rule="R-CHG-5")
    amount = parse_money(amount, rule="R-CHG-5")
    if kind == "refund" and channel not in PAYMENT_CHANNELS:
        raise RuleViolation(_l("Say how the refund is paid."), rule="R-CHG-5")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Give the reason (the agreement's clause, the customer's request)."),
                            rule="R-CHG-5")
    check_entry_date(sub.project, issued_on, today, _l("The voucher date"), "R-CHG-5",
                     not_before=sub.subscribed_on)
    held = money_held(session, sub.id)
    proposal = settlement_proposal(session, sub)
    # A refund may exceed the money held by the interest a cancellation beyond ±3 % approved (R-AFT-3).
    if amount > max(held, Decimal("0")) + (proposal.get("interest", Decimal("0")) if kind == "refund" else Decimal("0")):
        raise RuleViolation(_l("%(amount)s is more than the money still held on this deal, %(held)s.",
                               amount=format_money(amount), held=format_money(held)), rule="R-CHG-5")
    may_retain = proposal["retain"]
    if kind == "refund" and sub.status == "cancelled" and amount > proposal["refund"]:
        # R-CHG-4: the refund the cancellation's approvers agreed, not more (the retention and the fee
        # they approved stay with the developer; a larger refund is a new decision, not finance's).
        raise RuleViolation(_l("The approved cancellation refunds %(refund)s of the money still held; "
                               "%(retain)s is retained as agreed.", refund=format_money(proposal["refund"]),
                               retain=format_money(may_retain)), rule="R-CHG-4")
    if kind == "retained" and amount > may_retain:
        raise RuleViolation(_l("The agreement lets the developer retain %(retain)s of this deal's money; the rest "
                               "is refunded.", retain=format_money(may_retain)), rule="R-CHG-5")
    with audit_context(session, actor=by, action=f"voucher_{kind}"):
        voucher = Voucher(project_id=sub.project_id, subscription_id=sub.id,
                          number=next_voucher_no(session, sub.project_id), kind=kind, amount=amount,
                          issued_on=issued_on, channel=channel if kind == "refund" else None,
                          reason=reason, recorded_by_id=by.id)
        session.add(voucher)
        session.flush()
    if key is not None:
        settle(session, key, f"{voucher.number} {format_money(amount)}")
    notify(session, [sub.agent_id], "voucher",
           {"_t": f"voucher.{'refund' if kind == 'refund' else 'retain'}", "no": sub.number,
            "name": sub.customer_name, "amount": amount, "voucher": voucher.number},
           f"/admin/voucher/?search={voucher.number}")
    return voucher


def next_receipt_no(session, project_id: int) -> str:
    """The next number of the project's gap-free receipt sequence, taken inside the caller's
    transaction: a rolled-back payment gives its number back (R-PAY-1)."""
    return _next_number(session, ReceiptCounter, project_id, "SJ")


def next_voucher_no(session, project_id: int) -> str:
    """The next settlement voucher number of the project, gap-free like receipts (R-CHG-5)."""
    return _next_number(session, VoucherCounter, project_id, "TK")


def next_number(session, counter, project_id: int, prefix: str) -> str:
    """The next number of a project's gap-free sequence kept in `counter` (a table of project_id,
    last_no), "<prefix>-<project code>-000123", taken inside the caller's transaction: receipts,
    vouchers, after-sales tickets (models.tickets)."""
    return _next_number(session, counter, project_id, prefix)


def _next_number(session, counter, project_id: int, prefix: str) -> str:
    for _ in range(2):
        number = session.execute(
            update(counter).where(counter.project_id == project_id)
            .values(last_no=counter.last_no + 1).returning(counter.last_no)).scalar()
        if number is not None:
            break
        try:
            with session.begin_nested():
                session.add(counter(project_id=project_id, last_no=1))
                session.flush()
            number = 1
            break
        except IntegrityError:
            continue  # another transaction created the counter first: take the next number
    code = session.scalar(select(Project.code).where(Project.id == project_id))
    return f"{prefix}-{code}-{number:06d}"



def record_deposit(session, by: User, subscription_id: int, *, amount, paid_on: dt.date,
                   channel: str, bank_ref: str | None = None, key: str | None = None,
                   today: dt.date | None = None) -> Payment:
    """Finance takes the deposit of a confirmed subscription, which becomes active (R-SUB-2).
    `key`: the form's one-time submission key (models.submissions): sent twice, recorded once."""
    require(by, "subscription.deposit")
    if key is not None:
        claim(session, by, key, "deposit", f"subscription:{subscription_id}")
    sub = locked_subscription(session, subscription_id)
    if sub.status != "confirmed":
        raise RuleViolation(_l("The deposit is taken after sales control has confirmed the "
                               "subscription (it is %(status)s).", status=choice_label("subscription", "status", sub.status)), rule="R-SUB-2")
    amount = parse_money(amount, rule="R-SUB-2")
    deposit_line, deposit_paid = session.execute(select(Instalment.id, Instalment.amount_paid).where(
        Instalment.subscription_id == sub.id, Instalment.kind == "deposit", in_force())).first() or (None, Decimal("0"))
    if deposit_paid and amount != sub.deposit - deposit_paid:
        # R-LCH-1: part of the deposit came from an intent deposit converted (models.launches); the rest is due.
        raise RuleViolation(_l("The deposit agreed is %(deposit)s, of which %(paid)s is paid already: %(rest)s is "
                               "still due.", deposit=format_money(sub.deposit), paid=format_money(deposit_paid),
                               rest=format_money(sub.deposit - deposit_paid)), rule="R-SUB-2")
    if not deposit_paid and amount != sub.deposit:
        raise RuleViolation(_l("The deposit agreed is %(deposit)s.", deposit=format_money(sub.deposit)),
                            rule="R-SUB-2")
    payment = take_payment(session, by, sub, amount=amount, paid_on=paid_on, channel=channel,
                           bank_ref=bank_ref, instalment_id=deposit_line, today=today)  # the line says "deposit"
    if not move_status(session, sub, by, ("confirmed",), "active", "deposit"):
        raise RuleViolation(_l("This subscription changed meanwhile; reload and try again."), rule="R-SUB-2")
    if key is not None:
        settle(session, key, f"{payment.receipt_no} {format_money(payment.amount)}")
    return payment
