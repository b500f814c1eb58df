"""One-time submission keys of money forms (R-PAY-1): a double click, a browser retry or ten
concurrent posts of one form record the money once.

A money form carries a key made when the form is shown (`new_key`). The domain function claims
it (`claim`) in its own transaction, before anything else: the key is the primary key of a row, so
a second transaction with the same key waits for the first and then finds it taken (PostgreSQL),
or finds it at once (SQLite writes one at a time) — and is told what the first one recorded. A
refused or failed operation rolls its claim back with everything else, so the corrected form can
be sent again with the same key.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow
from .errors import RuleViolation

_KEY = re.compile(r"[A-Za-z0-9_\-:]{16,64}")


class Submission(Base):
    __tablename__ = "submission"
    __audited__ = False  # a technical key: the operation it guards writes its own audit row

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(30))  # payment, deposit, reversal, refund…
    result: Mapped[str] = mapped_column(String(200), default="")  # what it recorded, for the repeat
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AlreadySubmitted(RuleViolation):
    """This form was sent before and its operation was recorded then; nothing was done now."""

    def __init__(self, result: str):
        super().__init__(_l("This form was already sent and recorded (%(result)s). Nothing was "
                            "recorded again.", result=result or "—"), rule="R-PAY-1")
        self.result = result


def new_key() -> str:
    """A key for a money form being shown (about 190 random bits)."""
    return secrets.token_urlsafe(24)


def claim(session, by, key: str | None, kind: str) -> Submission:
    """Take `key` for this operation, in the caller's transaction, before anything else is written
    in it; AlreadySubmitted (the transaction rolled back) when an operation that committed took
    it. A missing or malformed key is refused: the form is older than this rule or not ours."""
    key = (key or "").strip()
    if not _KEY.fullmatch(key):
        raise RuleViolation(_l("This form is out of date: open it again and re-enter the amount."),
                            rule="R-PAY-1")
    row = Submission(key=key, user_id=by.id, kind=kind)
    session.add(row)
    try:
        # No savepoint: the claim is the operation's first write, and on SQLite the release of a
        # savepoint that opened the transaction would commit the key alone.
        session.flush()
    except IntegrityError:
        session.rollback()  # nothing of this operation was written; its caller ends here
        earlier = session.get(Submission, key)
        raise AlreadySubmitted(earlier.result if earlier is not None else "") from None
    return row


def settle(session, key: str, result: str) -> None:
    """Note what the claimed operation recorded (a receipt number), for a repeat to be told."""
    session.execute(update(Submission).where(Submission.key == key).values(result=result[:200])
                    .execution_options(synchronize_session=False))
