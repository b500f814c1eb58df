"""Mortgage files (按揭) from documents to disbursement (R-AFT-2).

A loan line of a deal's plan (commercial or provident-fund loan) gets one file: the bank (a
managed list), the kind of loan, and its stage — collecting documents → 资料收齐 (documents
complete) → 银行面签 (signed at the bank) → 审批通过 (approved) → 抵押登记 (mortgage registered)
→ 放款 (disbursed). Each stage reached is a row (its date, who, a note), and the file says what
the customer must still supply (the agent is told). The disbursement is a receipt on the loan
line (a payment, channel `loan_disbursement`). A file in one stage beyond the project's limit
(`Project.loan_stage_limits`) is stuck: on finance's and the lawyer's worklists.
"""
from __future__ import annotations

import datetime as dt

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import (CheckConstraint, ForeignKey, Index, Integer, String, Text, and_, case, cast, func,
                        select, text, update, or_, false)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context, record_many
from .base import Base, Money, in_list, office_today, utcnow
from .contracts import Contract, ContractStep, step_refusal
from .deals import DEAL_ENDED, LIVE_DEAL, Subscription, locked_subscription, via_subscription
from .dialect import days_between
from .errors import RuleViolation
from .labels import choice_label
from .money import format_money, parse_money
from .notifications import notify
from .payments import OPEN_LINE, PAYMENT_REVERSED, PLAN_REGENERATED, Instalment, in_force, open_line, take_payment
from .permissions import require
from .projects import DEFAULT_LOAN_STAGE_LIMITS, Project
from .submissions import claim, settle
from .users import User

LOAN_KINDS = ("commercial", "provident_fund", "combined")
LOAN_LINE_KINDS = ("commercial_loan", "provident_fund_loan")  # the plan lines a file is opened for
LOAN_STAGES = ("collecting", "documents_complete", "bank_interview", "approved", "mortgage_registered",
               "disbursed")
LOAN_STATUSES = ("open", "disbursed", "closed")  # closed: the deal ended, or the loan was refused


class Bank(Base):
    """A lending bank (or provident-fund centre) the office works with: a managed list."""

    __tablename__ = "bank"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    branch: Mapped[str] = mapped_column(String(100), default="", server_default="")
    contact: Mapped[str] = mapped_column(String(100), default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return f"{self.name} {self.branch}".strip()


class LoanFile(Base):
    """One loan line's mortgage file and where it stands."""

    __tablename__ = "loan_file"
    __table_args__ = (
        CheckConstraint(in_list("loan_kind", LOAN_KINDS), name="loan_kind_known"),
        CheckConstraint(in_list("line_kind", LOAN_LINE_KINDS), name="line_kind_known"),
        CheckConstraint(in_list("stage", LOAN_STAGES), name="stage_known"),
        CheckConstraint(in_list("status", LOAN_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(status = 'disbursed') = (stage = 'disbursed')", name="disbursed_at_last_stage"),
        # One file in progress per loan line of a deal.
        Index("uq_loan_file_open", "subscription_id", "line_kind", unique=True,
              sqlite_where=text("status <> 'closed'"), postgresql_where=text("status <> 'closed'")),
        # Ageing per bank and stage over live files.
        Index("ix_loan_file_ageing", "status", "stage", "bank_id", "stage_since"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    line_kind: Mapped[str] = mapped_column(String(30))  # the plan line's kind it finances
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="RESTRICT"))
    loan_kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Money]
    stage: Mapped[str] = mapped_column(String(30), default="collecting")
    stage_since: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(20), default="open")
    missing: Mapped[str] = mapped_column(Text, default="", server_default="")  # what the customer must still supply
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id", ondelete="RESTRICT"))  # the disbursement
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    bank: Mapped[Bank] = relationship()
    opened_by: Mapped[User] = relationship(foreign_keys=[opened_by_id])
    stages: Mapped[list["LoanStage"]] = relationship(back_populates="file", order_by="LoanStage.id")

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} {self.bank or ''}".strip()

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


class LoanStage(Base):
    """A stage a file reached: when, by whom, with a note (the file's history)."""

    __tablename__ = "loan_stage"
    # No (file, stage) uniqueness: a reversed disbursement puts the file back a stage, and that
    # return is a row of its own (the history keeps both); the file's conditional UPDATE on its
    # stage is what makes two clerks moving at once record one move.
    __table_args__ = (CheckConstraint(in_list("stage", LOAN_STAGES), name="stage_known"),)
    __append_only__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_file_id: Mapped[int] = mapped_column(ForeignKey("loan_file.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(String(30))
    on: Mapped[dt.date]
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    file: Mapped[LoanFile] = relationship(back_populates="stages")
    by: Mapped[User] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.loan_file_id.in_(select(LoanFile.id).where(LoanFile.owned_by(user_id)))


# ---------------------------------------------------------------------------------------------
# The pipeline (R-AFT-2). Every function checks the role and the rule, locks the deal first (the
# one lock order of payments and the ladder), changes the file by a conditional UPDATE on what it
# read, writes audit rows and never commits.

MOVABLE_STAGES = LOAN_STAGES[:-1]  # `disbursed` only through `disburse`
# The disbursement's rule: the bank pays once the mortgage is registered (抵押登记 → 放款), the
# practice of the office's banks; a file at an earlier stage cannot be disbursed.
DISBURSE_FROM = "mortgage_registered"
LINE_OF_KIND = {"commercial": ("commercial_loan",), "provident_fund": ("provident_fund_loan",),
                "combined": LOAN_LINE_KINDS}


def _stage_name(stage: str):
    return choice_label("loan_file", "stage", stage)


def _file(session, file_id) -> LoanFile:
    """The file, its deal locked first (then the file read again under that lock)."""
    file = session.get(LoanFile, file_id) if file_id else None
    if file is None:
        raise RuleViolation(_l("This mortgage file does not exist."), rule="R-AFT-2")
    sub = locked_subscription(session, file.subscription_id)
    session.refresh(file)
    if file.status == "open" and sub.status not in LIVE_DEAL:  # ended before end_deal closed it
        raise RuleViolation(_l("This deal is over: its mortgage file is closed."), rule="R-AFT-2")
    return file


def _open_only(file: LoanFile) -> None:
    if file.status != "open":
        raise RuleViolation(_l("This mortgage file is %(status)s: it no longer moves.",
                               status=choice_label("loan_file", "status", file.status)), rule="R-AFT-2")


def loan_line(session, subscription_id: int, line_kind: str):
    """The deal's line of `line_kind` in the plan in force (payments.in_force), or None."""
    return session.scalar(select(Instalment).where(
        Instalment.subscription_id == subscription_id, Instalment.kind == line_kind, in_force())
        .order_by(Instalment.seq).limit(1))


def open_refusal(session, sub: Subscription, line_kind: str) -> RuleViolation | None:
    """Why a file for `line_kind` cannot be opened on `sub` now (None: it can) — the button on the
    deal's page and `open_loan_file` ask this same function."""
    if sub.status not in LIVE_DEAL:
        return RuleViolation(_l("Mortgage files are opened on live deals only."), rule="R-AFT-2")
    line = loan_line(session, sub.id, line_kind)
    if line is None:
        return RuleViolation(_l("The deal's plan has no %(line)s line.",
                                line=choice_label("loan_file", "line_kind", line_kind)), rule="R-AFT-2")
    if line.status not in OPEN_LINE:
        return RuleViolation(_l("The %(line)s line is paid already.",
                                line=choice_label("loan_file", "line_kind", line_kind)), rule="R-AFT-2")
    if session.scalar(select(LoanFile.id).where(LoanFile.subscription_id == sub.id,
                                                LoanFile.line_kind == line_kind, LoanFile.status != "closed")):
        return RuleViolation(_l("This deal already has a mortgage file for its %(line)s line.",
                                line=choice_label("loan_file", "line_kind", line_kind)), rule="R-AFT-2")
    return None


def open_loan_file(session, by, subscription_id: int, *, line_kind: str, bank_id: int, loan_kind: str,
                   missing: str = "", today: dt.date | None = None) -> LoanFile:
    """Finance or the lawyer opens the mortgage file of one loan line of a live deal (R-AFT-2):
    the line (commercial_loan / provident_fund_loan) must be open in the plan in force; the file's
    amount is that line's balance; one file in progress per deal and line (uq_loan_file_open: of
    two opening at once, one is made and the other told). The file starts `collecting` today.

    A combined loan (组合贷) is one file on each of the deal's two loan lines, both with
    loan_kind `combined`: open it once with line_kind commercial_loan and once with
    provident_fund_loan (each line has its own bank, stages and disbursement). A commercial file
    goes only on a commercial_loan line, a provident-fund file on a provident_fund_loan line."""
    require(by, "loan.open")
    today = today or office_today()
    if loan_kind not in LOAN_KINDS:
        raise RuleViolation(_l("Choose the kind of loan."), rule="R-AFT-2")
    if line_kind not in LINE_OF_KIND[loan_kind]:
        raise RuleViolation(_l("A %(kind)s is not paid on the %(line)s line.",
                               kind=choice_label("loan_file", "loan_kind", loan_kind),
                               line=choice_label("loan_file", "line_kind", line_kind)), rule="R-AFT-2")
    bank = session.get(Bank, bank_id) if bank_id else None
    if bank is None or not bank.active:
        raise RuleViolation(_l("Choose one of the banks the office works with."), rule="R-AFT-2")
    sub = locked_subscription(session, subscription_id)
    refused = open_refusal(session, sub, line_kind)
    if refused is not None:
        raise refused
    line = loan_line(session, sub.id, line_kind)
    missing = (missing or "").strip()
    with audit_context(session, actor=by, action="loan_open"):
        file = LoanFile(project_id=sub.project_id, subscription_id=sub.id, line_kind=line_kind, bank_id=bank.id,
                        loan_kind=loan_kind, amount=line.amount_due - line.amount_paid, stage="collecting",
                        stage_since=today, status="open", missing=missing, opened_by_id=by.id)
        session.add(file)
        try:
            session.flush()
        except IntegrityError:
            raise RuleViolation(_l("This deal already has a mortgage file for its %(line)s line.",
                                   line=choice_label("loan_file", "line_kind", line_kind)), rule="R-AFT-2") from None
        session.add(LoanStage(loan_file_id=file.id, stage="collecting", on=today, by_id=by.id))
        session.flush()
    if missing:
        _tell_agent(session, file, sub)
    return file


def _tell_agent(session, file: LoanFile, sub: Subscription) -> None:
    notify(session, [sub.agent_id], "loan_missing", {"no": sub.number, "missing": file.missing[:60]},
           f"/admin/loan_file/details/?id={file.id}")


def _set_missing(session, by, file: LoanFile, missing: str) -> bool:
    """The file's list of what the customer must still supply; the agent told when it changes to
    something. True when it changed."""
    missing = (missing or "").strip()
    if missing == file.missing:
        return False
    record_many(session, "loan_file", "loan_missing", by, [(file.id, {"missing": [file.missing, missing]})])
    session.execute(update(LoanFile).where(LoanFile.id == file.id).values(missing=missing)
                    .execution_options(synchronize_session=False))
    file.missing = missing
    if missing:
        _tell_agent(session, file, file.subscription)
    return True


def set_missing(session, by, file_id: int, missing: str) -> LoanFile:
    """What the customer must still supply for the loan (R-AFT-2, as R-CON-6): the deal's agent is
    told whenever it changes to something non-empty; empty means nothing is missing."""
    require(by, "loan.stage")
    file = _file(session, file_id)
    _open_only(file)
    _set_missing(session, by, file, missing)
    return file


def move_stage(session, by, file_id: int, stage: str, *, on: dt.date | None = None, note: str = "",
               missing: str | None = None, key: str | None = None, today: dt.date | None = None) -> LoanFile:
    """The file reaches its next stage (R-AFT-2): one step forward in LOAN_STAGES (资料收齐 → 银行面签
    → 审批通过 → 抵押登记; 放款 only through `disburse`), dated between the previous stage's
    date and today, with who and a note (a LoanStage row). A conditional UPDATE on the stage read
    under the deal's lock: two clerks moving at once record one move, the other is told."""
    require(by, "loan.stage")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "loan_stage", f"loan_file:{file_id}",
              out_of_date=_l("This form is out of date: open the file again."))
    file = _file(session, file_id)
    _open_only(file)
    if stage == "disbursed":
        raise RuleViolation(_l("A file is disbursed by recording the bank's money (Disburse)."), rule="R-AFT-2")
    if stage not in MOVABLE_STAGES:
        raise RuleViolation(_l("Choose the stage the file reached."), rule="R-AFT-2")
    was = file.stage
    following = LOAN_STAGES[LOAN_STAGES.index(was) + 1]
    if stage != following:
        raise RuleViolation(_l("The file is at “%(now)s”: its next stage is “%(next)s”, not “%(stage)s”.",
                               now=_stage_name(was), next=_stage_name(following), stage=_stage_name(stage)),
                            rule="R-AFT-2")
    on = on or today
    if on > today or on < file.stage_since:
        raise RuleViolation(_l("The date of the stage lies between %(since)s (the previous stage) and today.",
                               since=file.stage_since.isoformat()), rule="R-AFT-2")
    moved = session.execute(update(LoanFile).where(LoanFile.id == file.id, LoanFile.stage == was,
                                                   LoanFile.status == "open")
                            .values(stage=stage, stage_since=on).execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        raise RuleViolation(_l("Someone moved this file meanwhile: open it again."), rule="R-AFT-2")
    record_many(session, "loan_file", "loan_stage", by,
                [(file.id, {"stage": [was, stage], "stage_since": [file.stage_since, on]})])
    with audit_context(session, actor=by, action="loan_stage"):
        session.add(LoanStage(loan_file_id=file.id, stage=stage, on=on, by_id=by.id, note=(note or "").strip()))
        session.flush()
    session.refresh(file)
    if missing is not None:
        _set_missing(session, by, file, missing)
    if key is not None:
        settle(session, key, f"{file.id} {stage}")
    return file


def close_file(session, by, file_id: int, reason: str) -> LoanFile:
    """The bank refused the loan, or the customer gave it up (R-AFT-2): the file is closed with
    the reason. The deal's loan line is still owed: it needs a payment-method change (a change
    request, R-CHG-1), which the message says; the agent is told."""
    require(by, "loan.stage")
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the mortgage file is closed."), rule="R-AFT-2")
    file = _file(session, file_id)
    _open_only(file)
    if session.execute(update(LoanFile).where(LoanFile.id == file.id, LoanFile.status == "open")
                       .values(status="closed").execution_options(synchronize_session=False)).rowcount != 1:
        raise RuleViolation(_l("Someone moved this file meanwhile: open it again."), rule="R-AFT-2")
    record_many(session, "loan_file", "loan_close", by, [(file.id, {"status": ["open", "closed"], "reason": ["", reason]})])
    session.refresh(file)
    notify(session, [file.subscription.agent_id], "loan_closed",
           {"no": file.subscription.number, "reason": reason[:60]}, f"/admin/loan_file/details/?id={file.id}")
    return file


def close_files_of_ended_deal(session, subscription_id: int, by, action: str) -> int:
    """A deal that ends (withdrawn, expired, forfeited, rescinded, cancelled: models.deals.end_deal)
    closes its files still in progress, each audited. A disbursed file stays disbursed: its money
    is the deal's, settled like any (R-CHG-5)."""
    ids = session.scalars(select(LoanFile.id).where(LoanFile.subscription_id == subscription_id,
                                                    LoanFile.status == "open")).all()
    if not ids:
        return 0
    session.execute(update(LoanFile).where(LoanFile.id.in_(ids), LoanFile.status == "open")
                    .values(status="closed").execution_options(synchronize_session=False))
    record_many(session, "loan_file", action, by, [(i, {"status": ["open", "closed"]}) for i in ids])
    return len(ids)


def follow_plan_change(session, subscription_id: int, by, action: str) -> int:
    """A change regenerated the deal's plan (models.payments.regenerate_plan, R-CHG-2): each file
    in progress follows it — its amount becomes the balance of the new plan's open line of its
    kind — or, when no open line of its kind is left (a payment-method change, the line paid),
    is closed (reason: the plan changed), audited. Returns the files closed."""
    closed = 0
    for file in session.scalars(select(LoanFile).where(LoanFile.subscription_id == subscription_id,
                                                       LoanFile.status == "open").order_by(LoanFile.id)).all():
        line = loan_line(session, subscription_id, file.line_kind)
        balance = line.amount_due - line.amount_paid if line is not None and line.status in OPEN_LINE else None
        if balance is not None and balance > 0:
            if balance != file.amount:
                record_many(session, "loan_file", action, by, [(file.id, {"amount": [str(file.amount), str(balance)]})])
                file.amount = balance
            continue
        if session.execute(update(LoanFile).where(LoanFile.id == file.id, LoanFile.status == "open")
                           .values(status="closed").execution_options(synchronize_session=False)).rowcount:
            reason = "plan_changed"
            record_many(session, "loan_file", action, by, [(file.id, {"status": ["open", "closed"],
                                                                        "reason": ["", reason]})])
            session.expire(file)
            closed += 1
    session.flush()
    return closed


def disburse(session, by, file_id: int, *, amount=None, paid_on: dt.date, bank_ref: str | None = None,
             key: str | None = None, today: dt.date | None = None):
    """Finance records the bank's money (放款, R-AFT-2): a payment with a receipt number, channel
    `loan_disbursement`, on the file's loan line of the plan in force (payments.take_payment under
    the deal's lock), and the file `disbursed` (stage, status, payment, a LoanStage row) in the
    same transaction. Only from `mortgage_registered` (DISBURSE_FROM: the bank pays once the
    mortgage is registered). The amount is the line's balance (the default): a partial amount is
    refused, so a file disbursed always means a loan line paid. The contract's mortgage
    step is marked done when the project's step order allows it (contracts.step_refusal).
    `key`: the form's one-time key — a double click records one receipt."""
    require(by, "loan.disburse")
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "loan_disbursement", f"loan_file:{file_id}")
    file = _file(session, file_id)
    sub = file.subscription
    _open_only(file)
    if file.stage != DISBURSE_FROM:
        raise RuleViolation(_l("The bank's money is recorded once the mortgage is registered; this file is at "
                               "“%(stage)s”.", stage=_stage_name(file.stage)), rule="R-AFT-2")
    if sub.status not in ("active", "contracted"):
        raise RuleViolation(_l("Payments are recorded on deals whose deposit is in."), rule="R-AFT-2")
    if paid_on is None or paid_on < file.stage_since:
        raise RuleViolation(_l("The date of the stage lies between %(since)s (the previous stage) and today.",
                               since=file.stage_since.isoformat()), rule="R-AFT-2")
    line = loan_line(session, sub.id, file.line_kind)
    if line is None or line.amount_paid >= line.amount_due:
        raise RuleViolation(_l("The deal's loan line has nothing left to pay."), rule="R-AFT-2")
    balance = line.amount_due - line.amount_paid
    amount = parse_money(amount) if amount not in (None, "") else balance
    if amount != balance:
        # One disbursement pays the loan line: a part would mark the file disbursed with the loan
        # half paid and no file left to follow the rest. A bank lending less is a plan change.
        raise RuleViolation(_l("The bank disburses the loan line's balance, %(balance)s, in one payment, not "
                               "%(amount)s. If the bank lends less, change the deal's payment plan first.",
                               balance=format_money(balance), amount=format_money(amount)), rule="R-AFT-2")
    payment = take_payment(session, by, sub, amount=amount, paid_on=paid_on, channel="loan_disbursement",
                           bank_ref=bank_ref, instalment_id=line.id, today=today,
                           note=str(file.bank))
    was = file.stage
    if session.execute(update(LoanFile).where(LoanFile.id == file.id, LoanFile.stage == was,
                                              LoanFile.status == "open")
                       .values(stage="disbursed", status="disbursed", payment_id=payment.id, stage_since=paid_on)
                       .execution_options(synchronize_session=False)).rowcount != 1:
        raise RuleViolation(_l("Someone moved this file meanwhile: open it again."), rule="R-AFT-2")
    record_many(session, "loan_file", "loan_disburse", by,
                [(file.id, {"stage": [was, "disbursed"], "status": ["open", "disbursed"],
                            "payment_id": [None, payment.id]})])
    with audit_context(session, actor=by, action="loan_disburse"):
        session.add(LoanStage(loan_file_id=file.id, stage="disbursed", on=paid_on, by_id=by.id,
                              note=f"{payment.receipt_no} {format_money(payment.amount)}"))
        session.flush()
    session.refresh(file)
    _mortgage_step_done(session, by, sub, paid_on)
    if key is not None:
        settle(session, key, f"{payment.receipt_no} {format_money(payment.amount)}")
    return payment


def _mortgage_step_done(session, by, sub: Subscription, on: dt.date) -> None:
    """The lawyer's post-signing step `mortgage` (R-CON-6) is done once the loan is disbursed —
    when every loan line of the plan is paid, the project's step order allows it
    (contracts.step_refusal), and the date is not before the signing. Otherwise it is left as it
    is (the lawyer's to enter)."""
    if session.scalar(select(Instalment.id).where(Instalment.subscription_id == sub.id, open_line(),
                                                  Instalment.kind.in_(LOAN_LINE_KINDS)).limit(1)):
        return
    step = session.scalar(select(ContractStep).join(Contract).where(
        Contract.subscription_id == sub.id, ContractStep.kind == "mortgage", ContractStep.status != "done",
        Contract.status != "rescinded"))
    if step is None:
        return
    session.refresh(step.contract, with_for_update={"of": Contract})
    session.refresh(step)
    if step.status == "done" or (step.contract.signed_on and on < step.contract.signed_on):
        return
    if step_refusal(step, "done", on) is not None:
        return
    with audit_context(session, actor=by, action="contract_step"):
        step.status, step.done_on = "done", on
        session.flush()


def undo_disbursement(session, by, original, reversal) -> LoanFile | None:
    """A reversal of a disbursement's payment (payments.reverse_payment, in its transaction, the
    deal already locked) puts the file back to the stage it was at (status open, no payment), its
    days in stage counted from that stage's date again; a LoanStage row records the return."""
    if original.channel != "loan_disbursement":
        return None
    payment_id, reason, today = original.id, reversal.reason, reversal.paid_on
    file = session.scalar(select(LoanFile).where(LoanFile.payment_id == payment_id)
                          .execution_options(populate_existing=True))
    if file is None:
        return None
    before = session.scalar(select(LoanStage).where(LoanStage.loan_file_id == file.id,
                                                    LoanStage.stage != "disbursed")
                            .order_by(LoanStage.id.desc()).limit(1))
    back, since = (before.stage, before.on) if before is not None else (DISBURSE_FROM, today)
    if session.execute(update(LoanFile).where(LoanFile.id == file.id, LoanFile.status == "disbursed",
                                              LoanFile.payment_id == payment_id)
                       .values(stage=back, status="open", payment_id=None, stage_since=since)
                       .execution_options(synchronize_session=False)).rowcount != 1:
        return None
    record_many(session, "loan_file", "loan_undisburse", by,
                [(file.id, {"stage": ["disbursed", back], "status": ["disbursed", "open"],
                            "payment_id": [payment_id, None]})])
    with audit_context(session, actor=by, action="loan_undisburse"):
        session.add(LoanStage(loan_file_id=file.id, stage=back, on=today, by_id=by.id,
                              note=(reason or "").strip()))
        session.flush()
    session.refresh(file)
    return file


# ---------------------------------------------------------------------------------------------
# Ageing and stuck files

def stage_limits(session, project_id: int | None = None) -> dict[tuple[int, str], int]:
    """{(project id, stage): days a file may stay in it} (Project.loan_stage_limits; a stage a
    project leaves out takes DEFAULT_LOAN_STAGE_LIMITS) — a few numbers per project, read once."""
    query = select(Project.id, Project.loan_stage_limits)
    if project_id is not None:
        query = query.where(Project.id == project_id)
    return {(pid, stage): int((limits or {}).get(stage, days))
            for pid, limits in session.execute(query) for stage, days in DEFAULT_LOAN_STAGE_LIMITS.items()}


def days_in_stage(session, today: dt.date):
    """SQL: the file's days in its current stage on `today` (today − stage_since)."""
    return cast(days_between(session, LoanFile.stage_since, today), Integer)


def stuck(session, today: dt.date | None = None, project_id: int | None = None):
    """A WHERE clause, the one definition of a stuck mortgage file (R-AFT-2): in progress, with
    more days in its current stage (today − stage_since) than its project allows for that stage —
    at the limit it is not stuck, one day over it is. Written as stage_since before a cut-off date
    per (project, stage), so the ageing index serves it and no JSON is read per row."""
    today = today or office_today()
    cut_offs = [and_(LoanFile.project_id == pid, LoanFile.stage == stage,
                     LoanFile.stage_since < today - dt.timedelta(days=days))
                for (pid, stage), days in sorted(stage_limits(session, project_id).items())]
    return and_(LoanFile.status == "open", or_(*cut_offs) if cut_offs else false())


def ageing(session, today: dt.date | None = None, project_id: int | None = None) -> list[dict]:
    """Files in progress per bank and stage (R-AFT-2): count, amount, average and longest days in
    the stage, and how many are stuck — one grouped query, the days computed in SQL."""
    today = today or office_today()
    days = days_in_stage(session, today)
    query = (select(LoanFile.bank_id, LoanFile.stage, func.count(), func.sum(LoanFile.amount), func.avg(days),
                    func.max(days), func.sum(case((stuck(session, today, project_id), 1), else_=0)))
             .where(LoanFile.status == "open").group_by(LoanFile.bank_id, LoanFile.stage))
    if project_id is not None:
        query = query.where(LoanFile.project_id == project_id)
    rows = session.execute(query).all()
    banks = {b.id: b for b in session.scalars(select(Bank).where(Bank.id.in_({r[0] for r in rows})))}
    order = {stage: i for i, stage in enumerate(LOAN_STAGES)}
    return sorted(({"bank_id": bank_id, "bank": banks.get(bank_id), "stage": stage, "count": n,
                    "amount": Decimal(total or 0).quantize(Decimal("0.01")),
                    "average_days": round(float(average or 0), 1), "longest_days": int(longest or 0),
                    "stuck": int(n_stuck or 0)}
                   for bank_id, stage, n, total, average, longest, n_stuck in rows),
                  key=lambda r: (str(r["bank"] or ""), order.get(r["stage"], 99)))


def validate_stage_limits(value) -> dict:
    """A project's days allowed per stage (Project.loan_stage_limits): known stages before the
    disbursement, whole days ≥ 1. RuleViolation in the administrator's words otherwise."""
    stages = ", ".join(MOVABLE_STAGES)
    if not isinstance(value, dict):
        raise RuleViolation(_l("The days allowed name, for each mortgage stage (%(stages)s), a whole number of "
                               "days, e.g. {\"collecting\": 15}.", stages=stages), rule="R-AFT-2")
    for stage, days in value.items():
        if stage not in MOVABLE_STAGES:
            raise RuleViolation(_l("The days allowed name “%(stage)s”, which is not a mortgage stage (%(stages)s).",
                                   stage=str(stage), stages=stages), rule="R-AFT-2")
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise RuleViolation(_l("The days allowed in “%(stage)s” must be a whole number of at least 1.",
                                   stage=str(stage)), rule="R-AFT-2")
    return value


DEAL_ENDED.append(close_files_of_ended_deal)
PAYMENT_REVERSED.append(undo_disbursement)
PLAN_REGENERATED.append(follow_plan_change)
