"""Money owed beyond the price plan (R-AFT-1, R-AFT-3): late fees (滞纳金) and area true-ups
(面积补差) the buyer pays. A charge is collected like a plan line — a payment names it
(`Payment.charge_id`), with a receipt from the same gap-free sequence — but never joins the plan:
the plan sums to the price, and a late fee never makes a paid instalment look unpaid.

One charge per late line (its late fee, accrued by the daily run) and one per true-up. Its
`amount` is what was charged (a late fee's grows each day until the line is paid, capped); what
is still owed is amount − waived − paid (`outstanding`), kept ≥ 0 by the database. When a change
replaces the plan (R-CHG-2), a late fee goes on with the line that replaces its line
(`carry_late_fees`): one fee per overdue sum; one that no line carries has lapsed and is owed no more.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import (CheckConstraint, bindparam, ForeignKey, Index, Numeric, String, Text, and_, case,
                        exists, false, func, literal, or_, select, text, type_coerce)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context, record_many
from .base import Base, Money, in_list, office_today, utcnow
from .deals import (LIVE_DEAL, RequestedDecision, Subscription, already_decided, decide_request, locked_subscription,
                    via_subscription, works_on_deal)
from .dialect import among, insert_rows, is_postgresql, rows_as_json
from .errors import RuleViolation
from .labels import choice_label
from .money import format_money, parse_money
from .notifications import notify
from .payments import (EFFECTIVE_DUE, PAYMENT_CHANNELS, LINES_REPLACED, Instalment, Payment, PaymentAllocation,
                       in_force, next_receipt_no, open_line, stands)
from .permissions import can_do, require
from .projects import Project, check_entry_date
from .submissions import claim, settle
from .users import User, users_who_may, users_with_roles

CHARGE_KINDS = ("late_fee", "area_true_up")
WAIVER_STATUSES = ("requested", "approved", "rejected")
ZERO = Decimal("0.00")


class Charge(Base):
    """A sum the buyer owes beside the plan: a late fee on one plan line, or a true-up."""

    __tablename__ = "charge"
    __table_args__ = (
        CheckConstraint(in_list("kind", CHARGE_KINDS), name="kind_known"),
        CheckConstraint("amount >= 0 AND waived >= 0 AND paid >= 0 AND waived + paid <= amount",
                        name="settled_within_amount"),
        CheckConstraint("(kind = 'late_fee') = (instalment_id IS NOT NULL)", name="late_fee_has_line"),
        # One late fee per plan line, one charge per true-up.
        Index("uq_charge_instalment", "instalment_id", unique=True,
              sqlite_where=text("instalment_id IS NOT NULL"), postgresql_where=text("instalment_id IS NOT NULL")),
        Index("uq_charge_true_up", "true_up_id", unique=True,
              sqlite_where=text("true_up_id IS NOT NULL"), postgresql_where=text("true_up_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalment.id", ondelete="RESTRICT"))
    true_up_id: Mapped[int | None] = mapped_column(ForeignKey("true_up.id", ondelete="RESTRICT"))
    # A late fee: the daily rate (% of the overdue amount) and the cap it was computed with.
    rate_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    cap: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    amount: Mapped[Money] = mapped_column(default=ZERO)
    waived: Mapped[Money] = mapped_column(default=ZERO, server_default="0")
    paid: Mapped[Money] = mapped_column(default=ZERO, server_default="0")
    due_on: Mapped[dt.date | None]  # a true-up: payable by; a late fee: payable at once
    accrued_through: Mapped[dt.date | None]  # a late fee: the last day counted
    days: Mapped[int] = mapped_column(default=0, server_default="0")  # a late fee: days counted
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Set when the charge no longer stands (a true-up voided by a unit swap, R-CHG-2): nothing more
    # is owed on it; what was paid on it stays held on the deal.
    void_at: Mapped[dt.datetime | None]

    subscription: Mapped[Subscription] = relationship()
    instalment: Mapped[Instalment | None] = relationship()

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} {self.kind} #{self.id}"

    @property
    def lapsed(self) -> bool:
        """A late fee left on a line a change replaced, with no line of the new plan to carry it
        (`carry_late_fees`): nothing more is owed on it. LAPSED is the same in SQL."""
        return self.instalment is not None and self.instalment.status == "replaced"

    @property
    def outstanding(self) -> Decimal:
        """What is still owed on it: nothing once it lapsed (its line replaced with nothing to carry it)
        or was voided (OUTSTANDING is the same in SQL)."""
        return ZERO if self.lapsed or self.void_at is not None else self.amount - self.waived - self.paid

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


LAPSED = exists().where(Instalment.id == Charge.instalment_id, Instalment.status == "replaced")
OUTSTANDING = type_coerce(case((or_(LAPSED, Charge.void_at.is_not(None)), literal(ZERO, Charge.amount.type)),
                               else_=Charge.amount - Charge.waived - Charge.paid), Charge.amount.type)


def charges_owed(joined: bool = False):
    """A WHERE clause, the one definition of a charge still owed: something outstanding on a live
    deal. `joined`: the query joins `subscription` already."""
    live = Subscription.status.in_(LIVE_DEAL)
    return and_(OUTSTANDING > 0, live if joined else Charge.subscription_id.in_(select(Subscription.id).where(live)))


def owed_on_deal(session, subscription_id: int) -> Decimal:
    """What the deal's charges still ask of the buyer (`charges_owed`)."""
    return session.scalar(select(func.coalesce(func.sum(OUTSTANDING), 0)).where(
        Charge.subscription_id == subscription_id, charges_owed())) or ZERO


class LateFeeWaiver(RequestedDecision, Base):
    """A request to waive part or all of a late fee (R-AFT-1): the manager decides, the VP when
    the deal's waivers in total pass the project's limit. One waits per charge."""

    __tablename__ = "late_fee_waiver"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(in_list("status", WAIVER_STATUSES), name="status_known"),
        Index("uq_late_fee_waiver_open", "charge_id", unique=True,
              sqlite_where=text("status = 'requested'"), postgresql_where=text("status = 'requested'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[int] = mapped_column(ForeignKey("charge.id", ondelete="RESTRICT"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    amount: Mapped[Money]
    needs_vp: Mapped[bool] = mapped_column(default=False, server_default=false())

    charge: Mapped[Charge] = relationship()
    subscription: Mapped[Subscription] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys="LateFeeWaiver.requested_by_id")
    decided_by: Mapped[User | None] = relationship(foreign_keys="LateFeeWaiver.decided_by_id")

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


def add_charge(session, sub: Subscription, kind: str, amount: Decimal, *, due_on: dt.date | None = None,
               instalment_id: int | None = None, true_up_id: int | None = None, note: str = "") -> Charge:
    """A new charge on `sub` (the caller checks the rule, audits within its own audit_context and
    commits): a late fee names its plan line, a true-up its true-up row."""
    if kind not in CHARGE_KINDS:
        raise ValueError(kind)
    charge = Charge(project_id=sub.project_id, subscription_id=sub.id, kind=kind, amount=amount, due_on=due_on,
                    instalment_id=instalment_id, true_up_id=true_up_id, note=note)
    session.add(charge)
    session.flush()
    return charge


def add_charges(session, rows: list[dict]) -> list[int]:
    """Several new charges at once (a true-up batch's), in ONE INSERT … RETURNING (on PostgreSQL
    the rows as one JSON parameter: models.dialect.insert_rows) and one audit row each, named by
    the caller's audit_context (whose rule check and commit they are). `rows`: dicts of
    project_id, subscription_id, kind, amount and optionally due_on, instalment_id, true_up_id,
    note — what `add_charge` takes. Returns the new charges' ids, in the order of `rows`."""
    if not rows:
        return []
    now, values = utcnow(), []
    for row in rows:
        if row["kind"] not in CHARGE_KINDS:
            raise ValueError(row["kind"])
        values.append({"project_id": row["project_id"], "subscription_id": row["subscription_id"],
                       "kind": row["kind"], "amount": row["amount"], "waived": ZERO, "paid": ZERO,
                       "due_on": row.get("due_on"), "instalment_id": row.get("instalment_id"),
                       "true_up_id": row.get("true_up_id"), "days": 0, "note": row.get("note", ""),
                       "created_at": now})
    names = list(values[0])
    keys = [(v["subscription_id"], v["kind"], v["instalment_id"], v["true_up_id"]) for v in values]
    if len(set(keys)) == len(keys):
        written = insert_rows(session, Charge.__table__, values, returning=("id", *names))
    else:  # rows told apart by nothing but their order: one statement each keeps it
        written = [r for v in values for r in insert_rows(session, Charge.__table__, [v], returning=("id", *names))]
    record_many(session, "charge", session.info.get("audit_action") or "insert", None,
                [(r.id, {name: [None, getattr(r, name)] for name in names}) for r in written])
    # RETURNING gives the rows in no promised order: match them back to `rows` by their values.
    if len(set(keys)) != len(keys):
        return [r.id for r in written]
    by_key = {(r.subscription_id, r.kind, r.instalment_id, r.true_up_id): r.id for r in written}
    return [by_key[key] for key in keys]


# --- Late fees (R-AFT-1) ---------------------------------------------------------------------------

FEN = Decimal("0.01")
HUNDRED = Decimal("100")
# The deals whose late lines accrue: the deposit is in (an unpaid deposit expires the deal instead).
ACCRUING_DEALS = ("active", "contracted")
# Lines that never accrue a late fee: the deposit (unpaid, the deal expires: R-SUB-2) and the loan
# lines — the bank's money: the buyer is not late when the bank is slow to disburse.
NO_LATE_FEE_KINDS = ("deposit", "commercial_loan", "provident_fund_loan")
# A line paid late in the last LOOKBACK days is recomputed each run (its fee may still change: a
# back-dated payment, a missed run); older paid lines are final.
LOOKBACK_DAYS = 120


def late_fee(amount_due: Decimal, due_on: dt.date, paid_by_date, daily_percent: Decimal, cap_percent: Decimal,
             through: dt.date) -> tuple[Decimal, int]:
    """THE definition of a late fee (滞纳金, R-AFT-1) — what the statement explains. Returns (fee, days).

    For each day d from the day after the line's effective due date (its extended date if an
    extension was approved) to `through` (the last day counted), while the line is not fully
    paid: daily_percent % × the balance outstanding at the START of day d, i.e. the amount due less
    the payments dated before d (a payment dated on d still leaves day d counted). The sum is rounded ONCE to the fen (half up) at the end, and capped
    at cap_percent % of the line's amount due (rounded to the fen).

    So a line paid in full P days late, without partial payments, costs rate × amount × P; a line
    paid on its due date costs nothing; a partial payment lowers the base from the next day.
    `paid_by_date`: (paid_on, amount) pairs of the money allocated to the line by the payments that
    stand (`_paid_by_line`: a reversed payment and its reversal are left out — the money never
    arrived, R-PAY-1). `days`: the days that counted (a balance outstanding)."""
    by_day: dict[dt.date, Decimal] = {}
    for paid_on, amount in paid_by_date:
        by_day[paid_on] = by_day.get(paid_on, ZERO) + Decimal(amount)
    balance = Decimal(amount_due) - sum((a for d, a in by_day.items() if d <= due_on), ZERO)
    start, total, days = due_on + dt.timedelta(days=1), Decimal(0), 0

    def count(first: dt.date, last: dt.date, balance: Decimal):
        n = (last - first).days + 1
        return (balance * n, n) if n > 0 and balance > 0 else (Decimal(0), 0)

    for day in sorted(d for d in by_day if d > due_on):
        if day >= through:
            break
        add, n = count(start, day, balance)  # the payment dated `day` lowers the balance from the day after
        total, days = total + add, days + n
        balance -= by_day[day]
        start = day + dt.timedelta(days=1)
    add, n = count(start, through, balance)
    total, days = total + add, days + n
    fee = (total * Decimal(daily_percent) / HUNDRED).quantize(FEN, rounding=ROUND_HALF_UP)
    cap = (Decimal(amount_due) * Decimal(cap_percent) / HUNDRED).quantize(FEN, rounding=ROUND_HALF_UP)
    return min(fee, cap), days


def late_fee_terms(sub: Subscription) -> tuple[Decimal, Decimal]:
    """(daily %, cap %) of a deal: its agreement's own, else its project's (R-AFT-1)."""
    project = sub.project
    return (sub.late_fee_daily_percent if sub.late_fee_daily_percent is not None else project.late_fee_daily_percent,
            sub.late_fee_cap_percent if sub.late_fee_cap_percent is not None else project.late_fee_cap_percent)


def set_late_fee_terms(session, by, sub_id: int, daily_percent, cap_percent, reason: str) -> Subscription:
    """A deal's agreement sets its own late-fee terms (R-AFT-1); None: the project's. Audited."""
    require(by, "late_fee.set_terms")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say where these terms come from (the agreement's clause)."), rule="R-AFT-1")

    def percent(value, high):
        if value in (None, ""):
            return None
        try:
            value = Decimal(str(value).strip().rstrip("%"))
        except InvalidOperation:
            raise RuleViolation(_l("A late-fee rate is a percentage."), rule="R-AFT-1") from None
        if value < 0 or value > high:
            raise RuleViolation(_l("A late-fee rate is between 0 and %(high)s %%.", high=high), rule="R-AFT-1")
        return value
    daily, cap = percent(daily_percent, 1), percent(cap_percent, 100)
    sub = locked_subscription(session, sub_id)
    with audit_context(session, actor=by, action="set_late_fee_terms"):
        sub.late_fee_daily_percent, sub.late_fee_cap_percent = daily, cap
        session.flush()
    return sub


def _candidates(session, today: dt.date):
    """The lines whose late fee may change today, with their terms and charge: open lines of the
    plan in force of accruing deals past their effective due date (the ladder's partial index), open
    lines already charged (an extension may have moved their start), and lines paid late recently
    (LOOKBACK_DAYS: a back-dated payment, a missed run). Three narrow queries, not one OR that
    would read every line."""
    columns = select(Instalment.id, Instalment.subscription_id, Subscription.project_id, Instalment.amount_due,
                     EFFECTIVE_DUE.label("due"),
                     func.coalesce(Subscription.late_fee_daily_percent, Project.late_fee_daily_percent).label("rate"),
                     func.coalesce(Subscription.late_fee_cap_percent, Project.late_fee_cap_percent).label("cap_pct"),
                     Charge.id.label("charge_id"), Charge.amount, Charge.waived, Charge.paid, Charge.days,
                     Charge.accrued_through, Charge.rate_percent) \
        .join(Subscription, Subscription.id == Instalment.subscription_id) \
        .join(Project, Project.id == Subscription.project_id) \
        .outerjoin(Charge, Charge.instalment_id == Instalment.id) \
        .where(Subscription.status.in_(ACCRUING_DEALS), Instalment.kind.not_in(NO_LATE_FEE_KINDS))
    recent = select(PaymentAllocation.instalment_id).join(Payment, Payment.id == PaymentAllocation.payment_id).where(
        Payment.paid_on >= today - dt.timedelta(days=LOOKBACK_DAYS))
    rows = {}
    for condition in (and_(open_line(), EFFECTIVE_DUE < today),
                      and_(open_line(), Instalment.id.in_(select(Charge.instalment_id).where(
                          Charge.kind == "late_fee", Charge.instalment_id.is_not(None)))),
                      and_(in_force(), EFFECTIVE_DUE < today, Instalment.id.in_(recent))):
        for row in session.execute(columns.where(condition)):
            rows[row.id] = row
    return list(rows.values())


def _paid_by_line(session, line_ids) -> dict[int, list]:
    """`late_fee`'s paid_by_date of each line: (paid_on, amount) of the money the payments that stand
    (`payments.stands`) put on it — a reversed payment and its reversal both left out (R-PAY-1)."""
    paid: dict[int, list] = {}
    ids = list(line_ids)
    chunk = max(len(ids), 1) if is_postgresql(session) else 5000  # PostgreSQL: one array parameter
    for start in range(0, len(ids), chunk):
        for line_id, paid_on, amount in session.execute(
                select(PaymentAllocation.instalment_id, Payment.paid_on, PaymentAllocation.amount).where(stands())
                .join(Payment, Payment.id == PaymentAllocation.payment_id)
                .where(among(session, PaymentAllocation.instalment_id, ids[start:start + chunk]))):
            paid.setdefault(line_id, []).append((paid_on, amount))
    return paid


def accrue_late_fees(session, today: dt.date | None = None, dry_run: bool = False) -> int:
    """The daily run's late fees (R-AFT-1), through `today`: every candidate line's fee computed by
    `late_fee` and written set-based — one INSERT of the missing charges (ON CONFLICT on
    uq_charge_instalment: two runs at once write one), one UPDATE of the changed ones only (on
    PostgreSQL both read their rows from one JSON parameter: models.dialect), one audit row per
    charge created or changed, in one statement. Idempotent: run twice, or after missed days, it
    gives the same charges. A charge never drops below what was waived and paid (the CHECK): when a
    back-dated payment lowers the fee under it, the amount stays at waived + paid, with a note.
    Charges never touch the plan's lines: a paid line stays paid. The caller commits. Returns how
    many charges were created or changed (would be, with `dry_run`)."""
    today = today or office_today()
    rows = _candidates(session, today)
    paid = _paid_by_line(session, {r.id for r in rows})
    new, changed = [], []
    for r in rows:
        fee, days = late_fee(r.amount_due, r.due, paid.get(r.id, ()), r.rate, r.cap_pct, today)
        # The last day counted: today while the line is open, else the day it was fully paid.
        through = today
        if r.charge_id is None:
            if fee <= 0:
                continue
            new.append((r, fee, days, through))
        elif (fee, days) != (r.amount, r.days) or r.rate_percent != r.rate:
            floor = (r.waived or ZERO) + (r.paid or ZERO)
            changed.append((r, fee, days, through, fee < floor))
    if dry_run:
        return len(new) + len(changed)
    cap = lambda r: (Decimal(r.amount_due) * Decimal(r.cap_pct) / HUNDRED).quantize(FEN, rounding=ROUND_HALF_UP)  # noqa: E731
    if new:
        now = utcnow()
        values = [{"project_id": r.project_id, "subscription_id": r.subscription_id, "kind": "late_fee",
                   "instalment_id": r.id, "rate_percent": r.rate, "cap": cap(r), "amount": fee, "waived": ZERO,
                   "paid": ZERO, "days": days, "accrued_through": through, "due_on": through, "note": "",
                   "created_at": now} for r, fee, days, through in new]
        # ON CONFLICT on uq_charge_instalment: two runs at once write one charge per line.
        written = insert_rows(session, Charge.__table__, values, returning=("id", "instalment_id", "amount", "days"),
                              conflict=("instalment_id",), conflict_where="instalment_id IS NOT NULL")
        record_many(session, "charge", "accrue_late_fee", None,
                    [(cid, {"kind": [None, "late_fee"], "instalment_id": [None, line], "amount": [None, amount],
                            "days": [None, d]}) for cid, line, amount, d in written])
    if changed:
        # One UPDATE … FROM (VALUES …) per thousand charges; never below waived + paid (the CHECK).
        table = Charge.__table__
        floor = table.c.waived + table.c.paid
        note = str(_l("A back-dated payment lowered this late fee under what was already waived and paid: "
                      "the amount stays at that."))
        rows = [(r.charge_id, fee, days, through, r.rate, cap(r)) for r, fee, days, through, _ in changed]
        if is_postgresql(session):  # ONE UPDATE … FROM the rows as one JSON parameter
            source, params = rows_as_json(
                {"cid": "integer", "fee": "numeric", "n": "integer", "through": "date", "rate": "numeric",
                 "capped": "numeric"},
                [dict(zip(("cid", "fee", "n", "through", "rate", "capped"), row)) for row in rows])
            session.connection().exec_driver_sql(
                'UPDATE charge SET amount = GREATEST(charge.waived + charge.paid, v.fee), days = v.n, '
                'accrued_through = v.through, rate_percent = v.rate, cap = v.capped, '
                'note = CASE WHEN charge.waived + charge.paid > v.fee THEN %s ELSE charge.note END '
                f'FROM {source} WHERE charge.id = v.cid', (note, *params))
        else:  # SQLite names no columns of a VALUES list: an executemany, cheap in process
            fee = bindparam("b_fee")
            session.connection().execute(table.update().where(table.c.id == bindparam("b_id")).values(
                amount=case((floor > fee, floor), else_=fee), days=bindparam("b_n"),
                accrued_through=bindparam("b_through"), rate_percent=bindparam("b_rate"), cap=bindparam("b_cap"),
                note=case((floor > fee, literal(note)), else_=table.c.note)),
                [dict(zip(("b_id", "b_fee", "b_n", "b_through", "b_rate", "b_cap"), row)) for row in rows])
        record_many(session, "charge", "accrue_late_fee", None,
                    [(r.charge_id, {"amount": [r.amount, max(fee, (r.waived or ZERO) + (r.paid or ZERO))],
                                    "days": [r.days, days]}) for r, fee, days, through, _ in changed])
    session.expire_all()
    return len(new) + len(changed)


# --- A change replaces the plan (R-AFT-1 with R-CHG-2) ---------------------------------------------

def carry_late_fees(session, by, sub: Subscription, replaced: list[Instalment], lines: list[Instalment],
                    today: dt.date) -> None:
    """One late fee per overdue sum when a change replaces the plan (`payments.regenerate_plan`'s
    hook, in its transaction, the deal locked): the late fee of each replaced line moves to the line
    that replaces it — the new plan's line due the same (effective) day, as the ladder's
    `chased_before` counts a lateness once (models.ladder `_overdue_query`), among the lines that
    accrue late fees, of the same kind first — keeping what was waived and paid on it, and is
    recomputed there at once by `late_fee` (the new line's amount, its payments carried over with
    their dates, through `today`): the daily run goes on from it, never a second fee for the same
    days. A late fee no line carries (no line of the new plan accruing late fees is due that day)
    stays on its replaced line and has lapsed (LAPSED): nothing more is owed on it; what was paid
    and waived stays as it was. Audited: carry_late_fee, lapse_late_fee."""
    charges = session.scalars(select(Charge).where(Charge.instalment_id.in_([line.id for line in replaced]))
                              .with_for_update().execution_options(populate_existing=True)).all()
    if not charges:
        return
    old_line = {line.id: line for line in replaced}
    free: dict[dt.date, list[Instalment]] = {}  # the new lines that may carry a late fee, by due day
    for line in lines:
        if line.kind not in NO_LATE_FEE_KINDS:
            free.setdefault(line.effective_due_on, []).append(line)
    carried, lapsed = [], []
    for charge in sorted(charges, key=lambda c: old_line[c.instalment_id].seq):
        old = old_line[charge.instalment_id]
        candidates = free.get(old.effective_due_on, [])
        new = next((line for line in candidates if line.kind == old.kind), candidates[0] if candidates else None)
        if new is None:
            lapsed.append(charge)
            continue
        candidates.remove(new)
        carried.append((charge, new))
    paid = _paid_by_line(session, [new.id for _, new in carried])
    rate, cap_percent = late_fee_terms(sub)
    low = str(_l("A back-dated payment lowered this late fee under what was already waived and paid: "
                 "the amount stays at that."))
    with audit_context(session, actor=by, action="carry_late_fee"):
        for charge, new in carried:
            fee, days = late_fee(new.amount_due, new.effective_due_on, paid.get(new.id, ()), rate, cap_percent, today)
            floor = charge.waived + charge.paid
            charge.instalment = new
            charge.amount, charge.days, charge.accrued_through = max(fee, floor), days, today
            charge.rate_percent = rate
            charge.cap = (Decimal(new.amount_due) * Decimal(cap_percent) / HUNDRED).quantize(FEN, rounding=ROUND_HALF_UP)
            if fee < floor:
                charge.note = low
        session.flush()
    with audit_context(session, actor=by, action="lapse_late_fee"):
        for charge in lapsed:
            charge.note = str(_l("A change replaced this line and no line of the new plan due the same day carries "
                                 "its late fee: nothing more is owed on it."))
        session.flush()


LINES_REPLACED.append(carry_late_fees)


def _lapsed_refusal() -> RuleViolation:
    return RuleViolation(_l("A change replaced this late fee's plan line and no line of the new plan carries it: "
                            "nothing is owed on it any more."), rule="R-CHG-2")


# --- Collection: THE way any charge is paid (R-AFT-1, R-AFT-3) -----------------------------------

def _locked_charge(session, charge_id: int) -> tuple[Subscription, Charge]:
    """The deal first, then the charge: the lock order of payments and decisions."""
    subscription_id = session.scalar(select(Charge.subscription_id).where(Charge.id == charge_id))
    if subscription_id is None:
        raise RuleViolation(_l("This charge does not exist."), rule="R-AFT-1")
    sub = locked_subscription(session, subscription_id)
    charge = session.scalar(select(Charge).where(Charge.id == charge_id).with_for_update(of=Charge)
                            .execution_options(populate_existing=True))
    return sub, charge


def record_charge_payment(session, by, charge_id: int, *, amount, paid_on: dt.date, channel: str,
                          bank_ref: str | None = None, key: str | None = None, today: dt.date | None = None):
    """Finance records money paid on a charge — a late fee or a true-up (R-AFT-1, R-AFT-3): a
    Payment naming the charge, no plan allocations, a receipt from the gap-free sequence, and the
    charge's `paid` raised in the same transaction, under the deal's then the charge's lock. Not
    more than is outstanding; live deals only. `key`: the form's one-time key (sent twice: once)."""
    require(by, "charge.pay")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "charge_payment", f"charge:{charge_id}")
    sub, charge = _locked_charge(session, charge_id)
    if sub.status not in ACCRUING_DEALS:
        raise RuleViolation(_l("Charges are collected on live deals (this one is %(status)s).",
                               status=choice_label("subscription", "status", sub.status)), rule="R-AFT-1")
    if charge.lapsed:
        raise _lapsed_refusal()
    amount = parse_money(amount, rule="R-AFT-1")
    if amount <= 0:
        raise RuleViolation(_l("The amount must be more than zero."), rule="R-AFT-1")
    if amount > charge.outstanding:
        raise RuleViolation(_l("%(amount)s is more than what is outstanding on this charge, %(balance)s.",
                               amount=format_money(amount), balance=format_money(charge.outstanding)), rule="R-AFT-1")
    if channel not in PAYMENT_CHANNELS:
        raise RuleViolation(_l("Choose how the money was paid."), rule="R-PAY-1")
    check_entry_date(sub.project, paid_on, today, _l("The payment date"), "R-PAY-1", not_before=sub.subscribed_on)
    bank_ref = (bank_ref or "").strip() or None
    with audit_context(session, actor=by, action="charge_payment"):
        payment = Payment(project_id=sub.project_id, subscription_id=sub.id, charge_id=charge.id,
                          instalment_id=charge.instalment_id, amount=amount, paid_on=paid_on, channel=channel,
                          bank_ref=bank_ref, receipt_no=next_receipt_no(session, sub.project_id), recorded_by_id=by.id)
        session.add(payment)
        try:
            session.flush()
        except IntegrityError:
            raise RuleViolation(_l("The bank reference %(ref)s has already been recorded.", ref=bank_ref),
                                rule="R-PAY-1") from None
        charge.paid += amount
        session.flush()
    if key is not None:
        settle(session, key, f"{payment.receipt_no} {format_money(payment.amount)}")
    return payment


# --- Waivers (R-AFT-1) -----------------------------------------------------------------------------

def waived_on_deal(session, subscription_id: int, but: int | None = None) -> Decimal:
    """The late fees waived on a deal so far (approved waivers)."""
    return session.scalar(select(func.coalesce(func.sum(LateFeeWaiver.amount), 0)).where(
        LateFeeWaiver.subscription_id == subscription_id, LateFeeWaiver.status == "approved",
        LateFeeWaiver.id != (but or 0))) or ZERO


def waiver_needs_vp(session, waiver: LateFeeWaiver) -> bool:
    """Beyond the project's limit in TOTAL for the deal (approved so far plus this one), not per
    request: three small waivers add up."""
    return waived_on_deal(session, waiver.subscription_id, waiver.id) + waiver.amount > \
        waiver.subscription.project.late_fee_waiver_limit


def request_waiver(session, by, charge_id: int, amount, reason: str) -> LateFeeWaiver:
    """Ask to waive part or all of a late fee, with a reason (R-AFT-1). One waits per charge; not
    more than is outstanding. The managers are told, or the vice-president beyond the limit."""
    require(by, "late_fee.waive_request")
    charge = session.get(Charge, charge_id)
    if charge is None or not works_on_deal(by, charge.subscription):
        raise RuleViolation(_l("This charge does not exist, or is not one of your customers'."), rule="R-AFT-1")
    if charge.kind != "late_fee":
        raise RuleViolation(_l("Only a late fee can be waived."), rule="R-AFT-1")
    if charge.lapsed:
        raise _lapsed_refusal()
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the late fee should be waived."), rule="R-AFT-1")
    amount = parse_money(amount, rule="R-AFT-1")
    if amount <= 0:
        raise RuleViolation(_l("The amount must be more than zero."), rule="R-AFT-1")
    if amount > charge.outstanding:
        raise RuleViolation(_l("%(amount)s is more than what is outstanding on this late fee, %(balance)s.",
                               amount=format_money(amount), balance=format_money(charge.outstanding)), rule="R-AFT-1")
    waiver = LateFeeWaiver(charge_id=charge.id, subscription_id=charge.subscription_id, amount=amount, reason=reason,
                           requested_by_id=by.id)
    try:
        with session.begin_nested(), audit_context(session, actor=by, action="request_late_fee_waiver"):
            session.add(waiver)
            session.flush()
            waiver.needs_vp = waiver_needs_vp(session, waiver)
            session.flush()
    except IntegrityError:
        raise RuleViolation(_l("A waiver of this late fee is already waiting for a decision."), rule="R-AFT-1") from None
    sub = charge.subscription
    deciders = users_who_may(session, "late_fee.waive_beyond_limit") if waiver.needs_vp else \
        users_with_roles(session, {"sales_manager"})
    notify(session, [u for u in deciders if u != by.id], "late_fee_waiver_requested",
           {"no": sub.number, "amount": str(amount), "beyond": bool(waiver.needs_vp)},
           "/admin/late_fee_waiver/?flt0_0=requested")
    return waiver


def waiver_refusal(by, waiver: LateFeeWaiver) -> RuleViolation | None:
    """Why `by` may not decide `waiver` (None: they may): the manager up to the project's limit in
    total per deal, the vice-president beyond; never the requester. The buttons ask this too."""
    from sqlalchemy.orm import object_session
    if not can_do(by, "late_fee.waive"):
        return RuleViolation(_l("The sales manager or the vice-president decides late-fee waivers."), rule="R-AFT-1")
    if waiver.requested_by_id == by.id:
        return RuleViolation(_l("You asked for this waiver: someone else decides it."), rule="R-AFT-1")
    if not can_do(by, "late_fee.waive_beyond_limit") and waiver_needs_vp(object_session(waiver), waiver):
        return RuleViolation(_l("With this waiver the deal's late fees waived would pass %(limit)s in total: only "
                                "the vice-president decides.",
                                limit=format_money(waiver.subscription.project.late_fee_waiver_limit)), rule="R-AFT-1")
    return None


def decide_waiver(session, by, waiver_id: int, approve: bool, key: str | None = None) -> LateFeeWaiver:
    """The manager (within the limit in total) or the vice-president approves or rejects a waiver
    (R-AFT-1): under the deal's lock, then the charge's, by a conditional UPDATE from `requested`
    (a double click decides once), re-checking the amount against what is outstanding NOW (a
    payment may have come in). The requester is told."""
    require(by, "late_fee.waive")
    if key is not None:
        claim(session, by, key, "late_fee_waiver", f"late_fee_waiver:{waiver_id}")
    charge_id = session.scalar(select(LateFeeWaiver.charge_id).where(LateFeeWaiver.id == waiver_id))
    if charge_id is None:
        raise RuleViolation(_l("This waiver is not waiting for a decision."), rule="R-AFT-1")
    sub, charge = _locked_charge(session, charge_id)
    waiver = session.get(LateFeeWaiver, waiver_id, populate_existing=True)
    if waiver.status != "requested":
        raise already_decided(session, LateFeeWaiver, waiver_id, rule="R-AFT-1")
    refused = waiver_refusal(by, waiver)
    if refused is not None:
        raise refused
    if approve and waiver.amount > charge.outstanding:
        raise RuleViolation(_l("Only %(balance)s is outstanding on this late fee now: the waiver of %(amount)s "
                               "cannot be approved; reject it and ask again.",
                               balance=format_money(charge.outstanding), amount=format_money(waiver.amount)),
                            rule="R-AFT-1")
    if not decide_request(session, LateFeeWaiver, waiver_id, by, "approved" if approve else "rejected",
                          "approve_late_fee_waiver" if approve else "reject_late_fee_waiver"):
        raise already_decided(session, LateFeeWaiver, waiver_id, rule="R-AFT-1")
    if approve:
        with audit_context(session, actor=by, action="approve_late_fee_waiver"):
            charge.waived += waiver.amount
            session.flush()
    waiver = session.get(LateFeeWaiver, waiver_id, populate_existing=True)
    notify(session, [waiver.requested_by_id], "late_fee_waiver_decided",
           {"_t": f"late_fee_waiver_decided.{'approved' if approve else 'rejected'}", "no": sub.number,
            "amount": str(waiver.amount)}, "/admin/late_fee_waiver/")
    if key is not None:
        settle(session, key, waiver.status)
    return waiver
