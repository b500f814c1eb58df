"""In-app notifications: what the system tells one user (a lead pooled, a conflict, feedback…)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_unread", "user_id", "read_at"),)
    __scoped_for_everyone__ = True  # every role sees only their own

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.user_id == user_id


def notify(session, user_ids, kind: str, message: str, link: str = "") -> None:
    """One notification per user, written with the caller's transaction (set-based)."""
    from .privacy import mask_text
    message = mask_text(message)  # a notification never carries a whole ID or phone number
    rows = [{"user_id": uid, "kind": kind, "message": message, "link": link, "created_at": utcnow()}
            for uid in user_ids]
    if rows:
        session.execute(Notification.__table__.insert(), rows)


def mark_read(session, user, notification_ids) -> int:
    """Mark the user's own unread notifications as read; others' ids are ignored."""
    from sqlalchemy import update

    result = session.execute(update(Notification).where(
        Notification.id.in_([int(i) for i in notification_ids]), Notification.user_id == user.id,
        Notification.read_at.is_(None)).values(read_at=utcnow()))
    return result.rowcount
