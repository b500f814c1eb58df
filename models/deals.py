"""Subscriptions (认购), their payment plans, payments, extensions and overdue events."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (CheckConstraint, and_, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, func,
                        select, text)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow
from .identity import (ID_TYPES, RESIDENT_ID, id_document_problem, normalise_id_number,
                       validate_id_document)
from .inventory import Project, Unit
from .leads import Lead
from .users import User

SUBSCRIPTION_STATUSES = ("draft", "confirmed", "active", "contracted", "forfeited", "withdrawn", "expired",
                         "rescinded")
# One name per business fact: every query, page, export, statement and job reads these, never a copy.
LIVE_SUBSCRIPTION_STATUSES = ("draft", "confirmed", "active", "contracted")  # takes its unit (R-SC-2)
LIVE_DEAL = ("confirmed", "active", "contracted")  # a sale: counts as sold, its plan is owed
DEAD_DEAL = ("forfeited", "withdrawn", "expired", "rescinded")  # over: its lines are owed by nobody
DEFAULTED = ("forfeited", "rescinded")  # over because the buyer defaulted: the deposit is retained
WITHDRAWABLE = ("draft", "confirmed")  # before the deposit (R-SUB-2); expires unpaid (R-SUB-2)
PAYMENT_METHODS = ("one_off", "instalments", "commercial_mortgage", "provident_fund")
INSTALMENT_KINDS = ("deposit", "down_payment", "instalment", "commercial_loan",
                    "provident_fund_loan", "balance")
INSTALMENT_STATUSES = ("pending", "partly_paid", "paid")
PRICE_APPROVAL_STATUSES = ("requested", "approved", "rejected")
PAYMENT_CHANNELS = ("bank_transfer", "pos", "cash", "cheque", "loan_disbursement", "other")
EXTENSION_STATUSES = ("requested", "approved", "rejected")
# rescission: a signed contract's line on the forfeit day — never forfeited by the ladder, it goes
# on the manager's and the lawyer's rescission worklist (R-PAY-4, R-PAY-5).
LADDER_LEVELS = ("reminder", "warning", "lawyer_letter", "forfeit", "rescission")
# What a person did about an event that waits for one: a letter sent (or no longer needed), a
# rescission decided (keep chasing, or rescind).
EVENT_OUTCOMES = ("sent", "not_needed", "continue", "rescind")
VOUCHER_KINDS = ("refund", "retained")

_LIVE_WHERE = text(in_list("status", LIVE_SUBSCRIPTION_STATUSES))


class Subscription(Base):
    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint(in_list("status", SUBSCRIPTION_STATUSES), name="status_known"),
        CheckConstraint(in_list("payment_method", PAYMENT_METHODS), name="payment_method_known"),
        CheckConstraint(in_list("customer_id_type", ID_TYPES), name="customer_id_type_known"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("deposit >= 0 AND deposit <= price", name="deposit_within_price"),
        # R-SC-2: a unit can never be sold twice — at most one live subscription per unit.
        Index("uq_subscription_live_unit", "unit_id", unique=True,
              sqlite_where=_LIVE_WHERE, postgresql_where=_LIVE_WHERE),
        Index("ix_subscription_agent_status", "agent_id", "status"),
        # The drafts holding units (sell-through: models.inventory.sold_join), a handful.
        Index("ix_subscription_draft_unit", "unit_id", sqlite_where=text("status = 'draft'"),
              postgresql_where=text("status = 'draft'")),
        Index("ix_subscription_subscribed_on", "subscribed_on"),  # today and this month (dashboard)
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
    deposit_due_on: Mapped[dt.date | None]
    # The agreement's customer block (R-SUB-1), as signed: later edits of the lead do not change it.
    customer_name: Mapped[str] = mapped_column(String(100), default="")
    customer_id_type: Mapped[str] = mapped_column(String(30), default=RESIDENT_ID, server_default=RESIDENT_ID)
    customer_id_number: Mapped[str] = mapped_column(String(30), default="")
    customer_address: Mapped[str] = mapped_column(String(200), default="")
    price_reason: Mapped[str] = mapped_column(Text, default="")  # why the price is not the list price
    withdrawn_at: Mapped[dt.datetime | None]
    forfeited_at: Mapped[dt.datetime | None]
    expired_at: Mapped[dt.datetime | None]
    rescinded_at: Mapped[dt.datetime | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
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
    contracts: Mapped[list["Contract"]] = relationship(viewonly=True)  # noqa: F821 (models.contracts)

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.agent_id == user_id


class RequestedDecision:
    """Columns of a request someone decides later (a price below list, an extension)."""

    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    decided_at: Mapped[dt.datetime | None]


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


class PriceApproval(RequestedDecision, Base):
    """A price below the list price waits for the vice-president (R-PRICE-1, R-PRICE-2)."""

    __tablename__ = "price_approval"
    __table_args__ = (
        CheckConstraint(in_list("status", PRICE_APPROVAL_STATUSES), name="status_known"),
        CheckConstraint("price > 0 AND price < list_price", name="below_list_price"),
        Index("uq_price_approval_open", "subscription_id", unique=True,
              sqlite_where=text("status = 'requested'"), postgresql_where=text("status = 'requested'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    list_price: Mapped[Money]
    price: Mapped[Money]

    subscription: Mapped[Subscription] = relationship()

    @hybrid_property
    def discount(self) -> Decimal:
        """How far below the list price: exact in Python, an expression to sort by in SQL."""
        return self.list_price - self.price

    @hybrid_property
    def discount_percent(self) -> Decimal:
        """The discount as a percentage of the list price, to two decimals."""
        return (self.discount * 100 / self.list_price).quantize(Decimal("0.01"))

    @discount_percent.inplace.expression
    @classmethod
    def _discount_percent_expression(cls):
        # 100.0: SQLite keeps whole amounts as integers and would divide them as integers.
        return (cls.list_price - cls.price) * 100.0 / cls.list_price

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.subscription_id.in_(select(Subscription.id).where(Subscription.agent_id == user_id))


class ReceiptCounter(Base):
    """The last receipt number issued per project: a gap-free sequence (R-PAY-1)."""

    __tablename__ = "receipt_counter"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"),
                                            primary_key=True)
    last_no: Mapped[int] = mapped_column(default=0)


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
        Index("ix_instalment_due_on", "due_on", "id"),  # the plan grid's default sort
        # The ladder's scan: open instalments by effective due date (extension or original).
        Index("ix_instalment_open_effective_due", text("coalesce(extended_due_on, due_on)"),
              sqlite_where=text("status <> 'paid'"), postgresql_where=text("status <> 'paid'")),
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
    return and_(Instalment.status != "paid", EFFECTIVE_DUE < today)


def overdue_on(today: dt.date, joined: bool = False):
    """A WHERE clause, the one definition of money owed now and late: open lines of live deals
    past their effective due date on `today` (`late_on` and `owed`). The dashboards, the plan
    grid, the exports, the statements and the ladder all count with it (or with `days_overdue`
    for a loaded line)."""
    return and_(late_on(today), owed(joined))


def days_late(line_status: str, effective_due: dt.date, deal_status: str, today: dt.date) -> int:
    """Days a line is late on `today` by `overdue_on`'s definition, from its values (0 when it is
    not: paid, not yet due, or its deal is over) — for rows read without the ORM (exports)."""
    if line_status == "paid" or deal_status not in LIVE_DEAL:
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
        return _via_subscription(cls.subscription_id, user_id)


class Extension(RequestedDecision, Base):
    """A request to move an instalment's due date, or a booked sale contract's signing date
    (R-PAY-6, R-CON-5). At most one waits per subject (a partial unique index)."""

    __tablename__ = "extension"
    __table_args__ = (
        CheckConstraint("days > 0", name="days_positive"),
        CheckConstraint(in_list("status", EXTENSION_STATUSES), name="status_known"),
        CheckConstraint("(instalment_id IS NULL) <> (contract_id IS NULL)", name="one_subject"),
        Index("uq_extension_open_instalment", "instalment_id", unique=True,
              sqlite_where=text("status = 'requested'"), postgresql_where=text("status = 'requested'")),
        Index("uq_extension_open_contract", "contract_id", unique=True,
              sqlite_where=text("status = 'requested'"), postgresql_where=text("status = 'requested'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"),
                                                      index=True)
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"),
                                                    index=True)
    days: Mapped[int]
    new_due_on: Mapped[dt.date | None]

    subscription: Mapped[Subscription] = relationship()
    instalment: Mapped[Instalment | None] = relationship()
    contract: Mapped["Contract | None"] = relationship()  # noqa: F821 (models.contracts)

    def __str__(self) -> str:
        if self.instalment_id:
            return str(self.instalment)
        from flask_babel import gettext
        return gettext("%(deal)s signing", deal=self.subscription)

    @classmethod
    def owned_by(cls, user_id: int):
        return _via_subscription(cls.subscription_id, user_id)


class OverdueEvent(Base):
    """A rung of the overdue ladder reached by an instalment (R-PAY-4, R-PAY-5).

    Unique per instalment, due date and level, so a ladder run twice writes each event once.
    """

    __tablename__ = "overdue_event"
    __table_args__ = (
        UniqueConstraint("instalment_id", "due_on", "level", "cause"),
        CheckConstraint(in_list("level", LADDER_LEVELS), name="level_known"),
        CheckConstraint(in_list("cause", ("payment", "signing")), name="cause_known"),
        CheckConstraint("outcome IS NULL OR " + in_list("outcome", EVENT_OUTCOMES), name="outcome_known"),
        CheckConstraint("(outcome IS NULL) = (handled_on IS NULL)", name="outcome_dated"),
        Index("ix_overdue_event_on_level", "on", "level"),
        # The worklists: letters to send and rescissions to decide.
        Index("ix_overdue_event_waiting", "level", sqlite_where=text("outcome IS NULL"),
              postgresql_where=text("outcome IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instalment_id: Mapped[int] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"))
    due_on: Mapped[dt.date]
    level: Mapped[str] = mapped_column(String(20))
    # payment: the instalment is unpaid; signing: paid enough but not signed in time (R-CON-5),
    # recorded on the deal's deposit line with the signing due date.
    cause: Mapped[str] = mapped_column(String(20), default="payment")
    on: Mapped[dt.date]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # What a person did about an event that waits for one (models.worklists): the lawyer sends a
    # lawyer's letter; the manager or the lawyer decides a rescission.
    outcome: Mapped[str | None] = mapped_column(String(20))
    handled_on: Mapped[dt.date | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    handling_note: Mapped[str] = mapped_column(Text, default="", server_default="")

    instalment: Mapped[Instalment] = relationship()
    handled_by: Mapped[User | None] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.instalment_id.in_(
            select(Instalment.id).where(_via_subscription(Instalment.subscription_id, user_id)))


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
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    recorded_by: Mapped[User] = relationship()

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        return _via_subscription(cls.subscription_id, user_id)


# ---------------------------------------------------------------------------------------------
# Domain operations on subscriptions (R-SC-2, R-SUB-1, R-SUB-2, R-PRICE-1/2). The caller commits.

from flask_babel import lazy_gettext as _l  # noqa: E402
from sqlalchemy import or_, update  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402

from .audit import audit_context, record_many  # noqa: E402
from .base import office_today  # noqa: E402
from .errors import RuleViolation  # noqa: E402
from .labels import choice_label  # noqa: E402
from .money import format_money, parse_money  # noqa: E402
from .notifications import notify  # noqa: E402
from .submissions import claim, settle  # noqa: E402
from .users import users_who_may  # noqa: E402
from .inventory import check_entry_date  # noqa: E402
from sqlalchemy.orm.util import identity_key  # noqa: E402
from .permissions import require, sees_all_rows  # noqa: E402

def _subscription_number(session, project: Project, unit: Unit) -> str:
    n = session.scalar(select(func.count()).select_from(Subscription)
                       .where(Subscription.unit_id == unit.id)) + 1
    return f"RG-{project.code}-{unit.id:05d}-{n}"


def subscribe(session, by: User, *, unit_id: int, lead_id: int, payment_method: str, deposit,
              id_number: str, address: str, price=None, price_reason: str = "",
              subscribed_on: dt.date | None = None, deposit_due_on: dt.date | None = None,
              today: dt.date | None = None, id_type: str | None = None) -> Subscription:
    """An agent subscribes a unit for one of own customers (R-SC-2, R-SUB-1, R-PRICE-1/2).

    The unit must be available, or held for this customer: its status changes in the same
    transaction by a conditional UPDATE, backed by the partial unique index, so two agents can
    never subscribe one unit — the loser gets RuleViolation and nothing is written. The price is
    the list price; any other price needs a reason, and a lower one the vice-president's
    approval before sales control may confirm (a PriceApproval is requested here).
    The buyer's identity document (`id_type`, default the resident identity card, and
    `id_number`) is read by the one validator of models/identity.py; a customer without a valid
    document of their own takes this one.
    """
    from .leads import _visible_lead
    require(by, "subscription.create")
    today = today or office_today()
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise RuleViolation(_l("This unit does not exist."), rule="R-SC-2")
    project = unit.building.project
    lead = _visible_lead(session, by, lead_id)
    if lead.project_id != project.id:
        raise RuleViolation(_l("The customer is registered in another project."), rule="R-SC-2")
    if unit.status == "withheld":
        raise RuleViolation(_l("Unit %(unit)s is not for sale (withheld by sales control).",
                               unit=unit.number), rule="R-SC-2")
    if payment_method not in PAYMENT_METHODS:
        raise RuleViolation(_l("Choose the payment method."), rule="R-SUB-1")
    if not normalise_id_number(id_number):  # none given: the customer's registered document
        id_type, id_number = lead.id_type, lead.id_number
    id_type, id_number = validate_id_document(id_type, id_number, today)
    address = (address or "").strip()
    if not address:
        raise RuleViolation(_l("Enter the customer's address."), rule="R-SUB-1")
    price = unit.list_price if price in (None, "") else parse_money(price, _l("The price"), rule="R-SUB-1")
    deposit = parse_money(deposit, _l("The deposit"), rule="R-SUB-1")
    price_reason = (price_reason or "").strip()
    if price != unit.list_price and not price_reason:
        raise RuleViolation(_l("A price other than the list price (%(list)s) needs a reason.",
                               list=format_money(unit.list_price)), rule="R-PRICE-1")
    if deposit > price:
        raise RuleViolation(_l("The deposit cannot exceed the price."), rule="R-SUB-1")
    subscribed_on = subscribed_on or today
    check_entry_date(project, subscribed_on, today, _l("The subscription date"), "R-SUB-1")
    deposit_due_on = deposit_due_on or subscribed_on
    if deposit_due_on < subscribed_on:
        raise RuleViolation(_l("The deposit cannot be due before the subscription date."),
                            rule="R-SUB-1")
    if deposit_due_on > subscribed_on + dt.timedelta(days=project.deposit_due_max_days):
        raise RuleViolation(_l("The deposit is due at most %(n)d days after the subscription in this "
                               "project.", n=project.deposit_due_max_days), rule="R-SUB-2")
    taken = RuleViolation(_l("Unit %(unit)s has just been subscribed or held by someone else; "
                             "choose another unit.", unit=unit.number), rule="R-SC-2")
    before = unit.status
    with session.begin_nested():
        matched = session.execute(
            update(Unit).where(Unit.id == unit.id, or_(
                Unit.status == "available",
                and_(Unit.status == "held", Unit.held_for_lead_id == lead.id)))
            .values(status="subscribed", held_for_lead_id=None, held_until=None, held_by_id=None)
            .execution_options(synchronize_session=False)).rowcount
        if matched != 1:
            raise taken
        try:
            with audit_context(session, actor=by, action="subscribe"):
                subscription = Subscription(
                    number=_subscription_number(session, project, unit), project_id=project.id,
                    lead_id=lead.id, unit_id=unit.id, agent_id=by.id, price=price, deposit=deposit,
                    payment_method=payment_method, status="draft", subscribed_on=subscribed_on,
                    deposit_due_on=deposit_due_on, customer_name=lead.name,
                    customer_id_type=id_type, customer_id_number=id_number, customer_address=address,
                    price_reason=price_reason)
                session.add(subscription)
                lead.stage = "subscribed"
                if id_document_problem(lead.id_type, lead.id_number):  # none, or invalid (older rows)
                    lead.id_type, lead.id_number = id_type, id_number
                lead.address = lead.address or address
                lead.last_activity_at = utcnow()
                session.flush()
                from .payments import generate_plan
                generate_plan(session, subscription)  # R-PAY-2: the plan comes with the deal
                if price < unit.list_price:
                    session.add(PriceApproval(subscription_id=subscription.id, list_price=unit.list_price,
                                              price=price, reason=price_reason,
                                              requested_by_id=by.id))
                    session.flush()
        except IntegrityError:
            raise taken from None
    if price < unit.list_price:  # R-PRICE-2: whoever decides is told (models.worklists)
        notify(session, users_who_may(session, "price.decide"), "price_requested",
               {"no": subscription.number, "name": lead.name, "price": price, "list_price": unit.list_price},
               "/admin/price_approval/?flt0_0=requested")
    session.expire(unit)
    record_many(session, "unit", "subscribe", by, [(unit.id, {"status": [before, "subscribed"]})])
    return subscription


def _subscription(session, subscription_id: int) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise RuleViolation(_l("This subscription does not exist."))
    return sub


def _move(session, sub: Subscription, by: User, before: tuple, after: str, action: str,
          reason: str = "", **values):
    """Change a subscription's status only from the expected ones (conditional UPDATE); the
    audit row keeps the `reason` given, if any (the deal's history shows it)."""
    matched = session.execute(
        update(Subscription).where(Subscription.id == sub.id, Subscription.status.in_(before))
        .values(status=after, **values).execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        return False
    before_status = sub.status
    session.expire(sub)
    record_many(session, "subscription", action, by,
                [(sub.id, {"status": [before_status, after],
                           **{k: [None, v] for k, v in values.items()},
                           **({"reason": [None, reason]} if reason else {})})])
    return True


def confirm_refusal(session, sub: Subscription) -> RuleViolation | None:
    """Why sales control may not confirm `sub` now (None: it may): a draft only, and a price below
    list only once the vice-president approved it (R-SUB-2, R-PRICE-2). The 销控审核 button shows
    only where this is None."""
    if sub.status != "draft":
        return RuleViolation(_l("Only a draft subscription can be confirmed (it is %(status)s).",
                                status=choice_label("subscription", "status", sub.status)), rule="R-SUB-2")
    if sub.price < sub.unit.list_price and not session.scalar(select(PriceApproval.id).where(
            PriceApproval.subscription_id == sub.id, PriceApproval.status == "approved").limit(1)):
        return RuleViolation(_l("The price is below the list price: the vice-president must approve "
                                "it before sales control confirms."), rule="R-PRICE-2")
    return None


def confirm_subscription(session, by: User, subscription_id: int) -> Subscription:
    """Sales control checks the signed agreement against sales control and signs (R-SUB-2)."""
    require(by, "subscription.confirm")
    sub = _subscription(session, subscription_id)
    refused = confirm_refusal(session, sub)
    if refused is not None:
        raise refused
    if not _move(session, sub, by, ("draft",), "confirmed", "confirm",
                 checked_by_id=by.id, checked_at=utcnow()):
        raise RuleViolation(_l("This subscription changed meanwhile; reload and try again."), rule="R-SUB-2")
    return sub


def next_receipt_no(session, project_id: int) -> str:
    """The next number of the project's gap-free receipt sequence, taken inside the caller's
    transaction: a rolled-back payment gives its number back (R-PAY-1)."""
    return _next_number(session, ReceiptCounter, project_id, "SJ")


def next_voucher_no(session, project_id: int) -> str:
    """The next settlement voucher number of the project, gap-free like receipts (R-CHG-5)."""
    return _next_number(session, VoucherCounter, project_id, "TK")


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
    from .payments import _locked_subscription, take_payment
    require(by, "subscription.deposit")
    if key is not None:
        claim(session, by, key, "deposit", f"subscription:{subscription_id}")
    sub = _locked_subscription(session, subscription_id)
    if sub.status != "confirmed":
        raise RuleViolation(_l("The deposit is taken after sales control has confirmed the "
                               "subscription (it is %(status)s).", status=choice_label("subscription", "status", sub.status)), rule="R-SUB-2")
    amount = parse_money(amount, rule="R-SUB-2")
    if amount != sub.deposit:
        raise RuleViolation(_l("The deposit agreed is %(deposit)s.", deposit=format_money(sub.deposit)),
                            rule="R-SUB-2")
    deposit_line = session.scalar(select(Instalment.id).where(
        Instalment.subscription_id == sub.id, Instalment.kind == "deposit"))
    payment = take_payment(session, by, sub, amount=amount, paid_on=paid_on, channel=channel,
                           bank_ref=bank_ref, instalment_id=deposit_line, today=today)  # the line says "deposit"
    if not _move(session, sub, by, ("confirmed",), "active", "deposit"):
        raise RuleViolation(_l("This subscription changed meanwhile; reload and try again."), rule="R-SUB-2")
    if key is not None:
        settle(session, key, f"{payment.receipt_no} {format_money(payment.amount)}")
    return payment


def withdraw_subscription(session, by: User, subscription_id: int, reason: str) -> Subscription:
    """Withdraw before the deposit (agent or manager): the unit returns to available; the
    subscription and its history stay (R-ALL-2)."""
    require(by, "subscription.withdraw")
    sub = _subscription(session, subscription_id)
    if not sees_all_rows(by) and sub.agent_id != by.id:
        raise RuleViolation(_l("This subscription does not exist, or is not one of yours."), rule="R-ALL-1")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the subscription is withdrawn."), rule="R-ALL-2")
    if sub.status not in WITHDRAWABLE:
        raise RuleViolation(_l("Only a subscription without deposit can be withdrawn (it is "
                               "%(status)s).", status=choice_label("subscription", "status", sub.status)),
                            rule="R-SUB-2")
    unit_id, lead = sub.unit_id, sub.lead
    if not _move(session, sub, by, WITHDRAWABLE, "withdrawn", "withdraw", reason=reason,
                 withdrawn_at=utcnow(), withdrawn_by_id=by.id):
        raise RuleViolation(_l("This subscription changed meanwhile; reload and try again."), rule="R-SUB-2")
    end_deal(session, sub.id, unit_id, by, "withdraw")
    with audit_context(session, actor=by, action="withdraw"):
        from .archive import keep_apart
        # the customer's records kept apart, as a forfeit keeps them (挞定/退订 archive, R-PAY-5)
        keep_apart(session, sub, lead, "withdrawal", office_today(), by, reason=reason)
        if lead.stage == "subscribed":
            lead.stage = "visited"
        # Language-neutral (read in either language): the deal's number and the reason given; the
        # deal's history says "withdrawn" in the reader's language.
        lead.notes = ((lead.notes + "\n") if lead.notes else "") + f"{sub.number}: {reason}"
        session.flush()
    session.expire_all()
    return sub


def decide_price(session, by: User, approval_id: int, approve: bool) -> PriceApproval:
    """The vice-president approves or rejects a price below the list price (R-PRICE-2).

    Decided under the deal's lock (the order payments and the ladder use) by a conditional
    UPDATE on `requested`: of two decisions at once exactly one is recorded; the other is told
    who decided first. A deal that is over meanwhile cannot be decided."""
    from .payments import _locked_subscription
    require(by, "price.decide")
    subscription_id = session.scalar(select(PriceApproval.subscription_id).where(PriceApproval.id == approval_id))
    if subscription_id is None:
        raise RuleViolation(_l("This price request is not waiting for a decision."), rule="R-PRICE-2")
    sub = _locked_subscription(session, subscription_id)
    status = "approved" if approve else "rejected"
    if sub.status != "draft":
        raise RuleViolation(_l("This deal is %(status)s: its price can no longer be decided.",
                               status=choice_label("subscription", "status", sub.status)), rule="R-PRICE-2")
    if not _decide_request(session, PriceApproval, approval_id, by, status,
                           "approve_price" if approve else "reject_price"):
        raise already_decided(session, PriceApproval, approval_id, rule="R-PRICE-2")
    approval = session.get(PriceApproval, approval_id, populate_existing=True)
    notify(session, [approval.requested_by_id], "price_decided",
           {"_t": f"price_decided.{status}", "no": sub.number, "price": approval.price},
           f"/admin/subscription/details/?id={sub.id}")
    return approval


def _decide_request(session, model, row_id: int, by, status: str, action: str, **values) -> bool:
    """UPDATE a waiting request to `status` only if it is still `requested`, with its audit row.
    False when someone else decided it first (nothing written)."""
    matched = session.execute(
        update(model).where(model.id == row_id, model.status == "requested")
        .values(status=status, decided_by_id=by.id if by is not None else None, decided_at=utcnow(), **values)
        .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        return False
    record_many(session, model.__tablename__, action, by,
                [(row_id, {"status": ["requested", status],
                           "decided_by_id": [None, by.id if by is not None else None],
                           **{k: [None, v] for k, v in values.items()}})])
    loaded = session.identity_map.get(identity_key(model, row_id))
    if loaded is not None:
        session.expire(loaded)
    return True


def already_decided(session, model, row_id: int, rule: str) -> RuleViolation:
    """The refusal for a request decided meanwhile: by whom, when, and how."""
    row = session.get(model, row_id, populate_existing=True)
    who = session.get(User, row.decided_by_id).display_name if row is not None and row.decided_by_id else "—"
    status = choice_label(model.__tablename__, "status", row.status) if row is not None else "—"
    return RuleViolation(_l("This request was already decided (%(status)s by %(who)s); nothing was changed.",
                            status=status, who=who), rule=rule)


def end_deal(session, subscription_id: int, unit_id: int, by, action: str, unit_was: str = "subscribed") -> None:
    """What every way out of a deal does once its status changed (withdrawn, expired, forfeited,
    rescinded): its unit back on sale — a conditional UPDATE from `unit_was`, audited — and the
    requests still waiting on it closed."""
    if session.execute(update(Unit).where(Unit.id == unit_id, Unit.status == unit_was).values(status="available")
                       .execution_options(synchronize_session=False)).rowcount:
        record_many(session, "unit", action, by, [(unit_id, {"status": [unit_was, "available"]})])
    close_open_requests(session, subscription_id, by, action)


def close_open_requests(session, subscription_id: int, by, action: str) -> int:
    """When a deal ends (withdrawn, expired, forfeited, rescinded), the requests still waiting on it are closed
    as rejected, each with its audit row (R-ALL-2), and their requesters told."""
    closed = 0
    for model, noun in ((PriceApproval, "price_approval"), (Extension, "extension")):
        rows = session.execute(select(model.id, model.requested_by_id).where(
            model.subscription_id == subscription_id, model.status == "requested")).all()
        for row_id, requester in rows:
            if _decide_request(session, model, row_id, by, "rejected", action):
                closed += 1
                ended = action if action in ("withdraw", "expire", "rescind") else "forfeit"
                notify(session, [requester], "request_closed", {"request": noun, "ended": ended},
                       f"/admin/{model.__tablename__}/")
    return closed


def expire_unpaid(session, today: dt.date | None = None, dry_run: bool = False) -> int:
    """Subscriptions without their deposit (draft, or confirmed and unpaid) past the deposit line's
    due date (as an approved extension moved it) plus the project's grace expire (R-SUB-2): the
    unit goes back on sale, the customer stays (a visited customer again), open requests close,
    the agent is told; each in a transaction of its own, re-checked under the deal's lock. Part of
    the daily run. Returns how many expired."""
    from .inventory import Project
    from .payments import _locked_subscription
    today = today or office_today()

    def deposit_due(subscription_id):  # the deposit line's due date, moved by an approved extension
        return select(EFFECTIVE_DUE).where(Instalment.subscription_id == subscription_id,
                                           Instalment.kind == "deposit").scalar_subquery()

    candidates = []
    for project_id, grace in session.execute(select(Project.id, Project.draft_grace_days).order_by(Project.id)):
        candidates += session.scalars(
            select(Subscription.id).where(Subscription.project_id == project_id,
                                          Subscription.status.in_(WITHDRAWABLE),
                                          deposit_due(Subscription.id) < today - dt.timedelta(days=grace))
            .order_by(Subscription.id)).all()
    expired = 0
    for sub_id in candidates:
        try:
            sub = _locked_subscription(session, sub_id)
            due = session.scalar(select(deposit_due(sub.id)))
            late = due is not None and due + dt.timedelta(days=sub.project.draft_grace_days) < today
            if sub.status not in WITHDRAWABLE or not late or dry_run:
                if dry_run and sub.status in WITHDRAWABLE and late:
                    expired += 1  # would expire
                session.rollback()
                continue
            before, unit_id, lead = sub.status, sub.unit_id, sub.lead
            if not _move(session, sub, None, (before,), "expired", "expire",
                         reason=str(due), expired_at=utcnow()):  # the deposit's due date: shown as words when read
                session.rollback()
                continue
            end_deal(session, sub_id, unit_id, None, "expire")
            with audit_context(session, action="expire"):
                if lead.stage == "subscribed":
                    lead.stage = "visited"
                session.flush()
            notify(session, [sub.agent_id], "subscription_expired",
                   {"_t": f"subscription_expired.{'draft' if before == 'draft' else 'confirmed'}",
                    "no": sub.number, "name": sub.customer_name, "due": due, "days": sub.project.draft_grace_days},
                   f"/admin/subscription/details/?id={sub_id}")
            session.commit()
            expired += 1
        except Exception:
            session.rollback()
            raise
    return expired
