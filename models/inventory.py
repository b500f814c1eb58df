"""Buildings and units under sales control: holds, withholding, the price-list import. The board
and sell-through, which read the deals holding units, are in models.board."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_babel import lazy_gettext as _l

from .audit import audit_context, record_many
from .base import Base, Money, in_list, utcnow
from .errors import RuleViolation
from .leads import Lead, visible_lead, works_on
from .permissions import can_do
from .projects import Project

UNIT_STATUSES = ("available", "held", "subscribed", "signed", "withheld")


class Building(Base):
    __tablename__ = "building"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("floors >= 1", name="floors_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    floors: Mapped[int] = mapped_column(default=1)

    project: Mapped[Project] = relationship(back_populates="buildings")
    units: Mapped[list["Unit"]] = relationship(back_populates="building")

    def __str__(self) -> str:
        return f"{self.project.name} {self.name}" if self.project else self.name


class Unit(Base):
    __tablename__ = "unit"
    __table_args__ = (
        UniqueConstraint("building_id", "number"),
        CheckConstraint(in_list("status", UNIT_STATUSES), name="status_known"),
        CheckConstraint("area > 0", name="area_positive"),
        CheckConstraint("list_price > 0", name="list_price_positive"),
        CheckConstraint("(status = 'held') = (held_for_lead_id IS NOT NULL)", name="hold_has_lead"),
        Index("ix_unit_building_status", "building_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="RESTRICT"))
    floor: Mapped[int]
    position: Mapped[int]
    number: Mapped[str] = mapped_column(String(20))
    layout: Mapped[str] = mapped_column(String(40))
    area: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    list_price: Mapped[Money]
    status: Mapped[str] = mapped_column(String(20), default="available")
    held_for_lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"))
    held_until: Mapped[dt.datetime | None]
    held_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    # R-AFT-3: the surveyed area (实测面积) once measured, and when; `area` stays the contract's.
    surveyed_area: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    surveyed_on: Mapped[dt.date | None]
    # R-AFT-4: the keys handed over (models.handovers); the unit stays `signed`.
    handed_over_on: Mapped[dt.date | None]

    building: Mapped[Building] = relationship(back_populates="units")

    def __str__(self) -> str:
        return f"{self.building.name}-{self.number}" if self.building else self.number


def unit_names_like(pattern: str):
    """SELECT of the ids of units whose displayed name — "1栋-2301", the building's name, a dash
    and the unit's number, as every grid shows a unit (Unit.__str__) — matches the ILIKE `pattern`."""
    from sqlalchemy import select
    return (select(Unit.id).join(Building, Building.id == Unit.building_id)
            .where((Building.name + "-" + Unit.number).ilike(pattern)))


# ---------------------------------------------------------------------------------------------
# Domain operations on units (R-SC-1, R-SC-2). The caller commits.

def _unit_audit(session, by, action, changes_by_unit):
    record_many(session, "unit", action, by, list(changes_by_unit))


def _conditional_unit_update(session, unit_id, where, values) -> bool:
    """UPDATE unit … WHERE id = :id AND <where>: True when the row matched (the guard held)."""
    from sqlalchemy import update
    from sqlalchemy.orm.util import identity_key
    result = session.execute(update(Unit).where(Unit.id == unit_id, *where).values(**values)
                             .execution_options(synchronize_session=False))
    loaded = session.identity_map.get(identity_key(Unit, unit_id))
    if loaded is not None:
        session.expire(loaded)  # the row changed under the ORM: read it again when asked
    return result.rowcount == 1


def hold_refusal(by, unit: Unit) -> RuleViolation | None:
    """Why `by` may not hold `unit` now (None: they may). The roles of the permission table
    (unit.hold), narrowed by the project's own setting (hold_roles, R-PAY-7); an available unit.
    The unit's card shows the button only where this is None."""
    project = unit.building.project
    allowed = {r.strip() for r in project.hold_roles.split(",") if r.strip()}
    if not can_do(by, "unit.hold") or not by.has_role(*allowed):
        return RuleViolation(_l("Your role may not hold units in this project."), rule="R-ALL-1")
    if unit.status != "available":
        return RuleViolation(_l("Unit %(unit)s is no longer available: someone else has just held or "
                                "subscribed it.", unit=unit.number), rule="R-SC-2")
    return None


def release_refusal(by, unit: Unit) -> RuleViolation | None:
    """Why `by` may not release the hold on `unit` (None: they may): whoever held it, or sales
    control, a manager or an administrator (unit.release_any)."""
    if unit.status != "held":
        return RuleViolation(_l("This unit is not held."), rule="R-SC-2")
    if not can_do(by, "unit.release") or (unit.held_by_id != by.id and not can_do(by, "unit.release_any")):
        return RuleViolation(_l("Only who held the unit, sales control or a manager may release it."),
                             rule="R-ALL-1")
    return None


def subscribe_refusal(session, by, unit: Unit) -> RuleViolation | None:
    """Why `by` may not subscribe `unit` now (None: they may): agents only (subscription.create);
    an available unit, or one held for a customer of theirs (R-SC-2)."""
    if not can_do(by, "subscription.create"):
        return RuleViolation(_l("Your role does not allow this operation."), rule="R-ALL-1")
    if unit.status == "withheld":
        return RuleViolation(_l("Unit %(unit)s is not for sale (withheld by sales control).",
                                unit=unit.number), rule="R-SC-2")
    if unit.status == "held":
        lead = session.get(Lead, unit.held_for_lead_id)
        if lead is not None and works_on(by, lead):
            return None
    if unit.status != "available":
        return RuleViolation(_l("Unit %(unit)s has just been subscribed or held by someone else; "
                                "choose another unit.", unit=unit.number), rule="R-SC-2")
    return None


def hold_unit(session, by, *, unit_id: int, lead_id: int, hours: int | None = None,
              now: dt.datetime | None = None):
    """Hold an available unit for one customer for N hours (project setting: hours, who may), from
    `now` (the clock by default)."""
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise RuleViolation(_l("This unit does not exist."), rule="R-SC-2")
    project = unit.building.project
    refused = hold_refusal(by, unit)
    if refused is not None and refused.rule == "R-ALL-1":
        raise refused
    lead = visible_lead(session, by, lead_id)
    if lead.project_id != project.id:
        raise RuleViolation(_l("The customer is registered in another project."), rule="R-SC-2")
    hours = hours or project.hold_hours
    if not 1 <= hours <= project.hold_hours:
        raise RuleViolation(_l("A hold lasts 1 to %(n)d hours in this project.", n=project.hold_hours),
                            rule="R-SC-2")
    until = (now or utcnow()) + dt.timedelta(hours=hours)  # the hold's end (R-SC-2)
    if not _conditional_unit_update(session, unit.id, [Unit.status == "available"],
                                    {"status": "held", "held_for_lead_id": lead.id,
                                     "held_until": until, "held_by_id": by.id}):
        raise RuleViolation(_l("Unit %(unit)s is no longer available: someone else has just held or "
                               "subscribed it.", unit=unit.number), rule="R-SC-2")
    _unit_audit(session, by, "hold", [(unit.id, {"status": ["available", "held"],
                                                 "held_for_lead_id": [None, lead.id]})])
    return unit


def release_hold(session, by, unit_id: int):
    """End a hold early: the holder, sales control or a manager (release_refusal)."""
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise RuleViolation(_l("This unit is not held."), rule="R-SC-2")
    refused = release_refusal(by, unit)
    if refused is not None:
        raise refused
    lead_id = unit.held_for_lead_id
    if not _conditional_unit_update(session, unit.id, [Unit.status == "held"], _NO_HOLD):
        raise RuleViolation(_l("This unit is not held."), rule="R-SC-2")
    _unit_audit(session, by, "release_hold", [(unit.id, {"status": ["held", "available"],
                                                         "held_for_lead_id": [lead_id, None]})])


_NO_HOLD = {"status": "available", "held_for_lead_id": None, "held_until": None, "held_by_id": None}


def release_expired_holds(session, now: dt.datetime | None = None) -> int:
    """Holds past their time return their units to available (set-based, idempotent)."""
    from sqlalchemy import select, update
    now = now or utcnow()
    expired = session.execute(select(Unit.id, Unit.held_for_lead_id).where(
        Unit.status == "held", Unit.held_until < now).with_for_update()).all()
    if not expired:
        return 0
    session.execute(update(Unit).where(Unit.id.in_([u for u, _ in expired]), Unit.status == "held",
                                       Unit.held_until < now)
                    .values(**_NO_HOLD).execution_options(synchronize_session=False))
    _unit_audit(session, None, "hold_expired", [(u, {"status": ["held", "available"],
                                                     "held_for_lead_id": [lead, None]})
                                                for u, lead in expired])
    session.expire_all()
    return len(expired)


def set_withheld(session, by, unit_id: int, withheld: bool):
    """Sales control takes a unit off sale (销控) or puts it back (R-SC-1)."""
    from flask_babel import lazy_gettext as _l

    from .errors import RuleViolation
    from .permissions import require
    require(by, "unit.withhold")
    before, after = ("available", "withheld") if withheld else ("withheld", "available")
    unit = session.get(Unit, unit_id)
    if unit is None or not _conditional_unit_update(session, unit_id, [Unit.status == before],
                                                    {"status": after}):
        raise RuleViolation(_l("Only an available unit can be withheld, and only a withheld one "
                               "released."), rule="R-SC-1")
    _unit_audit(session, by, "withhold" if withheld else "release", [(unit_id, {"status": [before, after]})])


# ---------------------------------------------------------------------------------------------
# Price-list import (sales control): all rows good, or nothing imported.

PRICE_LIST_COLUMNS = {  # accepted header -> field
    "楼盘": "project", "project": "project", "楼栋": "building", "building": "building",
    "楼层": "floor", "floor": "floor", "房号": "unit", "unit": "unit", "户型": "layout",
    "layout": "layout", "建筑面积": "area", "面积": "area", "area": "area", "单价": "unit_price",
    "unit_price": "unit_price", "总价": "total_price", "total_price": "total_price",
    "位置": "position", "position": "position",
}
REQUIRED_PRICE_LIST = ("project", "building", "floor", "unit", "layout", "area")


# Limits that keep a hostile or mistaken file from taking a worker down (issue 18, item 4): a
# project has some thousands of units, so a price list has at most this many rows; reading stops
# at the first row beyond it. An XLSX is a zip of XML: its members may unpack to at most this
# much (their declared sizes, which Python's zipfile also enforces while reading), checked
# before anything is parsed.
MAX_PRICE_LIST_ROWS = 20_000
MAX_XLSX_UNPACKED = 32 * 1024 * 1024
MAX_XLSX_MEMBERS = 200
FIELD_HEADERS = {"project": "楼盘", "building": "楼栋", "floor": "楼层", "unit": "房号", "layout": "户型",
                 "area": "建筑面积", "unit_price": "单价", "total_price": "总价", "position": "位置"}


class PriceListRejected(Exception):
    """The file was not imported; `errors` is a list of (row number, message), row 1 = header,
    0 = the file as a whole; `columns[i]` names the column of `errors[i]` ("" for none)."""

    def __init__(self, errors, columns=None):
        super().__init__(f"{len(errors)} problems")
        self.errors = errors
        self.columns = list(columns) if columns is not None else [""] * len(errors)

    def rows(self) -> list[list]:
        """[[row, column, message], …], as kept on the import (JSON)."""
        return [[row, column, str(message)] for (row, message), column in zip(self.errors, self.columns)]


class _Bad(ValueError):
    """A problem with one cell of a row: its field (FIELD_HEADERS) and the message."""

    def __init__(self, field, message):
        super().__init__(message)
        self.column = FIELD_HEADERS.get(field, "")


def _unreadable():
    from flask_babel import gettext
    return PriceListRejected([(0, gettext("The file could not be read as CSV or XLSX."))])


def check_upload(content: bytes, filename: str) -> None:
    """What can be refused before reading a single row, in constant time: the file's kind, and
    an XLSX whose zip members would unpack to more than MAX_XLSX_UNPACKED (a zip bomb: a few
    hundred KB that become gigabytes of XML). PriceListRejected says why."""
    import io
    import zipfile

    from flask_babel import gettext
    name = (filename or "").lower()
    if not name.endswith((".csv", ".xlsx")):
        raise PriceListRejected([(0, gettext("Upload a .csv or .xlsx file."))])
    if not content:
        raise PriceListRejected([(1, gettext("The file has no rows."))])
    if name.endswith(".xlsx"):
        try:
            members = zipfile.ZipFile(io.BytesIO(content)).infolist()  # the central directory only
        except (zipfile.BadZipFile, OSError, ValueError):
            raise _unreadable() from None
        unpacked = sum(member.file_size for member in members)
        if len(members) > MAX_XLSX_MEMBERS or unpacked > MAX_XLSX_UNPACKED:
            raise PriceListRejected([(0, gettext(
                "This XLSX file would unpack to %(size)s MB, more than a price list can need (at most "
                "%(limit)s MB): it was not opened. Save the price list again from Excel, or as CSV.",
                size=f"{unpacked / 1048576:,.0f}", limit=MAX_XLSX_UNPACKED // 1048576))])


def _sheet_rows(content: bytes, name: str):
    """The rows of the file as tuples of cell values, header first, one at a time: openpyxl's
    read-only mode streams the sheet's XML, csv reads line by line (UTF-8, or GB18030 as Chinese
    Excel saves it)."""
    import csv
    import io
    if name.endswith(".xlsx"):
        import openpyxl
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            yield from book.worksheets[0].iter_rows(values_only=True)
        finally:
            book.close()
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:  # Excel on a Chinese Windows saves CSV in GBK (within GB18030)
            text = content.decode("gb18030")
        yield from csv.reader(io.StringIO(text, newline=""))


def sheet_rows(content: bytes, filename: str):
    """The rows of an uploaded CSV/XLSX (header first), as the price-list import reads them; the
    caller runs `check_upload` first. Other imports (surveyed areas, R-AFT-3) read through it."""
    return _sheet_rows(content, (filename or "").lower())


def read_price_list(content: bytes, filename: str, max_rows: int | None = None) -> list[dict]:
    """Rows of a CSV or XLSX price list as dicts keyed by field name (and "_line", the row's line
    in the file); PriceListRejected if the file or its columns cannot be read, or when it has more
    than `max_rows` (MAX_PRICE_LIST_ROWS) rows — found at the first row too many, without reading
    on. Blank lines are skipped."""
    from flask_babel import gettext
    limit = MAX_PRICE_LIST_ROWS if max_rows is None else max_rows
    check_upload(content, filename)
    reader = _sheet_rows(content, (filename or "").lower())
    rows: list[dict] = []
    try:
        header = next(reader, None) or ()
        headers = [PRICE_LIST_COLUMNS.get(str(h or "").strip().lower(), PRICE_LIST_COLUMNS.get(str(h or "").strip()))
                   for h in header]
        missing = [c for c in REQUIRED_PRICE_LIST if c not in headers]
        if missing or not ({"unit_price", "total_price"} & set(headers)):
            from flask_babel import get_locale
            chinese = str(get_locale() or "zh").startswith("zh")  # the headers by the reader's names
            names = FIELD_HEADERS if chinese else {c: c for c in FIELD_HEADERS}
            raise PriceListRejected([(1, gettext(
                "Columns needed: project, building, floor, unit, layout, area, and unit_price or total_price. "
                "Missing: %(missing)s",
                missing=", ".join(names[c] for c in missing) or ("单价/总价" if chinese else "unit_price/total_price")))])
        for line, values in enumerate(reader, start=2):
            if all(value is None or str(value).strip() == "" for value in values):
                continue
            if len(rows) == limit:
                raise PriceListRejected([(line, gettext(
                    "The file has more than %(limit)s rows, more than a project has units: nothing was "
                    "imported. Split it, e.g. by building.", limit=f"{limit:,}"))])
            row = {field: value for field, value in zip(headers, values) if field}
            row["_line"] = line
            rows.append(row)
    except PriceListRejected:
        raise
    except Exception:
        raise _unreadable() from None
    finally:
        reader.close()
    return rows


def import_price_list(session, by, rows: list[dict], progress=None) -> dict:
    """Create or re-price units from validated rows; every row is checked first and nothing is
    written unless all are good (PriceListRejected lists every problem with its row and column).
    `progress(n)` is told every 500 rows checked."""
    from flask_babel import gettext
    from sqlalchemy import select

    from .permissions import require
    require(by, "unit.import")
    projects = {p.code: p for p in session.scalars(select(Project))}
    projects.update({p.name: p for p in projects.copy().values()})
    errors, columns, clean, seen = [], [], [], set()

    def number(value, what, places=2):
        # The one reader of amounts (models/money.py); its message names the problem.
        from .errors import RuleViolation
        from .money import parse_amount
        try:
            return parse_amount("" if value is None else str(value), what, places=places, rule=None)
        except RuleViolation as exc:
            raise ValueError(str(exc)) from None

    for count, row in enumerate(rows, start=1):
        index = row.get("_line", count + 1)
        if progress is not None and count % 500 == 0:
            progress(count)
        try:
            project = projects.get(str(row.get("project") or "").strip())
            if project is None:
                raise _Bad("project", gettext("unknown project %(p)s", p=row.get("project")))
            building = str(row.get("building") or "").strip()
            unit_no = str(row.get("unit") or "").strip()
            layout = str(row.get("layout") or "").strip()
            if not building or not unit_no or not layout:
                raise _Bad("building" if not building else "unit" if not unit_no else "layout",
                           gettext("building, unit and layout are required"))
            try:
                floor = int(str(row.get("floor")).strip())
            except ValueError:
                raise _Bad("floor", gettext("the floor must be a whole number")) from None
            position = row.get("position")
            try:
                position = int(str(position).strip()) if position not in (None, "") else None
            except ValueError:
                raise _Bad("position", gettext("the position must be a whole number")) from None
            try:
                area = number(row.get("area"), gettext("the area"))
            except ValueError as exc:
                raise _Bad("area", str(exc)) from None
            total = row.get("total_price")
            price_field = "total_price" if total not in (None, "") else "unit_price"
            try:
                price = (number(total, gettext("the total price")) if total not in (None, "")
                         else number(row.get("unit_price"), gettext("the price per m²")) * area
                         ).quantize(Decimal("0.01"))
            except ValueError as exc:
                raise _Bad(price_field, str(exc)) from None
            if price >= Decimal("1000000000000"):
                raise _Bad(price_field, gettext("the price is too large"))
            key = (project.id, building, unit_no)
            if key in seen:
                raise _Bad("unit", gettext("unit %(u)s of %(b)s appears twice in the file", u=unit_no,
                                           b=building))
            seen.add(key)
            clean.append((project, building, floor, position, unit_no, layout, area, price))
        except ValueError as exc:
            errors.append((index, str(exc)))
            columns.append(getattr(exc, "column", ""))
    if not rows:
        errors.append((1, gettext("The file has no rows.")))
        columns.append("")
    # Checks against the database: a sold unit keeps its deal; only its list price may change.
    existing = {}
    if clean:
        for unit, building in session.execute(
                select(Unit, Building).join(Building, Unit.building_id == Building.id)
                .where(Building.project_id.in_({c[0].id for c in clean}))).all():
            existing[(building.project_id, building.name, unit.number)] = unit
    if errors:
        raise PriceListRejected(errors, columns)
    created = updated = 0
    buildings = {(b.project_id, b.name): b for b in session.scalars(select(Building))}
    with audit_context(session, actor=by, action="import_price_list"):
        for project, building_name, floor, position, unit_no, layout, area, price in clean:
            building = buildings.get((project.id, building_name))
            if building is None:
                building = Building(project_id=project.id, name=building_name, floors=floor)
                session.add(building)
                session.flush()
                buildings[(project.id, building_name)] = building
            building.floors = max(building.floors, floor)
            unit = existing.get((project.id, building_name, unit_no))
            if unit is None:
                session.add(Unit(building_id=building.id, floor=floor,
                                 position=position or (int(unit_no[-2:]) if unit_no[-2:].isdigit() else 1),
                                 number=unit_no, layout=layout, area=area, list_price=price))
                created += 1
            else:
                unit.floor, unit.layout, unit.area, unit.list_price = floor, layout, area, price
                if position:
                    unit.position = position
                updated += 1
        session.flush()
    return {"created": created, "updated": updated}
