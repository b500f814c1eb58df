"""Mortgage files to disbursement (R-AFT-2): opening, stages, what is missing, the disbursement as
a receipt on the loan line and its reversal, stuck files and ageing, the screens."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select, update

from models import Instalment, Payment, RuleViolation
from models.loans import (Bank, LoanFile, LoanStage, ageing, close_file, disburse, move_stage, open_loan_file,
                          set_missing, stuck, validate_stage_limits)
from models.notifications import Notification
from models.payments import record_payment, reverse_payment
from tests import factories as f
from tests.support.race import race
from tests.support.rules import raises_rule

TODAY = f.TODAY
STAFF = {"control": ("sales_control", None), "finance": ("finance", None), "finance2": ("finance", None),
         "lawyer": ("lawyer", None), "manager": ("sales_manager", None)}
STAGES = ("documents_complete", "bank_interview", "approved", "mortgage_registered")


@pytest.fixture
def deal(db, make_deal):
    """An active commercial-mortgage deal on 1,000,000.00, its down payment paid; its loan line
    700,000.00 open; a bank."""
    deal = make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY, staff=STAFF)
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="250000", paid_on=TODAY,
                   channel="bank_transfer", today=TODAY)
    bank = Bank(name="中国建设银行长沙分行")
    db.session.add(bank)
    db.session.commit()
    deal["bank"] = bank
    return deal


def _open(db, deal, by=None, today=TODAY, **kw):
    file = open_loan_file(db.session, by or deal["lawyer"], deal["sub"].id, line_kind=kw.pop("line_kind", "commercial_loan"),
                          bank_id=deal["bank"].id, loan_kind=kw.pop("loan_kind", "commercial"), today=today, **kw)
    db.session.commit()
    return file


def _to_registered(db, deal, file, start=TODAY):
    for n, stage in enumerate(STAGES, 1):
        move_stage(db.session, deal["lawyer"], file.id, stage, on=start + dt.timedelta(days=n),
                   today=start + dt.timedelta(days=n))
        db.session.commit()
    return start + dt.timedelta(days=len(STAGES))


def _line(db, deal):
    return db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                      Instalment.kind == "commercial_loan"))


def test_r_aft_2_a_file_opens_on_the_open_loan_line_with_its_balance(db, deal):
    file = _open(db, deal)
    assert (file.stage, file.status, file.stage_since, file.amount) == ("collecting", "open", TODAY,
                                                                       Decimal("700000.00"))
    assert [(s.stage, s.on) for s in file.stages] == [("collecting", TODAY)]


def test_r_aft_2_opening_is_refused_without_the_line_twice_or_by_the_agent(db, deal):
    with force_locale("en"), raises_rule("R-AFT-2", match="line"):
        _open(db, deal, line_kind="provident_fund_loan", loan_kind="provident_fund")
    db.session.rollback()
    with raises_rule("R-AFT-2"):  # a commercial loan is not paid on the provident-fund line
        _open(db, deal, line_kind="provident_fund_loan", loan_kind="commercial")
    db.session.rollback()
    with raises_rule("R-ALL-1"):
        _open(db, deal, by=deal["agent"])
    db.session.rollback()
    _open(db, deal)
    with force_locale("en"), raises_rule("R-AFT-2", match="already has a mortgage file"):
        _open(db, deal, by=deal["finance"])
    db.session.rollback()
    deal["bank"].active = False
    db.session.commit()


def test_r_aft_2_an_inactive_bank_is_not_offered(db, deal):
    deal["bank"].active = False
    db.session.commit()
    with force_locale("en"), raises_rule("R-AFT-2", match="banks the office works with"):
        _open(db, deal)


def test_r_aft_2_stages_go_forward_one_at_a_time_dated_within_bounds(db, deal):
    file = _open(db, deal)
    with force_locale("en"), raises_rule("R-AFT-2", match="next stage"):
        move_stage(db.session, deal["lawyer"], file.id, "approved", today=TODAY)
    db.session.rollback()
    with force_locale("en"), raises_rule("R-AFT-2", match="Disburse"):
        move_stage(db.session, deal["lawyer"], file.id, "disbursed", today=TODAY)
    db.session.rollback()
    for bad in (TODAY - dt.timedelta(days=1), TODAY + dt.timedelta(days=3)):
        with force_locale("en"), raises_rule("R-AFT-2", match="between"):
            move_stage(db.session, deal["lawyer"], file.id, "documents_complete", on=bad,
                       today=TODAY + dt.timedelta(days=2))
        db.session.rollback()
    move_stage(db.session, deal["finance"], file.id, "documents_complete", on=TODAY + dt.timedelta(days=1),
               note="材料齐全", today=TODAY + dt.timedelta(days=2))
    db.session.commit()
    db.session.refresh(file)
    assert (file.stage, file.stage_since) == ("documents_complete", TODAY + dt.timedelta(days=1))
    assert [(s.stage, s.note, s.by_id) for s in file.stages][-1] == ("documents_complete", "材料齐全",
                                                                      deal["finance"].id)


def test_r_aft_2_the_same_move_twice_records_once(db, deal):
    file = _open(db, deal)
    move_stage(db.session, deal["lawyer"], file.id, "documents_complete", today=TODAY)
    db.session.commit()
    with force_locale("en"), raises_rule("R-AFT-2", match="next stage"):
        move_stage(db.session, deal["finance"], file.id, "documents_complete", today=TODAY)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(LoanStage).where(
        LoanStage.loan_file_id == file.id)) == 2


def _notes(db, user, kind):
    return db.session.scalars(select(Notification.message).where(Notification.user_id == user.id,
                                                                 Notification.kind == kind)).all()


def test_r_aft_2_the_agent_is_told_what_the_customer_must_supply(db, deal):
    file = _open(db, deal, missing="收入证明")
    assert len(_notes(db, deal["agent"], "loan_missing")) == 1
    set_missing(db.session, deal["lawyer"], file.id, "收入证明")  # unchanged: not told again
    set_missing(db.session, deal["lawyer"], file.id, "")  # nothing missing: nothing to tell
    db.session.commit()
    assert len(_notes(db, deal["agent"], "loan_missing")) == 1
    move_stage(db.session, deal["lawyer"], file.id, "documents_complete", missing="银行流水", today=TODAY)
    db.session.commit()
    told = _notes(db, deal["agent"], "loan_missing")
    assert len(told) == 2 and any("银行流水" in m for m in told)
    assert file.missing == "银行流水"


def test_r_aft_2_the_disbursement_is_a_receipt_that_pays_the_loan_line(db, deal):
    file = _open(db, deal)
    with force_locale("en"), raises_rule("R-AFT-2", match="once the mortgage is registered"):
        disburse(db.session, deal["finance"], file.id, paid_on=TODAY, today=TODAY)
    db.session.rollback()
    day = _to_registered(db, deal, file)
    with raises_rule("R-ALL-1"):
        disburse(db.session, deal["lawyer"], file.id, paid_on=day, today=day)
    db.session.rollback()
    payment = disburse(db.session, deal["finance"], file.id, paid_on=day, bank_ref="CCB-001", today=day)
    db.session.commit()
    db.session.refresh(file)
    line = _line(db, deal)
    assert payment.channel == "loan_disbursement" and payment.receipt_no and payment.instalment_id == line.id
    assert payment.amount == Decimal("700000.00") and (line.status, line.amount_paid) == ("paid", line.amount_due)
    assert (file.stage, file.status, file.payment_id) == ("disbursed", "disbursed", payment.id)
    assert file.stages[-1].stage == "disbursed" and payment.receipt_no in file.stages[-1].note
    with raises_rule("R-AFT-2"):
        disburse(db.session, deal["finance"], file.id, paid_on=day, today=day)
    db.session.rollback()


def test_r_aft_2_a_reversed_disbursement_puts_the_file_back(db, deal):
    file = _open(db, deal)
    day = _to_registered(db, deal, file)
    payment = disburse(db.session, deal["finance"], file.id, paid_on=day, today=day)
    db.session.commit()
    reverse_payment(db.session, deal["finance"], payment.id, "银行退回", today=day)
    db.session.commit()
    db.session.refresh(file)
    assert (file.stage, file.status, file.payment_id, file.stage_since) == ("mortgage_registered", "open", None, day)
    assert _line(db, deal).status == "pending"
    assert [s.stage for s in file.stages][-2:] == ["disbursed", "mortgage_registered"]
    again = disburse(db.session, deal["finance"], file.id, amount="700000", paid_on=day, today=day)
    db.session.commit()
    assert again.amount == Decimal("700000.00") and _line(db, deal).status == "paid"


def test_r_aft_2_a_partial_disbursement_is_refused_and_leaves_file_and_line_as_they_were(db, deal):
    file = _open(db, deal)
    day = _to_registered(db, deal, file)
    receipts = db.session.scalar(select(func.count()).select_from(Payment))
    for amount in ("1000", "699999.99", "700000.01"):
        with force_locale("en"), raises_rule("R-AFT-2", match="balance, ¥700,000.00, in one payment"):
            disburse(db.session, deal["finance"], file.id, amount=amount, paid_on=day, today=day)
        db.session.rollback()
    db.session.refresh(file)
    assert (file.stage, file.status, file.payment_id) == ("mortgage_registered", "open", None)
    assert _line(db, deal).amount_paid == 0 and db.session.scalar(select(func.count()).select_from(Payment)) == receipts
    payment = disburse(db.session, deal["finance"], file.id, amount="700,000.00", paid_on=day, today=day)
    db.session.commit()
    db.session.refresh(file)
    assert (file.status, file.payment_id, _line(db, deal).status) == ("disbursed", payment.id, "paid")


def test_r_aft_2_a_refused_loan_closes_the_file_and_says_the_method_must_change(app, db, deal):
    from flask_babel import force_locale
    file = _open(db, deal)
    with force_locale("en"), raises_rule("R-AFT-2", match="Say why"):
        close_file(db.session, deal["lawyer"], file.id, " ")
    db.session.rollback()
    close_file(db.session, deal["lawyer"], file.id, "银行拒贷")
    db.session.commit()
    assert file.status == "closed"
    with app.test_request_context(), force_locale("en"):
        assert any("payment method" in m or "付款方式" in m for m in _notes(db, deal["agent"], "loan_closed"))
    _open(db, deal)  # a closed file does not hold the line: a new one may start


def test_r_aft_2_a_deal_that_ends_closes_its_open_files(db, deal):
    from models.deals import end_deal
    from models import Subscription
    file = _open(db, deal)
    db.session.execute(update(Subscription).where(Subscription.id == deal["sub"].id).values(status="forfeited"))
    end_deal(db.session, deal["sub"].id, deal["unit"].id, deal["manager"], "forfeit")
    db.session.commit()
    db.session.refresh(file)
    assert file.status == "closed"


def _age(db, file, stage, days, today):
    db.session.execute(update(LoanFile).where(LoanFile.id == file.id)
                       .values(stage=stage, stage_since=today - dt.timedelta(days=days)))
    db.session.commit()


def test_r_aft_2_stuck_is_beyond_the_limit_not_at_it(db, deal):
    file = _open(db, deal)
    today = TODAY + dt.timedelta(days=100)
    limit = deal["project"].loan_stage_limits["collecting"]

    def stuck_ids():
        return db.session.scalars(select(LoanFile.id).where(stuck(db.session, today))).all()
    _age(db, file, "collecting", limit, today)
    assert stuck_ids() == []
    _age(db, file, "collecting", limit + 1, today)
    assert stuck_ids() == [file.id]
    deal["project"].loan_stage_limits = {**deal["project"].loan_stage_limits, "collecting": limit + 1}
    db.session.commit()
    assert stuck_ids() == []


def test_r_aft_2_ageing_per_bank_and_stage_on_a_hand_made_set(db, deal, make_deal):
    today = TODAY + dt.timedelta(days=200)
    other = Bank(name="长沙住房公积金管理中心")
    db.session.add(other)
    db.session.commit()
    files = []
    for n in range(4):
        office = {"agent": deal["agent"], "control": deal["control"], "finance": deal["finance"],
                  "project": deal["project"]}
        unit = f.unit(db.session, deal["unit"].building, number=f"9{n:02d}", list_price=Decimal("1000000"))
        db.session.commit()
        sub = make_deal(office=office, unit=unit, customer=f"客户{n}", subscribed_on=TODAY,
                        method="commercial_mortgage")
        record_payment(db.session, deal["finance"], sub.id, amount="250000", paid_on=TODAY,
                       channel="bank_transfer", today=TODAY)
        files.append(open_loan_file(db.session, deal["lawyer"], sub.id, line_kind="commercial_loan",
                                    bank_id=(deal["bank"] if n < 3 else other).id, loan_kind="commercial",
                                    today=TODAY))
        db.session.commit()
    for file, (stage, days) in zip(files, [("collecting", 10), ("collecting", 20), ("approved", 5),
                                            ("collecting", 1)]):
        _age(db, file, stage, days, today)
    rows = {(r["bank"].name, r["stage"]): r for r in ageing(db.session, today)}
    ccb = rows[("中国建设银行长沙分行", "collecting")]
    assert (ccb["count"], ccb["amount"], ccb["average_days"], ccb["longest_days"], ccb["stuck"]) == (
        2, Decimal("1400000.00"), 15.0, 20, 1)
    assert (rows[("中国建设银行长沙分行", "approved")]["count"], rows[("中国建设银行长沙分行", "approved")]["stuck"]) == (1, 0)
    assert rows[("长沙住房公积金管理中心", "collecting")]["longest_days"] == 1
    assert len(rows) == 3


def test_r_aft_2_stage_limits_are_known_stages_in_whole_days():
    assert validate_stage_limits({"collecting": 3}) == {"collecting": 3}
    for bad in ({"disbursed": 3}, {"collecting": 0}, {"collecting": 1.5}, {"nowhere": 2}, [1]):
        with raises_rule("R-AFT-2"):
            validate_stage_limits(bad)


# ---------------------------------------------------------------------------------------------
# Races (PostgreSQL)

@pytest.mark.postgres
def test_r_aft_2_two_clerks_moving_at_once_record_one_move(app, db, deal):
    from models import User
    file_id = _open(db, deal).id
    ids = (deal["lawyer"].id, deal["finance"].id)

    def move(uid):
        def run(session):
            move_stage(session, session.get(User, uid), file_id, "documents_complete", today=TODAY)
            session.commit()
            return "moved"
        return run
    results = race(move(ids[0]), move(ids[1]), app=app, expected=(RuleViolation,))
    assert results.count("moved") == 1, results
    assert db.session.scalar(select(func.count()).select_from(LoanStage).where(LoanStage.loan_file_id == file_id)) == 2


@pytest.mark.postgres
def test_r_aft_2_two_disbursements_at_once_make_one_receipt(app, db, deal):
    from models import User
    file = _open(db, deal)
    day = _to_registered(db, deal, file)
    file_id, ids = file.id, (deal["finance"].id, deal["finance2"].id)

    def pay(uid):
        def run(session):
            payment = disburse(session, session.get(User, uid), file_id, paid_on=day, today=day)
            session.commit()
            return payment.receipt_no
        return run
    results = race(pay(ids[0]), pay(ids[1]), app=app, expected=(RuleViolation,))
    receipts = [r for r in results if isinstance(r, str)]
    assert len(receipts) == 1, results
    db.session.expire_all()
    line = _line(db, deal)
    file = db.session.get(LoanFile, file_id)
    assert line.status == "paid" and file.status == "disbursed"
    assert db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.channel == "loan_disbursement")) == 1


@pytest.mark.postgres
def test_r_aft_2_a_disbursement_racing_a_reversal_of_the_deal_keeps_file_and_line_consistent(app, db, deal):
    from models import User
    file = _open(db, deal)
    day = _to_registered(db, deal, file)
    extra = record_payment(db.session, deal["finance"], deal["sub"].id, amount="1000", paid_on=day,
                           channel="bank_transfer", instalment_id=_line(db, deal).id, today=day)
    db.session.commit()
    file_id, extra_id, finance_id = file.id, extra.id, deal["finance"].id

    def pay(session):
        payment = disburse(session, session.get(User, finance_id), file_id, paid_on=day, today=day)
        session.commit()
        return payment.amount

    def reverse(session):
        reverse_payment(session, session.get(User, finance_id), extra_id, "录错", today=day)
        session.commit()
        return "reversed"
    results = race(pay, reverse, app=app, expected=(RuleViolation,))
    assert results[1] == "reversed", results
    db.session.expire_all()
    line, file = _line(db, deal), db.session.get(LoanFile, file_id)
    paid = db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.instalment_id == line.id))
    assert line.amount_paid == paid
    assert file.status == "disbursed" and line.amount_paid == results[0] and results[0] in (
        Decimal("699000.00"), Decimal("700000.00"))


# ---------------------------------------------------------------------------------------------
# Screens, through the test client

def _login(client, user):
    from tests.conftest import Auth
    auth = Auth(client)
    assert auth.login(user.username).status_code == 302
    return auth.csrf()


def _step_form(client, token, action, file_id):
    return client.post("/admin/loan_file/action/", data={"csrf_token": token, "action": action,
                                                          "rowid": file_id}).get_data(as_text=True)


def test_r_aft_2_the_deal_page_opens_a_file_and_the_grid_moves_and_disburses_it(client, db, deal):
    from tests.conftest import submission_key
    sub_id = deal["sub"].id
    token = _login(client, deal["lawyer"])
    page = client.get(f"/admin/subscription/details/?id={sub_id}").get_data(as_text=True)
    assert "open-loan-file" in page
    form = client.get(f"/admin/loan_file/open/?subscription_id={sub_id}")
    assert form.status_code == 200 and "中国建设银行长沙分行" in form.get_data(as_text=True)
    client.post("/admin/loan_file/open/", data={"csrf_token": token, "subscription_id": sub_id,
                                                "line_kind": "commercial_loan", "loan_kind": "commercial",
                                                "bank_id": deal["bank"].id, "missing": "收入证明"})
    file = db.session.scalar(select(LoanFile))
    assert file.stage == "collecting" and file.missing == "收入证明"
    page = client.get(f"/admin/subscription/details/?id={sub_id}").get_data(as_text=True)
    assert "open-loan-file" not in page and f'data-file="{file.id}"' in page
    grid = client.get("/admin/loan_file/").get_data(as_text=True)
    assert deal["sub"].number in grid and 'value="next_stage"' in grid and 'value="disburse"' not in grid
    for stage in STAGES:
        key = submission_key(_step_form(client, token, "next_stage", file.id))
        client.post("/admin/loan_file/next_stage/", data={
            "csrf_token": token, "ids": file.id, "stage": stage, "on": str(office_today()), "note": "ok",
            "missing": "", "submission_key": key})
        db.session.expire_all()
        assert db.session.get(LoanFile, file.id).stage == stage
    # the lawyer may not disburse: the step is finance's
    assert client.post("/admin/loan_file/action/", data={"csrf_token": token, "action": "disburse",
                                                          "rowid": file.id}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    token = _login(client, deal["finance"])
    details = client.get(f"/admin/loan_file/details/?id={file.id}").get_data(as_text=True)
    assert "loan-stages" in details and 'value="disburse"' in details
    key = submission_key(_step_form(client, token, "disburse", file.id))
    data = {"csrf_token": token, "ids": file.id, "amount": "", "paid_on": str(office_today()), "bank_ref": "",
            "submission_key": key}
    client.post("/admin/loan_file/disburse/", data=data)
    client.post("/admin/loan_file/disburse/", data=data)  # sent again: one receipt
    db.session.expire_all()
    assert db.session.get(LoanFile, file.id).status == "disbursed"
    assert db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.channel == "loan_disbursement")) == 1


def office_today():
    from models.base import office_today as today
    return today()


def test_r_aft_2_agents_see_their_own_deals_files_only(client, db, deal, make_user):
    file = _open(db, deal)
    other = make_user("agent", username="other_agent")
    _login(client, other)
    assert client.get(f"/admin/loan_file/details/?id={file.id}").status_code in (302, 403, 404)
    assert deal["sub"].number not in client.get("/admin/loan_file/").get_data(as_text=True)
    assert client.get("/admin/loan_ageing/").status_code == 403
    assert client.get(f"/admin/loan_file/open/?subscription_id={deal['sub'].id}").status_code == 403
    client.post("/logout", data={"csrf_token": _login(client, deal["agent"])})
    _login(client, deal["agent"])
    assert client.get(f"/admin/loan_file/details/?id={file.id}").status_code == 200


def test_r_aft_2_stuck_files_on_the_worklist_the_ageing_page_and_the_home_page(client, db, deal):
    file = _open(db, deal)
    db.session.execute(update(LoanFile).where(LoanFile.id == file.id)
                       .values(stage_since=office_today() - dt.timedelta(days=40)))
    db.session.commit()
    _login(client, deal["finance"])
    home = client.get("/admin/").get_data(as_text=True)
    assert "/admin/loan_stuck/" in home
    stuck_page = client.get("/admin/loan_stuck/").get_data(as_text=True)
    assert deal["sub"].number in stuck_page and ">40<" in stuck_page
    client.post("/logout", data={"csrf_token": _login(client, deal["manager"])})
    _login(client, deal["manager"])
    ageing_page = client.get("/admin/loan_ageing/").get_data(as_text=True)
    assert "中国建设银行长沙分行" in ageing_page and "/admin/loan_stuck/" in ageing_page
    assert re.search(r'class="text-right longest">40<', ageing_page)


def test_r_aft_2_banks_are_managed_by_admin_and_finance(client, db, deal, make_user):
    token = _login(client, deal["finance"])
    assert client.get("/admin/bank/new/").status_code == 200
    client.post("/admin/bank/new/", data={"csrf_token": token, "name": "中国工商银行长沙分行", "branch": "",
                                          "contact": "", "active": "y"})
    assert db.session.scalar(select(func.count()).select_from(Bank)) == 2
    client.post("/logout", data={"csrf_token": token})
    _login(client, deal["lawyer"])
    assert client.get("/admin/bank/new/").status_code == 403


def test_r_aft_2_a_disbursement_marks_the_contracts_mortgage_step_done_when_its_order_allows(db, deal):
    from models.contracts import Contract, ContractStep, book_signing, sign_contract, update_step
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, today=TODAY,
                            appointment_at=dt.datetime.combine(TODAY, dt.time(10)))
    sign_contract(db.session, deal["lawyer"], contract.id, number="HT-1", signed_on=TODAY, today=TODAY)
    db.session.commit()
    steps = {s.kind: s for s in db.session.scalars(select(ContractStep).join(Contract).where(
        Contract.subscription_id == deal["sub"].id))}
    file = _open(db, deal)
    day = _to_registered(db, deal, file)
    # online filing (its prerequisite) not done: the step is left for the lawyer
    payment = disburse(db.session, deal["finance"], file.id, paid_on=day, today=day)
    db.session.commit()
    assert steps["mortgage"].status == "pending"
    reverse_payment(db.session, deal["finance"], payment.id, "重录", today=day)
    update_step(db.session, deal["lawyer"], steps["online_filing"].id, status="done", done_on=TODAY, today=day)
    db.session.commit()
    disburse(db.session, deal["finance"], file.id, paid_on=day, today=day)
    db.session.commit()
    db.session.refresh(steps["mortgage"])
    assert (steps["mortgage"].status, steps["mortgage"].done_on) == ("done", day)


def test_r_aft_2_the_project_form_refuses_bad_stage_limits_and_saves_good_ones(app, db, make_user):
    from models import Project
    from tests.test_change_admin_checks import _form, _signed_in
    make_user("admin", username="boss")
    project = f.project(db.session)
    db.session.commit()
    before = dict(project.loan_stage_limits)
    client, token = _signed_in(app, "boss", lang="en")
    data = _form(client.get(f"/admin/project/edit/?id={project.id}").get_data(as_text=True))
    assert "loan_stage_limits" in data
    data.update({"csrf_token": token, "loan_stage_limits": '{"collecting": 0}'})
    text = client.post(f"/admin/project/edit/?id={project.id}", data=data, follow_redirects=True).get_data(as_text=True)
    assert "R-AFT-2" in text
    db.session.expire_all()
    assert db.session.get(Project, project.id).loan_stage_limits == before
    data.update({"loan_stage_limits": '{"collecting": 30}'})
    client.post(f"/admin/project/edit/?id={project.id}", data=data, follow_redirects=True)
    db.session.expire_all()
    assert db.session.get(Project, project.id).loan_stage_limits == {"collecting": 30}
