"""Projects (楼盘) and their rule settings: everyone's settings object (R-PAY-7: agency projects
differ). Every aggregate reads them; this module reads none of theirs."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, CheckConstraint, Numeric, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow
from .errors import RuleViolation

# R-CON-6: online filing first; notarisation and the mortgage after it; the title last.
# R-CHG-1: who approves each kind of change of a live deal, in order (models.changes); a price
# change beyond the manager's authority (`manager_price_limit_percent`) goes on to the vice-president.
DEFAULT_CHANGE_CHAINS = {"unit_swap": ["sales_manager"], "buyers": ["sales_manager"],
                         "payment_method": ["sales_manager"], "price": ["sales_manager"],
                         "cancellation": ["sales_manager", "vp"]}
DEFAULT_STEP_PREREQUISITES = {"notarisation": ["online_filing"], "mortgage": ["online_filing"],
                              "registration": ["online_filing", "notarisation", "mortgage"]}


# R-CON-3: the default list of what every buyer brings to the signing (data: a project edits it);
# the payment methods' own items are in models.payments.DEFAULT_METHODS.
# R-AFT-2 / R-AFT-4 defaults (data: a project edits them).
DEFAULT_LOAN_STAGE_LIMITS = {"collecting": 15, "documents_complete": 10, "bank_interview": 20,
                             "approved": 15, "mortgage_registered": 20}
DEFAULT_HANDOVER_CHECKLIST = ("入户门及门锁\n窗户及玻璃\n墙面、顶棚\n地面\n给排水\n电路及开关插座\n燃气\n"
                              "卫生间防水\n厨房\n阳台\n水电气表读数")
COMMON_SIGNING_CHECKLIST = "身份证原件及复印件\n户口簿原件及复印件\n婚姻状况证明\n认购书及定金收据\n契税、维修基金等税费"


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
        CheckConstraint("backdate_days >= 0", name="backdate_not_negative"),
        CheckConstraint("deposit_due_max_days >= 0", name="deposit_due_max_not_negative"),
        CheckConstraint("draft_grace_days >= 0", name="draft_grace_not_negative"),
        CheckConstraint("follow_up_max_days >= follow_up_days", name="follow_up_max_covers_cycle"),
        CheckConstraint("manager_price_limit_percent >= 0 AND manager_price_limit_percent < 100",
                        name="manager_price_limit_range"),
        CheckConstraint("late_fee_daily_percent >= 0 AND late_fee_daily_percent <= 1", name="late_fee_rate_range"),
        CheckConstraint("late_fee_cap_percent >= 0 AND late_fee_cap_percent <= 100", name="late_fee_cap_range"),
        CheckConstraint("late_fee_waiver_limit >= 0", name="late_fee_waiver_limit_not_negative"),
        CheckConstraint("handover_ends_on IS NULL OR handover_starts_on IS NULL OR handover_ends_on >= handover_starts_on",
                        name="handover_period_order"),
        CheckConstraint("ticket_due_days >= 1", name="ticket_due_positive"),
        CheckConstraint("protection_days >= 1", name="protection_positive"),
        CheckConstraint("channel_window_days >= 1", name="channel_window_positive"),
        CheckConstraint("commission_vp_limit >= 0", name="commission_vp_limit_not_negative"),
        CheckConstraint("true_up_interest_percent >= 0 AND true_up_interest_percent <= 100",
                        name="true_up_interest_range"),
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
    follow_up_max_days: Mapped[int] = mapped_column(default=3, server_default="3")  # R-LEAD-3: unless paused
    reminder_days_before: Mapped[int] = mapped_column(default=3)  # R-PAY-4
    pool_after_days: Mapped[int] = mapped_column(default=15)      # back to the public pool
    hold_hours: Mapped[int] = mapped_column(default=24)
    hold_roles: Mapped[str] = mapped_column(String(100), default="agent,sales_control")  # who may hold
    # R-ALL-1: agents may export their own customers' personal data (phones) only where the office
    # allows it; managers and administrators always may (models.permissions.may_export_personal_data).
    agents_may_export_personal_data: Mapped[bool] = mapped_column(Boolean, default=False,
                                                                  server_default=false())
    signing_due_days: Mapped[int] = mapped_column(default=30)     # R-CON-5
    # Dates people enter (subscriptions, payments) lie at most this many days back, and never
    # before the sale started (R-SUB-1, R-PAY-1).
    backdate_days: Mapped[int] = mapped_column(default=30, server_default="30")
    sales_start_on: Mapped[dt.date | None]
    # R-SUB-2: the deposit is due at most this many days after subscribing; a subscription without
    # its deposit this many days after that expires and its unit goes back on sale.
    deposit_due_max_days: Mapped[int] = mapped_column(default=7, server_default="7")
    draft_grace_days: Mapped[int] = mapped_column(default=1, server_default="1")
    # R-CON-6: which post-signing steps must be done before another may start.
    step_prerequisites: Mapped[dict] = mapped_column(JSON, default=lambda: dict(DEFAULT_STEP_PREREQUISITES),
                                                     server_default=json.dumps(DEFAULT_STEP_PREREQUISITES))
    # R-CON-3: what the customer brings to the signing whatever the deal's payment method (one
    # item per line); each payment method adds its own (PaymentMethodTemplate.signing_checklist).
    signing_checklist: Mapped[str] = mapped_column(Text, default=COMMON_SIGNING_CHECKLIST)
    # R-CHG-1: the approval chain of each kind of change (kind -> roles in order).
    change_chains: Mapped[dict] = mapped_column(JSON, default=lambda: {k: list(v) for k, v in DEFAULT_CHANGE_CHAINS.items()},
                                                server_default=json.dumps(DEFAULT_CHANGE_CHAINS))
    # R-CHG-1: a price change leaving the price at least this % below the list price is within the
    # sales manager's authority; lower, the vice-president approves too (0: any price below list).
    manager_price_limit_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"), server_default="0")
    # R-AFT-1: late fees (滞纳金) — a daily % of the overdue amount from the day after the (extended)
    # due date, capped at a % of the line's amount; a deal's agreement may say otherwise
    # (Subscription.late_fee_daily_percent / late_fee_cap_percent). Waivers of a deal beyond
    # `late_fee_waiver_limit` in total need the vice-president.
    late_fee_daily_percent: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal("0.05"), server_default="0.05")
    late_fee_cap_percent: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal("5"), server_default="5")
    late_fee_waiver_limit: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("2000"), server_default="2000")
    # R-AFT-3 (art. 20): a buyer who cancels beyond ±3 % gets back the price paid and the interest on
    # it, at this annual rate (%), the office's to set (e.g. the one-year LPR of the day).
    true_up_interest_percent: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal("3.00"),
                                                              server_default="3.00")
    # R-AFT-2: days a mortgage file may stay in each stage before it is stuck (models.loans).
    loan_stage_limits: Mapped[dict] = mapped_column(JSON, default=lambda: dict(DEFAULT_LOAN_STAGE_LIMITS),
                                                    server_default=json.dumps(DEFAULT_LOAN_STAGE_LIMITS))
    # R-AFT-4: the handover period the agreements promise, and the inspection's items (one per line).
    handover_starts_on: Mapped[dt.date | None]
    handover_ends_on: Mapped[dt.date | None]
    handover_checklist: Mapped[str] = mapped_column(Text, default=DEFAULT_HANDOVER_CHECKLIST,
                                                    server_default=DEFAULT_HANDOVER_CHECKLIST)
    # R-SVC-1: days an after-sales ticket has before it is overdue.
    ticket_due_days: Mapped[int] = mapped_column(default=7, server_default="7")
    # Issue 23, the sales floor. R-RCP-2: days a first visit protects the customer for its agent.
    protection_days: Mapped[int] = mapped_column(default=30, server_default="30")
    # R-COM-1: days a channel's registration (报备) stays valid awaiting the visit.
    channel_window_days: Mapped[int] = mapped_column(default=30, server_default="30")
    # R-COM-2: whether commission rates are tiered by the payee's monthly volume; a monthly
    # statement whose total passes the limit is approved by the vice-president.
    commission_tiered: Mapped[bool] = mapped_column(default=False, server_default=false())
    commission_vp_limit: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("50000"),
                                                         server_default="50000")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    buildings: Mapped[list["Building"]] = relationship(  # noqa: F821 (models.inventory)
        back_populates="project", order_by="Building.name")

    def __str__(self) -> str:
        return self.name


def earliest_entry_date(project: Project, today: dt.date) -> dt.date:
    """The earliest date staff may give a subscription or a payment of `project` on `today`: the
    project's days back (default 30), and never before its sale started."""
    earliest = today - dt.timedelta(days=project.backdate_days)
    return max(earliest, project.sales_start_on) if project.sales_start_on else earliest


def check_entry_date(project: Project, day: dt.date, today: dt.date, what, rule: str,
                     not_before: dt.date | None = None) -> None:
    """Refuse a date of `what` in the future, further back than the project allows, before its
    sale started, or before `not_before` (e.g. the subscription a payment belongs to)."""
    earliest = max(earliest_entry_date(project, today), not_before or dt.date.min)
    if day > today:
        raise RuleViolation(_l("%(what)s cannot be in the future.", what=what), rule=rule)
    if day < earliest:
        raise RuleViolation(_l("%(what)s cannot be before %(earliest)s: this project accepts dates up "
                               "to %(days)d days back, not before its sale started, nor before the "
                               "deal.", what=what, earliest=earliest.isoformat(),
                               days=project.backdate_days), rule=rule)
