"""The verifiable lottery (摇号, issue 24, R-LCH-2): the entrants and the seed's hash published
before the draw, the order a documented function of both that anyone can re-run (the CLI, the
30-line script), the draw refused on a wrong seed or a changed list, drawn once; the public pages
carry numbers and groups only."""
from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
from unittest import mock
from decimal import Decimal
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select, update

from models import Audit, Launch, LaunchEntry
from models.errors import PermissionDenied, RuleViolation
from models.lottery import (canonical_text, draw, draw_order, entrants_digest, hash_seed, order_digest, public_document,
                            publish, verify)
from tests import factories as f
from tests.conftest import Auth, csrf_token

ROOT = Path(__file__).resolve().parent.parent
SEED = "0123456789abcdef" * 4
# The known vector (checked independently with `openssl dgst -sha256 -hmac SEED` and `sha256sum`).
VECTOR = [("RC01-0001", "other"), ("RC01-0002", "first_home"), ("RC01-0003", "other"),
          ("RC01-0004", "first_home"), ("RC01-0005", "other")]
VECTOR_SEED_HASH = "a8ae6e6ee929abea3afcfc5258c8ccd6f85273e0d4626d26c7279f3250f77c8e"
VECTOR_DIGEST = "e1bd9dc44d79e7f1aff0be4845dc6636f0e71c7a6a87cfb1ba0f836c1ce3e2c4"
VECTOR_BY_GROUP = ["RC01-0002", "RC01-0004", "RC01-0001", "RC01-0003", "RC01-0005"]
VECTOR_PLAIN = ["RC01-0001", "RC01-0003", "RC01-0005", "RC01-0002", "RC01-0004"]
VECTOR_KEY_0002 = "c0092958fd9427ddbaf2c66d107c4f1680e14d9ab87518b1300fac6b3116d2ea"


def english(exc) -> str:
    with force_locale("en"):
        return str(exc)


# --- a small factory: a launch and its entries, made directly (registration is helper A's) ---------

def make_launch(session, by, *, groups_ordered=False, project=None, status="registration", name="一期开盘"):
    project = project or f.project(session)
    launch = Launch(project_id=project.id, name=name, status=status, registration_opens_on=dt.date(2026, 11, 1),
                    registration_closes_on=dt.date(2026, 11, 20), selection_on=dt.date(2026, 11, 28),
                    intent_deposit=Decimal("50000.00"), card_valid_until=dt.date(2026, 12, 31),
                    groups_ordered=groups_ordered, created_by_id=by.id)
    session.add(launch)
    session.flush()
    return launch


_serial = itertools.count(1)


def make_entries(session, launch, agent, numbers_groups, status="paid", eligible=True):
    lead = f.lead(session, owner=agent, project_=launch.project)
    entries = []
    for number, group in numbers_groups:
        n = next(_serial)
        entries.append(LaunchEntry(launch_id=launch.id, number=number, lead_id=lead.id, agent_id=agent.id,
                                   name="张三", phone=f"139{n:08d}", id_type="resident_id",
                                   id_number=f"1101011990{n:08d}", group_name=group, status=status,
                                   eligible=eligible))
    session.add_all(entries)
    session.flush()
    return entries


def publish_known(session, manager, launch_id, seed=SEED):
    """Publish with a known seed (the known vector's): the office's generator, `new_seed`, made to
    return it for this one call — publish itself takes no seed nor hash from anyone (R-LCH-2)."""
    with mock.patch("models.lottery.new_seed", return_value=seed):
        return publish(session, manager, launch_id)


def drawn_launch(session, manager, agent, project=None) -> int:
    """A launch of `project` with the known vector's entrants, published and drawn by `manager`
    (for other tests that need a drawn launch, e.g. every document kind)."""
    launch = make_launch(session, manager, project=project, name="摇号示例")
    make_entries(session, launch, agent, VECTOR)
    publish_known(session, manager, launch.id, SEED)
    draw(session, manager, launch.id, SEED)
    session.commit()
    return launch.id


@pytest.fixture
def people(make_user):
    return {"manager": make_user("sales_manager", username="lot_manager"),
            "agent": make_user("agent", username="lot_agent"),
            "admin": make_user("admin", username="lot_admin"),
            "control": make_user("sales_control", username="lot_control")}


@pytest.fixture
def launch(db, people):
    """A launch (not ordered by group) with the known vector's five paid, eligible entrants, and two
    entries that do not take part: one whose deposit is not in, one not eligible."""
    s = db.session
    launch = make_launch(s, people["manager"])
    make_entries(s, launch, people["agent"], VECTOR)
    make_entries(s, launch, people["agent"], [("RC01-0006", "other")], status="registered")
    make_entries(s, launch, people["agent"], [("RC01-0007", "first_home")], eligible=False)
    s.commit()
    return launch


def _order(db, launch_id):
    return list(db.session.scalars(select(LaunchEntry.number).where(
        LaunchEntry.launch_id == launch_id, LaunchEntry.position.is_not(None)).order_by(LaunchEntry.position)))


def _publish_and_draw(db, people, launch, seed=SEED):
    publish_known(db.session, people["manager"], launch.id, seed)
    db.session.commit()
    draw(db.session, people["manager"], launch.id, seed)
    db.session.commit()


# --- the draw as a function -------------------------------------------------------------------------------

def test_r_lch_2_known_vector_gives_a_fixed_order():
    """R-LCH-2: a fixed seed and numbers give the order written here (independently computed)."""
    assert hash_seed(SEED) == VECTOR_SEED_HASH
    assert canonical_text(VECTOR).encode() == (b"RC01-0001\tother\nRC01-0002\tfirst_home\nRC01-0003\tother\n"
                                               b"RC01-0004\tfirst_home\nRC01-0005\tother\n")
    assert entrants_digest(VECTOR) == VECTOR_DIGEST
    assert [n for n, _, _ in draw_order(SEED, VECTOR, groups_ordered=False)] == VECTOR_PLAIN
    by_group = draw_order(SEED, VECTOR, groups_ordered=True)
    assert [n for n, _, _ in by_group] == VECTOR_BY_GROUP
    assert by_group[0][2] == VECTOR_KEY_0002


def test_r_lch_2_determinism_same_inputs_same_order_whatever_their_order():
    shuffled = list(reversed(VECTOR))
    assert draw_order(SEED, shuffled, False) == draw_order(SEED, VECTOR, False)
    assert entrants_digest(shuffled) == entrants_digest(VECTOR)
    other_seed = "f" * 64
    assert [n for n, _, _ in draw_order(other_seed, VECTOR, False)] != VECTOR_PLAIN


def test_r_lch_2_a_changed_list_changes_the_digest():
    assert entrants_digest(VECTOR[:-1]) != VECTOR_DIGEST
    assert entrants_digest([*VECTOR[:-1], ("RC01-0005", "first_home")]) != VECTOR_DIGEST  # a group changed
    assert entrants_digest([*VECTOR, ("RC01-0009", "other")]) != VECTOR_DIGEST


# --- publish and draw ---------------------------------------------------------------------------------------

def test_r_lch_2_publish_generates_a_seed_shown_once_and_stores_only_its_hash(db, people, launch):
    published = publish(db.session, people["manager"], launch.id)
    db.session.commit()
    assert published.seed and len(published.seed) == 64 and published.count == 5
    db.session.expire_all()
    stored = db.session.get(Launch, launch.id)
    assert stored.status == "published" and stored.published_at is not None
    assert stored.seed is None  # nobody can read it before the draw
    assert stored.seed_hash == hash_seed(published.seed)
    assert stored.entrants_digest == VECTOR_DIGEST  # the paid, eligible entries only
    audits = db.session.scalars(select(Audit).where(Audit.entity == "launch", Audit.action == "lottery_publish")).all()
    assert len(audits) == 1 and published.seed not in json.dumps(audits[0].changes)
    # the draw with the seed that was shown
    draw(db.session, people["manager"], launch.id, published.seed)
    db.session.commit()
    assert db.session.get(Launch, launch.id).seed == published.seed


def test_r_lch_2_publish_takes_no_hash_from_anyone_and_refusals(db, people, launch, make_user):
    """R-LCH-2: the seed is the office's alone — publish has no way to bring a hash (a manager who
    sees the list could grind seeds until his favourite is first), and the page has no such field."""
    import inspect
    assert "seed_hash" not in inspect.signature(publish).parameters
    with pytest.raises(TypeError):
        publish(db.session, people["manager"], launch.id, seed_hash=VECTOR_SEED_HASH)
    with pytest.raises(PermissionDenied):
        publish(db.session, people["agent"], launch.id)
    published = publish(db.session, people["manager"], launch.id)
    db.session.commit()
    assert published.seed and db.session.get(Launch, launch.id).seed_hash == hash_seed(published.seed)
    audit = db.session.scalar(select(Audit).where(Audit.entity == "launch", Audit.action == "lottery_publish"))
    assert audit.changes["seed_kept_by"] == [None, "generated"]
    with pytest.raises(RuleViolation) as again:
        publish(db.session, people["manager"], launch.id)
    assert "already published" in english(again.value)
    db.session.rollback()
    empty = make_launch(db.session, people["manager"], name="空")
    db.session.commit()
    with pytest.raises(RuleViolation) as none:
        publish(db.session, people["manager"], empty.id)
    assert "No entrant" in english(none.value)


def test_r_lch_2_draw_writes_positions_draw_keys_and_queue(db, people, launch):
    _publish_and_draw(db, people, launch)
    db.session.expire_all()
    stored = db.session.get(Launch, launch.id)
    assert stored.status == "drawn" and stored.seed == SEED and stored.drawn_at is not None
    assert _order(db, launch.id) == VECTOR_PLAIN
    rows = db.session.scalars(select(LaunchEntry).where(LaunchEntry.launch_id == launch.id)).all()
    for entry in rows:
        if entry.number in ("RC01-0006", "RC01-0007"):  # not paid, not eligible: no place
            assert entry.position is None and entry.draw_key is None
        else:
            assert entry.queue_no == entry.position and len(entry.draw_key) == 64
    audit = db.session.scalar(select(Audit).where(Audit.entity == "launch", Audit.action == "lottery_draw"))
    assert audit.changes["seed"] == [None, SEED] and audit.changes["entrants"] == [None, 5]
    assert audit.changes["order_digest"][1] == order_digest(draw_order(SEED, VECTOR, False))
    assert verify(db.session, launch.id).ok


def test_r_lch_2_groups_first_when_the_launch_orders_by_group(db, people):
    s = db.session
    launch = make_launch(s, people["manager"], groups_ordered=True)
    make_entries(s, launch, people["agent"], VECTOR)
    s.commit()
    _publish_and_draw(db, people, launch)
    assert _order(db, launch.id) == VECTOR_BY_GROUP


def test_r_lch_2_wrong_seed_refused_nothing_written(db, people, launch):
    publish_known(db.session, people["manager"], launch.id, SEED)
    db.session.commit()
    with pytest.raises(RuleViolation) as wrong:
        draw(db.session, people["manager"], launch.id, "e" * 64)
    assert "does not match the hash" in english(wrong.value)
    db.session.rollback()
    with pytest.raises(RuleViolation) as malformed:
        draw(db.session, people["manager"], launch.id, "xyz")
    assert "64 hexadecimal" in english(malformed.value)
    db.session.rollback()
    assert db.session.get(Launch, launch.id).status == "published" and _order(db, launch.id) == []
    with pytest.raises(PermissionDenied):
        draw(db.session, people["control"], launch.id, SEED)


def test_r_lch_2_a_list_changed_since_publication_is_refused(db, people, launch):
    publish_known(db.session, people["manager"], launch.id, SEED)
    db.session.commit()
    # an entry that was not an entrant becomes paid after the publication
    db.session.execute(update(LaunchEntry).where(LaunchEntry.number == "RC01-0006").values(status="paid"))
    db.session.commit()
    with pytest.raises(RuleViolation) as changed:
        draw(db.session, people["manager"], launch.id, SEED)
    assert "changed since it was published" in english(changed.value)
    db.session.rollback()
    assert db.session.get(Launch, launch.id).status == "published" and _order(db, launch.id) == []
    report = verify(db.session, launch.id)
    assert not report.ok and report.checks["entrants_digest"] is False


def test_r_lch_2_the_group_rule_changed_after_publication_is_refused(db, people, launch):
    """Whoever keeps the seed could compute both orders: the group rule is frozen with the list."""
    publish_known(db.session, people["manager"], launch.id, SEED)
    db.session.commit()
    db.session.execute(update(Launch).where(Launch.id == launch.id).values(groups_ordered=True))
    db.session.commit()
    assert not verify(db.session, launch.id).ok
    with pytest.raises(RuleViolation) as changed:
        draw(db.session, people["manager"], launch.id, SEED)
    assert "first-home buyers are drawn first has changed" in english(changed.value)
    db.session.rollback()
    assert _order(db, launch.id) == []


def test_r_lch_2_double_draw_draws_once(db, people, launch):
    _publish_and_draw(db, people, launch)
    with pytest.raises(RuleViolation) as twice:
        draw(db.session, people["manager"], launch.id, SEED)
    assert "already drawn" in english(twice.value)
    db.session.rollback()
    assert _order(db, launch.id) == VECTOR_PLAIN
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "launch", Audit.action == "lottery_draw")) == 1


def test_r_lch_2_draw_before_publication_refused(db, people, launch):
    with pytest.raises(RuleViolation) as early:
        draw(db.session, people["manager"], launch.id, SEED)
    assert "Publish the entrants" in english(early.value)


# --- verification: the database, the CLI, the script -----------------------------------------------------

def test_r_lch_2_verify_names_the_first_difference_of_a_tampered_order(db, people, launch):
    _publish_and_draw(db, people, launch)
    assert verify(db.session, launch.id).ok
    first, second = _order(db, launch.id)[:2]
    db.session.execute(update(LaunchEntry).where(LaunchEntry.launch_id == launch.id, LaunchEntry.number == first)
                       .values(position=99))
    db.session.execute(update(LaunchEntry).where(LaunchEntry.launch_id == launch.id, LaunchEntry.number == second)
                       .values(position=1))
    db.session.execute(update(LaunchEntry).where(LaunchEntry.launch_id == launch.id, LaunchEntry.number == first)
                       .values(position=2))
    db.session.commit()
    report = verify(db.session, launch.id)
    assert not report.ok and report.checks["order"] is False
    assert report.difference.startswith(f"position 1: expected {first}")


def test_r_lch_2_cli_verify_exit_codes(app, db, people, launch, tmp_path):
    _publish_and_draw(db, people, launch)
    runner = app.test_cli_runner()
    good = runner.invoke(args=["launch", "verify", str(launch.id)])
    assert good.exit_code == 0, good.output
    assert "match" in good.output and "MISMATCH" not in good.output
    doc = public_document(db.session, db.session.get(Launch, launch.id))
    published = tmp_path / "lottery.json"
    published.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert runner.invoke(args=["launch", "verify", str(launch.id), "--json", str(published)]).exit_code == 0
    doc["order"][0], doc["order"][1] = ({**doc["order"][1], "position": 1}, {**doc["order"][0], "position": 2})
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    bad_file = runner.invoke(args=["launch", "verify", str(launch.id), "--json", str(forged)])
    assert bad_file.exit_code == 1 and "MISMATCH" in bad_file.output and "position 1" in bad_file.output
    # the database itself tampered: a group changed after the draw
    db.session.execute(update(LaunchEntry).where(LaunchEntry.launch_id == launch.id, LaunchEntry.number == "RC01-0001")
                       .values(group_name="first_home"))
    db.session.commit()
    bad = runner.invoke(args=["launch", "verify", str(launch.id)])
    assert bad.exit_code == 1 and "MISMATCH" in bad.output and "first difference" in bad.output


def test_r_lch_2_the_published_script_re_runs_a_real_draw(client, db, people, launch, tmp_path):
    _publish_and_draw(db, people, launch)
    path = tmp_path / "lottery.json"
    path.write_bytes(client.get(f"/launch/{launch.id}/lottery.json").get_data())  # as the public downloads it
    doc = json.loads(path.read_text(encoding="utf-8"))
    script = ROOT / "scripts" / "verify_draw.py"
    assert len(script.read_text(encoding="utf-8").splitlines()) <= 30
    done = subprocess.run([sys.executable, "-I", str(script), str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "OK" and [line.split()[1] for line in lines[1:-1]] == VECTOR_PLAIN
    doc["seed"] = "f" * 64  # a seed other than the one published
    path.write_text(json.dumps(doc), encoding="utf-8")
    wrong = subprocess.run([sys.executable, "-I", str(script), str(path)], capture_output=True, text=True)
    assert wrong.returncode == 1 and wrong.stdout.splitlines()[-1] == "MISMATCH"


# --- the pages: the manager's, the public ones, the PDFs --------------------------------------------------

def _login(client, user):
    assert Auth(client).login(user.username).status_code == 302


def test_r_lch_2_manager_publishes_on_the_page_sees_the_seed_once_then_draws(client, db, people, launch):
    _login(client, people["manager"])
    page = client.get(f"/admin/lottery/?launch={launch.id}").get_data(as_text=True)
    assert 'id="publish-form"' in page and 'name="seed_hash"' not in page  # no hash of one's own
    from tests.conftest import submission_key
    key, token = submission_key(page), csrf_token(client, "/admin/lottery/")
    # a hash slipped into the form anyway is ignored: the office generates the seed
    form = {"csrf_token": token, "submission_key": key, "launch": str(launch.id), "seed_hash": VECTOR_SEED_HASH}
    shown = client.post("/admin/lottery/publish", data=form)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    html = shown.get_data(as_text=True)
    import re
    seed = re.search(r'id="lottery-seed">([0-9a-f]{64})<', html).group(1)
    db.session.expire_all()
    assert db.session.get(Launch, launch.id).seed_hash == hash_seed(seed) != VECTOR_SEED_HASH
    again = client.post("/admin/lottery/publish", data=form, follow_redirects=True).get_data(as_text=True)
    assert seed not in again and 'id="lottery-seed"' not in again  # the repeat does not show it again
    page = client.get(f"/admin/lottery/?launch={launch.id}").get_data(as_text=True)
    assert seed not in page and 'id="draw-form"' in page
    wrong = client.post("/admin/lottery/draw", data={"csrf_token": token, "submission_key": submission_key(page),
                                                     "launch": str(launch.id), "seed": "0" * 64})
    assert wrong.status_code == 302
    db.session.expire_all()
    assert db.session.get(Launch, launch.id).status == "published"
    page = client.get(f"/admin/lottery/?launch={launch.id}").get_data(as_text=True)
    client.post("/admin/lottery/draw", data={"csrf_token": token, "submission_key": submission_key(page),
                                             "launch": str(launch.id), "seed": seed.upper()})
    db.session.expire_all()
    assert db.session.get(Launch, launch.id).status == "drawn" and len(_order(db, launch.id)) == 5
    checked = client.get(f"/admin/lottery/verify?launch={launch.id}").get_data(as_text=True)
    assert "alert-success" in checked


def test_r_lch_2_publish_and_draw_pages_are_the_managers_only(client, db, people, launch):
    """Roles of the lottery's endpoints (the role matrix has them too): control and admin may see
    the page (the launch's list right) but neither publish nor draw (launch.publish, launch.draw)."""
    for who in ("control", "admin"):
        _login(client, people[who])
        token = csrf_token(client, "/admin/lottery/")
        assert client.get(f"/admin/lottery/?launch={launch.id}").status_code == 200
        assert client.post("/admin/lottery/publish", data={"csrf_token": token, "launch": str(launch.id)}).status_code == 403
        assert client.post("/admin/lottery/draw", data={"csrf_token": token, "launch": str(launch.id),
                                                        "seed": SEED}).status_code == 403
        Auth(client).logout()
    assert db.session.get(Launch, launch.id).status == "registration"
    _login(client, people["manager"])
    token = csrf_token(client, "/admin/lottery/")
    # CSRF on every POST: without the token nothing is published
    refused = client.post("/admin/lottery/publish", data={"launch": str(launch.id)})
    assert refused.status_code in (303, 400) and 'id="lottery-seed"' not in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Launch, launch.id).status == "registration"


def test_r_lch_2_public_pages_404_before_publication_then_numbers_and_groups_only(app, client, db, people, launch):
    assert client.get(f"/launch/{launch.id}/lottery").status_code == 404
    assert client.get(f"/launch/{launch.id}/lottery.json").status_code == 404
    assert client.get("/launch/999999/lottery.json").status_code == 404
    publish_known(db.session, people["manager"], launch.id, SEED)
    db.session.commit()
    before = client.get(f"/launch/{launch.id}/lottery.json")
    assert before.status_code == 200 and before.headers["Cache-Control"].startswith("public")
    doc = before.get_json()
    assert doc["seed"] is None and doc["order"] == [] and doc["entrants_digest"] == VECTOR_DIGEST
    assert [e["number"] for e in doc["entrants"]] == [n for n, _ in VECTOR]
    draw(db.session, people["manager"], launch.id, SEED)
    db.session.commit()
    after = client.get(f"/launch/{launch.id}/lottery.json")
    text = after.get_data(as_text=True)
    doc = json.loads(text)
    assert doc["seed"] == SEED and [o["number"] for o in doc["order"]] == VECTOR_PLAIN
    entries = db.session.scalars(select(LaunchEntry).where(LaunchEntry.launch_id == launch.id)).all()
    for entry in entries:  # no personal data on the public paths
        for secret in (entry.name, entry.phone, entry.id_number):
            assert secret not in text
    assert set(doc["entrants"][0]) == {"number", "group"} and set(doc["order"][0]) == {"number", "position", "draw_key"}
    html = app.test_client().get(f"/launch/{launch.id}/lottery")  # a new visitor: no session is opened
    assert html.status_code == 200 and "Set-Cookie" not in html.headers
    page = html.get_data(as_text=True)
    assert SEED in page and "RC01-0002" in page
    for entry in entries:
        assert entry.phone not in page and entry.id_number not in page and entry.name not in page
    etag = after.headers["ETag"]
    assert client.get(f"/launch/{launch.id}/lottery.json", headers={"If-None-Match": etag}).status_code == 304


def test_r_lch_2_the_lottery_pdfs_render_with_the_hashes_and_no_personal_data(db, people, launch, tmp_path):
    import shutil

    import pdf
    from models.documents import document_context, request_documents
    with pytest.raises(RuleViolation):
        document_context(db.session, "lottery_entrants", launch.id)
    _publish_and_draw(db, people, launch)
    for kind in ("lottery_entrants", "lottery_result"):
        context = document_context(db.session, kind, launch.id)
        data = pdf.render(kind, context)
        path = tmp_path / f"{kind}.pdf"
        path.write_bytes(data)
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
            assert "RC01-0002" in text and VECTOR_SEED_HASH[:20] in text.replace("\n", "")
            assert "张三" not in text
    _, documents = request_documents(db.session, people["agent"], "lottery_result", [launch.id])
    assert documents[0].owner_id is None


@pytest.mark.postgres
def test_r_lch_2_two_draws_at_the_same_instant_draw_once(app, db, people, launch):
    """R-LCH-2 on PostgreSQL: two managers' draws (a double click in two tabs) released at once:
    the launch's row lock and the conditional update let one draw; the other is told it is drawn."""
    from models import User
    from tests.support.race import race
    publish_known(db.session, people["manager"], launch.id, SEED)
    db.session.commit()
    ids = {"launch": launch.id, "manager": people["manager"].id}

    def drawing(session):
        draw(session, session.get(User, ids["manager"]), ids["launch"], SEED)
        session.commit()
        return "drawn"

    results = race(drawing, drawing, app=app, expected=RuleViolation)
    assert results.count("drawn") == 1
    refusal = next(r for r in results if r != "drawn")
    assert "already drawn" in english(refusal)
    db.session.expire_all()
    assert _order(db, launch.id) == VECTOR_PLAIN
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "launch", Audit.action == "lottery_draw")) == 1


# --- a lost seed: the vice-president abandons the publication, publicly ----------------------------------

def _deposit_in(db, launch, people, number):
    from models.launches import IntentPayment
    entry = db.session.scalar(select(LaunchEntry).where(LaunchEntry.launch_id == launch.id, LaunchEntry.number == number))
    db.session.add(IntentPayment(project_id=launch.project_id, entry_id=entry.id, kind="deposit",
                                 amount=Decimal("50000.00"), number=f"R-{number}", paid_on=dt.date(2026, 11, 10),
                                 channel="cash", recorded_by_id=people["finance"].id))
    db.session.commit()
    return entry


@pytest.fixture
def vp_finance(people, make_user):
    people["vp"] = make_user("vp", username="lot_vp")
    people["finance"] = make_user("finance", username="lot_finance")
    return people


def test_r_lch_2_abandoned_publication_frees_refunds_and_publishes_anew(db, vp_finance, launch):
    """R-LCH-2: the seed lost after publication — the vice-president abandons the publication with a
    reason: back to registration, hash and digest cleared, refunds possible again, a new publication
    with a new seed; the abandoned one is audited, told to the manager and the vice-president, and
    stays in the public document for ever (also after the new publication and its draw)."""
    from models import Notification
    from models.launches import refund_intent_deposit
    from models.lottery import abandon_publication, abandoned_publications
    people = vp_finance
    entry = _deposit_in(db, launch, people, "RC01-0001")
    first = publish(db.session, people["manager"], launch.id)
    db.session.commit()
    lost_hash = db.session.get(Launch, launch.id).seed_hash
    refund = dict(paid_on=dt.date(2026, 11, 21), channel="cash", reason="不参加", today=dt.date(2026, 11, 21))
    with pytest.raises(RuleViolation) as frozen:
        refund_intent_deposit(db.session, people["finance"], entry.id, **refund)
    assert "frozen until the draw" in english(frozen.value)
    db.session.rollback()
    with pytest.raises(RuleViolation) as no_reason:
        abandon_publication(db.session, people["vp"], launch.id, "   ")
    assert "reason" in english(no_reason.value)
    db.session.rollback()
    abandon_publication(db.session, people["vp"], launch.id, "种子封存袋遗失", now=dt.datetime(2026, 11, 21, 2, 0))
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Launch, launch.id)
    assert (stored.status, stored.seed_hash, stored.entrants_digest, stored.published_at) == (
        "registration", None, None, None)
    audit = db.session.scalar(select(Audit).where(Audit.entity == "launch", Audit.action == "lottery_abandon"))
    assert audit.changes["seed_hash"] == [lost_hash, None] and audit.changes["reason"] == [None, "种子封存袋遗失"]
    told = set(db.session.scalars(select(Notification.user_id).where(Notification.kind == "lottery_abandoned")))
    assert {people["manager"].id, people["vp"].id} <= told
    # the old seed is worthless now: drawing needs a new publication
    with pytest.raises(RuleViolation):
        draw(db.session, people["manager"], launch.id, first.seed)
    db.session.rollback()
    # refunds work again
    refund_intent_deposit(db.session, people["finance"], entry.id, **refund)
    db.session.commit()
    assert db.session.get(LaunchEntry, entry.id).status == "refunded"
    # public while in registration: no entrants, only the abandoned publication
    doc = public_document(db.session, db.session.get(Launch, launch.id))
    assert doc["entrants"] == [] and doc["seed_hash"] is None
    assert [a["seed_hash"] for a in doc["abandoned"]] == [lost_hash]
    assert doc["abandoned"][0] == {"seed_hash": lost_hash, "entrants_digest": VECTOR_DIGEST,
                                   "published_at": doc["abandoned"][0]["published_at"],
                                   "abandoned_at": "2026-11-21T02:00:00Z", "reason": "种子封存袋遗失"}
    assert doc["abandoned"][0]["published_at"].endswith("Z")
    # published anew, with a new seed (and one entrant fewer: the refunded card)
    second = publish(db.session, people["manager"], launch.id)
    db.session.commit()
    assert second.count == 4 and second.seed != first.seed
    assert db.session.get(Launch, launch.id).seed_hash == hash_seed(second.seed) != lost_hash
    draw(db.session, people["manager"], launch.id, second.seed)
    db.session.commit()
    assert verify(db.session, launch.id).ok
    doc = public_document(db.session, db.session.get(Launch, launch.id))
    assert doc["seed"] == second.seed and [a["seed_hash"] for a in doc["abandoned"]] == [lost_hash]
    assert abandoned_publications(db.session, launch.id) == doc["abandoned"]


def test_r_lch_2_only_the_vice_president_abandons_and_only_a_publication_not_drawn(db, vp_finance, launch):
    """R-LCH-2: launch.abandon_publication is the vice-president's alone (not the manager who keeps
    the seed, nor the administrator); nothing to abandon before publication or after the draw."""
    from models.lottery import abandon_publication
    people = vp_finance
    with pytest.raises(RuleViolation) as not_yet:
        abandon_publication(db.session, people["vp"], launch.id, "遗失")
    assert "not yet drawn" in english(not_yet.value)
    db.session.rollback()
    publish_known(db.session, people["manager"], launch.id)
    db.session.commit()
    for who in ("manager", "admin", "agent", "control", "finance"):
        with pytest.raises(PermissionDenied):
            abandon_publication(db.session, people[who], launch.id, "遗失")
        db.session.rollback()
    draw(db.session, people["manager"], launch.id, SEED)
    db.session.commit()
    with pytest.raises(RuleViolation) as drawn:
        abandon_publication(db.session, people["vp"], launch.id, "遗失")
    assert "not yet drawn" in english(drawn.value)
    db.session.rollback()
    assert db.session.get(Launch, launch.id).status == "drawn"


def test_r_lch_2_the_vice_president_abandons_on_the_page_once_and_the_public_page_lists_it(client, db, vp_finance,
                                                                                           launch):
    """R-LCH-2: the page's abandon form (the vice-president's; CSRF; one-time key: the same form
    sent twice abandons once, even after a new publication), and the public page and JSON list it."""
    from tests.conftest import submission_key
    people = vp_finance
    publish_known(db.session, people["manager"], launch.id)
    db.session.commit()
    _login(client, people["manager"])
    assert 'id="abandon-form"' not in client.get(f"/admin/lottery/?launch={launch.id}").get_data(as_text=True)
    token = csrf_token(client, "/admin/lottery/")
    assert client.post("/admin/lottery/abandon", data={"csrf_token": token, "launch": str(launch.id),
                                                       "reason": "x"}).status_code == 403
    Auth(client).logout()
    _login(client, people["vp"])
    page = client.get(f"/admin/lottery/?launch={launch.id}").get_data(as_text=True)
    assert 'id="abandon-form"' in page
    token = csrf_token(client, "/admin/lottery/")
    form = {"csrf_token": token, "submission_key": submission_key(page), "launch": str(launch.id), "reason": "种子遗失"}
    client.post("/admin/lottery/abandon", data={**form, "csrf_token": ""})
    db.session.expire_all()
    assert db.session.get(Launch, launch.id).status == "published"  # without the token nothing happened
    assert client.post("/admin/lottery/abandon", data=form).status_code == 302
    db.session.expire_all()
    assert db.session.get(Launch, launch.id).status == "registration"
    publish_known(db.session, people["manager"], launch.id, "ab" * 32)  # published anew
    db.session.commit()
    client.post("/admin/lottery/abandon", data=form)  # the same form again: abandons nothing
    db.session.expire_all()
    assert db.session.get(Launch, launch.id).status == "published"
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "launch", Audit.action == "lottery_abandon")) == 1
    Auth(client).logout()
    with force_locale("en"):
        public = client.get(f"/launch/{launch.id}/lottery?lang=en").get_data(as_text=True)
    assert "lottery-abandoned" in public and VECTOR_SEED_HASH in public and "种子遗失" in public
    doc = client.get(f"/launch/{launch.id}/lottery.json").get_json()
    assert [a["seed_hash"] for a in doc["abandoned"]] == [VECTOR_SEED_HASH] and doc["abandoned"][0]["reason"] == "种子遗失"
    assert doc["seed_hash"] == hash_seed("ab" * 32)
