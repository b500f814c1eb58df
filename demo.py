"""A realistic demo office: `flask --app app demo`. Safe to run again (creates what is missing)."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from models import (Building, CustomerQuestion, FollowUp, Lead, LeadConflict, Notification,
                    PriceApproval, Project, Subscription, Unit, User)
from models import RuleViolation, utcnow
from models.base import office_local, office_to_utc
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
    # issue 23: the people of two external channels (fictional agencies), each sees only his own registrations
    ("channel1", "钱渠道（星辰房产经纪）", ["channel"]),
    ("channel2", "冯渠道（安居置业顾问）", ["channel"]),
    # issue 23: the sales floor — five agents on the day's rotation
    ("agent4", "周涛", ["agent"]),
    ("agent5", "黄敏", ["agent"]),
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


def _loans_demo(session, users, project, today):
    """Mortgage files (issue 22, R-AFT-2), through the staff's domain functions: three banks, seven
    mortgage deals (subscribed, deposit and down payment in, contract signed), their files in every
    stage — one waiting for the customer's papers, one stuck in 资料收集 beyond the project's
    limit, one disbursed with its receipt on the loan line."""
    from models.contracts import book_signing, sign_contract
    from models.deals import confirm_subscription, subscribe
    from models.loans import Bank, LoanFile, disburse, move_stage, open_loan_file
    from models.payments import Instalment, open_line, record_deposit, record_payment
    if session.scalar(select(func.count()).select_from(LoanFile)) or \
            not session.scalar(select(func.count()).select_from(Subscription)):
        return
    banks = {}
    for name, branch, contact in (("中国建设银行长沙分行", "芙蓉支行", "个贷中心 0731-84410000"),
                                  ("中国工商银行长沙分行", "五一路支行", "个贷部 0731-84420000"),
                                  ("长沙住房公积金管理中心", "天心区管理部", "0731-12329"),
                                  ("招商银行长沙分行", "", "")):
        banks[name] = Bank(name=name, branch=branch, contact=contact, active=name != "招商银行长沙分行")
        session.add(banks[name])
    session.flush()
    agents = [users["agent1"], users["agent2"], users["agent3"]]
    finance, lawyer = users["finance"], users["lawyer"]
    units = list(session.scalars(select(Unit).join(Building).where(
        Building.project_id == project.id, Unit.status == "available").order_by(Unit.id.desc())))
    # (payment method, bank, stage reached, days since opened, what the customer must still supply)
    plan = [("commercial_mortgage", "中国建设银行长沙分行", "collecting", 5, "近六个月银行流水、收入证明"),
            ("commercial_mortgage", "中国工商银行长沙分行", "documents_complete", 12, ""),
            ("commercial_mortgage", "中国建设银行长沙分行", "bank_interview", 20, ""),
            ("provident_fund", "长沙住房公积金管理中心", "approved", 30, ""),
            ("commercial_mortgage", "中国工商银行长沙分行", "mortgage_registered", 35, ""),
            ("commercial_mortgage", "中国建设银行长沙分行", "disbursed", 40, ""),
            ("commercial_mortgage", "中国建设银行长沙分行", "stuck", 45, "配偶身份证复印件、婚姻证明")]
    stages = ("documents_complete", "bank_interview", "approved", "mortgage_registered")
    for n, (method, bank, reached, opened_ago, missing) in enumerate(plan):
        agent = agents[n % 3]
        lead = session.scalar(select(Lead).where(Lead.owner_id == agent.id, Lead.project_id == project.id,
                                                 Lead.stage == "visited").order_by(Lead.id).limit(1))
        if lead is None or n >= len(units):
            break
        day = today - dt.timedelta(days=opened_ago + 8)
        sub = subscribe(session, agent, unit_id=units[n].id, lead_id=lead.id, payment_method=method,
                        deposit="50000", id_number=_id_number(random.Random(600 + n)),
                        address=f"长沙市岳麓区麓山南路{300 + n}号", subscribed_on=day,
                        deposit_due_on=day + dt.timedelta(days=3), today=day)
        confirm_subscription(session, users["control"], sub.id)
        record_deposit(session, finance, sub.id, amount="50000", paid_on=day, channel="bank_transfer",
                       bank_ref=f"DEMO-L{sub.id}", today=day)
        down = session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id, open_line(),
                                                       Instalment.kind == "down_payment"))
        paid_on = day + dt.timedelta(days=2)
        if down is not None:
            record_payment(session, finance, sub.id, amount=down.amount_due - down.amount_paid, paid_on=paid_on,
                           channel="bank_transfer", bank_ref=f"DEMO-LD{sub.id}", instalment_id=down.id,
                           today=paid_on)
        signed_on = day + dt.timedelta(days=5)
        contract = book_signing(session, agent, sub.id, today=paid_on,
                                appointment_at=dt.datetime.combine(signed_on, dt.time(10, 0)))
        sign_contract(session, lawyer, contract.id, number=f"HT-L{sub.id:05d}", signed_on=signed_on,
                      today=signed_on)
        opened_on = today - dt.timedelta(days=opened_ago)
        line_kind = "provident_fund_loan" if method == "provident_fund" else "commercial_loan"
        file = open_loan_file(session, lawyer, sub.id, line_kind=line_kind, bank_id=banks[bank].id,
                              loan_kind="provident_fund" if method == "provident_fund" else "commercial",
                              missing=missing, today=opened_on)
        if reached in ("collecting", "stuck"):
            continue
        for i, stage in enumerate(stages):
            on = opened_on + dt.timedelta(days=(i + 1) * max(opened_ago // 6, 1))
            move_stage(session, lawyer if i % 2 else finance, file.id, stage, on=on, today=on,
                       note={"documents_complete": "资料已收齐，送银行", "bank_interview": "客户已到银行面签",
                             "approved": "银行审批通过", "mortgage_registered": "抵押登记已办结"}[stage])
            if stage == reached:
                break
        if reached == "disbursed":
            paid = today - dt.timedelta(days=2)
            disburse(session, finance, file.id, paid_on=paid, bank_ref=f"CCB-FK-{sub.id}", today=paid)
    session.commit()
def _handover_demo(session, users, project, today):
    """Handovers (R-AFT-4, issue 22) through the domain functions the staff use, on new deals of
    their own, signed and paid in full: the project's handover period around today; two notified,
    two booked (today and tomorrow), one inspected with two failed items (defect tickets), two
    handed over; and one signed deal still owing its mortgage line, which the notice refuses."""
    from models.contracts import book_signing, sign_contract
    from models.deals import confirm_subscription, subscribe
    from models.handovers import Handover, book_handover, hand_over_keys, notify_handovers, record_inspection
    from models.payments import Instalment, open_line, record_deposit, record_payment
    if session.scalar(select(func.count()).select_from(Handover)) or \
            not session.scalar(select(func.count()).select_from(Subscription)):
        return
    agents = [users["agent1"], users["agent2"], users["agent3"]]
    finance, service, manager = users["finance"], users["service"], users["manager"]
    lawyer = next((u for u in users.values() if u.has_role("lawyer")), None)
    if lawyer is None:
        return
    project.handover_starts_on = today - dt.timedelta(days=10)
    project.handover_ends_on = today + dt.timedelta(days=50)
    units = list(session.scalars(select(Unit).join(Building).where(
        Building.project_id == project.id, Unit.status == "available").order_by(Unit.id.desc()).limit(8)))
    deals = []
    for n, unit in enumerate(units):
        agent = agents[n % 3]
        lead = session.scalar(select(Lead).where(Lead.owner_id == agent.id, Lead.project_id == project.id,
                                                 Lead.stage == "visited").order_by(Lead.id.desc()).limit(1))
        if lead is None:
            return
        day = today - dt.timedelta(days=120 - n)
        method = "commercial_mortgage" if n == 7 else "one_off"
        sub = subscribe(session, agent, unit_id=unit.id, lead_id=lead.id, payment_method=method, deposit="50000",
                        id_number=_id_number(random.Random(700 + n)), address=f"长沙市岳麓区麓山南路{300 + n}号",
                        subscribed_on=day, deposit_due_on=day + dt.timedelta(days=3), today=day)
        confirm_subscription(session, users["control"], sub.id)
        record_deposit(session, finance, sub.id, amount="50000", paid_on=day, channel="bank_transfer",
                       bank_ref=f"DEMO-H{sub.id}", today=day)
        for line in session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id, open_line())
                                    .order_by(Instalment.seq)).all():
            if line.kind == "commercial_loan":
                continue  # the bank has not paid the loan yet: this deal still owes it
            record_payment(session, finance, sub.id, amount=line.amount_due - line.amount_paid,
                           paid_on=day + dt.timedelta(days=5), channel="bank_transfer",
                           bank_ref=f"DEMO-H{sub.id}-{line.seq}", instalment_id=line.id, today=day + dt.timedelta(days=5))
        contract = book_signing(session, agent, sub.id, appointment_at=dt.datetime.combine(
            day + dt.timedelta(days=10), dt.time(10, 0)), today=day + dt.timedelta(days=6))
        sign_contract(session, lawyer, contract.id, number=f"HT-DEMO-H{sub.id}", signed_on=day + dt.timedelta(days=10),
                      bank="中国建设银行" if method == "commercial_mortgage" else None, today=day + dt.timedelta(days=10))
        deals.append(sub)
    from models.true_ups import enter_surveyed_area
    for sub in deals:  # surveyed as built (a 0 % true-up): the survey report goes with the keys
        unit = session.get(Unit, sub.unit_id)
        enter_surveyed_area(session, users["control"], unit.id, unit.area, today - dt.timedelta(days=30), today=today)
    notified_on = today - dt.timedelta(days=5)
    created, refused = notify_handovers(session, manager, [d.id for d in deals], today=notified_on)
    by_deal = {h.subscription_id: h for h in created}
    h = [by_deal[d.id] for d in deals[:7] if d.id in by_deal]
    if len(h) < 7:
        return
    for handover, at in ((h[2], dt.datetime.combine(today, dt.time(15, 0))),
                         (h[3], dt.datetime.combine(today + dt.timedelta(days=1), dt.time(10, 30))),
                         (h[4], dt.datetime.combine(today - dt.timedelta(days=3), dt.time(9, 30))),
                         (h[5], dt.datetime.combine(today - dt.timedelta(days=4), dt.time(10, 0))),
                         (h[6], dt.datetime.combine(today - dt.timedelta(days=4), dt.time(14, 0)))):
        book_handover(session, service if handover is not h[3] else handover.subscription.agent, handover.id, at,
                      today=min(at.date(), today), now=office_to_utc(dt.datetime.combine(min(at.date(), today), dt.time(8))))
    defects = {"窗户及玻璃": "主卧窗户玻璃有划痕", "卫生间防水": "卫生间地面闭水试验渗水"}
    for handover, failed in ((h[4], defects), (h[5], {}), (h[6], {"墙面、顶棚": "客厅顶棚一处裂缝"})):
        day = office_local(handover.appointment_at).date()
        record_inspection(session, service, handover.id,
                          {i.id: (i.item not in failed, failed.get(i.item, "")) for i in handover.items}, today=day)
    for handover, signer in ((h[5], None), (h[6], None)):
        day = handover.inspected_on
        hand_over_keys(session, service, handover.id, signed_by=handover.subscription.customer_name, keys_count=3,
                       meter_readings="水表 00012\n电表 00235\n燃气表 00003", on=day, today=day)
    session.flush()
def _demo_png(rgb=(200, 60, 40), width=48, height=32) -> bytes:
    """A small photo-like PNG made in code (a colour gradient), for the demo's defect photo."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"".join(bytes((rgb[0], min(255, rgb[1] + 3 * x), min(255, rgb[2] + 4 * y)))
                                         for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _after_sales_demo(session, users, project, today):
    """After-sales care (R-SVC-1/2) on the signed deals: tickets in every state — two overdue (one
    still open with a photo of the defect, one resolved but the customer not yet told), one in
    progress, one routed to sales, one closed after the customer was told — and satisfaction
    surveys after signing with a spread of scores, and one after the closed ticket."""
    from models.tickets import (Ticket, add_note, attach_file, close_ticket, open_ticket, record_survey,
                                resolve_ticket, route_ticket, start)
    # Run once: the handover demo's inspection defects are tickets too, so count the others.
    if session.scalar(select(func.count()).select_from(Ticket).where(Ticket.source != "handover")):
        return
    signed = list(session.scalars(select(Subscription).where(Subscription.status == "contracted")
                                  .order_by(Subscription.id)))
    if not signed:
        return
    service = users["service"]
    days = dt.timedelta

    def deal(n):
        return signed[n % len(signed)]

    def ticket(n, opened_ago, title, **kw):
        sub = deal(n)
        args = dict(category="quality", source="phone", department="engineering")
        args.update(kw)
        return open_ticket(session, service, lead_id=sub.lead_id, subscription_id=sub.id, title=title,
                           today=today - days(opened_ago), **args)

    leak = ticket(0, 12, "主卫天花板渗水", location="主卫", source="visit",
                  description="客户反映楼上卫生间下水管接口处渗水，天花板有水渍。")
    attach_file(session, service, "ticket", leak.id, "主卫渗水.png", _demo_png())
    add_note(session, service, leak.id, "已通知工程部，约定本周内上门查看")
    crack = ticket(1, 10, "客厅墙面裂缝", location="客厅东墙", category="defect")
    start(session, service, crack.id)
    resolve_ticket(session, service, crack.id, "工程部已重新批荡并刷漆", today=today - days(2))
    window = ticket(2, 3, "次卧窗户密封条脱落", location="次卧", source="wechat", department="property")
    start(session, service, window.id)
    add_note(session, service, window.id, "物业已登记，等待配件到货")
    invoice = ticket(0, 2, "需要补开购房发票", category="documents", department="finance", source="phone")
    parking = ticket(1, 1, "咨询车位认购及优惠", category="service", department="sales", source="wechat")
    route_ticket(session, service, parking.id, department="sales", assigned_to_id=deal(1).agent_id,
                 note="转置业顾问跟进车位事宜")
    door = ticket(2, 15, "入户门锁芯卡顿", location="入户门", category="quality")
    start(session, service, door.id)
    resolve_ticket(session, service, door.id, "已更换锁芯", today=today - days(8))
    close_ticket(session, service, door.id, "电话告知客户已更换锁芯，客户确认使用正常", today - days(6),
                 today=today - days(6))
    del invoice
    scores = [(5, 5, 5, "置业顾问非常专业，流程清楚"), (4, 5, 4, ""), (3, 4, 3, "签约等待时间较长"),
              (5, 4, 5, "服务热情"), (2, 2, 3, "首付款到账确认太慢，多次打电话才有回复"), (4, 4, None, "")]
    from models.contracts import Contract
    signed_on = dict(session.execute(select(Contract.subscription_id, func.max(Contract.signed_on)).where(
        Contract.kind == "sale", Contract.signed_on.is_not(None)).group_by(Contract.subscription_id)).all())
    for n, sub in enumerate(signed):
        overall, svc, quality, comment = scores[n % len(scores)]
        on = max(today - days(n % 5), signed_on.get(sub.id) or today)  # not before the signing (R-SVC-2)
        record_survey(session, users["service"], sub.id, occasion="signing", overall=overall, service=svc,
                      quality=quality, comment=comment, recorded_on=min(on, today), today=today)
    record_survey(session, users["service"], deal(2).id, occasion="ticket", ticket_id=door.id, overall=4,
                  service=5, quality=4, comment="维修及时", recorded_on=today - days(5), today=today)
    session.commit()
def _late_fee_demo(session, users, project, today):
    """Late fees (R-AFT-1) through the domain: the daily accrual over the demo's late deals, one
    waiver the manager approved, one waiting for him, one late fee paid by finance."""
    from models.charges import Charge, LateFeeWaiver, accrue_late_fees, decide_waiver, record_charge_payment, request_waiver
    if session.scalar(select(func.count()).select_from(LateFeeWaiver)):
        return  # done already
    accrue_late_fees(session, today)
    session.commit()
    charges = list(session.scalars(select(Charge).where(Charge.kind == "late_fee", Charge.project_id == project.id,
                                                        Charge.waived == 0, Charge.paid == 0, Charge.amount > 0)
                                   .order_by(Charge.amount.desc(), Charge.id)))
    if not charges:
        return
    manager, finance = users["manager"], users["finance"]
    first = charges[0]
    waiver = request_waiver(session, first.subscription.agent, first.id, min(first.outstanding, Decimal("500.00")),
                            "客户因住院延误付款，提供了住院证明")
    session.commit()
    decide_waiver(session, manager, waiver.id, True)
    session.commit()
    if len(charges) > 1:
        second = charges[1]
        request_waiver(session, second.subscription.agent, second.id, min((second.outstanding / 2).quantize(Decimal("0.01")), Decimal("800.00")),
                       "银行系统故障导致转账延迟一天，客户提供了银行说明")
        session.commit()
    if len(charges) > 2:
        third = charges[2]
        record_charge_payment(session, finance, third.id, amount=third.outstanding, paid_on=today,
                              channel="bank_transfer", bank_ref=f"DEMO-LF{third.id}", today=today)
        session.commit()
def _true_up_demo(session, users, project, today):
    """A building's area true-up (issue 22, R-AFT-3), through the staff's own steps: sales control
    imports the surveyed areas of the building with the most live deals (most within ±3 %, some
    larger and some smaller, one +4.2 % and one −5 %), computes its batch; finance applies it (the
    buyers' charges, due in 30 days), records one buyer's payment of his charge and refunds the −5 %
    buyer by voucher."""
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
        if unit.surveyed_area is not None:  # surveyed already (the handovers' homes): as surveyed
            rows.append({"unit": unit.number, "area": str(unit.surveyed_area)})
            continue
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
    from models.charges import Charge, record_charge_payment
    charge = session.scalar(select(Charge).join(TrueUp, TrueUp.id == Charge.true_up_id)
                            .where(TrueUp.batch_id == batch.id).order_by(Charge.amount).limit(1))
    if charge is not None:  # the smallest true-up charge, paid at once by transfer
        record_charge_payment(session, users["finance"], charge.id, amount=charge.amount, paid_on=today,
                              channel="bank_transfer", bank_ref=f"DEMO-TU{charge.id}", today=today)
    session.commit()


def _channels_demo(session, users, project, today):
    """Two channel companies (R-COM-1) and their registrations in every state, through the domain:
    one live, one confirmed by a visit, one expired, one withdrawn, one refused against a customer
    the manager decided to keep, and one open conflict between the two companies."""
    from models.channels import (ChannelCompany, ChannelConflict, ChannelRefused, add_member, expire_registrations,
                                 register_customer, resolve_conflict, withdraw_registration)
    from models.leads import register_lead
    from models.base import office_midnight_utc
    from models.reception import VISIT_RECORDED, Visit
    if session.scalar(select(func.count()).select_from(ChannelCompany)):
        return  # done already
    admin, manager, agent = users["admin"], users["manager"], users["agent1"]
    one, two = users["channel1"], users["channel2"]
    for name, contact, phone, person in (("星辰房产经纪有限公司", "钱经理", "0731-88123456", one),
                                         ("安居置业顾问有限公司", "冯经理", "0731-88654321", two)):
        company = ChannelCompany(name=name, contact_name=contact, contact_phone=phone)
        session.add(company)
        session.flush()
        add_member(session, admin, company_id=company.id, user_id=person.id)
    session.commit()

    def register(by, name, phone, on):
        try:
            registration = register_customer(session, by, project_id=project.id, customer_name=name,
                                             phone=phone, today=on)
        except ChannelRefused as refused:
            registration = refused.registration
        session.commit()
        return registration

    # expired: registered long ago, never visited; the daily run expires it
    register(one, "马先生", "13607310001", today - dt.timedelta(days=project.channel_window_days + 5))
    expire_registrations(session, today)
    session.commit()
    register(one, "林女士", "13607310002", today - dt.timedelta(days=2))  # live, waiting for the visit
    withdrawn = register(two, "郭先生", "13607310003", today - dt.timedelta(days=3))
    withdraw_registration(session, two, withdrawn.id)
    session.commit()
    # confirmed: the customer came within the window; the desk registered him and his visit
    register(two, "罗女士", "13607310004", today - dt.timedelta(days=4))
    lead = register_lead(session, agent, project_id=project.id, name="罗女士", phone="13607310004",
                         source="channel", today=today - dt.timedelta(days=1))
    visit = Visit(project_id=project.id, lead_id=lead.id, phone=lead.phone, kind="first", channel="channel",
                  party_size=2, received_by_id=agent.id, registered_by_id=agent.id,
                  arrived_at=office_midnight_utc(today - dt.timedelta(days=1)) + dt.timedelta(hours=10),
                  ended_at=office_midnight_utc(today - dt.timedelta(days=1)) + dt.timedelta(hours=11),
                  notes="星辰/安居渠道带看")
    session.add(visit)
    session.flush()
    for hook in VISIT_RECORDED:
        hook(session, visit)
    session.commit()
    # refused against a customer of the project, kept by the manager
    customer = session.scalar(select(Lead).where(Lead.project_id == project.id, Lead.phone != lead.phone)
                              .order_by(Lead.id))
    against_customer = register(one, customer.name, customer.phone, today - dt.timedelta(days=1))
    conflict = session.scalar(select(ChannelConflict).where(ChannelConflict.registration_id == against_customer.id))
    resolve_conflict(session, manager, conflict.id, "keep", "客户此前已由置业顾问登记并跟进", today=today)
    session.commit()
    # the open conflict: both companies registered one phone; the second is refused
    register(one, "韩先生", "13607310005", today - dt.timedelta(days=1))
    register(two, "韩总", "13607310005", today)
def _rotation_demo(session, users, project, today):
    """Today's reception rotation (R-RCP-1/2) through the desk's own functions: five agents signed
    in, a dozen visits from every channel, a skipped turn and its make-up, a reception out of turn,
    a returning customer to his owner, one received on his owner's behalf while she is on a
    break, and one reception still in progress."""
    from models.reception import RotationEntry, Visit, finish_reception, make_up_turn, move, receive, skip_turn
    from models.submissions import new_key
    if session.scalar(select(func.count()).select_from(RotationEntry).where(RotationEntry.project_id == project.id,
                                                                             RotationEntry.day == today)):
        return
    agents = [users[f"agent{i}"] for i in range(1, 6)]
    desk, manager = users["agent1"], users["manager"]
    for agent in agents:
        move(session, agent, project.id, "sign_in", today=today)
    session.commit()
    visits = []

    def come(phone, channel, name="", by=manager, finish=True, **kw):
        visit = receive(session, by, project_id=project.id, phone=phone, channel=channel, name=name, key=new_key(),
                        party_size=kw.pop("party_size", 1 + len(visits) % 3), today=today, **kw)
        session.commit()
        if finish:
            finish_reception(session, manager, visit.id, today=today)
            session.commit()
        visits.append(visit)
        return visit

    come("19907310001", "walk_in", "马先生", by=desk)
    come("19907310002", "phone_call", "朱女士", by=desk)
    skip_turn(session, users["agent3"], project.id, "正在电话回访老客户", today=today)
    session.commit()
    come("19907310003", "referral", "罗先生（老客户介绍）")
    come("19907310004", "web", "谢女士", mode="out_of_turn", agent_id=users["agent2"].id,
         reason="客户网上预约时指定张丽接待")
    make_up_turn(session, manager, project.id, users["agent3"].id, "补回上午被跳过的轮次", today=today)
    session.commit()
    come("19907310005", "advert", "韩先生")  # agent3's make-up turn
    come("19907310006", "fair", "唐女士")
    come("19907310007", "channel", "冯先生（渠道带看）")
    come("19907310001", "phone_call")  # 马先生 again: to his owner 李明, no turn used
    move(session, users["agent2"], project.id, "break", today=today)
    session.commit()
    come("19907310002", "walk_in", reason="原置业顾问张丽休息中，代为接待")  # 朱女士 again, on 张丽's behalf
    come("19907310008", "walk_in", "曹先生")
    come("19907310009", "referral", "彭女士")
    come("19907310010", "web", "蒋先生", finish=False)  # a reception in progress
    # The day as it happened: arrivals through the morning, receptions of 20 to 60 minutes.
    now = utcnow()
    since_midnight = (now - office_to_utc(dt.datetime.combine(today, dt.time()))).total_seconds() // 60
    step = max(0, min(35, int(since_midnight) // (len(visits) + 1)))  # all of them today
    for n, visit in enumerate(visits):
        visit = session.get(Visit, visit.id)
        visit.arrived_at = now - dt.timedelta(minutes=step * (len(visits) - n))
        if visit.ended_at is not None:
            visit.ended_at = min(now, visit.arrived_at + dt.timedelta(minutes=20 + 7 * (n % 6)))
    session.commit()


def _commissions_demo(session, users, project, today):
    """Commissions (issue 23, R-COM-2), through the domain: the project's rules — agents 1 % of the
    price, the manager 0.3 % (the rule names 王建国), channels 0.5 % (and a fixed 8,000 for the company that registered the customer) —
    which at once give the deals in force their lines by the stages they reached; a deal shared
    60/40 between 李明 and 张丽; a channel's confirmed registration on a deal; then a deal cancelled
    after it earned, its lines clawed back by negative lines."""
    from models.change_requests import decide_change, request_change
    from models.channels import ChannelCompany, ChannelMember, ChannelRegistration
    from models.commissions import CommissionRule, apply_rules, deal_changed, save_rule, set_split
    if session.scalar(select(func.count()).select_from(CommissionRule)):
        return
    live = list(session.scalars(select(Subscription).where(
        Subscription.project_id == project.id, Subscription.status.in_(("active", "contracted")))
        .order_by(Subscription.id)))
    if len(live) < 3:
        return
    # A channel on one deal: a confirmed registration of its customer (the channels' demo may have one);
    # otherwise one registered by 远航房产经纪 a week before the deal, by its person if it has one.
    channelled = next((s for s in live if session.scalar(select(ChannelRegistration.company_id).where(
        ChannelRegistration.lead_id == s.lead_id, ChannelRegistration.project_id == project.id,
        ChannelRegistration.status == "confirmed"))), None)
    if channelled is None:
        live_phones = set(session.scalars(select(ChannelRegistration.phone).where(
            ChannelRegistration.project_id == project.id, ChannelRegistration.status.in_(("valid", "confirmed")))))
        free = [s for s in live if session.get(Lead, s.lead_id).phone not in live_phones]
        if not free:
            return
        channelled = next((s for s in free if s.status == "contracted"), free[0])
        company = session.scalar(select(ChannelCompany).where(ChannelCompany.name == "远航房产经纪"))
        if company is None:
            company = ChannelCompany(name="远航房产经纪", contact_name="钱经理", contact_phone="0731-88880001")
            session.add(company)
            session.flush()
        person = session.scalar(select(ChannelMember.user_id).where(ChannelMember.company_id == company.id).limit(1))
        lead = session.get(Lead, channelled.lead_id)
        before = channelled.subscribed_on - dt.timedelta(days=7)
        session.add(ChannelRegistration(project_id=project.id, company_id=company.id,
                                        registered_by_id=person or users["manager"].id, customer_name=lead.name,
                                        phone=lead.phone, registered_on=before,
                                        valid_until=before + dt.timedelta(days=project.channel_window_days),
                                        status="confirmed", lead_id=lead.id, notes="演示：到访前报备，到访确认"))
        session.flush()
    company_id = session.scalar(select(ChannelRegistration.company_id).where(
        ChannelRegistration.lead_id == channelled.lead_id, ChannelRegistration.project_id == project.id,
        ChannelRegistration.status == "confirmed"))
    vp, manager = users["vp"], users["manager"]
    # The rules, the channel and the split came last month (its last day): their lines land in last
    # month, which is over and may be approved (R-COM-2); the cancellation below lands this month.
    today, this_day = today.replace(day=1) - dt.timedelta(days=1), today
    save_rule(session, vp, project.id, {"name": "置业顾问佣金", "role": "agent", "basis": "rate", "rate_percent": "1",
                                        "stage_shares": {"subscribed": 30, "signed": 40, "down_payment": 30,
                                                         "disbursed": 0}})
    save_rule(session, vp, project.id, {"name": "销售经理管理佣金", "role": "manager", "basis": "rate",
                                        "rate_percent": "0.3", "payee_user_id": manager.id})
    save_rule(session, vp, project.id, {"name": "渠道专项（报备公司）", "role": "channel", "basis": "fixed", "amount": "8000",
                                        "company_id": company_id,
                                        "stage_shares": {"subscribed": 50, "signed": 50, "down_payment": 0,
                                                         "disbursed": 0}})
    save_rule(session, vp, project.id, {"name": "渠道佣金", "role": "channel", "basis": "rate", "rate_percent": "0.5",
                                        "stage_shares": {"subscribed": 0, "signed": 100, "down_payment": 0,
                                                         "disbursed": 0}})
    apply_rules(session, project.id, today)  # what the screen's job does once a rule is saved (commits)
    deal_changed(session, channelled.id, vp, "channel", today=today)
    # 分单: a deal of 李明's shared with 张丽, 60/40.
    shared = next((s for s in live if s.agent_id == users["agent1"].id and s.id != channelled.id), None)
    if shared is not None:
        set_split(session, manager, shared.id, [(users["agent1"].id, "60"), (users["agent2"].id, "40")],
                  "张丽首次接待并带看，李明跟进成交，经理确认六四分单", today=today)
    session.commit()
    today = this_day
    # A clawback: an active deal that earned its subscription stage, then cancelled (退房) this month.
    for sub in live:
        if sub.status != "active" or sub.id in (channelled.id, getattr(shared, "id", None)):
            continue
        try:
            change = request_change(session, sub.agent, sub.id, "cancellation", reason="客户家庭变故，申请退房",
                                    proposal={"retain_deposit": True, "fee": "0"}, today=today)
            decide_change(session, manager, change.id, "approve", note="同意退房，定金按约定不退", today=today)
            if session.get(Subscription, sub.id).status != "cancelled":
                decide_change(session, vp, change.id, "approve", note="同意", today=today)
            session.commit()
            break
        except RuleViolation:
            session.rollback()
def _statements_demo(session, users, project, today):
    """Monthly commission statements (R-COM-2), from the lines the commission engine wrote
    (`_commissions_demo`: its rules last month, its clawback this month). Last month, which is over,
    drawn by finance and the channel company's statement approved by the manager (the
    vice-president when above the project's limit) — that month is then closed for it, its later
    lines go to the next month — the others left as drafts for the manager; this month drawn as a
    preview (drafts: a month is approved only once it is over)."""
    from models.commission_statements import approval_refusal, approve_statement, draw_statements
    from models.commissions import CommissionStatement
    if session.scalar(select(func.count()).select_from(CommissionStatement).where(
            CommissionStatement.project_id == project.id)):
        return  # done already
    this_month = today.replace(day=1)
    month = (this_month - dt.timedelta(days=1)).replace(day=1)
    draw_statements(session, users["finance"], project.id, month, today)
    session.commit()
    first = session.scalar(select(CommissionStatement).where(
        CommissionStatement.project_id == project.id, CommissionStatement.month == month,
        CommissionStatement.payee_company_id.is_not(None)).order_by(CommissionStatement.id).limit(1))
    first = first or session.scalar(select(CommissionStatement).where(
        CommissionStatement.project_id == project.id, CommissionStatement.month == month)
        .order_by(CommissionStatement.id).limit(1))
    if first is not None:
        approver = users["manager"] if approval_refusal(session, users["manager"], first, today) is None \
            else users["vp"]
        approve_statement(session, approver, first.id, today=today)
        session.commit()
    draw_statements(session, users["finance"], project.id, this_month, today)
    session.commit()



def _launch_demo(session, users, project, today):
    """Opening day (开盘, R-LCH-1…3) through the domain functions, as the staff do it, on five new
    buildings of the project (a building is in at most one open launch): a launch taking
    registrations (deposits received, one not yet paid, one refunded, one buyer answering no), one
    published, one drawn with the demo's known seed (so `flask launch verify` passes), one selecting
    now (slots of three, a few chosen, one missed slot requeued, buyers choosing) and one closed
    days ago (deals confirmed, deposits converted, one refunded after the day)."""
    from models.base import office_midnight_utc
    from models.deals import confirm_subscription
    from models.identity import RESIDENT_ID
    from models.launches import (Launch, LaunchEntry, convert_intent_deposit, create_launch, record_intent_deposit,
                                 refund_intent_deposit, register_entry)
    from models.lottery import draw, publish
    from models.selection import advance, choose, close_launch, start_selection
    if session.scalar(select(func.count()).select_from(Launch)):
        return None  # done already
    manager, control, finance = users["manager"], users["control"], users["finance"]
    agents = [users[f"agent{n}"] for n in range(1, 6)]
    rng = random.Random(24)
    day = dt.timedelta(days=1)
    minute = dt.timedelta(minutes=1)
    questions = ["购房人及家庭在长沙市限购范围内无第二套住房", "已阅读并同意《认筹须知》及开盘选房规则"]

    def at(on: dt.date, hour: int, minutes: int = 0) -> dt.datetime:
        return office_midnight_utc(on) + dt.timedelta(hours=hour, minutes=minutes)

    def buildings(*names):
        made = []
        for name in names:
            building = Building(project=project, name=name, floors=6)
            session.add(building)
            for floor in range(1, 7):
                for position, (layout, area) in LAYOUTS.items():
                    price = (area * (13600 + 80 * floor + (300 if position in (1, 4) else 0))).quantize(Decimal("1"))
                    session.add(Unit(building=building, floor=floor, position=position, number=f"{floor}{position:02d}",
                                     layout=layout, area=area, list_price=Decimal(price).quantize(Decimal("0.01")),
                                     status="available"))
            made.append(building)
        session.flush()
        return made

    phones = iter(range(1, 1000))

    def launch(name, blocks, opens, closes, selection_on, valid_until, slot_size=3, slot_minutes=30):
        made = create_launch(session, manager, project_id=project.id, name=name,
                             building_ids=[b.id for b in blocks], registration_opens_on=opens,
                             registration_closes_on=closes, selection_on=selection_on, intent_deposit="50000",
                             card_valid_until=valid_until, questions=questions, groups_ordered=True,
                             slot_minutes=slot_minutes, slot_size=slot_size, missed_rule="requeue")
        session.commit()
        return made

    def register(made, count, on, *, unpaid=(), refused_answer=(), refunded=()):
        """`count` registrations by the five agents on `on` (a few days apart), deposits received by
        finance the same day except the `unpaid` ones; a "no" answer for those in `refused_answer`."""
        entries = []
        for n in range(count):
            agent = agents[n % len(agents)]
            day_of = min(on + dt.timedelta(days=n // 4), made.registration_closes_on)
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            entry = register_entry(
                session, agent, launch_id=made.id, name=name, phone=f"1530731{next(phones):04d}",
                id_type=RESIDENT_ID, id_number=_id_number(rng), address=f"长沙市岳麓区麓山南路{n + 20}号",
                answers={q: not (n in refused_answer and k == 0) for k, q in enumerate(questions)},
                first_home=n % 3 != 2, today=day_of)
            if n not in unpaid:
                record_intent_deposit(session, finance, entry.id, paid_on=day_of,
                                      channel=rng.choice(["bank_transfer", "pos"]), today=day_of)
            if n in refunded:
                refund_intent_deposit(session, finance, entry.id, paid_on=day_of + day, channel="bank_transfer",
                                      reason="客户家庭购房计划调整，申请退还认筹金", today=day_of + day)
            entries.append(entry)
        session.commit()
        return entries

    def drawn(made, on):
        seed = publish(session, manager, made.id, now=at(on, 10)).seed  # shown once, as to the manager
        session.commit()
        draw(session, manager, made.id, seed, now=at(on + day, 10))
        session.commit()

    def queue(made):  # the draw's order
        return list(session.scalars(select(LaunchEntry).where(LaunchEntry.launch_id == made.id,
                                                               LaunchEntry.position.is_not(None))
                                    .order_by(LaunchEntry.position)))

    def offered(made):
        return list(session.scalars(select(Unit).join(Building).where(
            Building.id.in_([b.id for b in made.buildings]), Unit.status == "available")
            .order_by(Unit.floor.desc(), Unit.building_id, Unit.position)))

    def chooses(entry, units, now):
        sub = choose(session, control, entry.id, units.pop(0).id, now,
                     payment_method=rng.choice(["one_off", "commercial_mortgage", "provident_fund"]))
        return sub

    b6, b7, b8, b9, b10 = buildings("6栋", "7栋", "8栋", "9栋", "10栋")

    # (a) taking registrations: opening day in ten days
    a = launch("10栋加推", [b10], today - 6 * day, today + 6 * day, today + 10 * day, today + 40 * day)
    register(a, 12, today - 5 * day, unpaid=(11,), refused_answer=(7,), refunded=(4,))

    # published: the list frozen, its digest and the seed's hash out, the draw tomorrow
    p = launch("9栋首开", [b9], today - 20 * day, today - day, today + 2 * day, today + 30 * day)
    register(p, 6, today - 18 * day)
    sealed = publish(session, manager, p.id, now=at(today, 9)).seed  # the demo prints it: try the draw
    session.commit()

    # (b) drawn: twenty entrants, the order public, selection in three days
    b = launch("8栋首开", [b8], today - 25 * day, today - 4 * day, today + 3 * day, today + 35 * day)
    register(b, 20, today - 24 * day)
    drawn(b, today - 3 * day)

    # (c) selecting now: slots of three buyers, 30 minutes each; the first slot opened 70 minutes ago
    now = utcnow() if today == office_today() else at(today, 11)
    c = launch("7栋开盘", [b7], today - 30 * day, today - 3 * day, today, today + 30 * day)
    register(c, 12, today - 29 * day)
    drawn(c, today - 2 * day)
    start = now - 70 * minute
    start_selection(session, manager, c.id, start)
    session.commit()
    units, line = offered(c), queue(c)
    chooses(line[0], units, start + 6 * minute)
    chooses(line[1], units, start + 18 * minute)  # line[2] misses his slot: to the end of the queue
    advance(session, c.id, start + 30 * minute)
    session.commit()
    for k, entry in enumerate(line[3:6]):
        chooses(entry, units, start + (35 + 8 * k) * minute)
    advance(session, c.id, start + 60 * minute)
    session.commit()
    chooses(line[6], units, start + 64 * minute)  # one of the slot now running has chosen
    advance(session, c.id, now)
    session.commit()

    # (d) closed six days ago: deals confirmed, deposits converted, one refunded after the day
    d = launch("6栋首开", [b6], today - 40 * day, today - 9 * day, today - 6 * day, today - day,
               slot_size=4, slot_minutes=20)
    register(d, 10, today - 38 * day)
    drawn(d, today - 8 * day)
    opening = at(today - 6 * day, 9, 30)
    start_selection(session, manager, d.id, opening)
    session.commit()
    units, line = offered(d), queue(d)
    chosen = []
    for k, entry in enumerate(line):
        if k == 5:
            continue  # did not choose: his intent deposit is refunded after the day
        advance(session, d.id, opening + (20 * (k // 4) + 3 + k % 4) * minute)
        chosen.append((entry, chooses(entry, units, opening + (20 * (k // 4) + 3 + k % 4) * minute)))
    close_launch(session, manager, d.id, opening + 3 * 60 * minute)
    session.commit()
    for entry, sub in chosen:
        confirm_subscription(session, control, sub.id)
        convert_intent_deposit(session, finance, entry.id, today=today - 5 * day)
    session.commit()
    refund_intent_deposit(session, finance, line[5].id, paid_on=today - 4 * day, channel="bank_transfer",
                          reason="开盘日未选房，认筹金原路退还", today=today - 4 * day)
    session.commit()
    return sealed


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
        _loans_demo(session, users, projects[0], today)
        _handover_demo(session, users, projects[0], today)
        _after_sales_demo(session, users, projects[0], today)
        _late_fee_demo(session, users, projects[0], today)
        _true_up_demo(session, users, projects[0], today)
        _channels_demo(session, users, projects[0], today)
        _rotation_demo(session, users, projects[0], today)
        _commissions_demo(session, users, projects[0], today)
        _statements_demo(session, users, projects[0], today)
        sealed = _launch_demo(session, users, projects[0], today)
    count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
    summary = {"projects": count(Project), "buildings": count(Building), "units": count(Unit),
            "leads": count(Lead), "follow-ups": count(FollowUp), "conflicts": count(LeadConflict),
            "questions": count(CustomerQuestion), "notifications": count(Notification),
            "subscriptions": count(Subscription),
            "accounts": [u for u, _, _ in ACCOUNTS]}
    if sealed:  # shown once, as publishing shows it to the manager: to try the draw of 9栋首开
        summary["lottery seed of 9栋首开, sealed until its draw"] = sealed
    return summary
