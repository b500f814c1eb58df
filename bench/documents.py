"""Documents (issue 7): warm renders, and a batch of 1,000 letters on 2 rq workers beside rendering
each letter in a fresh process, in the same run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python bench/documents.py

Warm: the process has rendered once (fonts and the stylesheet loaded); the figure is the median
of 20 renders of the same document, context building (the database reads) included. The batch
needs PostgreSQL and Redis (it is skipped without REDIS_URL): 1,000 payment reminders requested
as one batch, rendered by two `flask --app app worker --burst` processes (rq workers) from the moment they start until
both have emptied the queue, every document checked done. The peer renders a sample of the same
letters with `flask document …`, one fresh process per letter (imports, fonts, stylesheet,
database connection every time), and its rate is what 1,000 would take.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from _office import median_ms, record, scratch_app

ROOT = Path(__file__).resolve().parent.parent
ID_NUMBER = "110101199003074573"
DEALS = 250          # × 4 open lines (instalments method) = 1,000 reminders
FRESH_SAMPLE = 20
STATEMENT_PAYMENTS = 45  # with its plan: a 3-page statement


def _office(db):
    """DEALS active deals through the domain functions, one with many payments (the statement)."""
    import datetime as dt

    from sqlalchemy import insert, select

    from models import Building, Lead, Project, Unit
    from models.deals import confirm_subscription, subscribe
    from models.payments import record_deposit
    from models.payments import record_payment
    from models.users import create_user
    today = dt.date(2026, 11, 2)
    agent = create_user(db.session, "agent1", "bench-pass-1", ["agent"], "刘强")
    control = create_user(db.session, "control", "bench-pass-1", ["sales_control"], "陈静")
    finance = create_user(db.session, "finance", "bench-pass-1", ["finance"], "赵敏")
    project = Project(code="DOC", name="湘江壹号", developer="长沙VK置业有限公司", address="长沙市岳麓区潇湘北路88号")
    db.session.add(project)
    db.session.flush()
    from models.payments import ensure_default_methods
    ensure_default_methods(db.session, project)
    building = Building(project_id=project.id, name="1栋", floors=25)
    db.session.add(building)
    db.session.flush()
    db.session.execute(insert(Unit), [
        {"building_id": building.id, "floor": 1 + i // 12, "position": 1 + i % 12, "number": f"{1 + i // 12}{1 + i % 12:02d}",
         "layout": "三室两厅两卫", "area": Decimal("128.56"), "list_price": Decimal("1500000"), "status": "available"}
        for i in range(DEALS)])
    db.session.execute(insert(Lead), [
        {"project_id": project.id, "name": f"客户{i:03d}", "phone": f"139{i:08d}", "source": "web",
         "stage": "visited", "owner_id": agent.id, "registered_by_id": agent.id} for i in range(DEALS)])
    db.session.commit()
    units = list(db.session.scalars(select(Unit.id).order_by(Unit.id)))
    leads = list(db.session.scalars(select(Lead.id).order_by(Lead.id)))
    subs = []
    for unit_id, lead_id in zip(units, leads):
        sub = subscribe(db.session, agent, unit_id=unit_id, lead_id=lead_id, payment_method="instalments",
                        deposit="50000", id_number=ID_NUMBER, address="长沙市岳麓区桐梓坡路12号",
                        subscribed_on=today, today=today)
        confirm_subscription(db.session, control, sub.id)
        record_deposit(db.session, finance, sub.id, amount="50000", paid_on=today, channel="pos", today=today)
        db.session.commit()
        subs.append(sub.id)
    for k in range(STATEMENT_PAYMENTS):  # the statement of the first customer
        record_payment(db.session, finance, subs[0], amount="1000", paid_on=today, channel="bank_transfer",
                       bank_ref=f"B{k:05d}", today=today)
    db.session.commit()
    return subs, leads[0], finance


def _pages(data: bytes) -> int:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        info = subprocess.run(["pdfinfo", handle.name], capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def main() -> None:
    import pdf
    from sqlalchemy import select

    from models import Document, Instalment, db
    from models.documents import document_context, request_documents

    redis_url = os.environ.get("REDIS_URL")
    with scratch_app() as app:
        start = time.perf_counter()
        subs, statement_lead, finance = _office(db)
        print(f"office: {len(subs)} deals in {time.perf_counter() - start:.1f} s")
        lines = list(db.session.scalars(select(Instalment.id).where(Instalment.status != "paid")
                                        .order_by(Instalment.id)))[:1000]
        letter = lambda: pdf.render("payment_reminder", document_context(db.session, "payment_reminder", lines[1]))  # noqa: E731
        statement = lambda: pdf.render("statement", document_context(db.session, "statement", statement_lead))  # noqa: E731
        rows = [("1-page letter (payment reminder), warm", median_ms(letter), _pages(letter()), "≤ 350 ms"),
                (f"statement of {STATEMENT_PAYMENTS} payments, warm", median_ms(statement), _pages(statement()), "≤ 800 ms")]
        print(f"\n{'measure':44} {'median':>10} {'pages':>6}  target")
        for measure, ms, pages, target in rows:
            print(f"{measure:44} {ms:8.1f} ms {pages:6d}  {target}")
            record(measure, ms, None, target)

        if not redis_url:
            print("\nbatch: skipped (set REDIS_URL and DATABASE_URL for the batch on 2 rq workers)")
            return
        from redis import Redis
        Redis.from_url(redis_url).flushdb()
        app.config["REDIS_URL"] = redis_url
        from jobs.documents import enqueue_documents
        batch, documents = request_documents(db.session, finance, "payment_reminder", lines)
        db.session.commit()
        enqueue_documents(db.session, documents)
        env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": redis_url,
               "SECRET_KEY": "bench", "SALESDESK_INSTANCE_PATH": tempfile.mkdtemp()}
        flask = str(Path(sys.executable).parent / "flask")
        start = time.perf_counter()
        workers = [subprocess.Popen([flask, "--app", "app", "worker", "--burst", "--queues", "documents"], cwd=ROOT,
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(2)]
        for worker in workers:
            worker.wait(timeout=1800)
        batch_seconds = time.perf_counter() - start
        db.session.expire_all()
        statuses = list(db.session.scalars(select(Document.status).where(Document.batch_id == batch.id)))
        assert statuses.count("done") == len(lines), {s: statuses.count(s) for s in set(statuses)}
        sizes = list(db.session.scalars(select(Document.size).where(Document.batch_id == batch.id)))

        fresh = []
        out = Path(tempfile.mkdtemp())
        for line_id in lines[:FRESH_SAMPLE]:
            start = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", "document",
                            "payment_reminder", str(line_id), "--out", str(out / f"{line_id}.pdf")],
                           cwd=ROOT, env=env, check=True, capture_output=True)
            fresh.append(time.perf_counter() - start)
        ours = len(lines) / batch_seconds
        peer = 1 / statistics.mean(fresh)
        print(f"\nbatch of {len(lines):,} letters on 2 rq workers: {batch_seconds:.1f} s, {ours:.1f} documents/s "
              f"(median file {statistics.median(sizes) / 1024:.0f} KB)")
        print(f"one fresh process per letter ({FRESH_SAMPLE} letters, median {statistics.median(fresh):.2f} s each): "
              f"{peer:.2f} documents/s, {len(lines) / peer:.0f} s for {len(lines):,}")
        print(f"ratio: {ours / peer:.1f}×")
        record(f"{len(lines):,} letters on 2 rq workers (peer: a process each)", ours, peer, "-", unit="docs/s")


if __name__ == "__main__":
    main()
