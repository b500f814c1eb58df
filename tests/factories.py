"""Rows for tests, with sensible defaults (Redash's tests/factories.py in spirit)."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from models import (Building, Contract, Document, FollowUp, Instalment, Lead, OverdueEvent, Payment,
                    Project, Subscription, Unit)

_seq = itertools.count(1)
TODAY = dt.date(2026, 11, 26)


def project(session, **kw):
    from models.payments import ensure_default_methods
    n = next(_seq)
    obj = Project(code=kw.pop("code", f"P{n}"), name=kw.pop("name", f"测试楼盘{n}"), **kw)
    session.add(obj)
    session.flush()
    ensure_default_methods(session, obj)
    return obj


def building(session, project_=None, **kw):
    obj = Building(project=project_ or project(session), name=kw.pop("name", f"{next(_seq)}栋"),
                   floors=kw.pop("floors", 10), **kw)
    session.add(obj)
    session.flush()
    return obj


def unit(session, building_=None, **kw):
    n = next(_seq)
    obj = Unit(building=building_ or building(session), floor=kw.pop("floor", 1 + n % 10),
               position=kw.pop("position", 1), number=kw.pop("number", f"U{n}"),
               layout=kw.pop("layout", "三室两厅两卫"), area=kw.pop("area", Decimal("120.00")),
               list_price=kw.pop("list_price", Decimal("1500000.00")), **kw)
    session.add(obj)
    session.flush()
    return obj


def lead(session, owner=None, project_=None, **kw):
    n = next(_seq)
    registered_by = kw.pop("registered_by", owner)
    obj = Lead(project=project_ or project(session), name=kw.pop("name", f"客户{n}"),
               phone=kw.pop("phone", f"138{n:08d}"), source=kw.pop("source", "walk_in"),
               owner=owner, registered_by=registered_by, **kw)
    session.add(obj)
    session.flush()
    return obj


def follow_up(session, lead_, agent=None, **kw):
    obj = FollowUp(lead=lead_, agent=agent or lead_.owner, channel=kw.pop("channel", "phone"),
                   content=kw.pop("content", "电话回访"), **kw)
    session.add(obj)
    session.flush()
    return obj


def subscription(session, agent, lead_=None, unit_=None, **kw):
    lead_ = lead_ or lead(session, owner=agent)
    unit_ = unit_ or unit(session, building(session, lead_.project))
    obj = Subscription(number=kw.pop("number", f"RG{next(_seq):06d}"), project_id=lead_.project_id,
                       lead=lead_, unit=unit_, agent=agent,
                       price=kw.pop("price", unit_.list_price), deposit=kw.pop("deposit", Decimal("50000.00")),
                       payment_method=kw.pop("payment_method", "one_off"),
                       subscribed_on=kw.pop("subscribed_on", TODAY), **kw)
    session.add(obj)
    session.flush()
    return obj


def instalment(session, subscription_, **kw):
    obj = Instalment(subscription=subscription_, seq=kw.pop("seq", 1), kind=kw.pop("kind", "deposit"),
                     due_on=kw.pop("due_on", TODAY), amount_due=kw.pop("amount_due", Decimal("50000.00")),
                     **kw)
    session.add(obj)
    session.flush()
    return obj


def payment(session, instalment_, recorded_by, **kw):
    sub = instalment_.subscription
    obj = Payment(project_id=sub.project_id, subscription=sub, instalment=instalment_,
                  amount=kw.pop("amount", Decimal("10000.00")), paid_on=kw.pop("paid_on", TODAY),
                  channel=kw.pop("channel", "bank_transfer"), recorded_by=recorded_by,
                  receipt_no=kw.pop("receipt_no", f"SJ{next(_seq):06d}"), **kw)
    session.add(obj)
    session.flush()
    return obj


def overdue_event(session, instalment_, **kw):
    obj = OverdueEvent(instalment=instalment_, due_on=kw.pop("due_on", instalment_.due_on),
                       level=kw.pop("level", "warning"), on=kw.pop("on", TODAY), **kw)
    session.add(obj)
    session.flush()
    return obj


def contract(session, subscription_, **kw):
    obj = Contract(subscription=subscription_, kind=kw.pop("kind", "sale"), **kw)
    session.add(obj)
    session.flush()
    return obj


def document(session, requested_by, **kw):
    obj = Document(kind=kw.pop("kind", "receipt"), subject_id=kw.pop("subject_id", 1),
                   requested_by=requested_by, **kw)
    session.add(obj)
    session.flush()
    return obj


def lead_office(session, make_user):
    """Project "湘江壹号" (committed) with the agents "li" and "zhang" and the manager "wang"."""
    project_ = project(session, name="湘江壹号")
    session.commit()
    return {"project": project_, "agent": make_user("agent", username="li"),
            "agent2": make_user("agent", username="zhang"), "manager": make_user("sales_manager", username="wang")}


VALID_ID_NUMBER = "110101199003074573"  # a resident ID number with a valid check digit


STAFF = {"control": ("sales_control", "chen"), "finance": ("finance", "zhao"),
         "manager": ("sales_manager", "boss"), "lawyer": ("lawyer", "wang")}
"""Sales control "chen", finance "zhao", the manager "boss" and the lawyer "wang"."""


def active_deal(session, make_user, *, price="1000000.00", payment_method="one_off", today=TODAY, staff=None):
    """A subscription through the real steps — subscribed by agent "li", confirmed by sales
    control, deposit 50,000 taken by finance — on a unit of `price` in project "XJ".

    `staff` maps keys to (role, username or None) for the other people the test needs; keys
    "control" and "finance" must be among them (unnamed ones by default). Returns those people
    with "sub", "unit", "lead", "project" and "agent"."""
    staff = staff or {"control": ("sales_control", None), "finance": ("finance", None)}
    project_ = project(session, code="XJ")
    unit_ = unit(session, building(session, project_), list_price=Decimal(price))
    agent = make_user("agent", username="li")
    lead_ = lead(session, owner=agent, project_=project_)
    session.commit()
    people = {key: make_user(role, username=username) for key, (role, username) in staff.items()}
    sub = through_steps(session, {"agent": agent, **people}, unit_, lead_, payment_method=payment_method,
                        subscribed_on=today, today=today)
    return {"sub": sub, "unit": unit_, "lead": lead_, "project": project_, "agent": agent, **people}


def through_steps(session, people, unit_, lead_, *, payment_method, subscribed_on, today, stage="active"):
    """`lead_` subscribed to `unit_` by people["agent"] on `subscribed_on` (deposit 50,000), then as far
    as `stage`: "draft", "confirmed" (by people["control"]) or "active" (the deposit taken by
    people["finance"] on `subscribed_on`). Committed; returns the Subscription."""
    from models.deals import confirm_subscription, subscribe
    from models.payments import record_deposit
    sub = subscribe(session, people["agent"], unit_id=unit_.id, lead_id=lead_.id, payment_method=payment_method,
                    deposit="50000", id_number=VALID_ID_NUMBER, address="长沙", subscribed_on=subscribed_on,
                    today=today)
    if stage != "draft":
        confirm_subscription(session, people["control"], sub.id)
    if stage == "active":
        record_deposit(session, people["finance"], sub.id, amount="50000", paid_on=subscribed_on, channel="pos",
                       today=today)
    session.commit()
    return sub


def rename_customer(session, people, name: str):
    """The first buyer of the live deal people["sub"] renamed as a live deal's terms change (R-CHG-1,
    R-CHG-3): a buyer change asked by people["agent"] and approved by people["manager"]; the
    agreement's customer block follows. Committed; returns the Subscription."""
    from models.change_requests import decide_change, request_change
    from models.changes import current_buyers
    sub = people["sub"]
    buyers = [{"name": name if b.seq == 1 else b.name, "id_type": b.id_type, "id_number": b.id_number,
               "phone": b.phone, "share": str(b.share)} for b in current_buyers(session, sub.id)]
    change = request_change(session, people["agent"], sub.id, "buyers", reason="更名", proposal={"buyers": buyers})
    decide_change(session, people["manager"], change.id, "approve")
    session.commit()
    session.refresh(sub)
    return sub
