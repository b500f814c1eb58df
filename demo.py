"""A realistic demo office: `flask --app app demo`. Safe to run again (creates what is missing)."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from models import (Building, CustomerQuestion, FollowUp, Lead, LeadConflict, Notification,
                    PriceApproval, Project, Subscription, Unit, User)
from models import utcnow
from models.audit import audit_context
from models.users import create_user

DEMO_PASSWORD = "demo12345"

ACCOUNTS = [  # username, display name, roles
    ("admin", "系统管理员", ["admin"]),
    ("manager", "王建国（销售经理）", ["sales_manager"]),
    ("agent1", "李明", ["agent"]),
    ("agent2", "张丽", ["agent"]),
    ("agent3", "刘强", ["agent"]),
    ("control", "陈静（销控）", ["sales_control"]),
    ("finance", "赵敏（财务）", ["finance"]),
    ("lawyer", "孙律师", ["lawyer"]),
    ("archive", "周洁（合同档案）", ["archive"]),
    ("vp", "吴总（主管副总）", ["vp"]),
    ("service", "何芳（客服）", ["customer_service"]),
]

PROJECTS = [
    dict(code="XJ01", name="湘江壹号", developer="长沙VK置业有限公司", city="长沙",
         address="长沙市岳麓区潇湘北路88号", is_agency=False,
         buildings=[("1栋", 24), ("2栋", 24), ("3栋", 26), ("5栋", 22)], price_per_m2=12800,
         selling_for_days=120),
    # An agency project with the developer's own ladder and limits (R-PAY-7).
    dict(code="MX02", name="梅溪湖·云境", developer="湖南云境地产（代理）", city="长沙",
         address="长沙市岳麓区梅溪湖路399号", is_agency=True, warning_day=3, lawyer_letter_day=10,
         forfeit_day=20, extension_limit_days=10, follow_up_days=2,
         buildings=[("A座", 18), ("B座", 18), ("C座", 20)], price_per_m2=9600),
]

# position on the floor -> (layout, area m²)
LAYOUTS = {1: ("三室两厅两卫", Decimal("128.56")), 2: ("两室两厅一卫", Decimal("89.32")),
           3: ("两室两厅一卫", Decimal("92.10")), 4: ("四室两厅两卫", Decimal("143.80"))}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
         "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "文", "华", "红", "志强", "晓东",
         "海燕", "子涵", "浩然", "雨桐", "欣怡", "宇轩", "梓萱", "俊杰", "思远", "堃", "喆"]
NEEDS = ["预算150万左右，三房，自住", "两房，学区优先，首套", "改善型，四房，南北通透",
         "投资，小户型，靠近地铁", "为父母购房，低楼层，有电梯", "预算120万，两房，公积金贷款"]
FOLLOW_UP_TEXT = [
    ("phone", "电话回访，客户周末有空看房", "约定周六上午到售楼部"),
    ("visit", "到访售楼部，参观样板间，对3栋中间户型感兴趣", "意向较强，关注价格和首付比例"),
    ("wechat", "微信发送户型图和价格表", "客户已读，表示与家人商量"),
    ("phone", "电话跟进，客户在比较周边楼盘", "需再次邀约，强调学区和交通"),
    ("visit", "带客户看现场工地和小区配套", "客户关心交房时间"),
]


def office_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _accounts(session) -> dict[str, User]:
    users = {}
    for username, display, roles in ACCOUNTS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = create_user(session, username, DEMO_PASSWORD, roles, display)
        users[username] = user
    return users


def _inventory(session, spec: dict) -> Project:
    project = session.scalar(select(Project).where(Project.code == spec["code"]))
    if project is not None:
        return project
    settings = {k: v for k, v in spec.items() if k not in ("buildings", "price_per_m2", "selling_for_days")}
    project = Project(**settings)
    if spec.get("selling_for_days"):  # on sale for months: its older deals' dates are in range
        project.sales_start_on = office_today() - dt.timedelta(days=spec["selling_for_days"])
        project.backdate_days = spec["selling_for_days"]
    session.add(project)
    session.flush()
    from models.payments import ensure_default_methods
    ensure_default_methods(session, project)
    for b_index, (name, floors) in enumerate(spec["buildings"]):
        building = Building(project=project, name=name, floors=floors)
        session.add(building)
        for floor in range(1, floors + 1):
            for position, (layout, area) in LAYOUTS.items():
                # Higher floors cost more; end units (1, 4) a little more than middle ones.
                per_m2 = spec["price_per_m2"] + 60 * floor + (300 if position in (1, 4) else 0)
                price = (area * per_m2).quantize(Decimal("1"))
                status = "withheld" if (b_index == 0 and floor == floors) else "available"
                session.add(Unit(building=building, floor=floor, position=position,
                                 number=f"{floor}{position:02d}", layout=layout, area=area,
                                 list_price=Decimal(price).quantize(Decimal("0.01")), status=status))
    session.flush()
    return project


def _leads(session, project: Project, users: dict[str, User], count: int, rng: random.Random,
           today: dt.date) -> None:
    if session.scalar(select(func.count()).select_from(Lead).where(Lead.project_id == project.id)):
        return
    agents = [users["agent1"], users["agent2"], users["agent3"]]
    phones = set()
    for i in range(count):
        phone = None
        while phone is None or phone in phones:
            phone = rng.choice(["138", "139", "137", "135", "150", "151", "186", "188", "177", "199"]) \
                + f"{rng.randrange(10**8):08d}"
        phones.add(phone)
        owner = None if i % 11 == 0 else agents[i % 3]  # a few unassigned, in the manager's pool
        registered = dt.datetime.combine(today - dt.timedelta(days=rng.randrange(1, 60)),
                                         dt.time(rng.randrange(1, 10), rng.randrange(60)))
        stage = rng.choice(["new", "contacted", "contacted", "visited", "visited", "lost"])
        lead = Lead(project=project, name=rng.choice(SURNAMES) + rng.choice(GIVEN), phone=phone,
                    # a valid one (models/identity.py), drawn as before so the rest of the office stays the same
                    id_number=_id_number(random.Random(rng.randrange(10**14) + 0 * len(rng.choice("0123456789X")))),
                    source=rng.choice(["phone_call", "walk_in", "referral", "advert", "web", "fair"]),
                    needs=rng.choice(NEEDS), stage=stage, owner=owner,
                    registered_by=owner or users["manager"], registered_at=registered,
                    # some due today, some overdue for follow-up (R-LEAD-3), most in the future
                    next_follow_up_on=None if stage == "lost" or owner is None
                    else today + dt.timedelta(days=rng.randrange(-4, 4)))
        session.add(lead)
        lead.last_activity_at = registered
        if stage != "new" and owner is not None:
            now = utcnow()
            for n in range(rng.randrange(1, 4)):
                channel, content, outcome = rng.choice(FOLLOW_UP_TEXT)
                at = min(registered + dt.timedelta(days=3 * (n + 1), hours=rng.randrange(8)), now)
                session.add(FollowUp(lead=lead, agent=owner, at=at, channel=channel, content=content,
                                     outcome=outcome, next_on=(at + dt.timedelta(days=3)).date(),
                                     manager_feedback="下次带上最新优惠政策说明" if n == 0 and i % 5 == 0 else "",
                                     feedback_by_id=users["manager"].id if n == 0 and i % 5 == 0 else None))
                lead.last_activity_at = max(lead.last_activity_at, at)
        if owner is not None and stage != "lost" and \
                lead.last_activity_at < dt.datetime.combine(today - dt.timedelta(days=12), dt.time()):
            # Agents keep their customers warm: a recent call, so only a few drift to the pool.
            at = dt.datetime.combine(today - dt.timedelta(days=rng.randrange(1, 10)), dt.time(3))
            channel, content, outcome = FOLLOW_UP_TEXT[3]
            session.add(FollowUp(lead=lead, agent=owner, at=at, channel=channel, content=content,
                                 outcome=outcome, next_on=lead.next_follow_up_on))
            lead.last_activity_at = at
            if lead.stage == "new":
                lead.stage = "contacted"
        if owner is None and i % 22 == 0:
            lead.pooled_at = registered + dt.timedelta(days=16)  # came back from an idle agent
    session.flush()


QUESTIONS = [  # (question, times asked, answer or "")
    ("地下车位怎么卖？可以只租不买吗？", 3, "地下车位12万起，交房后可按月租赁，每月300元。"),
    ("小区对口哪所小学？", 4, ""),
    ("物业费每平米多少钱？", 2, "住宅物业费2.8元/㎡·月，含公共区域能耗。"),
    ("公积金贷款最多能贷多少？", 1, ""),
    ("什么时候交房？精装标准是什么？", 2, ""),
]


def _conflicts_questions_and_pool(session, users: dict[str, User], project: Project) -> None:
    """A duplicate registration, questions for the answer sheet, leads back in the pool."""
    from models.leads import (DuplicateLead, answer_topic, ask_question, pool_stale_leads,
                              register_lead)
    if session.scalar(select(func.count()).select_from(LeadConflict)):
        return
    taken = session.scalar(select(Lead).where(Lead.project_id == project.id,
                                              Lead.owner_id == users["agent1"].id).limit(1))
    try:
        register_lead(session, users["agent2"], project_id=project.id, name=taken.name + "（朋友介绍）",
                      phone=taken.phone, source="referral")
    except DuplicateLead:
        pass  # the conflict waits for the manager
    agents = [users["agent1"], users["agent2"], users["agent3"]]
    for n, (question, times, answer) in enumerate(QUESTIONS):
        for k in range(times):
            ask_question(session, agents[(n + k) % 3], project_id=project.id,
                         question=question if k == 0 else question.rstrip("？?") + "?")
        if answer:
            from models.leads import question_topic
            answer_topic(session, users["manager"], project_id=project.id,
                         topic=question_topic(question), answer=answer)
    # Two idle leads of agent3 go back to the pool the way the daily job does it.
    for lead in session.scalars(select(Lead).where(Lead.owner_id == users["agent3"].id,
                                                   Lead.stage.in_(("new", "contacted"))).limit(2)):
        lead.last_activity_at = dt.datetime(2020, 1, 1)
    session.flush()
    pool_stale_leads(session)


def _id_number(rng: random.Random) -> str:
    """A fictitious resident ID number with a valid check digit (Changsha area code 430104)."""
    birth = dt.date(1965, 1, 1) + dt.timedelta(days=rng.randrange(365 * 35))
    body = f"430104{birth:%Y%m%d}{rng.randrange(1000):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def _deals(session, users: dict[str, User], project: Project, rng: random.Random, today: dt.date):
    """Subscriptions in each state so far, holds and a price waiting for the vice-president,
    made through the same domain functions the staff use."""
    from models import Subscription
    from models.deals import confirm_subscription, decide_price, subscribe, withdraw_subscription
    from models.payments import record_deposit
    from models.inventory import hold_unit
    if session.scalar(select(func.count()).select_from(Subscription)):
        return
    units = list(session.scalars(select(Unit).join(Building).where(
        Building.project_id == project.id, Unit.status == "available").order_by(Unit.id)))
    rng.shuffle(units)
    agents = [users["agent1"], users["agent2"], users["agent3"]]
    made = []
    for n in range(18):
        agent = agents[n % 3]
        lead = session.scalar(select(Lead).where(Lead.owner_id == agent.id, Lead.project_id == project.id,
                                                 Lead.stage == "visited").order_by(Lead.id).limit(1))
        if lead is None:
            break
        unit = units.pop()
        discounted = n == 4
        # Drafts and confirmed deals are recent (their deposit is due in a few days), but for one
        # draft whose deposit never came: today's run expires it. Active deals (n ≥ 8) pay one-off,
        # balance due 7 days after subscribing: their dates put them on every rung of the ladder
        # today (forfeit, lawyer's letter, warning, reminder).
        ago = {0: 5, 1: 4, 2: 10, 3: 1, 4: 1, 5: 2, 6: 1, 7: 0, 8: 30, 9: 17, 10: 11, 11: 5}.get(n, 3)
        deposit_due = today - dt.timedelta(days=ago) + dt.timedelta(days=0 if n == 2 or n >= 8 else 3)
        made.append(subscribe(
            session, agent, unit_id=unit.id, lead_id=lead.id,
            payment_method="one_off" if n >= 8 else rng.choice(
                ["one_off", "instalments", "commercial_mortgage", "provident_fund"]),
            deposit="50000", id_number=_id_number(rng), address=f"长沙市岳麓区桐梓坡路{n + 10}号",
            price=unit.list_price - 30000 if discounted or n == 5 else None,
            price_reason="老业主推荐购房，申请优惠3万元" if discounted or n == 5 else "",
            subscribed_on=today - dt.timedelta(days=ago), deposit_due_on=deposit_due, today=today))
    if len(made) < 18:
        return
    decide_price(session, users["vp"], session.scalar(select(PriceApproval.id).where(
        PriceApproval.subscription_id == made[5].id)), True)
    for sub in made[5:]:
        confirm_subscription(session, users["control"], sub.id)  # 0–4 stay drafts (4 awaits the VP)
    for k, sub in enumerate(made[8:]):
        record_deposit(session, users["finance"], sub.id, amount="50000", paid_on=sub.subscribed_on,
                       channel=rng.choice(["bank_transfer", "pos"]), bank_ref=f"DEMO{sub.id:06d}",
                       today=today)
    for sub in made[:2]:
        withdraw_subscription(session, sub.agent, sub.id, "客户家庭意见不一致，暂缓购买")
    _money_demo(session, users, made, today)
    for agent in agents:
        lead = session.scalar(select(Lead).where(Lead.owner_id == agent.id, Lead.project_id == project.id,
                                                 Lead.stage == "visited").order_by(Lead.id.desc()).limit(1))
        if lead is not None:
            unit = units.pop()
            while unit.status != "available":  # taken by a signed demo deal meanwhile
                unit = units.pop()
            hold_unit(session, agent, unit_id=unit.id, lead_id=lead.id)


def _money_demo(session, users, made, today):
    """Payments in every state, a reversal, extensions decided both ways, the ladder run today."""
    from models import Instalment
    from models.ladder import decide_extension, request_extension, run_ladder
    from models.payments import note_on_instalment, record_payment, reverse_payment

    def balance(sub):
        return session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                       Instalment.kind != "deposit").order_by(Instalment.seq))

    finance = users["finance"]
    record_payment(session, finance, made[12].id, amount="300000", paid_on=today, channel="bank_transfer",
                   bank_ref=f"DEMO-P{made[12].id}", today=today)                      # partly paid
    record_payment(session, finance, made[13].id, amount=str(balance(made[13]).amount_due),
                   paid_on=today, channel="loan_disbursement", bank_ref=f"DEMO-F{made[13].id}",
                   today=today)                                                         # paid in full
    wrong = record_payment(session, finance, made[14].id, amount="200000", paid_on=today, channel="pos",
                           today=today)
    reverse_payment(session, finance, wrong.id, "POS 小票金额录入错误，冲正后重录", today=today)
    record_payment(session, finance, made[14].id, amount="20000", paid_on=today, channel="pos", today=today)
    for sub, days, verdict in ((made[15], 10, True), (made[16], 20, None), (made[17], 5, False)):
        ext = request_extension(session, sub.agent, balance(sub).id, days, "客户公积金提取手续办理中")
        if verdict is not None:
            decide_extension(session, users["manager"], ext.id, verdict)
    note_on_instalment(session, made[9].agent, balance(made[9]).id, "客户称下周一到账，已提醒逾期后果",
                       today=today)
    _signed_deals(session, users, made[0].project, today)
    session.commit()
    run_ladder(session, today)
    _contracts_demo(session, users, made, today)


def _signed_deals(session, users, project, today):
    """Signed deals whose later lines are still to come, as a real office has them (R-PAY-4): an
    instalment deal (next line in ~7 weeks), and two mortgage deals whose loan is late — 10 days
    (a lawyer's letter for the lawyer to send) and 20 days (on the rescission worklist)."""
    from models import Instalment
    from models.contracts import book_signing, sign_contract
    from models.deals import confirm_subscription, subscribe
    from models.payments import record_deposit
    from models.payments import record_payment
    agents = [users["agent1"], users["agent2"], users["agent3"]]
    units = list(session.scalars(select(Unit).join(Building).where(
        Building.project_id == project.id, Unit.status == "available").order_by(Unit.id.desc()).limit(3)))
    for n, (method, ago) in enumerate((("instalments", 40), ("commercial_mortgage", 70),
                                       ("commercial_mortgage", 80))):
        agent = agents[n]
        lead = session.scalar(select(Lead).where(Lead.owner_id == agent.id, Lead.project_id == project.id,
                                                 Lead.stage == "visited").order_by(Lead.id.desc()).limit(1))
        day = today - dt.timedelta(days=ago)
        sub = subscribe(session, agent, unit_id=units[n].id, lead_id=lead.id, payment_method=method,
                        deposit="50000", id_number=_id_number(random.Random(ago)),
                        address=f"长沙市开福区湘江中路{ago}号", subscribed_on=day, today=day)
        confirm_subscription(session, users["control"], sub.id)
        record_deposit(session, users["finance"], sub.id, amount="50000", paid_on=day, channel="pos",
                       bank_ref=f"DEMO-D{sub.id}", today=today)
        down = session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                       Instalment.kind == "down_payment"))
        paid_on = day + dt.timedelta(days=10)
        record_payment(session, users["finance"], sub.id, amount=str(down.amount_due), paid_on=paid_on,
                       channel="bank_transfer", bank_ref=f"DEMO-DP{sub.id}", today=today)
        contract = book_signing(session, agent, sub.id, today=paid_on,
                                appointment_at=dt.datetime.combine(paid_on + dt.timedelta(days=2), dt.time(10)))
        sign_contract(session, users["lawyer"], contract.id, number=f"XJ-HT-2026-{90 + n:04d}",
                      signed_on=paid_on + dt.timedelta(days=2), today=paid_on + dt.timedelta(days=2))


def _contracts_demo(session, users, made, today):
    """Contracts booked, signed (a step overdue) and archived with a stamped copy issued."""
    import datetime as _dt

    from models import ContractStep, Instalment
    from models.contracts import (book_signing, issue_stamped_copy, receive_original, sign_contract,
                                  update_step)
    from models.payments import record_payment
    finance, lawyer = users["finance"], users["lawyer"]
    appointment = _dt.datetime.combine(today + _dt.timedelta(days=3), _dt.time(10))

    def settle(sub):
        rest = sum(i.amount_due - i.amount_paid for i in session.scalars(
            select(Instalment).where(Instalment.subscription_id == sub.id)))
        if rest:
            record_payment(session, finance, sub.id, amount=str(rest), paid_on=today,
                           channel="loan_disbursement", bank_ref=f"DEMO-S{sub.id}", today=today)

    booked = []
    for sub in (made[12], made[13], made[15]):
        settle(sub)
        booked.append(book_signing(session, sub.agent, sub.id, appointment_at=appointment, today=today))
    for n, contract in enumerate(booked[1:], start=1):
        sign_contract(session, lawyer, contract.id, number=f"XJ-HT-2026-{n:04d}", signed_on=today, today=today)
    steps = {s.kind: s for s in session.scalars(select(ContractStep).where(
        ContractStep.contract_id == booked[2].id))}
    update_step(session, lawyer, steps["online_filing"].id, status="in_progress",
                promised_on=today - _dt.timedelta(days=3), customer_action="补充婚姻状况证明原件",
                today=today)  # past its promised date: on the lawyers' worklist
    for step in sorted(session.scalars(select(ContractStep).where(ContractStep.contract_id == booked[1].id)),
                       key=lambda s: ("online_filing", "notarisation", "mortgage", "registration").index(s.kind)):
        update_step(session, lawyer, step.id, status="done", today=today)  # in the project's order
    record = receive_original(session, users["archive"], booked[1].id, received_on=today,
                              location="合同档案柜A-03-12", today=today)
    issue_stamped_copy(session, users["archive"], record.id, to_user_id=made[13].agent_id, issued_on=today,
                       note="客户办理子女入学", today=today)
    session.commit()


def _changes_demo(session, users, project, today):
    """Deals that changed (issue 21, R-CHG-1…5), through the same domain functions the staff use,
    each on a new deal of its own (subscribed, confirmed, deposit in): one swapped to another unit,
    one whose buyer added his wife (50/50), one cancelled and refunded by finance's voucher, a
    price change the manager rejected, and a payment-method change waiting for the manager."""
    from models.change_requests import decide_change, request_change
    from models.changes import ChangeRequest, current_buyers
    from models.deals import confirm_subscription, subscribe
    from models.payments import record_deposit, record_payment, record_voucher, settlement_proposal
    if session.scalar(select(func.count()).select_from(ChangeRequest)) or \
            not session.scalar(select(func.count()).select_from(Subscription)):
        return  # done already, or no deals made (the demo's deals step made none)
    agents = [users["agent1"], users["agent2"], users["agent3"]]
    manager, vp, finance = users["manager"], users["vp"], users["finance"]
    units = list(session.scalars(select(Unit).join(Building).where(
        Building.project_id == project.id, Unit.status == "available").order_by(Unit.id)))
    deals = []
    for n in range(5):
        agent = agents[n % 3]
        lead = session.scalar(select(Lead).where(Lead.owner_id == agent.id, Lead.project_id == project.id,
                                                 Lead.stage == "visited").order_by(Lead.id).limit(1))
        if lead is None:
            return
        day = today - dt.timedelta(days=20 - n)
        sub = subscribe(session, agent, unit_id=units[2 * n].id, lead_id=lead.id,
                        payment_method="one_off" if n != 4 else "instalments", deposit="50000",
                        id_number=_id_number(random.Random(400 + n)), address=f"长沙市天心区芙蓉南路{200 + n}号",
                        subscribed_on=day, deposit_due_on=day + dt.timedelta(days=3), today=day)
        confirm_subscription(session, users["control"], sub.id)
        record_deposit(session, finance, sub.id, amount="50000", paid_on=day, channel="bank_transfer",
                       bank_ref=f"DEMO-C{sub.id}", today=today)
        deals.append(sub)
    swapped, joined, cancelled, rejected, pending = deals
    # 换房: to the unit next door, at its list price; the old unit is back on sale.
    change = request_change(session, swapped.agent, swapped.id, "unit_swap", reason="客户希望换到更高楼层、采光更好的户型",
                            proposal={"unit_id": units[1].id}, today=today)
    decide_change(session, manager, change.id, "approve", note="同意换房，差价按新房源价格计", today=today)
    # 增加权益人: the buyer adds his wife, 50/50.
    buyer = current_buyers(session, joined.id)[0]
    change = request_change(session, joined.agent, joined.id, "buyers", reason="客户婚后申请增加配偶为共同权益人",
                            proposal={"buyers": [
                                {"name": buyer.name, "id_type": buyer.id_type, "id_number": buyer.id_number,
                                 "phone": buyer.phone, "share": "50"},
                                {"name": "林晓燕", "id_type": "resident_id", "id_number": _id_number(random.Random(77)),
                                 "phone": "13907310077", "share": "50"}]}, today=today)
    decide_change(session, manager, change.id, "approve", note="材料齐全（结婚证、身份证）", today=today)
    # 退房: a further payment, the cancellation approved by the manager and the vice-president,
    # then finance refunds everything paid by a numbered voucher.
    record_payment(session, finance, cancelled.id, amount="100000", paid_on=today - dt.timedelta(days=10),
                   channel="bank_transfer", bank_ref=f"DEMO-C2{cancelled.id}", today=today)
    change = request_change(session, cancelled.agent, cancelled.id, "cancellation", reason="客户工作调动离开长沙，申请退房",
                            proposal={"retain_deposit": False, "fee": "0"}, today=today)
    decide_change(session, manager, change.id, "approve", note="情况属实，同意全额退款", today=today)
    decide_change(session, vp, change.id, "approve", note="同意", today=today)
    refund = settlement_proposal(session, session.get(Subscription, cancelled.id))["refund"]
    record_voucher(session, finance, cancelled.id, kind="refund", amount=refund, issued_on=today,
                   channel="bank_transfer", reason="退房，按认购书约定全额退还已付款项", today=today)
    # A price change the manager rejected, and a payment-method change waiting for the manager.
    change = request_change(session, rejected.agent, rejected.id, "price", reason="客户要求再优惠2万元",
                            proposal={"price": str(rejected.price - 20000)}, today=today)
    decide_change(session, manager, change.id, "reject", note="已是本期最低价，不再优惠", today=today)
    request_change(session, pending.agent, pending.id, "payment_method", reason="客户公积金贷款已获批，改为公积金贷款",
                   proposal={"payment_method": "provident_fund"}, today=today)
    session.commit()


def _true_up_demo(session, users, project, today):
    """A building's area true-up (issue 22, R-AFT-3), through the staff's own steps: sales control
    imports the surveyed areas of the building with the most live deals (most within ±3 %, some
    larger and some smaller, one +4.2 % and one −5 %), computes its batch; finance applies it (the
    buyers' charges, due in 30 days) and refunds the −5 % buyer by voucher. (The payment of a charge,
    charges.record_charge_payment, comes with the late-fee work: not here yet.)"""
    from models.true_ups import (TRUE_UP_DEAL, TrueUp, apply_batch, compute_batch, import_surveyed_areas,
                                 refund_true_up)
    if session.scalar(select(func.count()).select_from(TrueUp)):
        return
    busiest = session.execute(
        select(Unit.building_id, func.count()).join(Subscription, Subscription.unit_id == Unit.id)
        .join(Building, Unit.building_id == Building.id)
        .where(Building.project_id == project.id, Subscription.status.in_(TRUE_UP_DEAL))
        .group_by(Unit.building_id).order_by(func.count().desc(), Unit.building_id).limit(1)).first()
    if busiest is None:
        return
    building_id = busiest[0]
    dealt = set(session.scalars(select(Subscription.unit_id).where(Subscription.status.in_(TRUE_UP_DEAL))))
    units = session.scalars(select(Unit).where(Unit.building_id == building_id).order_by(Unit.floor, Unit.position)).all()
    ratios = ["0.012", "-0.008", "0.021", "-0.015", "0.004", "-0.027", "0.029", "0"]
    rows, n = [], 0
    for unit in units:
        if unit.id in dealt:
            ratio = Decimal({0: "0.042", 1: "-0.05"}.get(n, ratios[n % len(ratios)]))
            n += 1
        else:
            ratio = Decimal(ratios[unit.id % len(ratios)]) / 2
        rows.append({"unit": unit.number, "area": str((unit.area * (1 + ratio)).quantize(Decimal("0.01")))})
    surveyed_on = today - dt.timedelta(days=5)
    import_surveyed_areas(session, users["control"], building_id, rows, surveyed_on, today=today)
    batch = compute_batch(session, users["control"], building_id, surveyed_on, today=today)
    session.commit()
    apply_batch(session, users["finance"], batch.id, today=today)
    session.commit()
    for true_up in session.scalars(select(TrueUp).where(TrueUp.batch_id == batch.id, TrueUp.refund > 0)
                                   .order_by(TrueUp.refund_double_part.desc()).limit(1)):
        refund_true_up(session, users["finance"], true_up.id, channel="bank_transfer", issued_on=today, today=today)
    session.commit()


def build_demo(session, today: dt.date | None = None) -> dict:
    today = today or office_today()
    rng = random.Random(20261126)
    with audit_context(session, action="demo"):
        users = _accounts(session)
        projects = [_inventory(session, spec) for spec in PROJECTS]
        _leads(session, projects[0], users, 160, rng, today)
        _leads(session, projects[1], users, 80, rng, today)
        _conflicts_questions_and_pool(session, users, projects[0])
        _deals(session, users, projects[0], rng, today)
        _changes_demo(session, users, projects[0], today)
        _true_up_demo(session, users, projects[0], today)
    count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
    return {"projects": count(Project), "buildings": count(Building), "units": count(Unit),
            "leads": count(Lead), "follow-ups": count(FollowUp), "conflicts": count(LeadConflict),
            "questions": count(CustomerQuestion), "notifications": count(Notification),
            "subscriptions": count(Subscription),
            "accounts": [u for u, _, _ in ACCOUNTS]}
