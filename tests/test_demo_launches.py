"""Issue 24: the demo office's opening days (R-LCH-1…3) — a launch in every status, made through the
domain functions, and the drawn ones verified by `flask launch verify` (R-LCH-2)."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from models.launches import IntentPayment, Launch, LaunchEntry
from models.lottery import hash_seed


def _entries(db, launch, *where):
    return db.session.scalar(select(func.count()).select_from(LaunchEntry).where(
        LaunchEntry.launch_id == launch.id, *where))


def test_r_lch_1_2_3_the_demo_has_a_launch_in_every_status_and_its_draws_verify(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    launches = {l.status: l for l in db.session.scalars(select(Launch).order_by(Launch.id))}
    assert set(launches) == {"registration", "published", "drawn", "selecting", "closed"}
    buildings = [b.id for l in launches.values() for b in l.buildings]
    assert len(buildings) == len(set(buildings))  # a building in one launch only

    # R-LCH-1: registration open — deposits received, one unpaid, one refunded, one buyer answered no
    open_ = launches["registration"]
    assert _entries(db, open_, LaunchEntry.status == "registered") == 1
    assert _entries(db, open_, LaunchEntry.status == "refunded") == 1
    assert _entries(db, open_, LaunchEntry.status == "paid") >= 8
    assert _entries(db, open_, LaunchEntry.eligible.is_(False)) == 1
    assert {g for g in db.session.scalars(select(LaunchEntry.group_name).where(
        LaunchEntry.launch_id == open_.id))} == {"first_home", "other"}

    # R-LCH-2: the published launch's seed, generated and shown once (the demo prints it), matches its
    # published hash and is stored nowhere; every drawn lottery verifies
    [sealed] = re.findall(r"lottery seed of 9栋首开, sealed until its draw: ([0-9a-f]{64})", result.output)
    assert launches["published"].seed_hash == hash_seed(sealed) and launches["published"].seed is None
    for status in ("drawn", "selecting", "closed"):
        out = runner.invoke(args=["launch", "verify", str(launches[status].id)])
        assert out.exit_code == 0 and "MISMATCH" not in out.output and "drawn" in out.output, out.output
    assert _entries(db, launches["drawn"], LaunchEntry.position.is_not(None)) == 20

    # R-LCH-3: selecting now — some chose, one missed slot requeued, buyers choosing
    selecting = launches["selecting"]
    assert _entries(db, selecting, LaunchEntry.selection_status == "chosen") >= 3
    assert _entries(db, selecting, LaunchEntry.selection_status == "choosing") >= 1
    assert _entries(db, selecting, LaunchEntry.missed_count >= 1, LaunchEntry.selection_status == "waiting") == 1

    # closed: the chosen deals' deposits converted by finance, one refunded after the day
    closed = launches["closed"]
    assert _entries(db, closed, LaunchEntry.status == "converted") >= 8
    assert _entries(db, closed, LaunchEntry.status == "refunded") == 1
    assert db.session.scalar(select(func.count()).select_from(IntentPayment).where(
        IntentPayment.kind == "conversion")) == _entries(db, closed, LaunchEntry.status == "converted")

    # safe to run again: nothing is made twice
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(Launch)) == 5
