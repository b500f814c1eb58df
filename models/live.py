"""The live board (R-LCH-3 "the board updates live for everyone", R-SC-1): a project's board as
compact data with a version, and every change to it pushed to whoever watches.

- `board_state(session, project_id)`: the buildings and, per unit, one row of cells (`FIELDS`),
  sold by the ONE definition of models.board (`sold_join`, `is_sold`), with the counts and the
  sell-through the board shows. `kept_state` serves it from the app's cache (cache.py, found
  through the app as models/ imports nothing above it) under the project's current version:
  a view of 2,500 units reads one Redis key and a dict, not 2,500 rows.
- Changes are captured on every path, not per call site: Session listeners note the units whose
  board cell may change — ORM flushes of Unit and Subscription (a deal's status moves a unit's
  "sold"), and UPDATE/DELETE statements on those tables, whose ids are read from the WHERE clause
  (`unit.id = x`, `IN (…)`); a statement that does not say which rows marks every project to be
  reloaded. Before the commit the new cells are read in the same transaction; after the commit
  only, the project's version is bumped (Redis INCR; in this process without REDIS_URL) and
  {v, cells} published on the project's channel (Redis pub/sub; the process's `Hub` in the
  embedded mode). A rolled-back transaction publishes nothing.
- `Hub`: the process's fan-out to its viewers (one queue each); with Redis, one subscription per
  process (a pattern over every project) feeds it, whatever the number of viewers.

Writes that bypass the Session (raw SQL on a connection, a restore) are not seen: the kept state
is renewed every `STATE_SECONDS` regardless, and `touch(project_id)` bumps a project by hand.
"""
from __future__ import annotations

import gzip
import json
import logging
import queue
import secrets
import threading
import time
from decimal import Decimal

from flask import current_app, has_app_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from .board import is_sold, sell_through_rate, sold_join
from .deals import Subscription
from .inventory import UNIT_STATUSES, Building, Unit
from .projects import Project

log = logging.getLogger(__name__)

EXTENSION = "salesdesk_live"
STORE = "live_board"  # the app's in-process store of states (cache.py)
STATE_SECONDS = 300  # a kept state is renewed at least this often (writes the listeners cannot see)
MAX_CELLS = 500  # more units changed in one transaction: its projects' viewers reload the state
PREFIX = "live:"  # Redis keys and channels, under the office's name (cache.Cache.namespaced)
FIELDS = ("id", "building", "floor", "position", "number", "layout", "area", "price", "status", "sold")
# Columns whose change changes a unit's cell (or its place on the board).
UNIT_COLUMNS = frozenset({"status", "list_price", "number", "layout", "area", "floor", "position", "building_id"})
SUBSCRIPTION_COLUMNS = frozenset({"status", "unit_id"})  # a draft's "sold" (models.board.is_sold)
MARKS = "live_marks"
PENDING = "live_pending"


# ---------------------------------------------------------------------------------------------
# The state

def _text(number: Decimal) -> str:
    """A Decimal as short text for the board: 1280000.00 → '1280000', 89.50 → '89.5'."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _cell_query():
    draft, joined = sold_join()
    return (select(Unit.id, Unit.building_id, Unit.floor, Unit.position, Unit.number, Unit.layout,
                   Unit.area, Unit.list_price, Unit.status, is_sold(draft).label("sold"),
                   Building.project_id)
            .join(Building, Building.id == Unit.building_id).outerjoin(draft, joined))


def _cell(row) -> list:
    return [row.id, row.building_id, row.floor, row.position, row.number, row.layout, _text(row.area),
            _text(row.list_price), row.status, 1 if row.sold else 0]


def board_state(session, project_id: int, version: int = 0) -> dict:
    """The board of a project as compact data: buildings [id, name, floors], units as rows of
    `FIELDS` (by building, floor top first, position), counts per status, units, saleable, sold
    and sell-through as models.board.board() counts them, and `v`, the version it stands for."""
    buildings = [[b.id, b.name, b.floors] for b in session.execute(
        select(Building.id, Building.name, Building.floors).where(Building.project_id == project_id)
        .order_by(Building.name))]
    rows = session.execute(_cell_query().where(Building.project_id == project_id)
                           .order_by(Building.name, Unit.building_id, Unit.floor.desc(), Unit.position)).all()
    counts = {s: 0 for s in UNIT_STATUSES}
    units, sold = [], 0
    for row in rows:
        counts[row.status] += 1
        sold += 1 if row.sold else 0
        units.append(_cell(row))
    for_sale = len(rows) - counts.get("withheld", 0)  # models.board.saleable: all but withheld
    return {"project": project_id, "v": version, "fields": list(FIELDS), "buildings": buildings,
            "units": units, "counts": counts, "total": len(rows), "sold": sold, "saleable": for_sale,
            "sell_through": sell_through_rate(sold, for_sale)}


class KeptState:
    """A state ready to send: its JSON, gzipped once, and the ETag naming its version."""

    __slots__ = ("version", "etag", "body", "gzipped")

    def __init__(self, version: int, etag: str, body: bytes, gzipped: bytes):
        self.version, self.etag, self.body, self.gzipped = version, etag, body, gzipped


def etag_of(project_id: int, epoch: str, version: int) -> str:
    return f'"b{project_id}-{epoch}-{version}"'


def kept_state(session, project_id: int) -> KeptState:
    """The project's state at its current version, from this process's memory, else Redis, else
    computed (and kept in both). The version is read first: a state computed while a change
    commits is at least as new as the version it is kept under.

    While units change faster than a state is computed (opening day: many versions a second),
    a state computed less than LIVE_STATE_STALE_SECONDS ago (0.5 by default) is served for a
    newer version too, with its own version and ETag: the browser applies the changes pushed
    since (static/liveboard.js keeps them), so the state is computed at most about twice a
    second per process however fast units sell."""
    live = hub()
    epoch, version = live.version(project_id)
    key = (project_id, epoch, version)
    store = current_app.extensions["salesdesk_cache"].store(STORE, limit=200)
    kept = store.get(key, STATE_SECONDS)
    if kept is not None:
        return kept
    stale = float(current_app.config.get("LIVE_STATE_STALE_SECONDS", 0.5))
    latest = store.get((project_id, epoch, "latest"), stale) if stale > 0 else None
    if latest is not None and latest.version <= version:
        return latest
    cache = current_app.extensions["salesdesk_cache"]
    shared_key = f"{PREFIX}state:{project_id}:{epoch}:{version}"
    shared = cache.get_shared(shared_key, "the live board") if live.redis() is not None else None
    if shared is not None:
        kept = KeptState(version, etag_of(project_id, epoch, version), shared[0], shared[1])
    else:
        state = board_state(session, project_id, version)
        body = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()
        kept = KeptState(version, etag_of(project_id, epoch, version), body, gzip.compress(body, 6))
        if live.redis() is not None:
            cache.put_shared(shared_key, (kept.body, kept.gzipped), STATE_SECONDS, "the live board")
    store.put(key, kept)
    store.put((project_id, epoch, "latest"), kept)
    return kept


# ---------------------------------------------------------------------------------------------
# The process's hub: versions, publishing, and the fan-out to viewers

BEHIND = object()  # put in a viewer's queue when it overflowed: it must reload the state


class Viewer:
    """One connected viewer: its project and a bounded queue of (version, JSON text)."""

    __slots__ = ("project_id", "queue")

    def __init__(self, project_id: int, size: int = 64):
        self.project_id, self.queue = project_id, queue.Queue(size)

    def next(self, timeout: float):
        """The next change (version, text), BEHIND, or None after `timeout` seconds of quiet."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


class Hub:
    """One per app (create_app registers it): the projects' versions and channels, and this
    process's viewers. With REDIS_URL the versions are Redis counters and the changes go through
    Redis pub/sub (one subscription per process); without, both live here."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.viewers: dict[int, set[Viewer]] = {}
        self.versions: dict[int, int] = {}
        self.epoch = secrets.token_hex(4)  # the embedded mode's counters start again with the process
        self.pump: threading.Thread | None = None
        self.delivered = 0

    def redis(self):
        return self.app.extensions["salesdesk_cache"].redis()

    def _key(self, name: str) -> str:
        return self.app.extensions["salesdesk_cache"].namespaced(PREFIX + name)

    def channel(self, project_id: int) -> str:
        return self._key(f"changes:{project_id}")

    # versions -------------------------------------------------------------------------------
    def version(self, project_id: int) -> tuple[str, int]:
        """(epoch, version) of a project's board now. The epoch changes when the counters start
        again (a new process without Redis, an emptied Redis), so an ETag is never reused."""
        connection = self.redis()
        if connection is None:
            return self.epoch, self.versions.get(project_id, 0)
        try:
            epoch, version = connection.mget(self._key("epoch"), self._key(f"v:{project_id}"))
            if epoch is None:
                connection.set(self._key("epoch"), secrets.token_hex(4), nx=True)
                epoch = connection.get(self._key("epoch"))
            return epoch.decode(), int(version or 0)
        except Exception:  # Redis away: serve what the database says, never a kept state
            log.warning("the live board's version could not be read from Redis", exc_info=True)
            return "x" + secrets.token_hex(4), 0

    # publishing -----------------------------------------------------------------------------
    def publish(self, project_id: int, cells: list | None) -> int | None:
        """After a commit: bump the project's version and send {v, cells} (None: {v, reload})."""
        connection = self.redis()
        if connection is None:
            with self.lock:
                version = self.versions[project_id] = self.versions.get(project_id, 0) + 1
            self.deliver(project_id, version, _message(version, cells))
            return version
        try:
            version = connection.incr(self._key(f"v:{project_id}"))
            connection.publish(self.channel(project_id), _message(version, cells))
            return version
        except Exception:  # the commit stands; viewers catch up at their next reload
            log.warning("a change to the live board could not be published", exc_info=True)
            return None

    # viewers --------------------------------------------------------------------------------
    def listen(self, project_id: int) -> Viewer:
        viewer = Viewer(project_id)
        ready = None
        with self.lock:
            self.viewers.setdefault(project_id, set()).add(viewer)
            if self.redis() is not None and (self.pump is None or not self.pump.is_alive()):
                ready = threading.Event()
                self.pump = threading.Thread(target=self._pump, args=(self.channel(""), ready),
                                             name="live-board-pump", daemon=True)
                self.pump.start()
        if ready is not None:
            ready.wait(5)  # subscribed before the first viewer reads its version
        return viewer

    def leave(self, viewer: Viewer) -> None:
        with self.lock:
            watching = self.viewers.get(viewer.project_id)
            if watching is not None:
                watching.discard(viewer)
                if not watching:
                    del self.viewers[viewer.project_id]

    def count(self) -> int:
        return sum(len(v) for v in self.viewers.values())

    def deliver(self, project_id: int, version: int, text: str) -> None:
        """To every viewer of the project in this process; a viewer whose queue is full is told
        to reload instead (it is behind: the changes it missed are in the state)."""
        for viewer in list(self.viewers.get(project_id, ())):
            try:
                viewer.queue.put_nowait((version, text))
            except queue.Full:  # emptied by get_nowait: gevent's Queue (the stream worker) has no mutex
                while True:
                    try:
                        viewer.queue.get_nowait()
                    except queue.Empty:
                        break
                try:
                    viewer.queue.put_nowait(BEHIND)
                except queue.Full:  # the consumer cannot refill it meanwhile; kept for safety
                    pass
        self.delivered += 1

    def _pump(self, prefix: str, ready: threading.Event) -> None:
        """One Redis subscription for the whole process, fanned out to its viewers; reconnects
        (a viewer that missed changes sees a version gap at the next one and reloads)."""
        while True:
            try:
                pubsub = self.redis().pubsub()
                pubsub.psubscribe(prefix + "*")
                for message in pubsub.listen():
                    if message["type"] != "pmessage":
                        ready.set()  # the subscription is confirmed
                        continue
                    channel = message["channel"].decode()
                    text = message["data"].decode()
                    try:
                        project_id = int(channel[len(prefix):])
                        version = int(text[5:text.index(",")]) if text.startswith('{"v":') else 0
                    except ValueError:
                        continue
                    self.deliver(project_id, version, text)
            except Exception:
                log.warning("the live board's Redis subscription dropped; reconnecting", exc_info=True)
                time.sleep(1)


def _message(version: int, cells: list | None) -> str:
    if cells is None:
        return json.dumps({"v": version, "reload": True}, separators=(",", ":"))
    return json.dumps({"v": version, "cells": cells}, ensure_ascii=False, separators=(",", ":"))


def hub(app=None) -> Hub:
    """The app's hub (the current app's by default)."""
    return (app or current_app).extensions[EXTENSION]


def touch(project_id: int) -> int | None:
    """Bump a project's version by hand (after a write the listeners cannot see): viewers reload."""
    return hub().publish(project_id, None)


# ---------------------------------------------------------------------------------------------
# Capturing the changes: Session listeners, for every session of every app

def _marks(session) -> dict:
    marks = session.info.get(MARKS)
    if marks is None:
        marks = session.info[MARKS] = {"units": set(), "subscriptions": set(), "reload": False}
    return marks


def _changed(state, columns) -> bool:
    return any(state.attrs[c].history.has_changes() for c in columns if c in state.attrs)


def _after_flush(session, flush_context) -> None:
    """Note the units whose cells this flush changed (new, changed or deleted units; deals
    whose status or unit changed)."""
    from sqlalchemy import inspect
    marks = None
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Unit):
            state = inspect(obj)
            if obj in session.deleted:
                (marks := marks or _marks(session))["reload"] = True
            elif obj in session.new or _changed(state, UNIT_COLUMNS):
                (marks := marks or _marks(session))["units"].add(state.identity[0] if state.identity else obj.id)
        elif isinstance(obj, Subscription):
            state = inspect(obj)
            if obj in session.new or obj in session.deleted or _changed(state, SUBSCRIPTION_COLUMNS):
                marks = marks or _marks(session)
                history = state.attrs["unit_id"].history
                for unit_id in (*history.added, *history.unchanged, *history.deleted):
                    if unit_id is not None:
                        marks["units"].add(unit_id)


def _ids_in(clause, column) -> set | None:
    """The ids a WHERE clause limits `column` to (`column = x`, `column IN (…)`, and AND/OR of
    those), or None when it does not say."""
    if clause is None:
        return None
    if isinstance(clause, BinaryExpression):
        left, right = clause.left, clause.right
        if getattr(left, "table", None) is not column.table or getattr(left, "key", None) != column.key:
            return None
        if not isinstance(right, BindParameter):
            return None
        if clause.operator is operators.eq and right.value is not None:
            return {right.value}
        if clause.operator is operators.in_op and right.value is not None:
            return set(right.value)
        return None
    if isinstance(clause, BooleanClauseList):
        found = [_ids_in(c, column) for c in clause.clauses]
        if clause.operator is operators.and_:
            known = [f for f in found if f is not None]
            return set.intersection(*known) if known else None
        if clause.operator is operators.or_:
            return set().union(*found) if all(f is not None for f in found) else None
    return None


def _touched_columns(statement) -> set[str] | None:
    values = getattr(statement, "_values", None)
    if not values:
        return None  # a DELETE, or values we cannot read
    return {getattr(k, "key", k) for k in values}


def _on_execute(execute_state) -> None:
    """UPDATE/DELETE statements (ORM or Core, through the Session) on units and deals."""
    if not (execute_state.is_update or execute_state.is_delete or execute_state.is_insert):
        return
    statement = execute_state.statement
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    if name not in ("unit", "subscription"):
        return
    marks = _marks(execute_state.session)
    if execute_state.is_insert:
        marks["reload"] = True  # a bulk insert of units or deals: rare, reload
        return
    touched = _touched_columns(statement)
    columns = UNIT_COLUMNS if name == "unit" else SUBSCRIPTION_COLUMNS
    if execute_state.is_update and touched is not None and not touched & columns:
        return  # e.g. a deal's plan number: no cell changes
    ids = _ids_in(statement.whereclause, table.c.id)
    if ids is None or execute_state.is_delete:
        marks["reload"] = True
    else:
        marks["units" if name == "unit" else "subscriptions"].update(ids)


def _before_commit(session) -> None:
    """Read the marked units' new cells in the transaction that changed them."""
    if not has_app_context() or EXTENSION not in current_app.extensions:
        session.info.pop(MARKS, None)
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit's own last flush, now, so its changes are marked too
    marks = session.info.pop(MARKS, None)
    if not marks:
        return
    with session.no_autoflush:
        units = set(marks["units"])
        if marks["subscriptions"]:
            units.update(session.scalars(select(Subscription.unit_id).where(
                Subscription.id.in_(marks["subscriptions"]))))
        pending: dict[int, list | None] = {}
        if marks["reload"] or len(units) > MAX_CELLS:
            pending = {p: None for p in session.scalars(select(Project.id))}
        elif units:
            for row in session.execute(_cell_query().where(Unit.id.in_(units))):
                pending.setdefault(row.project_id, []).append(_cell(row))
    if pending:
        session.info[PENDING] = pending


def _after_commit(session) -> None:
    pending = session.info.pop(PENDING, None)
    session.info.pop(MARKS, None)
    if not pending or not has_app_context() or EXTENSION not in current_app.extensions:
        return
    live = hub()
    for project_id, cells in pending.items():
        live.publish(project_id, cells)


def _after_soft_rollback(session, previous_transaction) -> None:
    """Forget the marks when the whole transaction is rolled back — not when a savepoint is: the
    rest of the transaction commits, and its changes must still be sent. (A unit marked inside the
    rolled-back savepoint is read anew before the commit, so its cell is sent as it really is.)"""
    if previous_transaction.nested or session.in_transaction():
        return
    session.info.pop(PENDING, None)
    session.info.pop(MARKS, None)


_LISTENERS = (("after_flush", _after_flush), ("do_orm_execute", _on_execute),
              ("before_commit", _before_commit), ("after_commit", _after_commit),
              ("after_soft_rollback", _after_soft_rollback))


def init_app(app) -> Hub:
    """Give the app its hub; listen on every Session (once per process)."""
    for name, listener in _LISTENERS:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
    found = app.extensions[EXTENSION] = Hub(app)
    return found
