"""The live board (R-LCH-3 "the board updates live for everyone", R-SC-1, R-SC-2): its compact
state, kept per version; every unit-changing domain path publishes exactly its units, after the
commit only; the stream (server-sent events) carries a sale to a viewer."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from models import Unit, live
from models.board import board
from models.contracts import book_signing, sign_contract
from models.deals import confirm_subscription, subscribe, withdraw_subscription
from models.inventory import (hold_unit, import_price_list, read_price_list, release_expired_holds,
                              release_hold, set_withheld)
from models.ladder import forfeit
from models.payments import record_payment
from tests import factories as f
from tests.conftest import Auth

TODAY = dt.date(2026, 11, 26)
ID_NUMBER = "110101199003074573"


@pytest.fixture
def office(db, make_user):
    s = db.session
    project = f.project(s, code="XJ", name="湘江壹号")
    building = f.building(s, project, name="1栋", floors=20)
    units = [f.unit(s, building, floor=10, position=p, number=f"10{p:02d}", list_price=Decimal("1500000.00"))
             for p in (1, 2, 3)]
    other = f.project(s, code="QT", name="其他楼盘")
    far = f.unit(s, f.building(s, other, name="9栋"), number="901")
    agent, agent2 = make_user("agent", username="li"), make_user("agent", username="zhang")
    lead = f.lead(s, owner=agent, project_=project, name="黄先生", phone="13800138000")
    lead2 = f.lead(s, owner=agent2, project_=project, name="陈女士", phone="13900139000")
    s.commit()
    return {"project": project, "building": building, "units": units, "other": other, "far": far,
            "agent": agent, "agent2": agent2, "lead": lead, "lead2": lead2,
            "control": make_user("sales_control", username="chen"),
            "finance": make_user("finance", username="zhao"), "manager": make_user("sales_manager", username="wang")}


def subscribe_unit(db, office, unit=0, by="agent", lead="lead"):
    result = subscribe(db.session, office[by], unit_id=office["units"][unit].id, lead_id=office[lead].id,
                       payment_method="commercial_mortgage", deposit="50000", id_number=ID_NUMBER,
                       address="长沙市岳麓区麓山路1号", today=TODAY)
    db.session.commit()
    return result


class Watch:
    """A viewer of one project on the app's hub: what it was sent, as {v, cells|reload}."""

    def __init__(self, project_id):
        self.hub = live.hub()
        self.viewer = self.hub.listen(project_id)

    def sent(self) -> list[dict]:
        out = []
        while (item := self.viewer.next(0.01 if self.hub.redis() is None else 0.5)) is not None:
            out.append(json.loads(item[1]))
        return out

    def units(self) -> list[int]:
        return sorted(cell[0] for message in self.sent() for cell in message.get("cells", ()))


def _cells_of_board(data) -> dict[int, list]:
    return {row.id: [row.id, row.building_id, row.floor, row.position, row.number, row.layout,
                     live._text(row.area), live._text(row.list_price), row.status, 1 if row.sold else 0]
            for grid in data["grids"] for _, units in grid["floors"] for row in units}


# --- the state -----------------------------------------------------------------------------------

def test_r_sc_1_the_state_is_the_boards_cells_counts_and_sell_through(db, office):
    s = db.session
    top = f.unit(s, office["building"], floor=20, position=1, number="2001", area=Decimal("89.50"))
    set_withheld(s, office["control"], top.id, True)
    s.commit()
    subscribe_unit(db, office, 0)  # a draft: taken, not sold
    confirm_subscription(s, office["control"], subscribe_unit(db, office, 1, "agent2", "lead2").id)
    s.commit()
    data, state = board(s, office["project"].id), live.board_state(s, office["project"].id)
    assert {u[0]: u for u in state["units"]} == _cells_of_board(data)
    assert [u[0] for u in state["units"]] == list(_cells_of_board(data))  # floors top first, by position
    assert state["fields"] == list(live.FIELDS)
    for key in ("counts", "total", "sold", "saleable", "sell_through"):
        assert state[key] == data[key], key
    assert (state["sold"], state["saleable"], state["sell_through"]) == (1, 3, 33.3)
    assert state["buildings"] == [[office["building"].id, "1栋", 20]]
    assert office["far"].id not in {u[0] for u in state["units"]}


def test_r_lch_3_the_kept_state_is_renewed_by_a_change_and_not_before(app, db, office):
    s = db.session
    app.config["LIVE_STATE_STALE_SECONDS"] = 0  # no young state stands in for a newer version
    first = live.kept_state(s, office["project"].id)
    assert live.kept_state(s, office["project"].id) is first  # kept: no query the second time
    hold_unit(s, office["agent"], unit_id=office["units"][0].id, lead_id=office["lead"].id)
    assert live.kept_state(s, office["project"].id) is first  # not committed yet
    s.commit()
    after = live.kept_state(s, office["project"].id)
    assert after.version == first.version + 1 and after.etag != first.etag
    cells = {u[0]: u for u in json.loads(after.body)["units"]}
    assert cells[office["units"][0].id][8] == "held"
    assert json.loads(gzip.decompress(after.gzipped)) == json.loads(after.body)


def test_r_lch_3_while_units_change_fast_a_young_state_stands_in_with_its_own_version(app, db, office):
    """Opening day: a state is computed at most every LIVE_STATE_STALE_SECONDS per process; the
    one served carries its own version (and ETag), so the board applies the changes since."""
    s = db.session
    app.config["LIVE_STATE_STALE_SECONDS"] = 3600
    first = live.kept_state(s, office["project"].id)
    set_withheld(s, office["control"], office["units"][0].id, True)
    s.commit()
    served = live.kept_state(s, office["project"].id)
    assert served is first and served.version == live.hub().version(office["project"].id)[1] - 1
    app.config["LIVE_STATE_STALE_SECONDS"] = 0
    fresh = live.kept_state(s, office["project"].id)
    assert fresh.version == first.version + 1 and fresh.etag != first.etag


# --- every path publishes exactly its units, after the commit only ---------------------------------

def test_r_lch_3_hold_release_and_expiry_publish_their_unit_after_the_commit(db, office):
    s, unit = db.session, office["units"][0]
    watch = Watch(office["project"].id)
    hold_unit(s, office["agent"], unit_id=unit.id, lead_id=office["lead"].id)
    s.flush()
    assert watch.sent() == []  # nothing before the commit
    s.commit()
    [message] = watch.sent()
    assert [c[0] for c in message["cells"]] == [unit.id] and message["cells"][0][8] == "held"
    release_hold(s, office["agent"], unit.id)
    s.commit()
    assert watch.units() == [unit.id]
    hold_unit(s, office["agent"], unit_id=unit.id, lead_id=office["lead"].id)
    s.commit()
    watch.sent()
    assert release_expired_holds(s, dt.datetime.utcnow() + dt.timedelta(days=3)) == 1
    s.commit()
    [message] = watch.sent()
    assert [c[0] for c in message["cells"]] == [unit.id] and message["cells"][0][8] == "available"


def test_r_lch_3_a_rolled_back_change_publishes_nothing(db, office):
    s = db.session
    watch, before = Watch(office["project"].id), live.hub().version(office["project"].id)
    hold_unit(s, office["agent"], unit_id=office["units"][0].id, lead_id=office["lead"].id)
    set_withheld(s, office["control"], office["units"][1].id, True)
    s.rollback()
    s.commit()  # an empty commit after it: the rolled-back units are not sent with it
    assert watch.sent() == []
    assert live.hub().version(office["project"].id) == before


def test_r_lch_3_subscribe_confirm_and_withdraw_publish_the_unit_and_its_sold_flag(db, office):
    s, unit = db.session, office["units"][0]
    watch = Watch(office["project"].id)
    deal = subscribe_unit(db, office, 0)
    [message] = watch.sent()
    assert message["cells"][0][0] == unit.id and message["cells"][0][8:] == ["subscribed", 0]
    confirm_subscription(s, office["control"], deal.id)  # the unit stays subscribed; now it is sold
    s.commit()
    [message] = watch.sent()
    assert message["cells"][0][0] == unit.id and message["cells"][0][8:] == ["subscribed", 1]
    withdraw_subscription(s, office["manager"], deal.id, "客户资金未到位")
    s.commit()
    [message] = watch.sent()
    assert message["cells"][0][0] == unit.id and message["cells"][0][8:] == ["available", 0]


def test_r_lch_3_a_rolled_back_savepoint_keeps_the_transactions_other_changes_to_send(db, office):
    """A savepoint rolled back inside a transaction (a caught IntegrityError, as the gap-free
    counters and the registration races do) must not drop the changes the transaction commits."""
    s, unit = db.session, office["units"][1]
    watch, before = Watch(office["project"].id), live.hub().version(office["project"].id)
    set_withheld(s, office["control"], unit.id, True)
    try:
        with s.begin_nested():
            s.execute(text("INSERT INTO role (id, name) VALUES (1, 'admin')"))  # taken: IntegrityError
    except Exception:
        pass
    s.commit()
    assert watch.units() == [unit.id]
    assert live.hub().version(office["project"].id) > before


def test_r_lch_3_withholding_publishes_its_unit_in_its_own_project_only(db, office):
    s = db.session
    watch, elsewhere = Watch(office["project"].id), Watch(office["other"].id)
    set_withheld(s, office["control"], office["units"][2].id, True)
    s.commit()
    assert watch.units() == [office["units"][2].id] and elsewhere.sent() == []


def test_r_lch_3_signing_and_forfeit_publish_the_deals_unit(db, make_deal):
    deal = make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", None),
                            "lawyer": ("lawyer", "sun")})
    s = db.session
    watch = Watch(deal["project"].id)
    record_payment(s, deal["finance"], deal["sub"].id, amount="250000", paid_on=TODAY, channel="bank_transfer",
                   today=TODAY)
    s.commit()
    assert watch.sent() == []  # a payment changes no cell
    contract = book_signing(s, deal["agent"], deal["sub"].id, appointment_at=dt.datetime(2026, 11, 27, 2),
                            today=TODAY)
    s.commit()
    sign_contract(s, deal["lawyer"], contract.id, number="HT-1", signed_on=TODAY, today=TODAY)
    s.commit()
    sent = watch.sent()
    assert [c[0] for m in sent for c in m["cells"]] == [deal["unit"].id] and sent[-1]["cells"][0][8] == "signed"


def test_r_lch_3_a_forfeit_publishes_the_unit_set_free(db, make_deal):
    deal = make_deal(price="1000000.00", method="one_off", today=TODAY)
    watch = Watch(deal["project"].id)
    assert forfeit(db.session, deal["sub"].id, TODAY + dt.timedelta(days=120))
    db.session.commit()
    [message] = watch.sent()
    assert [c[0] for c in message["cells"]] == [deal["unit"].id] and message["cells"][0][8] == "available"


def test_r_lch_3_a_price_import_publishes_the_repriced_and_the_new_units(db, office):
    watch = Watch(office["project"].id)
    rows = read_price_list(("楼盘,楼栋,楼层,房号,户型,建筑面积,单价\n"
                            "XJ,1栋,10,1001,三室两厅两卫,128.56,13000\n"
                            "XJ,3栋,5,501,三室两厅两卫,128.56,12800\n").encode(), "prices.csv")
    import_price_list(db.session, office["control"], rows)
    db.session.commit()
    new = db.session.scalar(select(Unit.id).where(Unit.number == "501"))
    [message] = watch.sent()
    cells = {c[0]: c for c in message["cells"]}
    assert sorted(cells) == sorted([office["units"][0].id, new]) and cells[office["units"][0].id][7] == "1671280"


def test_r_lch_3_core_updates_are_read_from_their_where_clause_or_reload(db, office):
    s, units = db.session, office["units"]
    watch = Watch(office["project"].id)
    s.execute(update(Unit).where(Unit.id.in_([units[1].id, units[2].id]), Unit.status == "available")
              .values(status="withheld").execution_options(synchronize_session=False))
    s.commit()
    assert watch.units() == sorted([units[1].id, units[2].id])
    s.execute(update(Unit).where(Unit.layout == "三室两厅两卫").values(status="available")
              .execution_options(synchronize_session=False))  # which units? it cannot tell: reload
    s.commit()
    [message] = watch.sent()
    assert message.get("reload") is True
    s.execute(update(Unit.__table__).where(Unit.__table__.c.id == units[0].id).values(list_price=Decimal("1600000")))
    s.commit()
    assert watch.units() == [units[0].id]
    s.execute(text("SELECT 1"))
    s.commit()
    assert watch.sent() == []


def test_r_lch_3_versions_only_grow_and_each_message_carries_the_next(db, office):
    watch, (_, before) = Watch(office["project"].id), live.hub().version(office["project"].id)
    for unit in office["units"]:
        set_withheld(db.session, office["control"], unit.id, True)
        db.session.commit()
    versions = [m["v"] for m in watch.sent()]
    assert versions == [before + 1, before + 2, before + 3]
    assert live.hub().version(office["project"].id)[1] == before + 3


# --- the endpoints --------------------------------------------------------------------------------

def test_r_lch_3_the_state_endpoint_answers_304_while_unchanged_and_gzips(app, client, db, office, login_as):
    app.config["LIVE_STATE_STALE_SECONDS"] = 0
    login_as("agent")
    url = f"/admin/board/state?project={office['project'].id}"
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    state = json.loads(gzip.decompress(first.get_data()))
    assert len(state["units"]) == 3 and first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    set_withheld(db.session, office["control"], office["units"][0].id, True)
    db.session.commit()
    changed = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers.get("Content-Encoding") is None
    assert changed.get_json()["counts"]["withheld"] == 1
    assert client.get("/admin/board/state?project=999999").status_code == 404
    assert client.get("/admin/board/stream?project=999999").status_code == 404


def test_r_lch_3_the_stream_carries_a_sale_to_a_viewer(app, db, office):
    """The SSE endpoint, read as the browser reads it: the first event is the version, then the
    sale another session makes arrives with its cell."""
    app.config.update(LIVE_STREAM_SECONDS=20, LIVE_HEARTBEAT_SECONDS=0.2)
    viewer = app.test_client()
    Auth(viewer).login(office["control"].username)
    response = viewer.get(f"/admin/board/stream?project={office['project'].id}", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    chunks, got_ping, got_sale = [], threading.Event(), threading.Event()

    def read():
        for chunk in response.response:
            chunks.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
            if ": ping" in "".join(chunks):
                got_ping.set()
            if "cells" in "".join(chunks):
                got_sale.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert got_ping.wait(10), "".join(chunks)  # the heartbeat, while nothing changes
    subscribe_unit(db, office, 0)
    assert got_sale.wait(10), "".join(chunks)
    response.close()
    body = "".join(chunks)
    assert body.index("event: version") < body.index('"cells"')
    events = [block for block in body.split("\n\n") if block.startswith("id: ")]
    message = json.loads(events[0].split("data: ", 1)[1])
    first = json.loads(body.split("event: version\ndata: ", 1)[1].split("\n", 1)[0])["v"]
    assert message["v"] == first + 1 and message["cells"][0][0] == office["units"][0].id


def test_r_lch_3_a_viewer_that_falls_behind_is_told_to_reload_not_left_with_a_gap(app, db, office):
    hub = live.hub()
    viewer = hub.listen(office["project"].id)
    for version in range(1, 70):  # more than its queue holds, and nobody reading
        hub.deliver(office["project"].id, version, '{"v":%d,"cells":[]}' % version)
    items = []
    while (item := viewer.next(0.01)) is not None:
        items.append(item)
    assert items[0] is live.BEHIND and all(v > 64 for v, _ in items[1:])
    hub.leave(viewer)
    assert hub.count() == 0


def test_r_lch_3_a_viewer_behind_on_the_gevent_stream_worker_is_told_to_reload_and_the_others_still_get_changes(
        app, db, office):
    """R-LCH-3 on the stream worker (gunicorn -k gevent monkey-patches `queue.Queue` into gevent's,
    which has no `mutex`): a viewer that overflows is told to reload, and delivering goes on — the
    overflow once raised AttributeError in the pump and stopped every viewer's changes."""
    import gevent.queue
    hub = live.hub()
    project_id = office["project"].id
    slow, fresh = hub.listen(project_id), hub.listen(project_id)
    slow.queue, fresh.queue = gevent.queue.Queue(64), gevent.queue.Queue(64)
    for version in range(1, 70):
        hub.deliver(project_id, version, '{"v":%d,"cells":[]}' % version)
        fresh.next(0.01)
    slow_items = []
    while (item := slow.next(0.01)) is not None:
        slow_items.append(item)
    assert slow_items[0] is live.BEHIND and all(v > 64 for v, _ in slow_items[1:])
    hub.deliver(project_id, 70, '{"v":70,"cells":[]}')
    assert fresh.next(0.01) == (70, '{"v":70,"cells":[]}')
    hub.leave(slow)
    hub.leave(fresh)
    assert hub.count() == 0
