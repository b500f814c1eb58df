"""Projects (楼盘) with their rule settings, buildings and units under sales control."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Money, in_list, utcnow

UNIT_STATUSES = ("available", "held", "subscribed", "signed", "withheld")


class Project(Base):
    """A project and the thresholds its rules use (R-PAY-7: agency projects differ)."""

    __tablename__ = "project"
    __table_args__ = (
        CheckConstraint("warning_day >= 1 AND warning_day < lawyer_letter_day "
                        "AND lawyer_letter_day < forfeit_day", name="ladder_order"),
        CheckConstraint("extension_limit_days >= 1", name="extension_limit_positive"),
        CheckConstraint("follow_up_days BETWEEN 2 AND 3", name="follow_up_cycle"),
        CheckConstraint("reminder_days_before >= 0", name="reminder_not_negative"),
        CheckConstraint("pool_after_days >= 1", name="pool_after_positive"),
        CheckConstraint("hold_hours >= 1", name="hold_hours_positive"),
        CheckConstraint("signing_due_days >= 1", name="signing_due_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    developer: Mapped[str] = mapped_column(String(100), default="")
    city: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    is_agency: Mapped[bool] = mapped_column(Boolean, default=False)
    # Overdue ladder (R-PAY-5), counted in days from the (extended) due date.
    warning_day: Mapped[int] = mapped_column(default=2)
    lawyer_letter_day: Mapped[int] = mapped_column(default=8)
    forfeit_day: Mapped[int] = mapped_column(default=15)
    # R-PAY-6: longer extensions need the vice-president.
    extension_limit_days: Mapped[int] = mapped_column(default=15)
    follow_up_days: Mapped[int] = mapped_column(default=3)        # R-LEAD-3
    reminder_days_before: Mapped[int] = mapped_column(default=3)  # R-PAY-4
    pool_after_days: Mapped[int] = mapped_column(default=15)      # back to the public pool
    hold_hours: Mapped[int] = mapped_column(default=24)
    signing_due_days: Mapped[int] = mapped_column(default=30)     # R-CON-5
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    buildings: Mapped[list["Building"]] = relationship(back_populates="project",
                                                       order_by="Building.name")

    def __str__(self) -> str:
        return self.name


class Building(Base):
    __tablename__ = "building"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("floors >= 1", name="floors_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    floors: Mapped[int] = mapped_column(default=1)

    project: Mapped[Project] = relationship(back_populates="buildings")
    units: Mapped[list["Unit"]] = relationship(back_populates="building")

    def __str__(self) -> str:
        return f"{self.project.name} {self.name}" if self.project else self.name


class Unit(Base):
    __tablename__ = "unit"
    __table_args__ = (
        UniqueConstraint("building_id", "number"),
        CheckConstraint(in_list("status", UNIT_STATUSES), name="status_known"),
        CheckConstraint("area > 0", name="area_positive"),
        CheckConstraint("list_price > 0", name="list_price_positive"),
        CheckConstraint("(status = 'held') = (held_for_lead_id IS NOT NULL)", name="hold_has_lead"),
        Index("ix_unit_building_status", "building_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="RESTRICT"))
    floor: Mapped[int]
    position: Mapped[int]
    number: Mapped[str] = mapped_column(String(20))
    layout: Mapped[str] = mapped_column(String(40))
    area: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    list_price: Mapped[Money]
    status: Mapped[str] = mapped_column(String(20), default="available")
    held_for_lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"))
    held_until: Mapped[dt.datetime | None]

    building: Mapped[Building] = relationship(back_populates="units")

    def __str__(self) -> str:
        return f"{self.building.name}-{self.number}" if self.building else self.number
