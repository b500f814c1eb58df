"""Issue 24 (selection, 选房): buyers choose in queue order within timed slots, a missed slot is handled
by the launch's rule, a choice IS the subscription and a unit is never sold twice (R-LCH-3, R-SC-2);
the big screen, the control room and the JSON choice endpoint.

Registration (helper A) and the draw (helper B) are not needed here: `day` sets the columns they
write (entry status `paid`, `eligible`, `position`, `queue_no`, the launch `drawn`) directly."""
from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from models import Audit, Instalment, Subscription, Unit
from models.board import sold_and_saleable
from models.identity import RESIDENT_ID
from models.launches import IntentPayment, Launch, LaunchBuilding, LaunchEntry
from models.selection import (UnitGone, advance, choose, close_launch, control_room, start_selection)
from models.errors import PermissionDenied, RuleViolation
from tests import factories as f
from tests.conftest import Auth, csrf_token

NOW = dt.datetime(2026, 11, 26, 2, 0)  # 10:00 at the office (Asia/Shanghai)
MIN = dt.timedelta(minutes=1)


def english(exc) -> str:
    with force_locale("en"):
        return str(exc)


def resident_id(n: int) -> str:
    """A valid resident ID number (check digit by GB 11643), distinct for each n < 1000."""
    body = f"11010119900307{n:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def make_day(session, make_user, *, entries=6, units=4, buildings=1, slot_size=2, slot_minutes=5,
             missed_rule="requeue", agents=None, card_valid_until=dt.date(2026, 12, 31)):
    """A drawn launch of a project: `buildings` buildings of `units` units each (all in the launch,
    one more building outside it), `entries` paid, eligible entrants in queue order (card
    K0001…), spread over the agents; the manager, sales control (the kiosk) and finance."""
    people = {"manager": make_user("sales_manager", username="sel_mgr"),
              "control": make_user("sales_control", username="sel_ctl"),
              "finance": make_user("finance", username="sel_fin")}
    agents = agents or [make_user("agent", username="sel_a1"), make_user("agent", username="sel_a2")]
    project = f.project(session, code="KP")
    blocks = [f.building(session, project, name=f"{n + 1}栋") for n in range(buildings)]
    outside = f.building(session, project, name="9栋")
    offered = [f.unit(session, b, number=f"{b.name}-{i + 1:02d}", floor=i + 1, layout="三室" if i % 2 else "两室",
                      list_price=Decimal("1000000.00") + i) for b in blocks for i in range(units)]
    other = f.unit(session, outside, number="9栋-01")
    launch = Launch(project_id=project.id, name="首开", status="drawn", registration_opens_on=dt.date(2026, 11, 1),
                    registration_closes_on=dt.date(2026, 11, 20), selection_on=dt.date(2026, 11, 26),
                    intent_deposit=Decimal("50000.00"), card_valid_until=card_valid_until, slot_minutes=slot_minutes,
                    slot_size=slot_size, missed_rule=missed_rule, created_by_id=people["manager"].id,
                    seed_hash="0" * 64, seed="1" * 64)
    session.add(launch)
    session.flush()
    session.add_all([LaunchBuilding(launch_id=launch.id, building_id=b.id) for b in blocks])
    rows = []
    for n in range(entries):
        agent = agents[n % len(agents)]
        lead = f.lead(session, owner=agent, project_=project, name=f"买家{n + 1}号", phone=f"1390000{n:04d}")
        rows.append(LaunchEntry(launch_id=launch.id, number=f"K{n + 1:04d}", lead_id=lead.id, agent_id=agent.id,
                                name=lead.name, phone=lead.phone, id_type=RESIDENT_ID, id_number=resident_id(n),
                                address="长沙市岳麓区", eligible=True, status="paid", position=n + 1))
    session.add_all(rows)
    session.commit()
    return {"launch": launch, "project": project, "units": offered, "outside": other, "entries": rows,
            "agents": agents, "buildings": blocks, **people}


@pytest.fixture
def day(db, make_user):
    return make_day(db.session, make_user)


def _status(db, entry):
    db.session.expire_all()
    e = db.session.get(LaunchEntry, entry.id)
    return e.selection_status


def _statuses(db, day):
    db.session.expire_all()
    return [db.session.get(LaunchEntry, e.id).selection_status for e in day["entries"]]


def _start(db, day, now=NOW):
    start_selection(db.session, day["manager"], day["launch"].id, now)
    db.session.commit()


# --- the slots --------------------------------------------------------------------------------

def test_r_lch_3_the_selection_opens_the_first_slots_in_queue_order(db, day):
    _start(db, day)
    assert _statuses(db, day) == ["choosing", "choosing", "waiting", "waiting", "waiting", "waiting"]
    first = db.session.get(LaunchEntry, day["entries"][0].id)
    assert (first.queue_no, first.slot_starts_at, first.slot_ends_at) == (1, NOW, NOW + 5 * MIN)
    assert db.session.get(Launch, day["launch"].id).status == "selecting"


def test_r_lch_3_only_a_drawn_launch_starts_and_only_the_run_roles_start_it(db, day):
    with pytest.raises(PermissionDenied):
        start_selection(db.session, day["agents"][0], day["launch"].id, NOW)
    db.session.rollback()
    _start(db, day)
    with pytest.raises(RuleViolation) as refused:
        start_selection(db.session, day["control"], day["launch"].id, NOW)
    assert "Only a drawn launch" in english(refused.value)


def test_r_lch_3_a_missed_slot_goes_to_the_end_of_the_queue_once_then_out(db, day):
    _start(db, day)
    s = db.session
    later = NOW + 5 * MIN
    assert advance(s, day["launch"].id, later) == {"missed": 0, "requeued": 2, "opened": 2, "out": 0}
    s.commit()
    assert _statuses(db, day) == ["waiting", "waiting", "choosing", "choosing", "waiting", "waiting"]
    first = s.get(LaunchEntry, day["entries"][0].id)
    assert (first.queue_no, first.missed_count, first.slot_ends_at) == (7, 1, None)
    # twice at one moment: nothing more
    assert advance(s, day["launch"].id, later) == {"missed": 0, "requeued": 0, "opened": 0, "out": 0}
    s.commit()
    assert _statuses(db, day) == ["waiting", "waiting", "choosing", "choosing", "waiting", "waiting"]
    # the queue runs through (3,4 miss → 9,10; 5,6 open; 5,6 miss → 11,12; the requeued 1,2 open)
    advance(s, day["launch"].id, later + 5 * MIN)
    advance(s, day["launch"].id, later + 10 * MIN)
    s.commit()
    assert _statuses(db, day) == ["choosing", "choosing", "waiting", "waiting", "waiting", "waiting"]
    advance(s, day["launch"].id, later + 15 * MIN)  # their second miss: out for good
    s.commit()
    assert _statuses(db, day)[:2] == ["missed", "missed"]
    first = s.get(LaunchEntry, day["entries"][0].id)
    assert first.missed_count == 2
    actions = set(s.scalars(select(Audit.action).where(Audit.entity == "launch_entry")))
    assert {"selection_slot", "selection_missed"} <= actions


def test_r_lch_3_the_launch_rule_out_puts_a_missed_buyer_out_at_once(db, make_user):
    day = make_day(db.session, make_user, missed_rule="out")
    _start(db, day)
    advance(db.session, day["launch"].id, NOW + 6 * MIN)
    db.session.commit()
    assert _statuses(db, day)[:4] == ["missed", "missed", "choosing", "choosing"]


def test_r_lch_3_entries_that_may_not_choose_are_put_out_with_the_reason(db, make_user):
    day = make_day(db.session, make_user, slot_size=2)
    s = db.session
    first, second, third = day["entries"][:3]
    first.status = "registered"  # deposit never received
    second.eligible = False
    s.commit()
    _start(db, day)
    assert _statuses(db, day)[:5] == ["out", "out", "choosing", "choosing", "waiting"]
    reasons = {row.entity_id: row.changes["reason"][1] for row in s.scalars(
        select(Audit).where(Audit.entity == "launch_entry", Audit.action == "selection_out"))}
    assert reasons == {str(first.id): "not_paid", str(second.id): "not_eligible"}


def test_r_lch_3_an_expired_card_cannot_choose(db, make_user):
    day = make_day(db.session, make_user, card_valid_until=dt.date(2026, 11, 25))
    _start(db, day)
    assert set(_statuses(db, day)) == {"out"}


def test_r_lch_3_closing_puts_everyone_left_out(db, day):
    _start(db, day)
    close_launch(db.session, day["control"], day["launch"].id, NOW + MIN)
    db.session.commit()
    assert set(_statuses(db, day)) == {"out"}
    assert db.session.get(Launch, day["launch"].id).status == "closed"
    with pytest.raises(RuleViolation):
        choose(db.session, day["manager"], day["entries"][0].id, day["units"][0].id, NOW + 2 * MIN)


def test_r_lch_3_the_scheduled_job_moves_every_selecting_launch_on(app, db, day):
    from jobs.selection import advance_selections
    _start(db, day, now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - 10 * MIN)
    done = advance_selections()
    assert done[day["launch"].id]["requeued"] == 2
    assert _statuses(db, day)[2:4] == ["choosing", "choosing"]


def test_r_lch_3_embedded_mode_moves_the_selection_on_in_its_thread(app, db, day):
    from jobs.embedded import SELECTIONS_EVERY, EmbeddedWorker
    _start(db, day, now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - 10 * MIN)
    EmbeddedWorker(app).advance_selections()  # what its loop calls every SELECTIONS_EVERY seconds
    assert SELECTIONS_EVERY == 15 and _statuses(db, day)[2:4] == ["choosing", "choosing"]


def test_r_lch_3_the_scheduler_runs_the_selection_every_15_seconds(app):
    from rq.cron import CronScheduler

    from jobs.queue import get_connection
    scheduler = CronScheduler(connection=get_connection())
    scheduler.load_config_from_file("jobs/schedule.py")
    jobs = {job.name: job for job in scheduler.get_jobs()}
    assert jobs["advance-selections"].interval == 15
    assert jobs["advance-selections"].func.__name__ == "advance_selections"


# --- the choice -------------------------------------------------------------------------------

def test_r_lch_3_a_choice_in_the_slot_is_the_subscription_for_the_entrys_agent(db, day):
    _start(db, day)
    s = db.session
    entry, unit = day["entries"][0], day["units"][0]
    sub = choose(s, day["control"], entry.id, unit.id, NOW + MIN, payment_method="instalments")
    s.commit()
    s.expire_all()
    sub = s.get(Subscription, sub.id)
    assert (sub.status, sub.agent_id, sub.lead_id, sub.unit_id) == ("draft", entry.agent_id, entry.lead_id, unit.id)
    assert (sub.price, sub.deposit, sub.payment_method) == (unit.list_price, Decimal("50000.00"), "instalments")
    assert (sub.customer_id_number, sub.customer_address) == (resident_id(0), "长沙市岳麓区")
    assert s.scalar(select(func.count()).select_from(Instalment).where(Instalment.subscription_id == sub.id)) > 0
    assert s.get(Unit, unit.id).status == "subscribed"
    chosen = s.get(LaunchEntry, entry.id)
    assert (chosen.selection_status, chosen.subscription_id, chosen.chosen_at) == ("chosen", sub.id, NOW + MIN)
    assert s.scalar(select(Audit.action).where(Audit.entity == "launch_entry", Audit.entity_id == str(entry.id),
                                               Audit.action == "selection_choose"))


def test_r_lch_3_choosing_out_of_turn_before_the_slot_is_refused_with_the_queue(db, day):
    _start(db, day)
    with pytest.raises(RuleViolation) as refused:
        choose(db.session, day["manager"], day["entries"][3].id, day["units"][0].id, NOW + MIN)
    assert "not the turn of K0004 yet: 1 buyers wait before him" in english(refused.value)
    assert "His slot opens at 10:05 at the latest" in english(refused.value)  # both places free at 10:05
    db.session.rollback()
    with pytest.raises(RuleViolation) as refused:
        choose(db.session, day["manager"], day["entries"][5].id, day["units"][0].id, NOW + MIN)
    assert "3 buyers wait before him" in english(refused.value) and "at 10:10 at the latest" in english(refused.value)
    db.session.rollback()
    assert _status(db, day["entries"][3]) == "waiting"
    assert db.session.get(Unit, day["units"][0].id).status == "available"


def test_r_lch_3_choosing_after_the_slot_is_refused_naming_when_it_ended(db, day):
    _start(db, day)
    with pytest.raises(RuleViolation) as refused:
        choose(db.session, day["manager"], day["entries"][0].id, day["units"][0].id, NOW + 5 * MIN)
    assert "The slot of K0001 ended at 10:05:00" in english(refused.value)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_r_lch_3_a_buyer_chooses_once(db, day):
    _start(db, day)
    choose(db.session, day["manager"], day["entries"][0].id, day["units"][0].id, NOW + MIN)
    db.session.commit()
    with pytest.raises(RuleViolation) as refused:
        choose(db.session, day["manager"], day["entries"][0].id, day["units"][1].id, NOW + 2 * MIN)
    assert "K0001 has already chosen" in english(refused.value)


def test_r_lch_3_a_buyer_whose_turn_came_since_the_last_run_chooses_at_once(db, day):
    """The choice runs the selection on itself (lazily) when the buyer is not choosing yet."""
    _start(db, day)
    choose(db.session, day["manager"], day["entries"][0].id, day["units"][0].id, NOW + MIN)
    db.session.commit()
    sub = choose(db.session, day["manager"], day["entries"][2].id, day["units"][1].id, NOW + 2 * MIN)
    db.session.commit()
    assert sub.unit_id == day["units"][1].id and _status(db, day["entries"][2]) == "chosen"


def test_r_sc_2_a_unit_taken_is_gone_and_the_buyer_chooses_again_in_his_slot(db, day):
    _start(db, day)
    s = db.session
    first, second = day["entries"][:2]
    unit, other = day["units"][:2]
    choose(s, day["manager"], first.id, unit.id, NOW + MIN)
    s.commit()
    with pytest.raises(UnitGone) as gone:
        choose(s, day["manager"], second.id, unit.id, NOW + 2 * MIN)
    assert f"Unit {unit.number} is gone" in english(gone.value)
    s.rollback()
    assert _status(db, second) == "choosing"
    sub = choose(s, day["manager"], second.id, other.id, NOW + 3 * MIN)
    s.commit()
    assert sub.unit_id == other.id and _status(db, second) == "chosen"


def test_r_lch_3_a_unit_outside_the_launch_or_withheld_is_refused(db, day):
    _start(db, day)
    s = db.session
    with pytest.raises(RuleViolation) as refused:
        choose(s, day["manager"], day["entries"][0].id, day["outside"].id, NOW + MIN)
    assert "not offered at this launch" in english(refused.value)
    s.rollback()
    unit = s.get(Unit, day["units"][0].id)
    unit.status = "withheld"
    s.commit()
    with pytest.raises(RuleViolation) as refused:
        choose(s, day["manager"], day["entries"][0].id, unit.id, NOW + MIN)
    assert "not for sale" in english(refused.value)
    s.rollback()
    assert _status(db, day["entries"][0]) == "choosing"


def test_r_all_1_an_agent_chooses_only_for_his_own_entries_the_kiosk_for_any(db, day):
    _start(db, day)
    s = db.session
    a1, a2 = day["agents"]
    first, second = day["entries"][:2]  # first: a1's, second: a2's
    with pytest.raises(RuleViolation) as refused:
        choose(s, a1, second.id, day["units"][0].id, NOW + MIN)
    assert "not one of yours" in english(refused.value)
    s.rollback()
    assert choose(s, a1, first.id, day["units"][0].id, NOW + MIN).agent_id == a1.id
    assert choose(s, day["control"], second.id, day["units"][1].id, NOW + MIN).agent_id == a2.id
    s.commit()
    with pytest.raises(PermissionDenied):
        choose(s, day["finance"], day["entries"][2].id, day["units"][2].id, NOW + MIN)


# --- the control room ---------------------------------------------------------------------------

def test_r_lch_3_the_control_room_counts_as_the_board_does(db, make_user):
    from models.deals import confirm_subscription
    day = make_day(db.session, make_user, entries=6, units=4, buildings=2, slot_size=6)
    _start(db, day)
    s = db.session
    subs = [choose(s, day["control"], e.id, u.id, NOW + n * MIN)
            for n, (e, u) in enumerate(zip(day["entries"][:4], day["units"][::2]))]
    s.commit()
    for sub in subs[:3]:  # sales control confirms three: sold; the fourth waits (a draft)
        confirm_subscription(s, day["control"], sub.id)
    s.get(Unit, day["units"][1].id).status = "withheld"
    s.add(IntentPayment(project_id=day["project"].id, entry_id=day["entries"][0].id, kind="conversion",
                        amount=Decimal("50000.00"), number="SJ-1", paid_on=dt.date(2026, 11, 26),
                        subscription_id=subs[0].id, recorded_by_id=day["finance"].id))
    s.commit()
    advance(s, day["launch"].id, NOW + 10 * MIN)  # the other two miss their slot
    s.commit()
    figures = control_room(s, day["launch"].id)
    board = sold_and_saleable(s, day["project"].id)
    for row, building in zip(figures["buildings"], day["buildings"]):
        units, saleable, sold = board[building.id]
        assert (row["units"], row["saleable"], row["sold"]) == (units, saleable, sold)
    assert figures["totals"] == {"units": 8, "saleable": 7, "sold": 3, "awaiting": 1, "remaining": 3}
    assert {r["layout"]: r["units"] for r in figures["layouts"]} == {"两室": 4, "三室": 4}
    assert figures["queue"] == {"waiting": 0, "choosing": 2, "chosen": 4, "missed": 0, "out": 0}  # requeued, reopened
    assert figures["missed_slots"] == 2
    assert (figures["converted"], figures["converted_sum"]) == (1, Decimal("50000.00"))
    assert figures["per_minute"] == [("2026-11-26 10:00", 1), ("2026-11-26 10:01", 1), ("2026-11-26 10:02", 1),
                                     ("2026-11-26 10:03", 1)]


# --- the pages and the JSON endpoint ------------------------------------------------------------

def _login(client, user):
    assert Auth(client).login(user.username).status_code == 302
    return csrf_token(client, "/admin/")


def _started_now(db, day):
    """Started at the real present: the pages read the clock."""
    from models.base import utcnow
    _start(db, day, now=utcnow())


def test_r_lch_3_the_json_choice_answers_won_gone_refused(app, client, db, day):
    _started_now(db, day)
    token = _login(client, day["control"])
    first, second, fourth = day["entries"][0], day["entries"][1], day["entries"][3]
    unit = day["units"][0]
    won = client.post("/admin/launch_select/choose", data={"entry": first.id, "unit": unit.id, "csrf_token": token})
    assert won.status_code == 200 and won.json["ok"] and won.json["unit"] and won.json["subscription"].startswith("RG-")
    gone = client.post("/admin/launch_select/choose", data={"entry": second.id, "unit": unit.id, "csrf_token": token})
    assert gone.status_code == 409 and gone.json["ok"] is False and gone.json["error"]
    early = client.post("/admin/launch_select/choose", data={"entry": fourth.id, "unit": day["units"][1].id,
                                                             "csrf_token": token})
    assert early.status_code == 400 and early.json["ok"] is False
    no_token = client.post("/admin/launch_select/choose", data={"entry": second.id, "unit": day["units"][1].id})
    assert no_token.status_code in (400, 303) and _status(db, second) == "choosing"


def test_r_all_1_the_json_choice_of_another_agents_entry_is_403(app, client, db, day):
    _started_now(db, day)
    token = _login(client, day["agents"][0])
    other = day["entries"][1]  # the second agent's
    answer = client.post("/admin/launch_select/choose", data={"entry": other.id, "unit": day["units"][0].id,
                                                              "csrf_token": token})
    assert answer.status_code == 403 and answer.json["ok"] is False
    assert _status(db, other) == "choosing"


def test_r_lch_3_the_agent_sees_his_own_buyers_choosing_the_kiosk_finds_any_by_card(app, client, db, day):
    _started_now(db, day)
    _login(client, day["agents"][0])
    page = client.get(f"/admin/launch_select/?launch={day['launch'].id}").get_data(as_text=True)
    assert "K0001" in page and "K0002" not in page  # K0002 is the other agent's
    assert day["units"][0].number in page and day["outside"].number not in page
    assert 'class="live-board board" data-project="%d"' % day["project"].id in page
    assert "liveboard.js" in page
    client2 = app.test_client()
    _login(client2, day["control"])
    kiosk = client2.get(f"/admin/launch_select/?launch={day['launch'].id}&card=K0002").get_data(as_text=True)
    assert "K0002" in kiosk and 'name="entry" value="%d"' % day["entries"][1].id in kiosk


def test_r_lch_3_the_big_screen_shows_the_slot_with_masked_names(app, client, db, day):
    _started_now(db, day)
    _login(client, day["agents"][0])
    page = client.get(f"/admin/launch_screen/{day['launch'].id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "K0001" in html and "买*" in html and "买家1号" not in html
    assert 'class="live-board' in html and "<script>" not in html  # no inline script (CSP)
    data = client.get(f"/admin/launch_screen/{day['launch'].id}/data").json
    assert [c["number"] for c in data["choosing"]] == ["K0001", "K0002"]
    assert data["choosing"][0]["name"] == "买***" and 0 < data["choosing"][0]["seconds_left"] <= 300
    assert [n["number"] for n in data["next"]] == ["K0003", "K0004", "K0005", "K0006"]
    assert (data["sold"], data["remaining"]) == (0, 4)
    assert "1390000" not in json.dumps(data)  # no phone, whoever looks


def test_r_lch_3_the_selection_and_the_big_screen_label_their_board_in_the_readers_language(app, client, db, day):
    """The live board on both pages carries its labels (units, sell-through, statuses): without them
    liveboard.js printed " : 4 : 0.0%"."""
    _started_now(db, day)
    _login(client, day["manager"])
    for url in (f"/admin/launch_select/?launch={day['launch'].id}", f"/admin/launch_screen/{day['launch'].id}"):
        with force_locale("en"):
            html = client.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
        labels = json.loads(html.split("data-labels='", 1)[1].split("'", 1)[0])
        assert labels["units"] and labels["sell_through"] and labels["statuses"]["available"], url
        assert f'data-buildings="{day["buildings"][0].id}"' in html, url


def test_r_lch_3_the_control_room_runs_the_day_and_exports_it(app, client, db, day):
    import openpyxl
    token = _login(client, day["control"])
    started = client.post("/admin/launch_control/start", data={"launch": day["launch"].id, "csrf_token": token})
    assert started.status_code == 302
    assert _statuses(db, day)[:2] == ["choosing", "choosing"]
    page = client.get(f"/admin/launch_control/?launch={day['launch'].id}").get_data(as_text=True)
    assert "1栋" in page and "两室" in page
    entry = db.session.get(LaunchEntry, day["entries"][0].id)
    entry.name = "=HYPERLINK(1)"
    db.session.commit()
    xlsx = client.get(f"/admin/launch_control/export.xlsx?launch={day['launch'].id}")
    assert xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    assert len(book.sheetnames) == 5
    cells = [c.value for ws in book for row in ws.iter_rows() for c in row if c.value is not None]
    assert not any(isinstance(v, str) and v.startswith("=") for v in cells)
    closed = client.post("/admin/launch_control/close", data={"launch": day["launch"].id, "csrf_token": token})
    assert closed.status_code == 302 and set(_statuses(db, day)) == {"out"}


def test_r_all_1_finance_sees_the_control_room_but_cannot_run_the_day(app, client, db, day):
    token = _login(client, day["finance"])
    assert client.get(f"/admin/launch_control/?launch={day['launch'].id}").status_code == 200
    assert client.post("/admin/launch_control/start", data={"launch": day["launch"].id,
                                                            "csrf_token": token}).status_code == 403
    assert _statuses(db, day)[0] == "waiting"


# --- the race (PostgreSQL: concurrent transactions) ---------------------------------------------

@pytest.mark.postgres  # run in the PostgreSQL pass (tests/conftest.py), never skipped there
def test_r_lch_3_r_sc_2_200_concurrent_choices_of_50_units_make_exactly_50_winners(app, db, make_user):
    """200 buyers in their slot, 4 racing for each of 50 units at the same instant: 50 win, 150 are
    told the unit is gone and are still choosing; 50 subscriptions, no unit twice."""
    from tests.support.race import race
    day = make_day(db.session, make_user, entries=200, units=50, slot_size=200, slot_minutes=30)
    _start(db, day)
    control_id = day["control"].id
    pairs = [(e.id, day["units"][n % 50].id) for n, e in enumerate(day["entries"])]

    def attempt(entry_id, unit_id):
        def run(session):
            from models import User
            sub = choose(session, session.get(User, control_id), entry_id, unit_id, NOW + MIN)
            session.commit()
            return sub.id
        return run

    results = race(*[attempt(e, u) for e, u in pairs], app=app, expected=(UnitGone,), join=120)
    won = [r for r in results if isinstance(r, int)]
    assert len(won) == 50 and all(isinstance(r, UnitGone) for r in results if not isinstance(r, int))
    db.session.expire_all()
    subs = db.session.scalars(select(Subscription)).all()
    assert len(subs) == 50 and len({s.unit_id for s in subs}) == 50
    assert _statuses(db, day).count("chosen") == 50
    assert _statuses(db, day).count("choosing") == 150
    assert db.session.scalar(select(func.count()).select_from(Unit).where(Unit.status == "subscribed")) == 50


@pytest.mark.postgres  # run in the PostgreSQL pass (tests/conftest.py), never skipped there
def test_r_sc_2_a_loser_is_answered_without_waiting_for_the_winners_transaction(app, db, make_user):
    """R-SC-2 under load: a unit another transaction holds locked (a buyer's choice not yet
    committed) is answered at once "being chosen by another buyer" (UnitBusy, a 409 like gone),
    nothing written, the buyer still choosing; a unit already sold is "gone" by a plain read even
    while locked. The choosing session may not wait on a lock at all (lock_timeout 0 would make
    any wait an error instead of the answer)."""
    from sqlalchemy import text

    from models.selection import UnitBusy
    day = make_day(db.session, make_user, entries=3, units=3, slot_size=3, slot_minutes=30)
    _start(db, day)
    s = db.session
    buyer, other_buyer = day["entries"][0].id, day["entries"][1].id
    locked, sold = day["units"][0].id, day["units"][1].id
    choose(s, day["manager"], other_buyer, sold, NOW + MIN)
    s.commit()
    winner = db.engine.connect()  # the winner's open transaction, holding both units' rows
    try:
        winner.execute(text("SELECT id FROM unit WHERE id IN (:a, :b) FOR UPDATE"), {"a": locked, "b": sold})
        s.execute(text("SET lock_timeout = '1ms'"))
        with pytest.raises(UnitBusy) as busy:
            choose(s, day["manager"], buyer, locked, NOW + 2 * MIN)
        assert isinstance(busy.value, UnitGone) and busy.value.rule == "R-SC-2"
        with force_locale("en"):
            assert "being chosen by another buyer" in str(busy.value)
        s.rollback()
        s.execute(text("SET lock_timeout = '1ms'"))
        with pytest.raises(UnitGone) as gone:
            choose(s, day["manager"], buyer, sold, NOW + 2 * MIN)
        assert not isinstance(gone.value, UnitBusy) and "is gone" in english(gone.value)
        s.rollback()
    finally:
        winner.rollback()
        winner.close()
    s.execute(text("SET lock_timeout = 0"))
    assert _status(db, day["entries"][0]) == "choosing"
    assert s.scalar(select(func.count()).select_from(Subscription)) == 1
    sub = choose(s, day["manager"], buyer, locked, NOW + 3 * MIN)  # the lock gone, the unit is his
    s.commit()
    assert sub.unit_id == locked and _status(db, day["entries"][0]) == "chosen"


def test_r_lch_3_every_action_the_selection_writes_reads_as_a_label():
    import re
    from pathlib import Path

    from admin.labels import AUDIT_ACTIONS
    source = (Path(__file__).resolve().parent.parent / "models" / "selection.py").read_text(encoding="utf-8")
    written = set(re.findall(r'"(selection_[a-z]+)"', source)) - {"selection_status", "selection_started_at"}
    assert written == {"selection_start", "selection_slot", "selection_missed", "selection_out",
                       "selection_choose", "selection_close"}
    assert sorted(written - AUDIT_ACTIONS.keys()) == []
