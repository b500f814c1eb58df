"""Subscriptions (认购) and their price approvals: subscribe, confirm, withdraw, and what every way
out of a deal does (`end_deal`). The deal's plan and money are in models.payments, its
extensions and overdue ladder in models.ladder."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, and_, func, select, text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .archive import keep_apart
from .base import Base, Money, in_list, utcnow
from .identity import (ID_TYPES, RESIDENT_ID, id_document_problem, normalise_id_number,
                       validate_id_document)
from .inventory import Unit
from .leads import Lead, visible_lead
from .projects import Project, check_entry_date
from .users import User

SUBSCRIPTION_STATUSES = ("draft", "confirmed", "active", "contracted", "forfeited", "withdrawn", "expired",
                         "rescinded", "cancelled")
# One name per business fact: every query, page, export, statement and job reads these, never a copy.
# Two facts, two names: a deal that holds its unit (a draft too: at most one per unit, R-SC-2)
# and a deal that is a sale (its money is owed and counted). Nothing else reads either as "live".
TAKES_UNIT = ("draft", "confirmed", "active", "contracted")  # holds its unit (R-SC-2)
LIVE_DEAL = ("confirmed", "active", "contracted")  # a sale: counts as sold, its plan is owed
DEAD_DEAL = ("forfeited", "withdrawn", "expired", "rescinded", "cancelled")  # over: its lines are owed by nobody
DEFAULTED = ("forfeited", "rescinded")  # over because the buyer defaulted: the deposit is retained
WITHDRAWABLE = ("draft", "confirmed")  # before the deposit (R-SUB-2); expires unpaid (R-SUB-2)
PAYMENT_METHODS = ("one_off", "instalments", "commercial_mortgage", "provident_fund")
PRICE_APPROVAL_STATUSES = ("requested", "approved", "rejected")

_TAKES_UNIT_WHERE = text(in_list("status", TAKES_UNIT))
_AWAITING_WHERE = text(f"{in_list('status', DEAD_DEAL)} AND held > 0")


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
              sqlite_where=_TAKES_UNIT_WHERE, postgresql_where=_TAKES_UNIT_WHERE),
        Index("ix_subscription_agent_status", "agent_id", "status"),
        # The drafts holding units (sell-through: models.board.sold_join), a handful.
        Index("ix_subscription_draft_unit", "unit_id", sqlite_where=text("status = 'draft'"),
              postgresql_where=text("status = 'draft'")),
        Index("ix_subscription_subscribed_on", "subscribed_on"),  # today and this month (dashboard)
        # R-CHG-5: finance's settlement worklist, its rows alone (models.payments.awaiting_settlement),
        # with what the dashboard's refunds due add up (status, held): counted from the index alone.
        Index("ix_subscription_awaiting_settlement", "id", "status", "held", sqlite_where=_AWAITING_WHERE,
              postgresql_where=_AWAITING_WHERE),
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
    cancelled_at: Mapped[dt.datetime | None]  # 退房: an approved cancellation (R-CHG-4)
    # R-CHG-1: the plan in force (a change regenerates it: models.change_apply) and the approved
    # change request the last write of the deal's terms applied; the terms guard (a trigger,
    # migration d21a00000001) refuses a write of a live deal's terms that names no such request.
    plan_no: Mapped[int] = mapped_column(default=1, server_default="1")
    last_change_id: Mapped[int | None]
    # R-CHG-5: the money the office holds of this deal: its payments (reversals deducted) less its
    # refund and retention vouchers, kept by the database (triggers on payment and voucher,
    # migration d21c00000001; nothing else writes it). Read it through models.payments.held_amount
    # / money_held, in SQL: an object loaded before a payment keeps the old figure.
    held: Mapped[Money] = mapped_column(default=Decimal("0"), server_default="0")
    # R-AFT-1: the agreement's own late-fee terms, when they differ from the project's (None: the project's).
    late_fee_daily_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    late_fee_cap_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    # R-AFT-4: the keys handed over (models.handovers).
    handed_over_on: Mapped[dt.date | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    checked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()
    lead: Mapped[Lead] = relationship()
    unit: Mapped[Unit] = relationship()
    agent: Mapped[User] = relationship(foreign_keys=[agent_id])
    checked_by: Mapped[User | None] = relationship(foreign_keys=[checked_by_id])
    # The plan in force (R-CHG-2: models.payments.in_force); `all_instalments` keeps the lines
    # a change replaced too (the deal's history).
    instalments: Mapped[list["Instalment"]] = relationship(  # noqa: F821 (models.payments)
        primaryjoin="and_(Subscription.id == Instalment.subscription_id, Instalment.status != 'replaced')",
        viewonly=True, order_by="Instalment.seq")
    all_instalments: Mapped[list["Instalment"]] = relationship(  # noqa: F821 (models.payments)
        viewonly=True, order_by="(Instalment.plan_no, Instalment.seq)")
    payments: Mapped[list["Payment"]] = relationship(  # noqa: F821 (models.payments)
        viewonly=True, order_by="Payment.id")
    contracts: Mapped[list["Contract"]] = relationship(viewonly=True)  # noqa: F821 (models.contracts)

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.agent_id == user_id


class RequestedDecision:
    """Columns of a request someone decides later (a price below list, an extension, a change)."""

    OPEN_STATUSES = ("requested",)  # still waiting: closed when the deal ends (close_open_requests)

    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    decided_at: Mapped[dt.datetime | None]


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


def works_on_deal(by: User, sub: Subscription) -> bool:
    """May `by` act on deal `sub` (R-ALL-1): its agent, or whoever sees every row. The deal's
    equivalent of models.leads.works_on (a customer's); every step on a deal asks this."""
    return sees_all_rows(by) or sub.agent_id == by.id


def via_subscription(column, user_id: int):
    """`owned_by` of a row of a deal (its plan, payments, requests): the deal is the agent's."""
    return column.in_(select(Subscription.id).where(Subscription.agent_id == user_id))


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
from .users import users_who_may  # noqa: E402
from sqlalchemy.orm.util import identity_key  # noqa: E402
from .permissions import require, sees_all_rows  # noqa: E402


class UnitTaken(RuleViolation):
    """The unit was subscribed or held by someone else first (R-SC-2): nothing was written; the
    buyer may choose another unit."""


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
    require(by, "subscription.create")
    today = today or office_today()
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise RuleViolation(_l("This unit does not exist."), rule="R-SC-2")
    lead = visible_lead(session, by, lead_id)
    return place_subscription(
        session, by, agent_id=by.id, unit=unit, lead=lead, payment_method=payment_method, deposit=deposit,
        id_number=id_number, address=address, price=price, price_reason=price_reason,
        subscribed_on=subscribed_on, deposit_due_on=deposit_due_on, today=today, id_type=id_type)


def place_subscription(session, by: User, *, agent_id: int, unit: Unit, lead: Lead, payment_method: str, deposit,
                       id_number: str, address: str, price=None, price_reason: str = "",
                       subscribed_on: dt.date | None = None, deposit_due_on: dt.date | None = None,
                       today: dt.date | None = None, id_type: str | None = None) -> Subscription:
    """The subscription itself, once the caller checked who may make it and for whom: `subscribe`
    (an agent, his own customer) and the opening day's choice (models.selection: the agent, the
    manager or a kiosk at sales control, for the entry's agent `agent_id`). Every rule of the deal
    (R-SC-2, R-SUB-1, R-PRICE-1/2) and the one guard against selling a unit twice (the conditional
    UPDATE on the unit, backed by the partial unique index) are here; `by` is who acts (audit)."""
    today = today or office_today()
    project = unit.building.project
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
    taken = UnitTaken(_l("Unit %(unit)s has just been subscribed or held by someone else; "
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
                    lead_id=lead.id, unit_id=unit.id, agent_id=agent_id, price=price, deposit=deposit,
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
                # The one lazy import inside models/: models.payments imports this module at the top
                # (a plan is a deal's), yet subscribing makes the plan (R-PAY-2), whose rules live
                # with the money; lazy, so the plan's rules stay in models.payments. The first buyer
                # (R-CHG-3, models.changes, which imports this module too) comes through the same
                # import, so that it stays the one.
                from .payments import add_first_buyer, generate_plan
                generate_plan(session, subscription, new=True)  # R-PAY-2: the plan comes with the deal
                add_first_buyer(session, subscription, lead)  # R-CHG-3: the agreement's customer, 100 %
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
    record_many(session, "unit", "subscribe", by, [(unit.id, {"status": [before, "subscribed"]})])
    session.expire(unit)
    return subscription


def _subscription(session, subscription_id: int) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise RuleViolation(_l("This subscription does not exist."))
    return sub


def locked_subscription(session, subscription_id: int) -> Subscription:
    """Subscription first, then its instalments: the one lock order of payments and the ladder."""
    sub = session.scalar(select(Subscription).where(Subscription.id == subscription_id)
                         .with_for_update().execution_options(populate_existing=True))
    if sub is None:
        raise RuleViolation(_l("This subscription does not exist."))
    return sub


def move_status(session, sub: Subscription, by: User, before: tuple, after: str, action: str,
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
    deal_moved(session, sub.id, by, action)
    return True


# Called as hook(session, subscription_id, by, action), in the caller's transaction, whenever a deal's
# status moved (`move_status`, and the paths that set it themselves: models.contracts.sign_contract):
# what modules above this one follow (models.commissions: what the deal earns, R-COM-2).
DEAL_MOVED: list = []


def deal_moved(session, subscription_id: int, by, action: str) -> None:
    for hook in DEAL_MOVED:
        hook(session, subscription_id, by, action)


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
    if not move_status(session, sub, by, ("draft",), "confirmed", "confirm",
                 checked_by_id=by.id, checked_at=utcnow()):
        raise RuleViolation(_l("This subscription changed meanwhile; reload and try again."), rule="R-SUB-2")
    return sub


def withdraw_subscription(session, by: User, subscription_id: int, reason: str,
                          today: dt.date | None = None) -> Subscription:
    """Withdraw before the deposit (agent or manager): the unit returns to available; the
    subscription and its history stay (R-ALL-2)."""
    require(by, "subscription.withdraw")
    sub = _subscription(session, subscription_id)
    if not works_on_deal(by, sub):
        raise RuleViolation(_l("This subscription does not exist, or is not one of yours."), rule="R-ALL-1")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the subscription is withdrawn."), rule="R-ALL-2")
    if sub.status not in WITHDRAWABLE:
        raise RuleViolation(_l("Only a subscription without deposit can be withdrawn (it is "
                               "%(status)s).", status=choice_label("subscription", "status", sub.status)),
                            rule="R-SUB-2")
    unit_id, lead = sub.unit_id, sub.lead
    if not move_status(session, sub, by, WITHDRAWABLE, "withdrawn", "withdraw", reason=reason,
                 withdrawn_at=utcnow(), withdrawn_by_id=by.id):
        raise RuleViolation(_l("This subscription changed meanwhile; reload and try again."), rule="R-SUB-2")
    end_deal(session, sub.id, unit_id, by, "withdraw")
    with audit_context(session, actor=by, action="withdraw"):
        # the customer's records kept apart, as a forfeit keeps them (挞定/退订 archive, R-PAY-5)
        keep_apart(session, sub, lead, "withdrawal", today or office_today(), by, reason=reason)
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
    require(by, "price.decide")
    subscription_id = session.scalar(select(PriceApproval.subscription_id).where(PriceApproval.id == approval_id))
    if subscription_id is None:
        raise RuleViolation(_l("This price request is not waiting for a decision."), rule="R-PRICE-2")
    sub = locked_subscription(session, subscription_id)
    status = "approved" if approve else "rejected"
    if sub.status != "draft":
        raise RuleViolation(_l("This deal is %(status)s: its price can no longer be decided.",
                               status=choice_label("subscription", "status", sub.status)), rule="R-PRICE-2")
    if not decide_request(session, PriceApproval, approval_id, by, status,
                           "approve_price" if approve else "reject_price"):
        raise already_decided(session, PriceApproval, approval_id, rule="R-PRICE-2")
    approval = session.get(PriceApproval, approval_id, populate_existing=True)
    notify(session, [approval.requested_by_id], "price_decided",
           {"_t": f"price_decided.{status}", "no": sub.number, "price": approval.price},
           f"/admin/subscription/details/?id={sub.id}")
    return approval


def decide_request(session, model, row_id: int, by, status: str, action: str, waiting: str = "requested",
                   **values) -> bool:
    """UPDATE a waiting request to `status` only if it is still `waiting` (`requested`), with its
    audit row. False when someone else decided it first (nothing written)."""
    matched = session.execute(
        update(model).where(model.id == row_id, model.status == waiting)
        .values(status=status, decided_by_id=by.id if by is not None else None, decided_at=utcnow(), **values)
        .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        return False
    record_many(session, model.__tablename__, action, by,
                [(row_id, {"status": [waiting, status],
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


# Called by `end_deal` as hook(session, subscription_id, by, action), in its transaction: what
# modules above this one close when a deal ends (models.loans registers its mortgage files).
DEAL_ENDED: list = []


def end_deal(session, subscription_id: int, unit_id: int, by, action: str, unit_was: str = "subscribed") -> None:
    """What every way out of a deal does once its status changed (withdrawn, expired, forfeited,
    rescinded): its unit back on sale — a conditional UPDATE from `unit_was`, audited — the
    requests still waiting on it closed, and its mortgage files in progress closed (R-AFT-2)."""
    if session.execute(update(Unit).where(Unit.id == unit_id, Unit.status == unit_was).values(status="available")
                       .execution_options(synchronize_session=False)).rowcount:
        record_many(session, "unit", action, by, [(unit_id, {"status": [unit_was, "available"]})])
    close_open_requests(session, subscription_id, by, action)
    for hook in DEAL_ENDED:  # what later modules close with the deal (models.loans: its mortgage files)
        hook(session, subscription_id, by, action)


def close_open_requests(session, subscription_id: int, by, action: str) -> int:
    """When a deal ends (withdrawn, expired, forfeited, rescinded, cancelled), the requests still open on it
    are closed as rejected, each with its audit row (R-ALL-2), and their requesters told. Every kind of
    request on a deal is a RequestedDecision: the price approvals here, the extensions (models.ladder),
    the change requests (models.changes: a sent-back one is still open, its OPEN_STATUSES)."""
    closed = 0
    for model in RequestedDecision.__subclasses__():  # in the order they are declared
        noun = model.__tablename__
        rows = session.execute(select(model.id, model.requested_by_id, model.status).where(
            model.subscription_id == subscription_id, model.status.in_(model.OPEN_STATUSES))).all()
        for row_id, requester, waiting in rows:
            if decide_request(session, model, row_id, by, "rejected", action, waiting=waiting):
                closed += 1
                ended = action if action in ("withdraw", "expire", "rescind", "cancel_deal") else "forfeit"
                notify(session, [requester], "request_closed", {"request": noun, "ended": ended},
                       f"/admin/{model.__tablename__}/")
    return closed
