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
from sqlalchemy.orm.util import identity_key

from .base import Base, utcnow
from .errors import RuleViolation

_KEY = re.compile(r"[A-Za-z0-9_\-:]{16,64}")


class Submission(Base):
    __tablename__ = "submission"
    __audited__ = False  # a technical key: the operation it guards writes its own audit row

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(30))  # payment, deposit, reversal, voucher
    subject: Mapped[str] = mapped_column(String(40), default="")  # e.g. "subscription:12"
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


def claim(session, by, key: str | None, kind: str, subject: str = "", out_of_date=None) -> Submission:
    """Take `key` for this operation (`kind` on `subject`, by `by`), in the caller's transaction,
    before anything else is written in it. AlreadySubmitted (the transaction rolled back) when the
    same person's same form for the same subject committed with it; a key taken by anything else
    — another user, another form, another deal — is refused like a missing one, and tells nothing
    of what it recorded. A missing or malformed key is refused: the form is older than this rule
    or not ours. `out_of_date`: the refusal's text for a form that is not about money."""
    key = (key or "").strip()
    if not _KEY.fullmatch(key):
        raise _out_of_date(out_of_date)
    earlier = session.identity_map.get(identity_key(Submission, key))  # taken in this very session
    if earlier is None:
        row = Submission(key=key, user_id=by.id, kind=kind, subject=subject)
        session.add(row)
        try:
            # No savepoint: the claim is the operation's first write, so a rollback loses nothing else.
            session.flush()
            return row
        except IntegrityError:
            session.rollback()  # nothing of this operation was written; its caller ends here
            earlier = session.get(Submission, key)
    if earlier is None or (earlier.user_id, earlier.kind, earlier.subject) != (by.id, kind, subject):
        raise _out_of_date(out_of_date)
    raise AlreadySubmitted(earlier.result)


def _out_of_date(message=None) -> RuleViolation:
    return RuleViolation(message or _l("This form is out of date: open it again and re-enter the amount."),
                         rule="R-PAY-1")


def settle(session, key: str, result: str) -> None:
    """Note what the claimed operation recorded (a receipt number), for a repeat to be told."""
    session.execute(update(Submission).where(Submission.key == key).values(result=result[:200])
                    .execution_options(synchronize_session=False))
