"""After-sales tickets (R-SVC-1): numbering, routing and who is told, the transitions and their
races, closing only after the outcome is fed back, the overdue boundary, photos and their scope,
and the screens through the test client."""
from __future__ import annotations

import datetime as dt
import struct
import zlib

import pytest
from sqlalchemy import func, select

from models import Audit, Notification
from models.base import office_today
from models.tickets import (Attachment, Ticket, TicketNote, add_note, attach_file, close_ticket, open_ticket,
                            reopen, resolve_ticket, route_ticket, start, tickets_overdue)
from models.worklists import waiting_for
from tests import factories as f
from tests.support.race import race
from tests.support.rules import raises_rule

TODAY = f.TODAY
STAFF = {"control": ("sales_control", None), "finance": ("finance", None), "manager": ("sales_manager", "boss"),
         "service": ("customer_service", "kefu"), "lawyer": ("lawyer", "sun")}


def png(width=2, height=2) -> bytes:
    """A small valid PNG, made in code."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(autouse=True)
def in_english(app):
    from flask_babel import force_locale
    with force_locale("en"):
        yield


@pytest.fixture
def deal(make_deal):
    return make_deal(staff=STAFF)


def _open(db, deal, by=None, **kw):
    args = dict(lead_id=deal["lead"].id, category="quality", source="phone", department="engineering",
                title="客厅墙面开裂", subscription_id=deal["sub"].id, today=TODAY)
    args.update(kw)
    ticket = open_ticket(db.session, by or deal["service"], **args)
    db.session.commit()
    return ticket


def _told(db, kind):
    return sorted(db.session.scalars(select(Notification.user_id).where(Notification.kind == kind)))


# --- numbering and routing ---------------------------------------------------------------------
def test_r_svc_1_tickets_are_numbered_gap_free_per_project_and_due_after_the_projects_days(db, deal):
    deal["project"].ticket_due_days = 5
    db.session.commit()
    first = _open(db, deal)
    assert first.number == "SH-XJ-000001" and first.opened_on == TODAY
    assert first.due_on == TODAY + dt.timedelta(days=5) and first.unit_id == deal["sub"].unit_id
    with raises_rule("R-SVC-1"):  # refused: no number is used up
        open_ticket(db.session, deal["service"], lead_id=deal["lead"].id, category="quality", source="phone",
                    department="nowhere", title="x", today=TODAY)
    db.session.rollback()
    assert _open(db, deal).number == "SH-XJ-000002"
    other = f.project(db.session, code="QT")
    lead = f.lead(db.session, owner=deal["agent"], project_=other)
    db.session.commit()
    assert _open(db, deal, lead_id=lead.id, subscription_id=None).number == "SH-QT-000001"


def test_r_svc_1_the_customer_must_be_the_deals_and_one_the_opener_works_on(db, deal, make_user):
    stranger = f.lead(db.session, owner=deal["agent"], project_=deal["project"])
    db.session.commit()
    with raises_rule("R-SVC-1", "not the customer's"):
        _open(db, deal, lead_id=stranger.id)
    db.session.rollback()
    other_agent = make_user("agent")
    with raises_rule("R-SVC-1", "not one of yours"):
        _open(db, deal, by=other_agent)
    db.session.rollback()
    assert _open(db, deal, by=deal["agent"]).opened_by_id == deal["agent"].id  # his own customer
    with raises_rule("R-ALL-1"):  # finance may work on tickets but not open them
        _open(db, deal, by=deal["finance"])


@pytest.mark.parametrize("department, told", [
    ("engineering", {"service"}), ("property", {"service"}), ("customer_service", {"service"}),
    ("finance", {"finance"}), ("legal", {"lawyer"}), ("sales", {"agent", "manager"})])
def test_r_svc_1_the_departments_people_are_told(db, deal, department, told):
    _open(db, deal, by=deal["manager"], department=department)
    expected = sorted(deal[k].id for k in told if deal[k].id != deal["manager"].id)
    assert _told(db, "ticket_opened") == expected


def test_r_svc_1_an_assigned_person_alone_is_told_and_routing_tells_the_new_department(db, deal):
    ticket = _open(db, deal, assigned_to_id=deal["lawyer"].id)
    assert _told(db, "ticket_opened") == [deal["lawyer"].id]
    route_ticket(db.session, deal["service"], ticket.id, department="finance", note="退款问题")
    db.session.commit()
    assert _told(db, "ticket_routed") == [deal["finance"].id]
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.department == "finance" and ticket.assigned_to_id is None
    assert [n.note for n in ticket.notes] == ["退款问题"]
    assert db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "route_ticket")) == 1
    with raises_rule("R-ALL-1"):  # the agent does not route
        route_ticket(db.session, deal["agent"], ticket.id, department="sales")


# --- transitions ---------------------------------------------------------------------------------
def test_r_svc_1_a_ticket_is_followed_to_closure_and_closed_only_after_feedback(db, deal):
    ticket = _open(db, deal)
    with raises_rule("R-SVC-1", "resolve it first"):
        close_ticket(db.session, deal["service"], ticket.id, "已修复", TODAY, today=TODAY)
    start(db.session, deal["service"], ticket.id)
    add_note(db.session, deal["service"], ticket.id, "已联系工程部")
    resolve_ticket(db.session, deal["service"], ticket.id, "墙面已修补", today=TODAY + dt.timedelta(days=2))
    db.session.commit()
    for feedback, on in (("", TODAY + dt.timedelta(days=2)), ("已告知", TODAY + dt.timedelta(days=1)),
                         ("已告知", TODAY + dt.timedelta(days=4))):
        with raises_rule("R-SVC-1"):  # no feedback; told before the resolution; told in the future
            close_ticket(db.session, deal["service"], ticket.id, feedback, on, today=TODAY + dt.timedelta(days=3))
        db.session.rollback()
    with raises_rule("R-ALL-1"):
        close_ticket(db.session, deal["agent"], ticket.id, "已告知", TODAY, today=TODAY + dt.timedelta(days=3))
    db.session.rollback()
    close_ticket(db.session, deal["service"], ticket.id, "电话告知客户，客户满意", TODAY + dt.timedelta(days=3),
                 today=TODAY + dt.timedelta(days=3))
    db.session.commit()
    ticket = db.session.get(Ticket, ticket.id)
    assert (ticket.status, ticket.feedback_on, ticket.closed_on) == (
        "closed", TODAY + dt.timedelta(days=3), TODAY + dt.timedelta(days=3))
    actions = set(db.session.scalars(select(Audit.action).where(Audit.entity == "ticket")))
    assert {"open_ticket", "start_ticket", "resolve_ticket", "close_ticket"} <= actions
    with raises_rule("R-SVC-1", "closed"):  # closed: notes need a reopening
        add_note(db.session, deal["service"], ticket.id, "x")
    reopen(db.session, deal["service"], ticket.id, "客户不满意，墙面又裂", today=TODAY + dt.timedelta(days=5))
    db.session.commit()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.status == "in_progress" and ticket.feedback == "" and ticket.closed_on is None
    assert ticket.notes[-1].note == "客户不满意，墙面又裂"


def test_r_svc_1_the_database_refuses_a_closed_ticket_without_feedback(db, deal):
    from sqlalchemy.exc import IntegrityError
    ticket = _open(db, deal)
    ticket.status = "closed"
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_r_svc_1_a_second_close_is_told_and_changes_nothing(db, deal):
    ticket = _open(db, deal)
    resolve_ticket(db.session, deal["service"], ticket.id, "已修", today=TODAY)
    close_ticket(db.session, deal["service"], ticket.id, "已告知", TODAY, today=TODAY)
    db.session.commit()
    with raises_rule("R-SVC-1", "Closed"):
        close_ticket(db.session, deal["manager"], ticket.id, "又告知", TODAY, today=TODAY)
    db.session.rollback()
    assert db.session.get(Ticket, ticket.id).feedback == "已告知"


@pytest.mark.postgres
def test_r_svc_1_two_closes_at_once_one_wins_the_other_is_told(app, db, deal):
    from models import RuleViolation, User
    ticket = _open(db, deal)
    resolve_ticket(db.session, deal["service"], ticket.id, "已修", today=TODAY)
    db.session.commit()
    ids = (deal["service"].id, deal["manager"].id)

    def closer(user_id, text):
        def run(session):
            close_ticket(session, session.get(User, user_id), ticket.id, text, TODAY, today=TODAY)
            session.commit()
            return "closed"
        return run

    results = race(closer(ids[0], "客服告知"), closer(ids[1], "经理告知"), app=app, expected=(RuleViolation,))
    assert sorted(r if r == "closed" else "refused" for r in results) == ["closed", "refused"]
    loser = next(r for r in results if r != "closed")
    assert loser.rule == "R-SVC-1"
    db.session.expire_all()
    closed = db.session.get(Ticket, ticket.id)
    assert closed.status == "closed" and closed.feedback in ("客服告知", "经理告知")
    assert db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "close_ticket")) == 1


# --- overdue ---------------------------------------------------------------------------------------
def test_r_svc_1_overdue_from_the_day_after_due_until_the_customer_is_told(db, deal):
    ticket = _open(db, deal)
    due = ticket.due_on

    def overdue(on):
        return db.session.scalars(select(Ticket.id).where(tickets_overdue(on))).all() == [ticket.id]

    assert not overdue(due) and overdue(due + dt.timedelta(days=1))
    resolve_ticket(db.session, deal["service"], ticket.id, "已修", today=due)
    db.session.commit()
    assert overdue(due + dt.timedelta(days=1))  # resolved but the customer not yet told: still late
    close_ticket(db.session, deal["service"], ticket.id, "已告知", due + dt.timedelta(days=1),
                 today=due + dt.timedelta(days=1))
    db.session.commit()
    assert not overdue(due + dt.timedelta(days=1))


def test_r_svc_1_overdue_and_assigned_tickets_wait_on_the_home_page(db, deal, monkeypatch):
    import models.tickets as tickets
    ticket = _open(db, deal, assigned_to_id=deal["lawyer"].id)
    monkeypatch.setattr(tickets, "office_today", lambda: ticket.due_on + dt.timedelta(days=1))
    for who in ("service", "manager"):
        items = {str(i["label"]): i for i in waiting_for(db.session, deal[who])}
        assert items["After-sales tickets overdue"]["count"] == 1
        assert items["After-sales tickets overdue"]["link"] == "/admin/ticket_due/"
    mine = {str(i["label"]): i["count"] for i in waiting_for(db.session, deal["lawyer"])}
    assert mine == {"Tickets assigned to me": 1}
    assert "After-sales tickets overdue" not in {str(i["label"]) for i in waiting_for(db.session, deal["agent"])}


# --- attachments -------------------------------------------------------------------------------------
def test_r_svc_1_a_png_is_kept_with_its_type_from_its_bytes_and_its_hash(db, deal):
    import hashlib
    ticket = _open(db, deal)
    content = png()
    row = attach_file(db.session, deal["service"], "ticket", ticket.id, "C:\\photos\\crack.jpg", content)
    db.session.commit()
    assert (row.content_type, row.size, row.filename) == ("image/png", len(content), "crack.jpg")
    assert row.sha256 == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("content, message", [
    (b"<html><script>alert(1)</script></html>", "Only photos"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024), "larger than 5 MB"),
    (b"", "empty")])
def test_r_svc_1_html_named_png_and_files_over_5_mb_are_refused(db, deal, content, message):
    ticket = _open(db, deal)
    with raises_rule("R-SVC-1", message):
        attach_file(db.session, deal["service"], "ticket", ticket.id, "photo.png", content)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def _jpeg() -> bytes:
    import io
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 60, 40)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>",  # a PNG head, then HTML
    png() + b"<html><script>alert(1)</script></html>",  # a whole PNG with HTML after its end
    png()[:-20],  # a PNG cut short
    png().replace(b"IHDR", b"IHDX"),  # a chunk that is not a PNG's
    b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>\xff\xd9",  # a JPEG head and tail around HTML
    b"%PDF-1.4\n<html><script>alert(1)</script></html>",  # a PDF head without its %%EOF tail
])
def test_r_svc_1_an_image_is_checked_whole_and_a_pdf_head_to_tail(db, deal, content):
    ticket = _open(db, deal)
    with raises_rule("R-SVC-1", "Only photos"):
        attach_file(db.session, deal["service"], "ticket", ticket.id, "photo.png", content)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    kinds = [attach_file(db.session, deal["service"], "ticket", ticket.id, name, data).content_type
             for name, data in (("a.jpg", _jpeg()), ("b.png", png(5, 3)), ("c.pdf", b"%PDF-1.7\n1 0 obj\n%%EOF\r\n"))]
    assert kinds == ["image/jpeg", "image/png", "application/pdf"]


def test_r_svc_1_a_closed_ticket_takes_no_more_files(db, deal):
    ticket = _open(db, deal)
    resolve_ticket(db.session, deal["service"], ticket.id, "已修", today=TODAY)
    close_ticket(db.session, deal["service"], ticket.id, "已告知", TODAY, today=TODAY)
    db.session.commit()
    with raises_rule("R-SVC-1", "closed"):
        attach_file(db.session, deal["service"], "ticket", ticket.id, "late.png", png())
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    reopen(db.session, deal["service"], ticket.id, "客户仍不满意", today=TODAY)
    db.session.commit()
    assert attach_file(db.session, deal["service"], "ticket", ticket.id, "again.png", png()).id


def _login(client, auth, user):
    assert auth.login(user.username).status_code == 302


def test_r_svc_1_photos_are_served_with_nosniff_and_only_within_the_agents_scope(app, db, deal, make_user, client,
                                                                                 auth):
    ticket = _open(db, deal)
    row = attach_file(db.session, deal["service"], "ticket", ticket.id, "crack.png", png())
    scan = attach_file(db.session, deal["service"], "ticket", ticket.id, "report.pdf", b"%PDF-1.4\n%%EOF\n")
    db.session.commit()
    row_id, scan_id = row.id, scan.id
    _login(client, auth, deal["agent"])
    response = client.get(f"/admin/ticket/attachment/{row_id}/")
    assert response.status_code == 200 and response.data == png()
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    pdf = client.get(f"/admin/ticket/attachment/{scan_id}/")
    assert pdf.headers["Content-Disposition"].startswith("attachment;")
    page = client.get(f"/admin/ticket/details/?id={ticket.id}").get_data(as_text=True)
    assert f'<img src="/admin/ticket/attachment/{row_id}/"' in page
    auth.logout()
    other = make_user("agent")
    _login(client, auth, other)
    assert client.get(f"/admin/ticket/attachment/{row_id}/").status_code in (403, 404)
    assert client.get(f"/admin/ticket/details/?id={ticket.id}").status_code in (302, 403, 404)
    auth.logout()
    _login(client, auth, make_user("archive"))  # R-ALL-1: the archive keeps contracts, not after-sales photos
    assert client.get(f"/admin/ticket/attachment/{row_id}/").status_code in (403, 404)


def test_r_all_1_the_archive_clerk_neither_lists_nor_works_on_tickets(app, db, deal, make_user, client, auth):
    ticket = _open(db, deal)
    archive = make_user("archive")
    with raises_rule("R-ALL-1"):
        add_note(db.session, archive, ticket.id, "归档")
    db.session.rollback()
    _login(client, auth, archive)
    assert client.get("/admin/ticket/").status_code in (302, 403)
    assert client.get("/admin/ticket_note/").status_code in (302, 403)
    token = auth.csrf("/admin/")
    client.post("/admin/ticket/resolve/", data={"csrf_token": token, "ids": ticket.id, "resolution": "archive closed it"})
    client.post("/admin/ticket/note/", data={"csrf_token": token, "ids": ticket.id, "note": "archive note"})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status != "resolved"
    assert db.session.scalar(select(func.count()).select_from(TicketNote).where(TicketNote.ticket_id == ticket.id,
                                                                                TicketNote.note.contains("archive"))) == 0


# --- screens -----------------------------------------------------------------------------------------
def test_r_svc_1_the_screens_open_route_resolve_and_close_a_ticket_with_csrf(app, db, deal, client, auth):
    _login(client, auth, deal["service"])
    token = auth.csrf("/admin/ticket/open/")
    no_token = client.post("/admin/ticket/open/", data={"lead_id": deal["lead"].id, "category": "quality",
                                                        "source": "phone", "department": "engineering",
                                                        "title": "漏水"})
    assert no_token.status_code in (303, 400) and db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    page = client.get(f"/admin/ticket/open/?subscription_id={deal['sub'].id}").get_data(as_text=True)
    assert deal["sub"].number in page
    response = client.post("/admin/ticket/open/", data={
        "csrf_token": token, "subscription_id": deal["sub"].id, "lead_id": deal["lead"].id, "category": "quality",
        "source": "phone", "department": "engineering", "title": "卫生间漏水", "location": "主卫"})
    assert response.status_code == 302
    ticket = db.session.scalar(select(Ticket))
    assert ticket.title == "卫生间漏水" and ticket.location == "主卫" and ticket.subscription_id == deal["sub"].id
    grid = client.get("/admin/ticket/").get_data(as_text=True)
    assert ticket.number in grid
    client.post("/admin/ticket/note/", data={"csrf_token": token, "ids": ticket.id, "note": "已派维修师傅"})
    client.post("/admin/ticket/resolve/", data={"csrf_token": token, "ids": ticket.id, "resolution": "已更换密封圈"})
    db.session.expire_all()
    details = client.get(f"/admin/ticket/details/?id={ticket.id}").get_data(as_text=True)
    assert "已派维修师傅" in details and 'id="attach-form"' in details and 'data-step="close"' in details
    client.post("/admin/ticket/close/", data={"csrf_token": token, "ids": ticket.id,
                                              "feedback": "电话告知客户", "feedback_on": office_today().isoformat()})
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert (ticket.status, ticket.feedback) == ("closed", "电话告知客户")
    assert [n.note for n in ticket.notes] == ["已派维修师傅"]
    deal_page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert ticket.number in deal_page and 'id="deal-new-ticket"' in deal_page


def test_r_svc_1_the_photo_upload_form_checks_csrf_and_the_bytes(app, db, deal, client, auth):
    import io
    ticket = _open(db, deal)
    _login(client, auth, deal["service"])
    token = auth.csrf(f"/admin/ticket/details/?id={ticket.id}")
    client.post("/admin/ticket/attach/", data={"csrf_token": token, "ticket_id": ticket.id,
                                               "file": (io.BytesIO(b"<html>x</html>"), "x.png")},
                content_type="multipart/form-data")
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    client.post("/admin/ticket/attach/", data={"csrf_token": token, "ticket_id": ticket.id,
                                               "file": (io.BytesIO(png()), "crack.png")},
                content_type="multipart/form-data")
    assert db.session.scalar(select(Attachment.content_type)) == "image/png"


def test_r_svc_1_agents_see_their_customers_tickets_and_those_assigned_to_them(app, db, deal, make_user, client,
                                                                              auth):
    mine = _open(db, deal)
    other_agent = make_user("agent")
    lead = f.lead(db.session, owner=deal["manager"], project_=deal["project"])
    db.session.commit()
    assigned = _open(db, deal, lead_id=lead.id, subscription_id=None, assigned_to_id=other_agent.id)
    hidden = _open(db, deal, lead_id=lead.id, subscription_id=None)
    _login(client, auth, other_agent)
    grid = client.get("/admin/ticket/").get_data(as_text=True)
    assert assigned.number in grid and mine.number not in grid and hidden.number not in grid
    found = client.get("/admin/ticket/customers/?q=").get_json()
    assert found == []  # no customers of his own
    assert client.get("/admin/ticket_note/").status_code == 200
    assert client.get("/admin/ticket_due/").status_code == 403  # the overdue worklist is the office's
