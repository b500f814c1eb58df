"""A large office on PostgreSQL, for the benchmarks: 20 projects, 50,000 units, 200,000 leads
with a follow-up each, 100,000 subscriptions with 1,000,000 instalments and 600,000 payments
(each allocated to its line) — written with COPY, the same rows for the same seed.

    DATABASE_URL=postgresql://… .venv/bin/python bench/big_office.py [SCALE]   # builds, counts, drops

`build(db, scale=1.0, seed=2026)` is what the benchmarks call inside `scratch_app()`; SCALE
shrinks everything in proportion (0.01 for a quick try).
"""
from __future__ import annotations

import datetime as dt
import random
import sys
import time

from sqlalchemy import text

from _office import after_copy, copy_rows, scratch_app

TODAY = dt.date(2026, 11, 26)
NOW = dt.datetime(2026, 11, 26, 2, 0)
PROJECTS, BUILDINGS_PER_PROJECT, FLOORS, POSITIONS = 20, 10, 25, 10  # 250 units a building
LINES_PER_SUB = 10
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉红宇晨浩然子轩欣怡梓涵一诺雨桐思远佳琪俊杰"
LAYOUTS = ("一室一厅", "两室一厅", "三室两厅两卫", "四室两厅两卫")


def _name(rng) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def build(db, scale: float = 1.0, seed: int = 2026) -> dict:
    """Fill the (empty, migrated) database; returns the row counts and the seconds it took."""
    from models import Project
    from models.payments import ensure_default_methods
    from models.users import create_user

    started = time.perf_counter()
    rng = random.Random(seed)
    n_units = int(50_000 * scale)
    n_leads = int(200_000 * scale)
    n_subs = int(100_000 * scale)
    n_live = min(int(40_000 * scale), n_units)  # live subscriptions: one unit each
    paid_lines_total = int(600_000 * scale)

    admin = create_user(db.session, "admin", "bench-pass-1", ["admin"], "管理员")
    manager = create_user(db.session, "manager", "bench-pass-1", ["sales_manager"], "王经理")
    finance = create_user(db.session, "finance", "bench-pass-1", ["finance"], "财务")
    agents = [create_user(db.session, f"agent{i:02d}", "bench-pass-1", ["agent"], _name(rng)) for i in range(40)]
    projects = [Project(code=f"P{i:02d}", name=f"{rng.choice(('江', '湖', '山', '城'))}景{i:02d}期")
                for i in range(1, PROJECTS + 1)]
    db.session.add_all(projects)
    db.session.flush()
    for project in projects:
        ensure_default_methods(db.session, project)
    db.session.commit()
    agent_ids = [a.id for a in agents]
    project_ids = [p.id for p in projects]
    ids = {"admin": admin.id, "manager": manager.id, "finance": finance.id}
    conn = db.session.connection().connection.driver_connection

    # Buildings and units: 250 units a building, 10 buildings a project (at scale 1).
    n_buildings = max(1, n_units // (FLOORS * POSITIONS))
    copy_rows(conn, "building", ["id", "project_id", "name", "floors"],
              ((b, project_ids[(b - 1) // BUILDINGS_PER_PROJECT % PROJECTS], f"{(b - 1) % BUILDINGS_PER_PROJECT + 1}栋"
                f"{'' if b <= PROJECTS * BUILDINGS_PER_PROJECT else (b - 1) // (PROJECTS * BUILDINGS_PER_PROJECT)}", FLOORS)
               for b in range(1, n_buildings + 1)))
    unit_project = {}
    live_units = set(rng.sample(range(1, n_units + 1), n_live))
    signed_units = set(rng.sample(sorted(live_units), n_live // 4))

    def units():
        for u in range(1, n_units + 1):
            b = (u - 1) // (FLOORS * POSITIONS) % n_buildings + 1
            unit_project[u] = project_ids[(b - 1) // BUILDINGS_PER_PROJECT % PROJECTS]
            k = (u - 1) % (FLOORS * POSITIONS)
            floor, position = k // POSITIONS + 1, k % POSITIONS + 1
            status = "signed" if u in signed_units else "subscribed" if u in live_units else (
                "withheld" if rng.random() < 0.03 else "available")
            area = rng.choice((68, 89, 105, 128, 143))
            yield (u, b, floor, position, f"{floor}{position:02d}-{u}", LAYOUTS[area // 40 - 1], area,
                   area * rng.randint(9_000, 16_000), status)
    copy_rows(conn, "unit", ["id", "building_id", "floor", "position", "number", "layout", "area", "list_price",
                             "status"], units())

    # Leads (10,000 a project), one follow-up each.
    lead_project, lead_owner = {}, {}

    def leads():
        for i in range(1, n_leads + 1):
            project = project_ids[(i - 1) % PROJECTS]
            owner = rng.choice(agent_ids) if rng.random() > 0.05 else None  # 5 % in the public pool
            lead_project[i], lead_owner[i] = project, owner
            stage = rng.choice(("new", "contacted", "contacted", "visited", "lost"))
            registered = NOW - dt.timedelta(days=rng.randint(1, 700), minutes=rng.randint(0, 1440))
            yield (i, project, _name(rng), f"1{rng.choice('3589')}{i:09d}", rng.choice(("walk_in", "phone_call", "web", "referral")),
                   stage, owner, owner or ids["manager"], registered, registered, TODAY + dt.timedelta(days=rng.randint(-5, 3)),
                   "", "", "", "")
    copy_rows(conn, "lead", ["id", "project_id", "name", "phone", "source", "stage", "owner_id", "registered_by_id",
                             "registered_at", "last_activity_at", "next_follow_up_on", "needs", "notes",
                             "wanted_layout", "wanted_area"], leads())
    copy_rows(conn, "follow_up", ["id", "lead_id", "agent_id", "at", "channel", "content", "outcome", "manager_feedback"],
              ((i, i, lead_owner[i] or ids["manager"], NOW - dt.timedelta(days=rng.randint(0, 60)),
                rng.choice(("phone", "visit", "wechat")), "电话回访，客户关注学区与首付比例", "", "")
               for i in range(1, n_leads + 1)))

    # Subscriptions: the live ones on their units, the rest forfeited or withdrawn earlier.
    live = sorted(live_units)
    sub_rows, sub_agent = [], {}
    for s in range(1, n_subs + 1):
        unit = live[s - 1] if s <= n_live else rng.randint(1, n_units)
        project = unit_project[unit]
        lead = s if lead_project.get(s) == project else (s - 1) // PROJECTS * PROJECTS + project_ids.index(project) + 1
        lead = min(lead, n_leads)
        status = ("contracted" if unit in signed_units else "active") if s <= n_live else rng.choice(("forfeited", "withdrawn"))
        agent = lead_owner.get(lead) or rng.choice(agent_ids)
        sub_agent[s] = (agent, project, status)
        sub_rows.append((s, f"RG-{s:07d}", project, lead, unit, agent, 1_500_000, 50_000,
                         rng.choice(("instalments", "commercial_mortgage")), status,
                         TODAY - dt.timedelta(days=rng.randint(30, 700)), NOW, _name(rng), "", "", ""))
    copy_rows(conn, "subscription", ["id", "number", "project_id", "lead_id", "unit_id", "agent_id", "price",
                                     "deposit", "payment_method", "status", "subscribed_on", "created_at",
                                     "customer_name", "customer_id_number", "customer_address", "price_reason"],
              sub_rows)

    # Ten lines of 150,000 a subscription; 6 paid on average, each by one payment.
    mean = paid_lines_total / n_subs  # 6 of the 10 lines, spread 2 to 10
    paid_per_sub = [rng.randint(2, int(2 * mean) - 2) for _ in range(n_subs)]
    instalments, payments, allocations = [], [], []
    line_id = payment_id = 0
    receipt = {p: 0 for p in project_ids}
    for s in range(1, n_subs + 1):
        agent, project, status = sub_agent[s]
        start = TODAY - dt.timedelta(days=rng.randint(0, 400))
        for seq in range(1, LINES_PER_SUB + 1):
            line_id += 1
            due = start + dt.timedelta(days=30 * seq)
            paid = seq <= paid_per_sub[s - 1]
            instalments.append((line_id, s, seq, "deposit" if seq == 1 else "instalment", due, 150_000,
                                150_000 if paid else 0, "paid" if paid else "pending", ""))
            if paid:
                payment_id += 1
                receipt[project] += 1
                payments.append((payment_id, project, s, line_id, 150_000, min(due, TODAY), rng.choice(("bank_transfer", "pos")),
                                 f"SJ-{project:02d}-{receipt[project]:07d}", "", ids["finance"], NOW))
                allocations.append((payment_id, payment_id, line_id, 150_000))
    # The plans of deals made live above: the guard of migration d21a00000001 lets a live deal's lines
    # come only from an approved change; the scratch database's superuser turns triggers off for them.
    db.session.execute(text("SET LOCAL session_replication_role = replica"))
    copy_rows(conn, "instalment", ["id", "subscription_id", "seq", "kind", "due_on", "amount_due", "amount_paid",
                                   "status", "agent_note"], instalments)
    db.session.execute(text("SET LOCAL session_replication_role = origin"))  # the payments keep `held`
    copy_rows(conn, "payment", ["id", "project_id", "subscription_id", "instalment_id", "amount", "paid_on",
                                "channel", "receipt_no", "reason", "recorded_by_id", "recorded_at"], payments)
    copy_rows(conn, "payment_allocation", ["id", "payment_id", "instalment_id", "amount"], allocations)
    copy_rows(conn, "receipt_counter", ["project_id", "last_no"], receipt.items())
    db.session.commit()
    after_copy(db, ("building", "unit", "lead", "follow_up", "subscription", "instalment", "payment",
                    "payment_allocation"))
    return {"units": n_units, "leads": n_leads, "follow_ups": n_leads, "subscriptions": n_subs,
            "instalments": len(instalments), "payments": len(payments), "seconds": time.perf_counter() - started}


def main() -> None:
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    with scratch_app():
        from models import db
        if db.engine.dialect.name != "postgresql":
            sys.exit("big_office.py needs PostgreSQL: set DATABASE_URL")
        counts = build(db, scale)
        print(", ".join(f"{k} {v:,.0f}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
