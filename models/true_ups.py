"""Area true-up (面积补差, R-AFT-3), by 《商品房销售管理办法》 art. 20.

The surveyed area (实测面积) of a unit is entered, or imported per building; each live deal on it
is trued up against its contract area (the unit's area when the deal was made): the error ratio
= (surveyed − contract) / contract. Within ±3 % (inclusive) the difference is settled at the
contract unit price (price ÷ contract area); above +3 % the buyer pays only the 3 % part and the
developer bears the rest; below −3 % the developer refunds the 3 % part and refunds double beyond
it; beyond ±3 % either way the buyer may cancel (a cancellation change, R-CHG-4). What the buyer
pays becomes a charge (models.charges); what the developer refunds, a refund voucher. A building's
true-up is one batch with its totals.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text, and_, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context, record_many
from .base import Base, Money, in_list, office_today, utcnow
from .charges import Charge, add_charges
from .deals import Subscription, locked_subscription, via_subscription
from .errors import RuleViolation
from .inventory import Building, PriceListRejected, Unit, check_upload, sheet_rows
from .money import format_money
from .payments import PAYMENT_CHANNELS, Voucher, next_voucher_no
from .permissions import require
from .projects import check_entry_date
from .submissions import claim, settle
from .users import User

TRUE_UP_STATUSES = ("computed", "applied", "void")  # applied: its charge or voucher made
BATCH_STATUSES = ("draft", "applied")
LIMIT_PERCENT = Decimal("3")  # art. 20: ±3 %


class TrueUpBatch(Base):
    """A building's true-up: its deals computed together, applied together."""

    __tablename__ = "true_up_batch"
    __table_args__ = (CheckConstraint(in_list("status", BATCH_STATUSES), name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    surveyed_on: Mapped[dt.date]
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    applied_at: Mapped[dt.datetime | None]

    building: Mapped[Building] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    true_ups: Mapped[list["TrueUp"]] = relationship(back_populates="batch", order_by="TrueUp.id")

    def __str__(self) -> str:
        return f"{self.building} {self.surveyed_on.isoformat() if self.surveyed_on else ''}".strip()


class TrueUp(Base):
    """One deal's true-up: the areas, the ratio, and what each side pays."""

    __tablename__ = "true_up"
    __table_args__ = (
        CheckConstraint(in_list("status", TRUE_UP_STATUSES), name="status_known"),
        CheckConstraint("contract_area > 0 AND surveyed_area > 0", name="areas_positive"),
        CheckConstraint("buyer_pays >= 0 AND refund >= 0 AND developer_bears >= 0", name="amounts_not_negative"),
        CheckConstraint("buyer_pays = 0 OR refund = 0", name="one_direction"),
        # One true-up in force per deal.
        Index("uq_true_up_live", "subscription_id", unique=True,
              sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("true_up_batch.id", ondelete="RESTRICT"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="RESTRICT"), index=True)
    contract_area: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    surveyed_area: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    ratio_percent: Mapped[Decimal] = mapped_column(Numeric(9, 4))  # (surveyed − contract) / contract × 100
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 4))  # price ÷ contract area
    buyer_pays: Mapped[Money] = mapped_column(default=Decimal("0"))
    refund: Mapped[Money] = mapped_column(default=Decimal("0"))
    refund_double_part: Mapped[Money] = mapped_column(default=Decimal("0"), server_default="0")  # of `refund`
    developer_bears: Mapped[Money] = mapped_column(default=Decimal("0"))
    may_cancel: Mapped[bool] = mapped_column(default=False)  # beyond ±3 %
    status: Mapped[str] = mapped_column(String(20), default="computed")
    applied_on: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    batch: Mapped[TrueUpBatch | None] = relationship(back_populates="true_ups")
    subscription: Mapped[Subscription] = relationship()
    unit: Mapped[Unit] = relationship()

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} {self.ratio_percent}%"

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


# --- The rule (art. 20) -------------------------------------------------------------------------

FEN = Decimal("0.01")
RATIO_PLACES = Decimal("0.0001")
HUNDRED = Decimal("100")
SHARE = LIMIT_PERCENT / HUNDRED  # 0.03
TRUE_UP_DEAL = ("active", "contracted")  # the deals trued up: deposit in, not over (as payments take)
PAYABLE_DAYS = 30  # the buyer pays a true-up within 30 days of the notice
SURVEY_BAND = Decimal("0.5")  # a surveyed area beyond ±50 % of the contract's is a typing error


def _fen(amount: Decimal) -> Decimal:
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def true_up_amounts(contract_area, surveyed_area, price) -> dict:
    """The area true-up of one deal by 《商品房销售管理办法》第二十条 (R-AFT-3) — the one definition.

    C = contract area, S = surveyed area, p = price ÷ C (the contract unit price). ratio_percent =
    (S − C) ÷ C × 100, to 4 decimals. Within ±3 % (3 % itself included, compared exactly): the
    difference is settled at p — the buyer pays (S − C)·p, or the developer refunds (C − S)·p.
    Above +3 %: the buyer pays 3 %·C·p, the developer bears (S − 1.03·C)·p. Below −3 %: the
    developer refunds 3 %·C·p and double the part beyond, 2·(0.97·C − S)·p (`refund_double_part`).
    Beyond ±3 % either way the buyer may cancel (`may_cancel`). Areas are exact Decimals; each
    money part is rounded to the fen once (ROUND_HALF_UP)."""
    c, s, price = Decimal(contract_area), Decimal(surveyed_area), Decimal(price)
    if c <= 0 or s <= 0:
        raise ValueError("areas must be positive")
    diff = s - c
    ratio = (diff * HUNDRED / c).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)
    zero = Decimal("0.00")
    out = {"ratio_percent": ratio, "unit_price": (price / c).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP),
           "buyer_pays": zero, "refund": zero, "refund_double_part": zero, "developer_bears": zero,
           "may_cancel": abs(diff) > SHARE * c}

    def at_price(area: Decimal) -> Decimal:  # an area at the contract unit price, rounded once
        return _fen(area * price / c)

    if abs(diff) <= SHARE * c:
        if diff > 0:
            out["buyer_pays"] = at_price(diff)
        elif diff < 0:
            out["refund"] = at_price(-diff)
    elif diff > 0:
        out["buyer_pays"] = at_price(SHARE * c)
        out["developer_bears"] = at_price(s - (1 + SHARE) * c)
    else:
        double = at_price(2 * ((1 - SHARE) * c - s))
        out["refund_double_part"] = double
        out["refund"] = at_price(SHARE * c) + double
    return out


# --- Surveyed areas ---------------------------------------------------------------------------------

_AREA_NUMBER = re.compile(r"[0-9]{1,8}(?:\.[0-9]+)?", re.ASCII)  # Numeric(10, 2): up to 99,999,999.99
_AREA_UNITS = ("平方米", "平米", "m²", "m2", "㎡")  # a unit after the number is allowed, and dropped
_AREA_WIDTH = str.maketrans("０１２３４５６７８９．　ｍ", "0123456789. m")


def parse_area(value) -> Decimal:
    """A surveyed area (R-AFT-3) as typed or read from a sheet: square metres, a positive decimal
    with at most 2 decimals ("89.37", "89.37 ㎡", full-width digits); anything else — a sign, an
    exponent, a formula, NaN, thousands separators, a third decimal — refused with a message about
    an area (not money)."""
    if isinstance(value, bool) or value is None:
        raise RuleViolation(_l("Enter the surveyed area in square metres."), rule="R-AFT-3")
    if isinstance(value, (int, Decimal)):
        area = Decimal(value)
        if not area.is_finite() or area != area.quantize(FEN):
            raise _bad_area(value)
    else:
        text = str(value).translate(_AREA_WIDTH).strip()
        for unit in _AREA_UNITS:
            if text.lower().endswith(unit):
                text = text[:-len(unit)].strip()
                break
        if not text:
            raise RuleViolation(_l("Enter the surveyed area in square metres."), rule="R-AFT-3")
        if not _AREA_NUMBER.fullmatch(text) or len(text.partition(".")[2]) > 2:
            raise _bad_area(value)
        area = Decimal(text)
    if area <= 0:
        raise RuleViolation(_l("The surveyed area must be more than 0 m²."), rule="R-AFT-3")
    return area


def _bad_area(value) -> RuleViolation:
    return RuleViolation(_l("The surveyed area is written in square metres as a number with at most 2 decimals, "
                            "e.g. 89.37; “%(typed)s” is not one.", typed=str(value)[:30]), rule="R-AFT-3")


def _checked_area(value, unit: Unit) -> Decimal:
    """A surveyed area as typed (`parse_area`), within ±50 % of the contract area (else a typing error)."""
    area = parse_area(value)
    if abs(area - unit.area) > SURVEY_BAND * unit.area:
        raise RuleViolation(_l("A surveyed area of %(area)s m² is more than 50 %% away from the contract's "
                               "%(contract)s m²: check what was typed.", area=area, contract=unit.area),
                            rule="R-AFT-3")
    return area


def _check_date(surveyed_on, today) -> dt.date:
    if not isinstance(surveyed_on, dt.date):
        raise RuleViolation(_l("Enter the date of the survey."), rule="R-AFT-3")
    if surveyed_on > today:
        raise RuleViolation(_l("The survey date cannot be in the future."), rule="R-AFT-3")
    return surveyed_on


def enter_surveyed_area(session, by, unit_id: int, area, surveyed_on: dt.date,
                        today: dt.date | None = None) -> Unit:
    """Sales control enters one unit's surveyed area (实测面积) (R-AFT-3); audited."""
    require(by, "true_up.survey")
    today = today or office_today()
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise RuleViolation(_l("This unit does not exist."), rule="R-AFT-3")
    area = _checked_area(area, unit)
    _check_date(surveyed_on, today)
    with audit_context(session, actor=by, action="true_up_survey"):
        unit.surveyed_area, unit.surveyed_on = area, surveyed_on
        session.flush()
    return unit


SURVEY_COLUMNS = {"房号": "unit", "unit": "unit", "unit number": "unit", "实测面积": "area",
                  "surveyed area": "area", "surveyed_area": "area"}


def read_surveyed_areas(content: bytes, filename: str) -> list[dict]:
    """Rows {"unit", "area", "_line"} of a CSV/XLSX of surveyed areas (columns 房号 and 实测面积),
    through the price-list import's reader and upload checks (PriceListRejected says why)."""
    check_upload(content, filename)
    rows = []
    reader = sheet_rows(content, filename)
    try:
        header = next(reader, None) or ()
        fields = [SURVEY_COLUMNS.get(str(h or "").strip().lower()) for h in header]
        if "unit" not in fields or "area" not in fields:
            raise PriceListRejected([(1, gettext("Columns needed: unit number (房号) and surveyed area (实测面积)."))])
        for line, values in enumerate(reader, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            if len(rows) >= 20_000:
                raise PriceListRejected([(line, gettext("The file has too many rows."))])
            row = {f: v for f, v in zip(fields, values) if f}
            row["_line"] = line
            rows.append(row)
    except PriceListRejected:
        raise
    except Exception:
        raise PriceListRejected([(0, gettext("The file could not be read as CSV or XLSX."))]) from None
    finally:
        reader.close()
    return rows


def import_surveyed_areas(session, by, building_id: int, rows: list[dict], surveyed_on: dt.date | None = None,
                          today: dt.date | None = None) -> int:
    """The surveyed areas of a building's units from rows of `read_surveyed_areas` (R-AFT-3): every
    row checked first, nothing written unless all are good (PriceListRejected lists each row's
    problem in the reader's language). Returns the number of units updated."""
    require(by, "true_up.survey")
    today = today or office_today()
    surveyed_on = _check_date(surveyed_on or today, today)
    building = session.get(Building, building_id)
    if building is None:
        raise RuleViolation(_l("This building does not exist."), rule="R-AFT-3")
    units = {u.number: u for u in session.scalars(select(Unit).where(Unit.building_id == building_id))}
    errors, clean, seen = [], [], set()
    for count, row in enumerate(rows, start=1):
        line = row.get("_line", count + 1)
        number = str(row.get("unit") or "").strip()
        unit = units.get(number)
        if unit is None:
            errors.append((line, gettext("unit %(u)s is not in building %(b)s", u=number or "?", b=building.name)))
            continue
        if number in seen:
            errors.append((line, gettext("unit %(u)s appears twice in the file", u=number)))
            continue
        seen.add(number)
        try:
            clean.append((unit, _checked_area(row.get("area"), unit)))
        except RuleViolation as exc:
            errors.append((line, str(exc.message)))
    if not rows:
        errors.append((1, gettext("The file has no rows.")))
    if errors:
        raise PriceListRejected(errors)
    with audit_context(session, actor=by, action="true_up_survey"):
        for unit, area in clean:
            unit.surveyed_area, unit.surveyed_on = area, surveyed_on
        session.flush()
    return len(clean)


# --- A building's batch -------------------------------------------------------------------------------

def compute_batch(session, by, building_id: int, surveyed_on: dt.date | None = None,
                  today: dt.date | None = None) -> TrueUpBatch:
    """A building's true-up (R-AFT-3): one TrueUp per live deal (active or contracted) on its units
    with a surveyed area and no true-up in force (uq_true_up_live); contract area = the unit's
    area, price = the deal's. Units without a deal just keep their surveyed area. One read of the
    deals, one insert of the rows."""
    require(by, "true_up.survey")
    today = today or office_today()
    surveyed_on = _check_date(surveyed_on or today, today)
    building = session.get(Building, building_id)
    if building is None:
        raise RuleViolation(_l("This building does not exist."), rule="R-AFT-3")
    trued = select(TrueUp.subscription_id).where(TrueUp.subscription_id == Subscription.id, in_force_on_unit())
    rows = session.execute(
        select(Subscription.id, Subscription.project_id, Unit.id, Unit.area, Unit.surveyed_area, Subscription.price)
        .join(Unit, Subscription.unit_id == Unit.id)
        .where(Unit.building_id == building_id, Unit.surveyed_area.is_not(None),
               Subscription.status.in_(TRUE_UP_DEAL), ~trued.exists())
        .order_by(Unit.floor, Unit.position, Unit.id)).all()
    if not rows:
        raise RuleViolation(_l("No deal of this building has a surveyed area and no true-up yet: enter or "
                               "import the surveyed areas first."), rule="R-AFT-3")
    with audit_context(session, actor=by, action="true_up_compute"):
        batch = TrueUpBatch(project_id=building.project_id, building_id=building_id, surveyed_on=surveyed_on,
                            created_by_id=by.id)
        session.add(batch)
        session.flush()
        try:
            with session.begin_nested():  # two computations at once: uq_true_up_live lets one through
                session.add_all([TrueUp(batch_id=batch.id, project_id=project_id, subscription_id=sub_id,
                                        unit_id=unit_id, contract_area=area, surveyed_area=surveyed,
                                        **true_up_amounts(area, surveyed, price))
                                 for sub_id, project_id, unit_id, area, surveyed, price in rows])
                session.flush()
        except IntegrityError:
            raise RuleViolation(_l("Another true-up of these deals was computed meanwhile; reload."),
                                rule="R-AFT-3") from None
    return batch


def batch_totals(session, batch_ids) -> dict:
    """{batch id: totals} from its true-ups (the one definition): units, up, down, beyond 3 %,
    buyers pay, refunds, of which double, developer bears. Void true-ups count nowhere."""
    ids = list(batch_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(TrueUp.batch_id, func.count(), func.sum(func.cast(TrueUp.surveyed_area > TrueUp.contract_area, Integer)),
               func.sum(func.cast(TrueUp.surveyed_area < TrueUp.contract_area, Integer)),
               func.sum(func.cast(TrueUp.may_cancel, Integer)), func.sum(TrueUp.buyer_pays), func.sum(TrueUp.refund),
               func.sum(TrueUp.refund_double_part), func.sum(TrueUp.developer_bears))
        .where(TrueUp.batch_id.in_(ids), TrueUp.status != "void").group_by(TrueUp.batch_id)).all()
    zero = Decimal("0.00")
    empty = {"units": 0, "up": 0, "down": 0, "beyond": 0, "buyers_pay": zero, "refunds": zero, "double": zero,
             "developer_bears": zero}
    out = {i: dict(empty) for i in ids}
    for batch_id, units, up, down, beyond, pays, refunds, double, bears in rows:
        out[batch_id] = {"units": units, "up": int(up or 0), "down": int(down or 0), "beyond": int(beyond or 0),
                         "buyers_pay": Decimal(pays or 0), "refunds": Decimal(refunds or 0),
                         "double": Decimal(double or 0), "developer_bears": Decimal(bears or 0)}
    return out


def apply_batch(session, by, batch_id: int, today: dt.date | None = None, key: str | None = None) -> TrueUpBatch:
    """Finance applies a computed batch (R-AFT-3), in one transaction: what a buyer pays becomes a
    charge due in 30 days (models.charges; paid through charges.record_charge_payment); a refund
    waits for finance's refund voucher (`refund_true_up`). The batch moves draft → applied by a
    conditional UPDATE: applying twice does nothing the second time (returns the batch as is). A
    deal that ends later owes its charge no more (charges.charges_owed counts live deals only)."""
    require(by, "true_up.apply")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "true_up_apply", f"true_up_batch:{batch_id}")
    moved = session.execute(update(TrueUpBatch).where(TrueUpBatch.id == batch_id, TrueUpBatch.status == "draft")
                            .values(status="applied", applied_by_id=by.id, applied_at=utcnow())
                            .execution_options(synchronize_session=False)).rowcount
    batch = session.get(TrueUpBatch, batch_id, populate_existing=True)
    if batch is None:
        raise RuleViolation(_l("This true-up batch does not exist."), rule="R-AFT-3")
    if not moved:
        return batch
    due_on = today + dt.timedelta(days=PAYABLE_DAYS)
    in_batch = and_(TrueUp.batch_id == batch_id, TrueUp.status == "computed")
    with audit_context(session, actor=by, action="true_up_apply"):
        # Deals that ended since the computation: nothing to settle (their true-ups void).
        ended = session.scalars(update(TrueUp).where(in_batch, TrueUp.subscription_id.in_(
            select(Subscription.id).where(Subscription.status.not_in(TRUE_UP_DEAL))))
            .values(status="void").returning(TrueUp.id).execution_options(synchronize_session=False)).all()
        record_many(session, "true_up", "true_up_apply", by, [(i, {"status": ["computed", "void"]}) for i in ended])
        # The charges in one INSERT (charges.add_charges), not a flush per buyer.
        add_charges(session, [
            {"project_id": project_id, "subscription_id": true_up.subscription_id, "kind": "area_true_up",
             "amount": true_up.buyer_pays, "due_on": due_on, "true_up_id": true_up.id,
             "note": gettext("Area true-up: %(ratio)s %%", ratio=true_up.ratio_percent)}
            for true_up, project_id in session.execute(
                select(TrueUp, Subscription.project_id).join(Subscription, TrueUp.subscription_id == Subscription.id)
                .where(in_batch, TrueUp.buyer_pays > 0).order_by(TrueUp.id)).all()])
        applied = session.scalars(update(TrueUp).where(in_batch).values(status="applied", applied_on=today)
                                  .returning(TrueUp.id).execution_options(synchronize_session=False)).all()
        record_many(session, "true_up", "true_up_apply", by,
                    [(i, {"status": ["computed", "applied"], "applied_on": [None, today]}) for i in applied])
    session.expire_all()
    if key is not None:
        settle(session, key, f"true_up_batch:{batch_id}")
    return batch


def refund_due():
    """A WHERE clause on `true_up`: applied, with a refund, not yet refunded by a voucher."""
    return and_(TrueUp.status == "applied", TrueUp.refund > 0,
                ~select(Voucher.id).where(Voucher.true_up_id == TrueUp.id).exists())


def refund_true_up(session, by, true_up_id: int, *, channel: str, issued_on: dt.date, key: str | None = None,
                   today: dt.date | None = None):
    """Finance pays a true-up's refund (R-AFT-3) as a numbered refund voucher on the live deal (the
    project's gap-free voucher sequence; the deal's `held` drops by it, kept by the triggers). Once
    per true-up: the partial unique index uq_voucher_true_up refuses a second, and the deal's lock
    orders two clicks."""
    require(by, "true_up.refund")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "true_up_refund", f"true_up:{true_up_id}")
    true_up = session.get(TrueUp, true_up_id)
    if true_up is None:
        raise RuleViolation(_l("This true-up does not exist."), rule="R-AFT-3")
    sub = locked_subscription(session, true_up.subscription_id)
    session.refresh(true_up)
    if session.scalar(select(Voucher.number).where(Voucher.true_up_id == true_up.id)):
        raise RuleViolation(_l("This true-up has been refunded already."), rule="R-AFT-3")
    if true_up.status != "applied" or true_up.refund <= 0:
        raise RuleViolation(_l("Only an applied true-up with a refund can be refunded."), rule="R-AFT-3")
    if sub.status not in TRUE_UP_DEAL:
        raise RuleViolation(_l("This deal is over: its money is settled on the settlement worklist."),
                            rule="R-AFT-3")
    if channel not in PAYMENT_CHANNELS:
        raise RuleViolation(_l("Say how the refund is paid."), rule="R-AFT-3")
    check_entry_date(sub.project, issued_on, today, _l("The voucher date"), "R-AFT-3", not_before=sub.subscribed_on)
    with audit_context(session, actor=by, action="true_up_refund"):
        voucher = Voucher(project_id=sub.project_id, subscription_id=sub.id,
                          number=next_voucher_no(session, sub.project_id), kind="refund", amount=true_up.refund,
                          issued_on=issued_on, channel=channel, true_up_id=true_up.id, recorded_by_id=by.id,
                          reason=gettext("Area true-up refund (ratio %(ratio)s %%)", ratio=true_up.ratio_percent))
        session.add(voucher)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise RuleViolation(_l("This true-up has been refunded already."), rule="R-AFT-3") from None
    if key is not None:
        settle(session, key, f"{voucher.number} {format_money(voucher.amount)}")
    return voucher


def in_force_on_unit():
    """A WHERE clause on `true_up` (the query joins `subscription`): the deal's true-up in force —
    not void, and of the unit the deal is on now (a swap leaves the old unit's behind, R-CHG-2)."""
    return and_(TrueUp.status != "void", TrueUp.unit_id == Subscription.unit_id)


def true_up_of(session, subscription_id: int) -> TrueUp | None:
    """The deal's true-up in force, if any."""
    return session.scalar(select(TrueUp).join(Subscription, Subscription.id == TrueUp.subscription_id)
                          .where(TrueUp.subscription_id == subscription_id, in_force_on_unit()))


def may_cancel_by_true_up(session, subscription_id: int) -> bool:
    """Beyond ±3 % the buyer may cancel (R-AFT-3): the developer then refunds all that was paid,
    with the interest on it (models.change_apply.true_up_interest)."""
    return bool(session.scalar(select(TrueUp.id).join(Subscription, Subscription.id == TrueUp.subscription_id)
                               .where(TrueUp.subscription_id == subscription_id, in_force_on_unit(),
                                      TrueUp.may_cancel.is_(True))))


def void_true_ups_of_unit(session, by, subscription_id: int, unit_id: int, action: str) -> list[int]:
    """A unit swap (R-CHG-2, models.change_apply) leaves unit `unit_id`: the deal's true-ups of it
    become void, and their charges void (`Charge.void_at`: nothing more owed on them, nowhere — the
    deal's page, the handover, the charges grid). What the buyer paid on such a charge stays held on
    the deal, in the plan's money no more: finance sees it on the charges grid (paid, void since)
    and in the deal's held money. Audited under `action`. Returns the true-ups voided."""
    was = dict(session.execute(select(TrueUp.id, TrueUp.status).where(
        TrueUp.subscription_id == subscription_id, TrueUp.unit_id == unit_id, TrueUp.status != "void")).all())
    if not was:
        return []
    ids = session.scalars(update(TrueUp).where(TrueUp.id.in_(was), TrueUp.status != "void")
                          .values(status="void").returning(TrueUp.id)
                          .execution_options(synchronize_session=False)).all()
    now = utcnow()
    charges = session.scalars(update(Charge).where(Charge.true_up_id.in_(ids), Charge.void_at.is_(None))
                              .values(void_at=now).returning(Charge.id)
                              .execution_options(synchronize_session=False)).all()
    record_many(session, "true_up", action, by, [(i, {"status": [was[i], "void"]}) for i in ids])
    record_many(session, "charge", action, by, [(i, {"void_at": [None, now.isoformat()]}) for i in charges])
    return list(ids)
