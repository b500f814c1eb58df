"""Issue 19, items 13, 14 and 5: one validator of identity documents on every path, full-width
phone digits read, and search terms read like the data (phones as stored, units by their name)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from models import Lead, Subscription
from models.base import office_today
from models.deals import confirm_subscription, subscribe
from models.payments import record_deposit
from models.errors import RuleViolation
from models.identity import validate_id_document
from models.leads import register_lead
from models.submissions import new_key
from tests import factories as f
from tests.conftest import Auth


def _with_check(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


VALID = "110101199003074573"
WRONG_CHECK = "110101199003074572"
BAD_DATE = _with_check("11010119991399457")  # born 1999-13-99, with a right check digit
UNKNOWN_REGION = _with_check("99999919900307457")  # region 999999, with a right check digit
INVALID = {"123": ("123", "18"), "wrong_check": (WRONG_CHECK, "校验位"),
           "birth_19991399": (BAD_DATE, "1999-13-99"), "unknown_region": (UNKNOWN_REGION, "999999")}
FOREIGN = {  # one good number of each other kind of document
    "passport": "E12345678", "hk_macao_permit": "H12345678", "taiwan_permit": "12345678",
    "foreign_permanent_resident": "USA318001011234"}
MORE_FOREIGN = [("hk_macao_permit", "M1234567801"), ("taiwan_permit", "1234567890"),
                ("foreign_permanent_resident", _with_check("94384019800101123")), ("passport", "G1234567")]


@pytest.fixture
def office(db, make_user):
    s = db.session
    project = f.project(s, code="XJ", name="湘江壹号")
    building = f.building(s, project, name="1栋", floors=30)
    units = [f.unit(s, building, floor=23, position=p, number=f"230{p}", list_price=Decimal("1500000.00"))
             for p in (1, 2)]
    agent = make_user("agent", username="li")
    lead = f.lead(s, owner=agent, project_=project, name="黄先生", phone="13800138001")
    lead2 = f.lead(s, owner=agent, project_=project, name="陈女士", phone="073188886666")
    s.commit()
    return {"project": project, "units": units, "agent": agent, "lead": lead, "lead2": lead2,
            "control": make_user("sales_control", username="chen"), "finance": make_user("finance", username="zhao"),
            "manager": make_user("sales_manager", username="wang"), "vp": make_user("vp", username="wu"),
            "admin": make_user("admin", username="root")}


def _register(db, office, **kw):
    args = {"project_id": office["project"].id, "name": "周先生", "phone": "13900001111", "source": "walk_in", **kw}
    lead = register_lead(db.session, office["agent"], **args)
    db.session.commit()
    return lead


def _subscribe(db, office, unit=0, **kw):
    args = {"unit_id": office["units"][unit].id, "lead_id": office["lead"].id, "payment_method": "one_off",
            "deposit": "50000", "id_number": VALID, "address": "长沙市", **kw}
    result = subscribe(db.session, office["agent"], **args)
    db.session.commit()
    return result


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def _message(app, exc) -> str:
    from flask_babel import force_locale
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        return str(exc)


def _refusal(db, step, office, number):
    """The refusal of `step` (_register or _subscribe) given the resident ID `number`, rolled back."""
    with pytest.raises(RuleViolation) as refused:
        step(db, office, id_number=number)
    db.session.rollback()
    return refused.value


def _login(app, username):
    client = app.test_client()
    assert Auth(client).login(username).status_code == 302
    return client


# --- item 13: one validator ---------------------------------------------------------------------

@pytest.mark.parametrize("case", list(INVALID))
def test_issue19_13_registration_refuses_an_invalid_resident_id_r_lead_1(app, db, office, case):
    number, said = INVALID[case]
    refused = _refusal(db, _register, office, number)
    assert said in _message(app, refused) and "R-SUB-1" in _message(app, refused)
    assert _count(db, Lead) == 2  # nothing saved


@pytest.mark.parametrize("case", list(INVALID))
def test_issue19_13_subscription_refuses_the_same_numbers_r_sub_1(app, db, office, case):
    number, said = INVALID[case]
    refused = _refusal(db, _subscribe, office, number)
    assert said in _message(app, refused)
    assert _count(db, Subscription) == 0


@pytest.mark.parametrize("case", list(INVALID))
def test_issue19_13_the_registration_form_refuses_an_invalid_resident_id(app, db, office, case):
    client = _login(app, "li")
    page = client.post("/admin/lead/new/", data={
        "csrf_token": Auth(client).csrf(), "project": office["project"].id, "name": "周先生",
        "phone": "13900001111", "source": "walk_in", "id_type": "resident_id", "id_number": INVALID[case][0]},
        follow_redirects=True).get_data(as_text=True)
    assert INVALID[case][1] in page
    assert _count(db, Lead) == 2


@pytest.mark.parametrize("case", list(INVALID))
def test_issue19_13_the_edit_form_refuses_an_invalid_resident_id(app, db, office, case):
    client = _login(app, "root")  # reads ID numbers whole
    lead = office["lead"]
    page = client.post(f"/admin/lead/edit/?id={lead.id}", data={
        "csrf_token": Auth(client).csrf(), "project": lead.project_id, "name": "黄先生", "phone": lead.phone,
        "source": "walk_in", "id_type": "resident_id", "id_number": INVALID[case][0]},
        follow_redirects=True).get_data(as_text=True)
    assert INVALID[case][1] in page
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).id_number is None


def test_issue19_13_the_subscription_form_refuses_an_invalid_resident_id(app, db, office):
    client = _login(app, "li")
    unit = office["units"][0]
    page = client.post(f"/admin/subscription/new/?unit_id={unit.id}", data={
        "csrf_token": Auth(client).csrf(), "unit_id": unit.id, "lead_id": office["lead"].id,
        "id_type": "resident_id", "id_number": BAD_DATE, "address": "长沙市", "payment_method": "one_off",
        "price": "1500000.00", "deposit": "50000", "subscribed_on": office_today().isoformat()},
        follow_redirects=True).get_data(as_text=True)
    assert "1999-13-99" in page
    assert _count(db, Subscription) == 0


@pytest.mark.parametrize("id_type", list(FOREIGN))
def test_issue19_13_each_other_document_registers_and_subscribes(db, office, id_type):
    lead = _register(db, office, id_type=id_type, id_number=FOREIGN[id_type].lower())
    assert (lead.id_type, lead.id_number) == (id_type, FOREIGN[id_type])
    deal = _subscribe(db, office, lead_id=lead.id, id_type=id_type, id_number=FOREIGN[id_type])
    assert (deal.customer_id_type, deal.customer_id_number) == (id_type, FOREIGN[id_type])


def test_issue19_13_the_agreement_and_letters_name_the_document_the_deal_stores(db, office):
    from models.document_contexts import _customer
    lead = _register(db, office, id_type="passport", id_number="E12345678")
    deal = _subscribe(db, office, lead_id=lead.id, id_type="passport", id_number="")
    assert _customer(deal)["id_document"] == "护照" and _customer(deal)["id_number"] == "E12345678"


@pytest.mark.parametrize("id_type, number", MORE_FOREIGN)
def test_issue19_13_the_other_editions_of_the_documents_are_accepted(id_type, number):
    assert validate_id_document(id_type, number) == (id_type, number)


@pytest.mark.parametrize("id_type, number", [
    ("passport", "E12"), ("passport", "护照123456"), ("hk_macao_permit", "X12345678"), ("hk_macao_permit", "H1234567"),
    ("taiwan_permit", "1234567"), ("foreign_permanent_resident", "USA311399011234"),
    ("foreign_permanent_resident", "943840198001011230" if _with_check("94384019800101123")[-1] != "0"
     else "943840198001011231"), ("resident_id", "E12345678"), ("spaceship_licence", "E12345678")])
def test_issue19_13_a_number_not_of_its_documents_format_is_refused(app, id_type, number):
    with pytest.raises(RuleViolation):
        validate_id_document(id_type, number)


def test_issue19_13_full_width_and_spaced_numbers_are_stored_as_ascii(db, office):
    lead = _register(db, office, id_number="１１０１０１ １９９００３０７ ４５７３")
    assert lead.id_number == VALID and lead.id_type == "resident_id"


def test_issue19_13_the_agreement_form_is_prefilled_from_the_customer(app, db, office):
    """The agent reads ID numbers masked: the form names the customer, the phone and the
    registered document (masked), takes the document's kind, and an empty number means the
    registered one — the deal stores the customer's document."""
    lead = office["lead"]
    lead.id_type, lead.id_number, lead.address = "hk_macao_permit", "H12345678", "香港中环"
    db.session.commit()
    client = _login(app, "li")
    unit = office["units"][0]
    form = client.get(f"/admin/subscription/new/?unit_id={unit.id}&lead_id={lead.id}").get_data(as_text=True)
    assert 'value="hk_macao_permit" selected' in form or 'selected value="hk_macao_permit"' in form
    assert "H12**5678" in form and "H12345678" not in form  # masked for the agent
    assert "黄先生" in form and "13800138001" in form and "香港中环" in form
    response = client.post(f"/admin/subscription/new/?unit_id={unit.id}", data={
        "csrf_token": Auth(client).csrf(), "unit_id": unit.id, "lead_id": lead.id, "id_type": "hk_macao_permit",
        "id_number": "", "address": "香港中环", "payment_method": "one_off", "price": "1500000.00",
        "deposit": "50000", "subscribed_on": office_today().isoformat()})
    assert response.status_code == 302
    deal = db.session.scalar(select(Subscription))
    assert (deal.customer_id_type, deal.customer_id_number) == ("hk_macao_permit", "H12345678")


def test_issue19_13_a_role_reading_id_numbers_whole_gets_the_number_prefilled(app, db, office):
    from admin.deals import _prefill
    office["lead"].id_number = VALID
    db.session.commit()
    with app.test_request_context():
        from flask_login import login_user
        login_user(office["control"])
        assert _prefill(office["lead"])["data-id-number"] == VALID
        login_user(office["agent"])
        assert _prefill(office["lead"])["data-id-number"] == ""
        assert "110***********4573" in _prefill(office["lead"])["data-id-note"]


def test_issue19_13_an_invalid_number_from_before_stays_until_its_form_is_saved(app, db, office):
    """Rows registered before the one validator keep their number (nothing rewritten); the edit
    form says it is not valid and saving asks for a valid one; a subscription with a valid one
    puts the customer's right."""
    lead = office["lead"]
    lead.id_number = "123"
    db.session.commit()
    client = _login(app, "li")
    form = client.get(f"/admin/lead/edit/?id={lead.id}").get_data(as_text=True)
    assert "已登记的证件号码无效" in form
    page = client.post(f"/admin/lead/edit/?id={lead.id}", data={
        "csrf_token": Auth(client).csrf(), "project": lead.project_id, "name": "黄先生改", "phone": lead.phone,
        "source": "walk_in", "id_type": "resident_id", "id_number": ""}, follow_redirects=True).get_data(as_text=True)
    assert "18 位" in page
    db.session.expire_all()
    assert (db.session.get(Lead, lead.id).name, db.session.get(Lead, lead.id).id_number) == ("黄先生", "123")
    _subscribe(db, office, id_number=VALID)
    assert db.session.get(Lead, lead.id).id_number == VALID


def test_issue19_13_other_documents_are_masked_by_the_one_rule(app, db, office):
    lead = _register(db, office, id_type="passport", id_number="E12345678")
    page = _login(app, "li").get(f"/admin/lead/details/?id={lead.id}").get_data(as_text=True)
    assert "E12**5678" in page and "E12345678" not in page and "护照" in page
    assert "E12345678" in _login(app, "root").get(f"/admin/lead/details/?id={lead.id}").get_data(as_text=True)


# --- item 14: full-width phone digits -------------------------------------------------------------

def test_issue19_14_full_width_phone_digits_register_and_edit_as_ascii_r_lead_1(app, db, office):
    lead = _register(db, office, phone="１３９ ０００１－１１１１")
    assert lead.phone == "13900011111"
    client = _login(app, "li")
    response = client.post("/admin/lead/new/", data={
        "csrf_token": Auth(client).csrf(), "project": office["project"].id, "name": "吴女士",
        "phone": "１３７００１３７０００", "source": "walk_in", "id_type": "resident_id", "id_number": ""})
    assert response.status_code == 302
    assert db.session.scalar(select(Lead.phone).where(Lead.name == "吴女士")) == "13700137000"
    lead = office["lead"]
    client.post(f"/admin/lead/edit/?id={lead.id}", data={
        "csrf_token": Auth(client).csrf(), "project": lead.project_id, "name": "黄先生", "phone": "１３６００１３６０００",
        "source": "walk_in", "id_type": "resident_id", "id_number": ""})
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).phone == "13600136000"


def test_issue19_14_digits_of_another_script_are_stored_as_ascii_or_refused_r_lead_5(db, office):
    """Arabic-Indic digits (١٣٨…) passed the patterns (`\\d` reads them) and were stored as typed:
    a permit number no one can read, and a phone the duplicate check (R-LEAD-5) never matched."""
    assert validate_id_document("taiwan_permit", "١٢٣٤٥٦٧٨") == ("taiwan_permit", "12345678")
    assert validate_id_document("hk_macao_permit", "H١٢٣٤٥٦٧٨") == ("hk_macao_permit", "H12345678")
    for id_type, number in (("passport", "E1234567\x00"), ("passport", "Ｅ" + "１" * 500), ("taiwan_permit", "1234567a")):
        with pytest.raises(RuleViolation):
            validate_id_document(id_type, number)
    # The customer 黄先生 holds 13800138001: the same number in other digits is his, not a new one.
    from models.leads import DuplicateLead
    with pytest.raises(DuplicateLead):
        _register(db, office, name="再来", phone="13٨٠٠١٣٨٠٠١")
    db.session.rollback()
    assert _register(db, office, name="新客", phone="139٠٠٠٠١١١١").phone == "13900001111"


# --- item 5: search terms read like the data ------------------------------------------------------

@pytest.mark.parametrize("term, who", [
    ("138-0013-8001", "黄先生"), ("138 0013 8001", "黄先生"), ("１３８００１３８００１", "黄先生"),
    ("+86 138-0013-8001", "黄先生"), ("0731-88886666", "陈女士"), ("(0731) 8888-6666", "陈女士"),
    ("8888-6666", "陈女士")])
def test_issue19_5_customers_are_found_by_a_phone_as_people_type_it(app, db, office, term, who):
    page = _login(app, "wang").get("/admin/lead/", query_string={"search": term}).get_data(as_text=True)
    assert who in page
    assert ({"黄先生", "陈女士"} - {who}).pop() not in page


def test_issue19_5_a_masked_phone_is_still_found_only_whole(app, db, office):
    """The VP reads phones masked (issue 18, item 2): the typed formats find the whole number,
    never a part of it."""
    client = _login(app, "wu")

    def found(term):
        return "黄先生" in client.get("/admin/lead/", query_string={"search": term}).get_data(as_text=True)
    assert found("138-0013-8001") and found("138 0013 8001") and found("１３８００１３８００１")
    assert not found("138-0013") and not found("138-0013-800") and not found("0013-8001")


def _deal_with_deposit(db, office):
    """1栋-2301's deal (below list: a price approval; deposit in; an extension asked) and
    1栋-2302's (the same rows), to tell apart by the unit's name."""
    from models import Instalment, PriceApproval
    from models.deals import decide_price
    from models.ladder import request_extension
    deals = [_subscribe(db, office, unit=n, lead_id=office[lead].id, price="1400000", price_reason="老客户")
             for n, lead in ((0, "lead"), (1, "lead2"))]
    payments = []
    for deal in deals:
        approval = db.session.scalar(select(PriceApproval).where(PriceApproval.subscription_id == deal.id))
        decide_price(db.session, office["vp"], approval.id, True)
        confirm_subscription(db.session, office["control"], deal.id)
        db.session.commit()
        payments.append(record_deposit(db.session, office["finance"], deal.id, amount="50000",
                                       paid_on=office_today(), channel="pos", key=new_key()))
        db.session.commit()
        line = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal.id,
                                                         Instalment.seq == 2))
        request_extension(db.session, office["agent"], line.id, 5, "客户出差")
        db.session.commit()
    (deal, other), payment = deals, payments[0]
    return deal, payment, other


@pytest.mark.parametrize("endpoint, shows", [
    ("subscription", lambda deal, payment: deal.number), ("payment", lambda deal, payment: payment.receipt_no),
    ("instalment", lambda deal, payment: deal.number),
    ("price_approval", lambda deal, payment: deal.number), ("extension", lambda deal, payment: deal.number),
    ("voucher", None), ("contract", None),
    ("contract_step", None), ("contract_step_due", None), ("archive_record", None), ("settlement", None),
    ("lawyer_letter_due", None), ("rescission", None)])
def test_issue19_5_rows_of_a_deal_are_found_by_the_units_displayed_name(app, db, office, endpoint, shows):
    deal, payment, other = _deal_with_deposit(db, office)
    client = _login(app, "root")
    response = client.get(f"/admin/{endpoint}/", query_string={"search": "1栋-2301"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    if shows:
        assert shows(deal, payment) in page
        assert other.number not in page  # 1栋-2302's deal
        assert shows(deal, payment) not in client.get(f"/admin/{endpoint}/", query_string={
            "search": "1栋-2302"}).get_data(as_text=True)
