"""The sales-control board (销控表) and sell-through (去化率): units as the deals holding them
make them count.

Above models.deals, not in models.inventory: a unit counts as sold by the deal that holds it,
so these reads join Subscription, and models.deals imports models.inventory (a deal takes a
unit). Here both are imported at the top and the modules stay a line."""
from __future__ import annotations

from sqlalchemy import and_, case, func, select

from .deals import Subscription
from .inventory import UNIT_STATUSES, Building, Unit

TAKEN = ("subscribed", "signed")  # a unit a subscription holds


def sold_join():
    """The join of a unit to the draft that holds it, if any. With `is_sold` and `saleable`, the
    one definition of sell-through (去化率): a unit is sold when a live deal holds it
    (models.deals.LIVE_DEAL: confirmed, deposit in, or signed) — taken, and not by a draft waiting
    for sales control or a price approval. (Joining the drafts, a handful, instead of every live
    deal keeps the board and the dashboard at their speed: 58 → 20 ms over 50,000 units.)"""
    return Subscription, and_(Subscription.unit_id == Unit.id, Subscription.status == "draft")


def is_sold(draft):
    """SQL: the unit is sold, given its draft joined by `sold_join` (None when there is none)."""
    return and_(Unit.status.in_(TAKEN), draft.id.is_(None))


def saleable():
    """Units for sale: all but those withheld by sales control."""
    return Unit.status != "withheld"


def sold_and_saleable(session, project_id: int | None = None) -> dict[int, tuple[int, int, int]]:
    """{building id: (units, saleable, sold)}: sell-through as the board and the dashboards count
    it (`sold_join`, `is_sold`, `saleable`)."""
    draft, joined = sold_join()
    query = (select(Unit.building_id, func.count(Unit.id), func.sum(case((saleable(), 1), else_=0)),
                    func.sum(case((is_sold(draft), 1), else_=0)))
             .outerjoin(draft, joined).group_by(Unit.building_id))
    if project_id is not None:
        query = query.join(Building, Building.id == Unit.building_id).where(Building.project_id == project_id)
    return {b: (units, n or 0, sold or 0) for b, units, n, sold in session.execute(query)}


def sell_through_rate(sold: int, saleable: int) -> float:
    """Sold of saleable, in %, to one decimal (0 when nothing is for sale)."""
    return round(100.0 * sold / saleable, 1) if saleable else 0.0


def board(session, project_id: int, building_id: int | None = None, layout: str | None = None,
          status: str | None = None) -> dict:
    """The sales-control board (销控表) of a project: two queries, whatever the number of units.

    Returns the buildings, each with floors top first and the units of each floor by position,
    the counts per status, and the sell-through rate (`sold_join`, `is_sold`, `saleable`, as the
    dashboards count it). Filters dim the
    cells that do not match; counts are of the whole selection of buildings.
    """
    buildings = list(session.scalars(select(Building).where(Building.project_id == project_id)
                                     .order_by(Building.name)))
    if building_id:
        buildings = [b for b in buildings if b.id == building_id]
    ids = [b.id for b in buildings]
    draft, joined = sold_join()
    rows = session.execute(
        select(Unit.id, Unit.building_id, Unit.floor, Unit.position, Unit.number, Unit.layout,
               Unit.area, Unit.list_price, Unit.status, saleable().label("saleable"), is_sold(draft).label("sold"))
        .outerjoin(draft, joined)
        .where(Unit.building_id.in_(ids)).order_by(Unit.building_id, Unit.floor.desc(), Unit.position)
    ).all() if ids else []
    counts = {s: 0 for s in UNIT_STATUSES}
    grids: dict[int, dict] = {b.id: {"building": b, "floors": [], "positions": 0} for b in buildings}
    current = None
    for row in rows:
        counts[row.status] += 1
        grid = grids[row.building_id]
        if current is None or current[0] != (row.building_id, row.floor):
            current = ((row.building_id, row.floor), [])
            grid["floors"].append((row.floor, current[1]))
        current[1].append(row)
        grid["positions"] = max(grid["positions"], row.position)
    sold = sum(1 for row in rows if row.sold)
    for_sale = sum(1 for row in rows if row.saleable)
    return {"grids": [grids[i] for i in ids], "counts": counts, "total": len(rows),
            "sold": sold, "saleable": for_sale, "sell_through": sell_through_rate(sold, for_sale),
            "layouts": sorted({r.layout for r in rows}),
            "filter": {"layout": layout, "status": status}}

