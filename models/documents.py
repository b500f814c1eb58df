"""Rendered documents (PDF) and the state of the job that renders them."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, in_list, utcnow
from .users import User

DOCUMENT_KINDS = ("subscription_agreement", "receipt", "payment_reminder", "overdue_warning",
                  "lawyer_letter", "forfeit_notice", "signing_booking", "statement", "board")
DOCUMENT_STATUSES = ("queued", "running", "done", "failed")


class Document(Base):
    __tablename__ = "document"
    __table_args__ = (
        CheckConstraint(in_list("kind", DOCUMENT_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", DOCUMENT_STATUSES), name="status_known"),
        Index("ix_document_subject", "kind", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="queued")
    file: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]
    error: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(64))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]

    requested_by: Mapped[User | None] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.requested_by_id == user_id
