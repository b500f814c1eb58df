"""The audit trail (R-ALL-2): every insert, update and delete made through the ORM session.

A flush writes one `audit` row per changed object, in the same transaction, with who acted,
when (UTC), and the columns before → after. Domain functions name their action with
`audit_context(session, actor=user, action="subscribe")`; otherwise the action is
insert / update / delete and the actor is the logged-in user.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum
from typing import Any

from flask import g, has_request_context
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, event, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from .base import Base, utcnow
from .errors import RuleViolation


class Audit(Base):
    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)
    __append_only__ = True

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)

    actor: Mapped["User | None"] = relationship(viewonly=True)  # noqa: F821 (models.users)


# Never stored in an audit row, whatever the table.
_SECRET_COLUMNS = {"password_hash", "session_token"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"  # file contents are kept, not copied into the trail
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Base):
        return str(value)
    return value


@contextlib.contextmanager
def audit_context(session: Session, actor=None, action: str | None = None):
    """Attribute the changes flushed inside the block to `actor` and name them `action`."""
    saved = (session.info.get("audit_actor_id"), session.info.get("audit_action"))
    if actor is not None:
        session.info["audit_actor_id"] = actor if isinstance(actor, int) else actor.id
    if action is not None:
        session.info["audit_action"] = action
    try:
        yield
    finally:
        session.info["audit_actor_id"], session.info["audit_action"] = saved


def _actor_id(session: Session) -> int | None:
    if session.info.get("audit_actor_id") is not None:
        return session.info["audit_actor_id"]
    if has_request_context():
        user = g.get("_login_user")  # set by Flask-Login once the user is loaded
        if user is not None and getattr(user, "is_authenticated", False):
            return user.id
    return None


def _row(obj, action: str, changes: dict, actor_id, now) -> dict:
    mapper = inspect(obj).mapper
    pk = mapper.primary_key_from_instance(obj)
    return {"actor_id": actor_id, "at": now, "entity": obj.__tablename__,
            "entity_id": ",".join(str(v) for v in pk), "action": action, "changes": changes}


def _snapshot(obj) -> dict:
    mapper = inspect(obj).mapper
    return {c.key: _jsonable(getattr(obj, c.key)) for c in mapper.column_attrs
            if c.key not in _SECRET_COLUMNS}


def _diff(obj) -> dict:
    state = inspect(obj)
    changes = {}
    for attr in state.mapper.column_attrs:
        if attr.key in _SECRET_COLUMNS:
            if state.attrs[attr.key].history.has_changes():
                changes[attr.key] = ["***", "***"]
            continue
        hist = state.attrs[attr.key].history
        if hist.has_changes():
            before = hist.deleted[0] if hist.deleted else None
            after = hist.added[0] if hist.added else None
            if before != after:
                changes[attr.key] = [_jsonable(before), _jsonable(after)]
    for rel in state.mapper.relationships:
        if rel.secondary is None:
            continue  # the FK column change is already recorded
        hist = state.attrs[rel.key].history
        if hist.has_changes():
            changes[rel.key] = [[str(o) for o in hist.deleted], [str(o) for o in hist.added]]
    return changes


def _keep_old_value(target, value, oldvalue, initiator):
    return value


@event.listens_for(Base, "mapper_configured", propagate=True)
def _load_old_values_on_change(mapper, cls) -> None:
    # An expired attribute set without being read would have no "before" in its history:
    # active_history loads the old value first, so the audit row always has before → after.
    for prop in mapper.column_attrs:
        event.listen(getattr(cls, prop.key), "set", _keep_old_value, active_history=True,
                     retval=True)


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_append_only_rows(session: Session, flush_context, instances) -> None:
    for obj in session.deleted:
        if getattr(obj, "__append_only__", False):
            raise RuleViolation(
                "%s rows are never deleted; record a correction instead." % obj.__tablename__,
                rule="R-ALL-2")
    for obj in session.dirty:
        if getattr(obj, "__append_only__", False) and session.is_modified(obj):
            raise RuleViolation(
                "%s rows are never changed; record a correction instead." % obj.__tablename__,
                rule="R-ALL-2")


@event.listens_for(Session, "after_flush")
def _write_audit_rows(session: Session, flush_context) -> None:
    actor_id = _actor_id(session)
    named = session.info.get("audit_action")
    now = utcnow()
    rows = []
    for obj in session.new:
        if isinstance(obj, Base) and not isinstance(obj, Audit) and getattr(obj, "__audited__", True):
            rows.append(_row(obj, named or "insert", _snapshot(obj), actor_id, now))
    for obj in session.dirty:
        if isinstance(obj, Base) and not isinstance(obj, Audit):
            changes = _diff(obj)
            if changes:
                rows.append(_row(obj, named or "update", changes, actor_id, now))
    for obj in session.deleted:
        if isinstance(obj, Base) and not isinstance(obj, Audit):
            rows.append(_row(obj, named or "delete", _snapshot(obj), actor_id, now))
    if rows:
        session.connection().execute(Audit.__table__.insert(), rows)


def record(session: Session, entity: str, entity_id, action: str, changes: dict | None = None,
           actor=None) -> None:
    """Write an audit row for something that is not a row change (a login, an export…)."""
    actor_id = actor if isinstance(actor, int) or actor is None else actor.id
    if actor_id is None:
        actor_id = _actor_id(session)
    session.connection().execute(Audit.__table__.insert(), [{
        "actor_id": actor_id, "at": utcnow(), "entity": entity, "entity_id": str(entity_id),
        "action": action, "changes": {k: _jsonable(v) for k, v in (changes or {}).items()}}])


def record_many(session: Session, entity: str, action: str, actor, rows) -> None:
    """One audit row per (entity_id, changes) pair, in a single statement (for set-based updates):
    on PostgreSQL, from MANY_FROM rows, the rows go as one JSON parameter (models.dialect)."""
    from .dialect import MANY_FROM, insert_rows, is_postgresql
    actor_id = actor if isinstance(actor, int) or actor is None else actor.id
    if actor_id is None:
        actor_id = _actor_id(session)
    now = utcnow()
    rows = list(rows)
    if is_postgresql(session) and len(rows) >= MANY_FROM:  # json.dumps calls _jsonable for what JSON lacks
        payload = [{"actor_id": actor_id, "at": now, "entity": entity, "entity_id": str(entity_id),
                    "action": action, "changes": changes} for entity_id, changes in rows]
        insert_rows(session, Audit.__table__, payload, default=_jsonable_or_refuse)
        return
    payload = [{"actor_id": actor_id, "at": now, "entity": entity, "entity_id": str(entity_id),
                "action": action, "changes": {k: [_jsonable(v) for v in pair] for k, pair in changes.items()}}
               for entity_id, changes in rows]
    if payload:
        session.connection().execute(Audit.__table__.insert(), payload)


def _jsonable_or_refuse(value: Any) -> Any:
    plain = _jsonable(value)
    if plain is value:
        raise TypeError(f"{type(value).__name__} cannot go into an audit row")
    return plain
