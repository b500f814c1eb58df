"""Deals that change (R-CHG-1…5): the change request and its approval steps, and a deal's buyers.

A live deal's terms — its unit, its buyers, its payment method, its price — change only through
a `ChangeRequest` approved by the roles the project sets for its kind (`Project.change_chains`),
one step after another; at most one request of a deal waits at a time (a partial unique index).
Each decision is a `ChangeStep` row (unique per request, round and step: a second click finds
the step taken). The last approval applies the change in the same transaction
(models.change_apply); the database refuses any other write to a live deal's terms (a trigger
on `subscription`, migration d21a00000001, lets an update through only when it names an
approved, not yet applied request of that deal in `last_change_id`).

A deal has one or more buyers (权益人, `DealBuyer`) whose shares total 100 %; a buyer change
ends the current buyers (`ended_by_change_id`) and adds the new ones, so the history keeps them.
The subscription's customer columns are the first buyer's, as signed.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import (CheckConstraint, ForeignKey, Index, JSON, Numeric, String, Text, UniqueConstraint, select,
                        text, update)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context, record_many
from .base import Base, in_list, office_today, utcnow
from .deals import LIVE_DEAL, RequestedDecision, Subscription, via_subscription
from .errors import RuleViolation
from .identity import ID_TYPES, RESIDENT_ID, validate_id_document
from .labels import choice_label
from .leads import Lead, validate_phone
from .money import FEN
from .permissions import OPERATIONS, role_label
from .users import User

CHANGE_KINDS = ("unit_swap", "buyers", "payment_method", "price", "cancellation")
# requested: waiting for the decider of `step`; sent_back: waiting for the requester to resubmit
# (or withdraw); approved: applied; rejected / withdrawn: closed without a change.
CHANGE_STATUSES = ("requested", "sent_back", "approved", "rejected", "withdrawn")
OPEN_CHANGE = ("requested", "sent_back")  # a deal has at most one (uq_change_request_open)
STEP_DECISIONS = ("approved", "rejected", "sent_back")
# The approval chain per kind is the project's (Project.change_chains, default
# models.projects.DEFAULT_CHANGE_CHAINS); a price change beyond the manager's authority
# (Project.manager_price_limit_percent) adds the vice-president (models.change_requests.chain_for).

MAX_CHAIN_STEPS = 4  # a chain's roles, kept in change_request.chain (String(100)) with the vp a price may add


def validate_change_chains(value) -> dict:
    """A project's approval chains (R-CHG-1, Project.change_chains): a dict of known kinds
    (CHANGE_KINDS; a kind left out takes models.projects.DEFAULT_CHANGE_CHAINS) to non-empty lists
    of at most MAX_CHAIN_STEPS distinct roles that may decide changes (OPERATIONS["change.decide"]),
    in the order they approve. Returns the chains ({kind: [role, …]}); RuleViolation in the
    administrator's words otherwise. The project form checks the value saved with it, and
    models.change_requests.chain_for the value stored (one definition)."""
    deciders = sorted(OPERATIONS["change.decide"])
    allowed = ", ".join(f"{role} ({role_label(role)})" for role in deciders)
    if not isinstance(value, dict):
        raise RuleViolation(_l("The approval chains name, for each kind of change (%(kinds)s), the roles that "
                               "approve it in order, e.g. {\"price\": [\"sales_manager\", \"vp\"]}.",
                               kinds=", ".join(CHANGE_KINDS)), rule="R-CHG-1")
    chains: dict = {}
    for kind, chain in value.items():
        if kind not in CHANGE_KINDS:
            raise RuleViolation(_l("The approval chains name “%(kind)s”, which is not a kind of change (%(kinds)s).",
                                   kind=str(kind), kinds=", ".join(CHANGE_KINDS)), rule="R-CHG-1")
        label = choice_label("change_request", "kind", kind)
        if not isinstance(chain, list) or not chain:
            raise RuleViolation(_l("The approval chain for a %(kind)s (“%(key)s”) names no approver: give a list of "
                                   "roles (%(roles)s).", kind=label, key=kind, roles=allowed), rule="R-CHG-1")
        if len(chain) > MAX_CHAIN_STEPS:
            raise RuleViolation(_l("The approval chain for a %(kind)s (“%(key)s”) has %(n)d steps; at most %(max)d.",
                                   kind=label, key=kind, n=len(chain), max=MAX_CHAIN_STEPS), rule="R-CHG-1")
        for role in chain:
            if not isinstance(role, str) or role not in deciders:
                raise RuleViolation(_l("The approval chain for a %(kind)s (“%(key)s”) names “%(role)s”, who cannot "
                                       "decide changes (only %(roles)s can).", kind=label, key=kind,
                                       role=role_label(role) if isinstance(role, str) else str(role),
                                       roles=allowed), rule="R-CHG-1")
        repeated = next((role for i, role in enumerate(chain) if role in chain[:i]), None)
        if repeated is not None:
            raise RuleViolation(_l("The approval chain for a %(kind)s (“%(key)s”) names %(role)s twice; each role "
                                   "approves once.", kind=label, key=kind, role=role_label(repeated)), rule="R-CHG-1")
        chains[kind] = [str(role) for role in chain]
    return chains


_OPEN_WHERE = text(in_list("status", OPEN_CHANGE))


class ChangeRequest(RequestedDecision, Base):
    """换房 / 更名 / 付款方式变更 / 价格变更 / 退房: one request to change a live deal's terms.

    `proposal` is what is asked, by kind (JSON; money as strings "1234.50"):
      unit_swap: {"unit_id": int}; buyers: {"buyers": [{"name", "id_type", "id_number", "phone",
      "share"}]}; payment_method: {"payment_method": code}; price: {"price": "…"};
      cancellation: {"retain_deposit": bool, "fee": "…", "refund": "…", "retained": "…"}.
    `before` the deal's terms when requested; `difference` what the change does to the money
    (models.change_apply.difference: total price, paid, still due, before → after), recomputed at
    each decision so the decider reads today's figures. `chain` the roles that approve, in order
    (fixed when requested); `step` the index of the next one; `round` counts resubmissions after a
    send-back (the steps of each round are kept)."""

    __tablename__ = "change_request"
    __table_args__ = (
        CheckConstraint(in_list("kind", CHANGE_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", CHANGE_STATUSES), name="status_known"),
        CheckConstraint("step >= 0", name="step_not_negative"),
        CheckConstraint("round >= 1", name="round_positive"),
        # R-CHG-1: one change of a deal at a time.
        Index("uq_change_request_open", "subscription_id", unique=True,
              sqlite_where=_OPEN_WHERE, postgresql_where=_OPEN_WHERE),
        Index("ix_change_request_status", "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    kind: Mapped[str] = mapped_column(String(20))
    chain: Mapped[str] = mapped_column(String(100))  # "sales_manager,vp"
    step: Mapped[int] = mapped_column(default=0, server_default="0")
    round: Mapped[int] = mapped_column(default=1, server_default="1")
    proposal: Mapped[dict] = mapped_column(JSON, default=dict)
    before: Mapped[dict] = mapped_column(JSON, default=dict)
    difference: Mapped[dict] = mapped_column(JSON, default=dict)
    decision_note: Mapped[str] = mapped_column(Text, default="", server_default="")  # the last reject/send-back reason
    applied_at: Mapped[dt.datetime | None]

    subscription: Mapped[Subscription] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys="ChangeRequest.requested_by_id")
    decided_by: Mapped[User | None] = relationship(foreign_keys="ChangeRequest.decided_by_id")
    steps: Mapped[list["ChangeStep"]] = relationship(viewonly=True, order_by="(ChangeStep.round, ChangeStep.seq)")

    # What models.deals.close_open_requests closes when the deal ends: a sent-back request too.
    OPEN_STATUSES = OPEN_CHANGE

    def __str__(self) -> str:
        return f"BG-{self.id:06d}" if self.id else "BG"

    @property
    def roles(self) -> list[str]:
        return [r for r in self.chain.split(",") if r]

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


class ChangeStep(Base):
    """One decision on a change request: the role's step of a round, approved, rejected or sent
    back, by whom, when and why. Unique per request, round and step: decided once."""

    __tablename__ = "change_step"
    __append_only__ = True
    __table_args__ = (
        UniqueConstraint("change_request_id", "round", "seq"),
        CheckConstraint(in_list("decision", STEP_DECISIONS), name="decision_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    change_request_id: Mapped[int] = mapped_column(ForeignKey("change_request.id", ondelete="RESTRICT"),
                                                   index=True)
    round: Mapped[int]
    seq: Mapped[int]  # the index in the request's chain
    role: Mapped[str] = mapped_column(String(30))
    decision: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    decided_by: Mapped[User] = relationship()


class DealBuyer(Base):
    """权益人: one buyer of a deal and their share. The current buyers of a deal are those not
    ended; their shares total 100 % (checked by models.changes.validate_buyers, the one rule)."""

    __tablename__ = "deal_buyer"
    __table_args__ = (
        CheckConstraint("share > 0 AND share <= 100", name="share_range"),
        CheckConstraint(in_list("id_type", ID_TYPES), name="id_type_known"),
        Index("uq_deal_buyer_current_seq", "subscription_id", "seq", unique=True,
              sqlite_where=text("ended_by_change_id IS NULL"), postgresql_where=text("ended_by_change_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                 index=True)
    seq: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    id_type: Mapped[str] = mapped_column(String(30), default=RESIDENT_ID, server_default=RESIDENT_ID)
    id_number: Mapped[str] = mapped_column(String(30))
    phone: Mapped[str] = mapped_column(String(30), default="", server_default="")
    share: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    added_by_change_id: Mapped[int | None] = mapped_column(ForeignKey("change_request.id", ondelete="RESTRICT"))
    ended_by_change_id: Mapped[int | None] = mapped_column(ForeignKey("change_request.id", ondelete="RESTRICT"))
    ended_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()

    def __str__(self) -> str:
        return self.name

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


# ---------------------------------------------------------------------------------------------
# A deal's buyers (R-CHG-3) and its open change. The caller commits.

MAX_BUYERS = 6
HUNDRED = Decimal("100")


def manager_price_floor(project, list_price: Decimal) -> Decimal:
    """The lowest price within the sales manager's authority for a unit of `list_price`
    (Project.manager_price_limit_percent below it, to the fen); below it the vice-president
    approves too (R-PRICE-2, R-CHG-1: models.change_requests.chain_for)."""
    return (list_price * (100 - project.manager_price_limit_percent) / 100).quantize(FEN)


def open_change(session, subscription_id: int) -> ChangeRequest | None:
    """The change of the deal still open (requested, or sent back to its requester), if any: at
    most one (uq_change_request_open, R-CHG-1)."""
    return session.scalar(select(ChangeRequest).where(ChangeRequest.subscription_id == subscription_id,
                                                      ChangeRequest.status.in_(OPEN_CHANGE)))


def current_buyers(session, subscription_id: int) -> list[DealBuyer]:
    """The deal's buyers now (not ended by a change), in the agreement's order."""
    return list(session.scalars(select(DealBuyer).where(DealBuyer.subscription_id == subscription_id,
                                                        DealBuyer.ended_by_change_id.is_(None))
                                .order_by(DealBuyer.seq)))


def _percent(value: Decimal) -> str:
    """A share as people write it: 100, 33.5, 33.33."""
    return f"{value.normalize():f}"


def validate_buyers(rows: list[dict], today: dt.date | None = None) -> list[dict]:
    """The buyers of a deal as typed (R-CHG-3), normalised, or RuleViolation saying what is wrong,
    in the user's words. 1 to 6 buyers; each a name, a valid identity document (the one validator,
    models.identity), a valid phone (normalised as a customer's, models.leads.validate_phone) and a
    share above 0 % with at most two decimals; the shares total exactly 100 %; no document twice.

    Returns [{"name", "id_type", "id_number", "phone", "share"}] in the order given, JSON-safe:
    the share as a string with two decimals ("50.00")."""
    today = today or office_today()
    if not isinstance(rows, (list, tuple)) or not rows:
        raise RuleViolation(_l("Name at least one buyer."), rule="R-CHG-3")
    if len(rows) > MAX_BUYERS:
        raise RuleViolation(_l("A deal has at most %(max)d buyers (%(n)d given).", max=MAX_BUYERS, n=len(rows)),
                            rule="R-CHG-3")
    buyers, seen = [], {}
    for n, row in enumerate(rows, start=1):
        row = row if isinstance(row, dict) else {}
        name = str(row.get("name") or "").strip()
        if not name:
            raise RuleViolation(_l("Buyer %(n)d: enter the name.", n=n), rule="R-CHG-3")
        if len(name) > 100:
            raise RuleViolation(_l("Buyer %(n)d: the name is longer than 100 characters.", n=n), rule="R-CHG-3")
        try:
            id_type, id_number = validate_id_document(row.get("id_type"), str(row.get("id_number") or ""), today)
            phone = validate_phone(str(row.get("phone") or ""))
            share = _share(row.get("share"))
        except RuleViolation as exc:
            raise RuleViolation(_l("Buyer %(n)d (%(name)s): %(problem)s", n=n, name=name, problem=exc.message),
                                rule="R-CHG-3") from None
        if (id_type, id_number) in seen:
            raise RuleViolation(_l("Buyers %(first)d and %(second)d have the same identity document; each buyer "
                                   "is named once.", first=seen[(id_type, id_number)], second=n), rule="R-CHG-3")
        seen[(id_type, id_number)] = n
        buyers.append({"name": name, "id_type": id_type, "id_number": id_number, "phone": phone,
                       "share": share})
    total = sum((b["share"] for b in buyers), Decimal("0"))
    if total != HUNDRED:
        raise RuleViolation(_l("The shares add up to %(total)s %%, not 100 %%.", total=_percent(total)),
                            rule="R-CHG-3")
    return [{**b, "share": str(b["share"])} for b in buyers]


def _share(value) -> Decimal:
    """A buyer's share as typed ("50", "33.34", "50 %", "50％"): a percentage above 0 and at most 100,
    to two decimals — in a percentage's words, not money's."""
    if isinstance(value, Decimal):
        share = value
    else:
        text = str(value if value is not None else "").strip().rstrip("%％").strip()
        try:
            share = Decimal(text) if text and text.replace(".", "", 1).isdigit() else None
        except InvalidOperation:
            share = None
    if share is None or not share.is_finite() or not Decimal("0") < share <= HUNDRED \
            or share != share.quantize(Decimal("0.01")):
        raise RuleViolation(_l("the share is a percentage above 0 and at most 100, with at most 2 decimals "
                               "(e.g. 50 or 33.34)."), rule="R-CHG-3")
    return share.quantize(Decimal("0.01"))


def add_first_buyer(session, sub: Subscription, lead: Lead) -> DealBuyer:
    """A new deal's one buyer, with 100 %: the agreement's customer block (name, identity document)
    and the customer's phone (R-CHG-3). Written in subscribe's transaction, while the deal is a
    draft (the terms guard lets a live deal's buyers change only through an approved request)."""
    buyer = DealBuyer(subscription_id=sub.id, seq=1, name=sub.customer_name, id_type=sub.customer_id_type,
                      id_number=sub.customer_id_number, phone=lead.phone or "", share=HUNDRED)
    session.add(buyer)
    session.flush()
    return buyer


def apply_buyers(session, by, sub: Subscription, change: ChangeRequest) -> list[DealBuyer]:
    """The approved buyer change `change` applied to the live, locked deal `sub` (R-CHG-3): the
    current buyers ended by it (kept: the history), the proposed ones added by it, and the
    agreement's customer block set to the first of them — each write naming the change, which the
    terms guard requires. Audit action change_buyers. Raises RuleViolation if the deal changed
    meanwhile (nothing to undo: the caller's transaction is rolled back)."""
    buyers = validate_buyers(change.proposal.get("buyers"), office_today())
    now = utcnow()
    before = current_buyers(session, sub.id)
    ended = session.execute(
        update(DealBuyer).where(DealBuyer.subscription_id == sub.id, DealBuyer.ended_by_change_id.is_(None))
        .values(ended_by_change_id=change.id, ended_at=now).execution_options(synchronize_session=False)).rowcount
    if ended != len(before):
        raise RuleViolation(_l("The buyers of this deal changed meanwhile; reload and try again."), rule="R-CHG-3")
    record_many(session, "deal_buyer", "change_buyers", by,
                [(b.id, {"ended_by_change_id": [None, change.id]}) for b in before])
    for b in before:
        session.expire(b)
    with audit_context(session, actor=by, action="change_buyers"):
        added = [DealBuyer(subscription_id=sub.id, seq=n, name=b["name"], id_type=b["id_type"],
                           id_number=b["id_number"], phone=b["phone"], share=Decimal(b["share"]),
                           added_by_change_id=change.id, created_at=now)
                 for n, b in enumerate(buyers, start=1)]
        session.add_all(added)
        session.flush()
    first = buyers[0]
    block = {"customer_name": first["name"], "customer_id_type": first["id_type"],
             "customer_id_number": first["id_number"]}
    was = {key: getattr(sub, key) for key in block}
    if session.execute(update(Subscription).where(Subscription.id == sub.id, Subscription.status.in_(LIVE_DEAL))
                       .values(**block, last_change_id=change.id)
                       .execution_options(synchronize_session=False)).rowcount != 1:
        raise RuleViolation(_l("This deal changed meanwhile; reload and try again."), rule="R-CHG-1")
    record_many(session, "subscription", "change_buyers", by,
                [(sub.id, {**{k: [was[k], v] for k, v in block.items() if was[k] != v},
                           "last_change_id": [sub.last_change_id, change.id]})])
    session.expire(sub)
    return added
