"""The verifiable lottery (摇号, R-LCH-2): the selection order of a launch's entrants, drawn by a
documented, deterministic function of a secret seed and a published list, that anyone can re-run.

The draw, step by step (docs/lottery.md says the same for people outside the office):

1. **Entrants.** The launch's entries (认筹) whose status is `paid` and that are `eligible`, at the
   moment of publication. After the draw, the entrants are the entries that hold a position.
2. **The published list** is canonical text: one line per entrant, ``number<TAB>group``, sorted by
   number (code point order, which is also the byte order of UTF-8), encoded in UTF-8, each line
   ended by ``"\\n"``. `group` is ``first_home`` or ``other``.
   ``entrants_digest`` = SHA-256 of that text, in lower-case hex.
3. **The seed** is 32 random bytes written as 64 lower-case hex characters. Before the draw only
   ``seed_hash`` = SHA-256 of the seed's hex string (its UTF-8 bytes) is published. The office
   always generates the seed with `secrets`, shows it once to the manager to print and seal, and
   stores only its hash: the `seed` column stays NULL until the draw. Nobody brings a hash of his
   own: whoever sees the list before publication could try seeds until his favourite comes first.
4. **The order.** For each entrant, ``draw_key`` = HMAC-SHA-256(key = the seed's hex string as UTF-8
   bytes, message = the card number as UTF-8 bytes), in lower-case hex. Entrants are sorted by
   (group rank, draw_key, number), where the group rank is 0 for ``first_home`` and 1 for ``other``
   when the launch orders by group (`groups_ordered`), and 0 for everyone otherwise. Two equal
   keys are impossible in practice; the number breaks such a tie. Position 1 chooses first.
5. **At the draw** the seed is revealed: SHA-256 of it must equal the published hash, and the list
   as it stands must still hash to the published digest; then the seed, each entrant's position,
   draw_key and queue number (= position) are stored, in one transaction, once.

`verify` recomputes all of it from the database (or, through `verify_document`, from the public
JSON that /launch/<id>/lottery.json serves); scripts/verify_draw.py does the same in 30 lines of
standard Python for anyone outside.

A seed lost after publication would leave the launch in `published` for ever and every intent
deposit frozen: the vice-president may abandon the publication (`abandon_publication`: published →
registration, with a reason). Every abandoned publication — its seed's hash, digest, time and
reason — stays on the public page and JSON for ever (read from the append-only audit trail), so
abandoning in order to re-roll a seed leaves a public trace.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select, update

from .audit import record_many
from .base import utcnow
from .dialect import is_postgresql, rows_as_json
from .errors import RuleViolation
from .launches import Launch, LaunchEntry
from .permissions import require
from .submissions import claim, settle

GROUP_RANK = {"first_home": 0, "other": 1}
DRAWN_STATUSES = ("drawn", "selecting", "closed")  # the seed is revealed, the order fixed
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --- the draw as pure functions (what anyone can re-run) -------------------------------------------

def canonical_text(entrants) -> str:
    """The published list: `number<TAB>group\\n` per entrant (pairs or dicts), sorted by number."""
    pairs = sorted((e["number"], e["group"]) if isinstance(e, dict) else tuple(e) for e in entrants)
    return "".join(f"{number}\t{group}\n" for number, group in pairs)


def entrants_digest(entrants) -> str:
    """SHA-256 (hex) of the canonical text of the list."""
    return hashlib.sha256(canonical_text(entrants).encode("utf-8")).hexdigest()


def hash_seed(seed: str) -> str:
    """SHA-256 (hex) of the seed's hex string, as published before the draw."""
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def draw_key(seed: str, number: str) -> str:
    """HMAC-SHA-256(key = seed hex string, message = card number), hex."""
    return hmac.new(seed.encode("utf-8"), number.encode("utf-8"), hashlib.sha256).hexdigest()


def draw_order(seed: str, entrants, groups_ordered: bool) -> list[tuple[str, str, str]]:
    """The order: [(number, group, draw_key)], position 1 first."""
    keyed = [(number, group, draw_key(seed, number)) for number, group in
             ((e["number"], e["group"]) if isinstance(e, dict) else tuple(e) for e in entrants)]
    return sorted(keyed, key=lambda e: (GROUP_RANK.get(e[1], 1) if groups_ordered else 0, e[2], e[0]))


def order_digest(order) -> str:
    """SHA-256 (hex) of the drawn order as text: `position<TAB>number<TAB>draw_key\n` per entrant."""
    text = "".join(f"{p}\t{number}\t{key}\n" for p, (number, _, key) in enumerate(order, start=1))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_seed() -> str:
    """A fresh seed: 32 random bytes from the operating system, as 64 hex characters."""
    return secrets.token_hex(32)


def normalise_seed(seed: str | None) -> str:
    text = "".join((seed or "").split()).lower()
    if not _HEX64.fullmatch(text):
        raise RuleViolation(_l("The seed is 64 hexadecimal characters (0-9, a-f), as printed when the "
                               "entrants were published."), rule="R-LCH-2")
    return text


# --- reading a launch's entrants ----------------------------------------------------------------------

def entrants(session, launch: Launch) -> list[tuple[int, str, str]]:
    """(entry id, number, group) of the launch's entrants, sorted by number: before the draw the
    paid and eligible entries, after it the entries that hold a position."""
    query = select(LaunchEntry.id, LaunchEntry.number, LaunchEntry.group_name).where(
        LaunchEntry.launch_id == launch.id)
    if launch.status in DRAWN_STATUSES:
        query = query.where(LaunchEntry.position.is_not(None))
    else:
        query = query.where(LaunchEntry.status == "paid", LaunchEntry.eligible.is_(True))
    return sorted(((i, n, g) for i, n, g in session.execute(query)), key=lambda row: row[1])


def _lock_launch(session, launch_id) -> Launch:
    launch = session.scalar(select(Launch).where(Launch.id == launch_id).with_for_update())
    if launch is None:
        raise RuleViolation(_l("This launch does not exist."), rule="R-LCH-2")
    return launch


# --- publication ---------------------------------------------------------------------------------------

@dataclass
class Published:
    """What `publish` did. `seed` is the generated seed, to show ONCE; it is stored nowhere."""
    launch: Launch
    seed: str
    count: int
    digest: str


def published_groups_ordered(session, launch_id: int) -> bool | None:
    """Whether the launch ordered by group when its entrants were published, as the append-only
    audit trail keeps it (None: not published). The rule is part of the draw's published inputs:
    changing it after publication, once the seed is known, would let its keeper pick an order."""
    from .audit import Audit
    changes = session.scalar(select(Audit.changes).where(
        Audit.entity == "launch", Audit.entity_id == str(launch_id), Audit.action == "lottery_publish")
        .order_by(Audit.id.desc()).limit(1))
    value = (changes or {}).get("groups_ordered")
    return None if value is None else bool(value[1])


def publish(session, by, launch_id: int, key: str | None = None, now: dt.datetime | None = None) -> Published:
    """Publish the entrants and the seed's hash (R-LCH-2): registration → published, registration
    closes, the list is frozen by its digest. The seed is ALWAYS generated here (`new_seed`: 32
    bytes from `secrets`) and returned once; only its hash is stored. No caller may bring a hash
    of his own: seeing the list beforehand, he could grind seeds until the order suits him (for 20
    entrants, about 20 tries put a chosen one first). At least one entrant. A conditional UPDATE
    on `registration` under the launch's lock: published once. `key`: the form's one-time key; the
    repeat is told, without the seed."""
    require(by, "launch.publish")
    if key is not None:
        claim(session, by, key, "lottery_publish", subject=f"launch:{launch_id}", out_of_date=_l(
            "This form is out of date: open the lottery page again."))
    launch = _lock_launch(session, launch_id)
    if launch.status != "registration":
        raise RuleViolation(_l("The entrants of this launch are already published."), rule="R-LCH-2")
    rows = entrants(session, launch)
    if not rows:
        raise RuleViolation(_l("No entrant yet: an entry takes part once its intent deposit is received and "
                               "it is eligible."), rule="R-LCH-2")
    seed = new_seed()
    hashed = hash_seed(seed)
    digest = entrants_digest((n, g) for _, n, g in rows)
    now = now or utcnow()
    done = session.execute(update(Launch).where(Launch.id == launch.id, Launch.status == "registration")
                           .values(status="published", seed_hash=hashed, entrants_digest=digest, published_at=now)
                           .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise RuleViolation(_l("The entrants of this launch are already published."), rule="R-LCH-2")
    record_many(session, "launch", "lottery_publish", by, [(launch.id, {
        "status": ["registration", "published"], "seed_hash": [None, hashed], "entrants_digest": [None, digest],
        "entrants": [None, len(rows)], "seed_kept_by": [None, "generated"],
        "groups_ordered": [None, bool(launch.groups_ordered)]})])
    if key is not None:
        settle(session, key, f"{launch.name}: {len(rows)} · {hashed[:16]}…")
    session.expire(launch)
    return Published(launch=launch, seed=seed, count=len(rows), digest=digest)


# --- abandoning a publication (a lost seed) ---------------------------------------------------------------

def abandon_publication(session, by, launch_id: int, reason: str, key: str | None = None,
                        now: dt.datetime | None = None) -> Launch:
    """Abandon a publication whose seed is lost (R-LCH-2): published → registration, the seed's
    hash, the digest and the publication's time cleared, so refunds work again and the entrants
    can be published anew with a new seed. The vice-president's alone (launch.abandon_publication),
    with a reason. Audited as `lottery_abandon`; that append-only row is what the public page and
    JSON list for ever (`abandoned_publications`), so abandoning to re-roll a seed leaves a public
    trace. The manager and the vice-president are told. Under the launch's lock, a conditional
    UPDATE on `published`; `key`: the form's one-time key — a repeat abandons nothing."""
    from .notifications import notify
    from .users import users_with_roles
    require(by, "launch.abandon_publication")
    reason = " ".join((reason or "").split())
    if not reason:
        raise RuleViolation(_l("Say why the publication is abandoned: the reason is published with it."),
                            rule="R-LCH-2")
    if key is not None:
        claim(session, by, key, "lottery_abandon", subject=f"launch:{launch_id}", out_of_date=_l(
            "This form is out of date: open the lottery page again."))
    launch = _lock_launch(session, launch_id)
    if launch.status != "published":
        raise RuleViolation(_l("Only a publication not yet drawn can be abandoned."), rule="R-LCH-2")
    before = {"seed_hash": launch.seed_hash, "entrants_digest": launch.entrants_digest,
              "published_at": launch.published_at}
    now = now or utcnow()
    done = session.execute(update(Launch).where(Launch.id == launch.id, Launch.status == "published")
                           .values(status="registration", seed_hash=None, entrants_digest=None, published_at=None)
                           .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise RuleViolation(_l("Only a publication not yet drawn can be abandoned."), rule="R-LCH-2")
    record_many(session, "launch", "lottery_abandon", by, [(launch.id, {
        "status": ["published", "registration"], "seed_hash": [before["seed_hash"], None],
        "entrants_digest": [before["entrants_digest"], None],
        "published_at": [before["published_at"].isoformat() + "Z" if before["published_at"] else None, None],
        "abandoned_at": [None, now.isoformat() + "Z"], "reason": [None, reason]})])
    notify(session, users_with_roles(session, {"sales_manager", "vp"}), "lottery_abandoned",
           {"name": launch.name, "reason": reason}, link=f"/admin/lottery/?launch={launch.id}")
    if key is not None:
        settle(session, key, f"{launch.name}: {before['seed_hash'][:16]}…")
    session.expire(launch)
    return launch


def abandoned_publications(session, launch_id: int) -> list[dict]:
    """Every abandoned publication of a launch, oldest first, from the append-only audit trail:
    seed_hash, entrants_digest, published_at, abandoned_at (ISO, UTC, 'Z') and reason."""
    from .audit import Audit
    rows = session.scalars(select(Audit.changes).where(
        Audit.entity == "launch", Audit.entity_id == str(launch_id), Audit.action == "lottery_abandon")
        .order_by(Audit.id))
    return [{name: (changes.get(name) or [None, None])[0 if name in ("seed_hash", "entrants_digest", "published_at")
                                                       else 1]
             for name in ("seed_hash", "entrants_digest", "published_at", "abandoned_at", "reason")}
            for changes in rows]


# --- the draw ---------------------------------------------------------------------------------------------

def _write_positions(session, launch_id: int, order) -> None:
    """positions, draw keys and queue numbers of the entrants, in one statement (PostgreSQL: the
    rows as one JSON parameter, UPDATE … FROM; SQLite: one executemany)."""
    rows = [{"id": entry_id, "position": position, "draw_key": key}
            for position, (entry_id, key) in enumerate(order, start=1)]
    if is_postgresql(session):
        source, params = rows_as_json({"id": "integer", "position": "integer", "draw_key": "text"}, rows)
        session.connection().exec_driver_sql(
            f"UPDATE launch_entry SET position = v.position, draw_key = v.draw_key, queue_no = v.position "
            f"FROM {source} WHERE launch_entry.id = v.id AND launch_entry.launch_id = {int(launch_id)}", params)
        return
    table = LaunchEntry.__table__
    session.connection().execute(
        update(table).where(table.c.id == bindparam("b_id"), table.c.launch_id == launch_id)
        .values(position=bindparam("b_position"), draw_key=bindparam("b_key"), queue_no=bindparam("b_position")),
        [{"b_id": r["id"], "b_position": r["position"], "b_key": r["draw_key"]} for r in rows])


def draw(session, by, launch_id: int, seed: str, key: str | None = None, now: dt.datetime | None = None) -> Launch:
    """Reveal the seed and draw the order (R-LCH-2). Only from `published`; SHA-256 of the seed must
    be the published hash, and the entrants as they stand must still hash to the published digest
    (else nothing is written and the refusal says which). Writes the seed, each entrant's position,
    draw_key and queue number (= position), status drawn, drawn_at — under the launch's lock and a
    conditional UPDATE on `published`: a double click draws once."""
    require(by, "launch.draw")
    seed = normalise_seed(seed)
    if key is not None:
        claim(session, by, key, "lottery_draw", subject=f"launch:{launch_id}", out_of_date=_l(
            "This form is out of date: open the lottery page again."))
    launch = _lock_launch(session, launch_id)
    if launch.status in DRAWN_STATUSES:
        raise RuleViolation(_l("This launch is already drawn."), rule="R-LCH-2")
    if launch.status != "published":
        raise RuleViolation(_l("Publish the entrants and the seed's hash before the draw."), rule="R-LCH-2")
    if hash_seed(seed) != launch.seed_hash:
        raise RuleViolation(_l("This seed does not match the hash published before the draw. Nothing was "
                               "drawn."), rule="R-LCH-2")
    rows = entrants(session, launch)
    if entrants_digest((n, g) for _, n, g in rows) != launch.entrants_digest:
        raise RuleViolation(_l("The list of entrants has changed since it was published (its digest differs). "
                               "Nothing was drawn."), rule="R-LCH-2")
    if published_groups_ordered(session, launch.id) not in (None, bool(launch.groups_ordered)):
        raise RuleViolation(_l("Whether first-home buyers are drawn first has changed since the entrants were "
                               "published. Nothing was drawn."), rule="R-LCH-2")
    ids = {number: entry_id for entry_id, number, _ in rows}
    order = draw_order(seed, [(n, g) for _, n, g in rows], launch.groups_ordered)
    now = now or utcnow()
    done = session.execute(update(Launch).where(Launch.id == launch.id, Launch.status == "published")
                           .values(status="drawn", seed=seed, drawn_at=now)
                           .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise RuleViolation(_l("This launch is already drawn."), rule="R-LCH-2")
    _write_positions(session, launch.id, [(ids[number], k) for number, _, k in order])
    # One audit row for the draw: the seed revealed and the digest of the order it wrote (one line
    # `position<TAB>number<TAB>draw_key\n` per entrant), which pins every entry's position in the
    # trail (10,000 rows of their own cost more than the draw itself; the order is recomputable).
    record_many(session, "launch", "lottery_draw", by, [(launch.id, {
        "status": ["published", "drawn"], "seed": [None, seed], "entrants": [None, len(order)],
        "order_digest": [None, order_digest(order)]})])
    if key is not None:
        settle(session, key, f"{launch.name}: {len(order)}")
    session.expire(launch)
    return launch


# --- verification -----------------------------------------------------------------------------------------

@dataclass
class Report:
    """What a verification found. `ok` is False when any check failed; `difference` names the first."""
    launch_id: int
    drawn: bool
    entrants: int
    checks: dict = field(default_factory=dict)  # name -> bool
    difference: str = ""
    order: list = field(default_factory=list)  # [(position, number, group, draw_key)] recomputed

    @property
    def ok(self) -> bool:
        return all(self.checks.values()) and not self.difference

    def as_dict(self) -> dict:
        return {"launch_id": self.launch_id, "drawn": self.drawn, "entrants": self.entrants, "ok": self.ok,
                "checks": self.checks, "difference": self.difference}


def _first_difference(expected: list[tuple[str, str]], found: list[tuple[str, str]]) -> str:
    """'position 3: expected RC01-0007, found RC01-0002' for the first place where two orders part."""
    for position, (want, got) in enumerate(zip(expected, found), start=1):
        if want != got:
            return f"position {position}: expected {want[0]} ({want[1][:12]}…), found {got[0]} ({got[1][:12]}…)"
    if len(expected) != len(found):
        return f"{len(expected)} positions expected, {len(found)} found"
    return ""


def verify_document(doc: dict) -> Report:
    """Re-run the draw from a published JSON document (public_document's shape)."""
    listed = [(e["number"], e["group"]) for e in doc.get("entrants", [])]
    report = Report(launch_id=doc.get("launch", {}).get("id", 0), drawn=bool(doc.get("seed")), entrants=len(listed))
    report.checks["entrants_digest"] = entrants_digest(listed) == doc.get("entrants_digest")
    if not report.checks["entrants_digest"]:
        report.difference = "the entrants do not hash to the published entrants_digest"
    if not report.drawn:
        return report
    seed = doc["seed"]
    report.checks["seed_hash"] = hash_seed(seed) == doc.get("seed_hash")
    order = draw_order(seed, listed, bool(doc.get("groups_ordered")))
    report.order = [(p, n, g, k) for p, (n, g, k) in enumerate(order, start=1)]
    published = [(o["number"], o.get("draw_key", "")) for o in sorted(doc.get("order", []), key=lambda o: o["position"])]
    difference = _first_difference([(n, k) for n, _, k in order], published)
    report.checks["order"] = not difference
    if not report.difference:
        report.difference = difference or ("" if report.checks["seed_hash"]
                                           else "SHA-256 of the seed is not the published seed_hash")
    return report


def verify(session, launch_id: int) -> Report:
    """Recompute the digest, the seed's hash and the order from the database and compare them with
    what was published and stored; the first difference is named."""
    launch = session.get(Launch, launch_id)
    if launch is None:
        raise RuleViolation(_l("This launch does not exist."), rule="R-LCH-2")
    if launch.status == "registration":
        raise RuleViolation(_l("The entrants of this launch are not published yet."), rule="R-LCH-2")
    rows = entrants(session, launch)
    drawn = launch.status in DRAWN_STATUSES
    report = Report(launch_id=launch.id, drawn=drawn, entrants=len(rows))
    report.checks["entrants_digest"] = entrants_digest((n, g) for _, n, g in rows) == launch.entrants_digest
    if not report.checks["entrants_digest"]:
        report.difference = "the entrants as stored do not hash to the published entrants_digest"
    report.checks["groups_ordered"] = published_groups_ordered(session, launch.id) in (None, bool(launch.groups_ordered))
    if not report.checks["groups_ordered"]:
        report.difference = report.difference or "the group rule differs from the one published"
    if not drawn:
        return report
    report.checks["seed_hash"] = bool(launch.seed) and hash_seed(launch.seed) == launch.seed_hash
    if not report.checks["seed_hash"]:
        report.difference = report.difference or "SHA-256 of the stored seed is not the published seed_hash"
        return report
    order = draw_order(launch.seed, [(n, g) for _, n, g in rows], launch.groups_ordered)
    report.order = [(p, n, g, k) for p, (n, g, k) in enumerate(order, start=1)]
    stored = session.execute(select(LaunchEntry.number, LaunchEntry.draw_key).where(
        LaunchEntry.launch_id == launch.id, LaunchEntry.position.is_not(None)).order_by(LaunchEntry.position)).all()
    difference = _first_difference([(n, k) for n, _, k in order], [(n, k or "") for n, k in stored])
    report.checks["order"] = not difference
    report.difference = report.difference or difference
    return report


# --- what is published ---------------------------------------------------------------------------------

def public_document(session, launch: Launch) -> dict | None:
    """The public JSON of a launch's lottery (None before publication): the launch's name and
    project, the entrants' numbers and groups ONLY (no names, phones, identity numbers), the digest,
    the seed's hash, and after the draw the seed and the order (number, position, draw_key); and
    every abandoned publication, for ever (`abandoned`). A launch back in registration after an
    abandonment has a document with no entrants, digest or hash, only the abandoned ones."""
    abandoned = abandoned_publications(session, launch.id)
    if launch.status == "registration" or not launch.entrants_digest:
        if not abandoned:
            return None
        return {"launch": {"id": launch.id, "name": launch.name, "project": launch.project.name},
                "rule": "R-LCH-2", "groups_ordered": bool(launch.groups_ordered), "published_at": None,
                "entrants": [], "entrants_digest": None, "seed_hash": None, "seed": None, "drawn_at": None,
                "order": [], "abandoned": abandoned}
    rows = entrants(session, launch)
    drawn = launch.status in DRAWN_STATUSES
    doc = {
        "launch": {"id": launch.id, "name": launch.name, "project": launch.project.name},
        "rule": "R-LCH-2",
        "method": ("entrants: one line 'number<TAB>group\\n' per entrant sorted by number, UTF-8; "
                   "entrants_digest = sha256(text); seed_hash = sha256(seed hex string); "
                   "draw_key = hmac_sha256(key=seed hex string, msg=number); order by (group rank if "
                   "groups_ordered: first_home 0, other 1), draw_key, number"),
        "groups_ordered": bool(launch.groups_ordered),
        "published_at": launch.published_at.isoformat() + "Z" if launch.published_at else None,
        "entrants": [{"number": n, "group": g} for _, n, g in rows],
        "entrants_digest": launch.entrants_digest,
        "seed_hash": launch.seed_hash,
        "seed": launch.seed if drawn else None,
        "drawn_at": launch.drawn_at.isoformat() + "Z" if drawn and launch.drawn_at else None,
        "order": [],
        "abandoned": abandoned,
    }
    if drawn:
        doc["order"] = [{"number": n, "position": p, "draw_key": k} for n, p, k in session.execute(
            select(LaunchEntry.number, LaunchEntry.position, LaunchEntry.draw_key).where(
                LaunchEntry.launch_id == launch.id, LaunchEntry.position.is_not(None))
            .order_by(LaunchEntry.position))]
    return doc


# --- the PDFs (models.document_contexts lists them): the entrants and the seed's hash; the result ----------

def _facts(session, launch: Launch) -> dict:
    from .base import office_local
    return {"name": launch.name, "project": launch.project.name, "groups_ordered": bool(launch.groups_ordered),
            "entrants_digest": launch.entrants_digest, "seed_hash": launch.seed_hash,
            "seed": launch.seed if launch.status in DRAWN_STATUSES else None,
            "published_at": office_local(launch.published_at), "drawn_at": office_local(launch.drawn_at)}


def entrants_context(session, launch: Launch, today) -> dict:
    """lottery_entrants: the published list (numbers and groups) with its digest and the seed's hash."""
    rows = entrants(session, launch)
    return {"lottery": _facts(session, launch), "entrants": [{"number": n, "group": g} for _, n, g in rows]}


def result_context(session, launch: Launch, today) -> dict:
    """lottery_result: the order (position, number, group, draw key), with the seed revealed."""
    order = session.execute(select(LaunchEntry.position, LaunchEntry.number, LaunchEntry.group_name,
                                   LaunchEntry.draw_key).where(LaunchEntry.launch_id == launch.id,
                                                               LaunchEntry.position.is_not(None))
                            .order_by(LaunchEntry.position)).all()
    return {"lottery": _facts(session, launch),
            "order": [{"position": p, "number": n, "group": g, "draw_key": k} for p, n, g, k in order]}
