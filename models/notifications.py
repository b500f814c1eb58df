"""In-app notifications: what the system tells one user (a lead pooled, a conflict, feedback…).

A notification is stored as its kind and its values (`params`, JSON), never as finished text: it
is rendered in the READER's language when shown (`Notification.text`), whatever the language of
the request, job or CLI run that wrote it. Personal data in the values is masked when written
(models.privacy.mask_text), so the stored row never holds a whole ID or phone number.

`params` holds the values a message names; `_t` picks the message when a kind has several
(e.g. "price_decided.approved"), else the kind is the message's id. A value that is itself a
dict with `_t` is a phrase rendered the same way (e.g. the cause of a forfeit). Money values
are kept as decimal strings and shown as ¥1,234.50. Rows written before issue 19 have no
params: their `message` (finished Chinese text) is shown as it was written.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from flask_babel import gettext, ngettext, pgettext
from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow
from .labels import choice_label
from .money import format_money

MONEY_KEYS = frozenset({"price", "list_price", "held", "amount"})


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_unread", "user_id", "read_at"),)
    __scoped_for_everyone__ = True  # every role sees only their own

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text, default="")  # finished text: rows written before params
    params: Mapped[dict | None] = mapped_column(JSON)  # the message's values; NULL on old rows
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.user_id == user_id

    @property
    def text(self) -> str:
        """The notification in the current language (the reader's, on a page)."""
        return render(self.kind, self.params, self.message)


# --- the messages: id -> params -> text in the current language --------------------------------

def _request(p):
    return {"price_approval": pgettext("closed request", "Price approval"),
            "extension": pgettext("closed request", "Extension request"),
            "change_request": pgettext("closed request", "Change request")}.get(p["request"], p["request"])


def _ended(p):
    return {"withdraw": pgettext("deal ended", "withdrawn"), "expire": pgettext("deal ended", "expired"),
            "rescind": pgettext("deal ended", "rescinded"), "cancel_deal": pgettext("deal ended", "cancelled"),
            "forfeit": pgettext("deal ended", "forfeited")}.get(p["ended"], p["ended"])


def _change(p):
    """A change request's values with its kind in the reader's words (R-CHG-1)."""
    return {**p, "kind": choice_label("change_request", "kind", p.get("kind"))}


def _extended(p):
    return (pgettext("extension of", "the signing date") if p.get("what") == "signing"
            else pgettext("extension of", "a payment"))


def _ladder(level_text):
    def text(p):
        first = level_text(p)
        n = p.get("n", 1)
        return first if n <= 1 else gettext("%(first)s (%(n)s payments in all)", first=first, n=n)
    return text


MESSAGES = {
    "signing_booked": lambda p: gettext(
        "Signing booked: %(no)s (%(name)s) on %(at)s; please prepare the contract.", **p),
    "handover_booked": lambda p: gettext(
        "Handover booked: %(no)s (%(name)s) on %(at)s.", **p),
    "contract_step": lambda p: gettext("%(no)s: the customer must still provide %(action)s", **p),
    "loan_missing": lambda p: gettext("%(no)s mortgage file: the customer must still supply %(missing)s", **p),
    "loan_closed": lambda p: gettext("%(no)s mortgage file closed (%(reason)s): the deal needs a change of "
                                     "payment method.", **p),
    "price_requested": lambda p: gettext(
        "Price approval: %(no)s (%(name)s) at %(price)s, below the list price %(list_price)s; please decide.", **p),
    "price_decided.approved": lambda p: gettext("Price approval: %(no)s at %(price)s is approved.", **p),
    "price_decided.rejected": lambda p: gettext("Price approval: %(no)s at %(price)s is rejected.", **p),
    "request_closed": lambda p: gettext("%(request)s closed: the deal was %(ended)s.",
                                        request=_request(p), ended=_ended(p)),
    "subscription_expired.draft": lambda p: gettext(
        "Subscription lapsed: %(no)s (%(name)s): the deposit was due on %(due)s and %(days)s days later it is "
        "still neither checked nor received; the unit is on sale again and the customer stays yours.", **p),
    "subscription_expired.confirmed": lambda p: gettext(
        "Subscription lapsed: %(no)s (%(name)s): the deposit was due on %(due)s and %(days)s days later it is "
        "still not received; the unit is on sale again and the customer stays yours.", **p),
    "ladder.reminder": _ladder(lambda p: gettext(
        "Payment reminder: a payment of your customer falls due on %(due)s (%(no)s).", **p)),
    "ladder.warning": _ladder(lambda p: gettext(
        "Overdue warning: a payment of your customer is overdue (%(no)s, due on %(due)s); contact the "
        "customer soon and record what they said.", **p)),
    "ladder.lawyer_letter": _ladder(lambda p: gettext(
        "Lawyer's letter: the payment of %(no)s (due on %(due)s) reached the lawyer's letter day; the "
        "lawyer has been told.", **p)),
    "ladder.rescission": _ladder(lambda p: gettext(
        "Rescission review: the payment of the signed deal %(no)s (due on %(due)s) reached the forfeit day; "
        "the manager and the lawyer decide whether to rescind.", **p)),
    "signing_overdue": lambda p: ngettext(
        "Signing overdue: %(num)d of your customers paid the down payment in full but is past the agreed "
        "signing date; please arrange the signing.",
        "Signing overdue: %(num)d of your customers paid the down payment in full but are past the agreed "
        "signing date; please arrange the signing.", p["n"]),
    "lawyer_letter_due.payment": lambda p: ngettext(
        "Lawyer's letters to send: %(num)d overdue payment reached the lawyer's letter day; send the letter "
        "and record it under “Lawyer's letters to send”.",
        "Lawyer's letters to send: %(num)d overdue payments reached the lawyer's letter day; send the letters "
        "and record them under “Lawyer's letters to send”.", p["n"]),
    "lawyer_letter_due.signing": lambda p: ngettext(
        "Lawyer's letters to send: %(num)d overdue signing reached the lawyer's letter day; send the letter "
        "and record it under “Lawyer's letters to send”.",
        "Lawyer's letters to send: %(num)d overdue signings reached the lawyer's letter day; send the letters "
        "and record them under “Lawyer's letters to send”.", p["n"]),
    "rescission_due": lambda p: ngettext(
        "Rescission review: the overdue payment of %(num)d signed contract reached the forfeit day; decide "
        "under “Rescission review” whether to keep collecting or rescind.",
        "Rescission review: the overdue payments of %(num)d signed contracts reached the forfeit day; decide "
        "under “Rescission review” whether to keep collecting or rescind.", p["n"]),
    "forfeit_cause.payment": lambda p: gettext(
        "%(no)s (%(name)s): a payment %(days)s days overdue and not paid in full", **p),
    "forfeit_cause.signing": lambda p: gettext(
        "%(no)s (%(name)s): the down payment is paid in full but the deal is %(days)s days past the agreed "
        "signing date and not signed (R-CON-5)", **p),
    "ladder_forfeit.agent": lambda p: gettext(
        "Forfeited: %(what)s; the subscription is cancelled and the unit is on sale again.", **p),
    "ladder_forfeit.manager": lambda p: gettext("Forfeited: %(what)s; the subscription is cancelled.", **p),
    "settlement_due.forfeit": lambda p: gettext(
        "Forfeit to settle: %(what)s; %(held)s received: refund or retain it as agreed.", **p),
    "settlement_due.cancel": lambda p: gettext(
        "Cancellation to settle: %(no)s (%(name)s) is cancelled; %(held)s received: refund and retain it as "
        "approved (retained %(retained)s).", **p),
    "settlement_due.rescind": lambda p: gettext(
        "Rescission to settle: %(no)s (%(name)s) is rescinded; %(held)s received: refund or retain it as "
        "agreed.", **p),
    "extension_requested": lambda p: gettext(
        "Extension request: %(no)s (%(name)s), %(what)s extended by %(days)s days%(beyond)s; please decide.",
        **{**p, "what": _extended(p), "beyond": gettext(
            " (beyond the manager's limit in total: the vice-president decides)") if p.get("beyond") else ""}),
    "extension_decided.approved": lambda p: gettext(
        "%(no)s: the extension of %(what)s (%(days)s days) is approved; the new date is %(new_due)s.",
        **{**p, "what": _extended(p)}),
    "extension_decided.rejected": lambda p: gettext(
        "%(no)s: the extension of %(what)s (%(days)s days) is rejected.", **{**p, "what": _extended(p)}),
    "late_fee_waiver_requested": lambda p: gettext(
        "Late-fee waiver request: %(no)s, %(amount)s%(beyond)s; please decide.",
        **{**p, "beyond": gettext(" (beyond the manager's limit in total: the vice-president decides)")
           if p.get("beyond") else ""}),
    "late_fee_waiver_decided.approved": lambda p: gettext("%(no)s: the late-fee waiver of %(amount)s is approved.", **p),
    "late_fee_waiver_decided.rejected": lambda p: gettext("%(no)s: the late-fee waiver of %(amount)s is rejected.", **p),
    # issue 23: monthly commission statements (R-COM-2)
    "commission_statement_waiting": lambda p: gettext(
        "Commission statements of %(month)s (%(project)s): %(n)s above the limit wait for the vice-president.", **p),
    "commission_statement_approved": lambda p: gettext(
        "Commission statement of %(month)s for %(payee)s approved: %(amount)s.", **p),
    "lead_conflict": lambda p: gettext(
        "%(by)s registered a customer already registered (%(phone)s); please decide.", **p),
    "lead_conflict.keep": lambda p: gettext(
        "The manager decided your duplicate registration: the customer stays with their agent."),
    "lead_conflict.transfer": lambda p: gettext(
        "The manager decided your duplicate registration: the customer is now yours."),
    "follow_up_paused": lambda p: gettext("%(by)s paused following up %(name)s until %(until)s: %(reason)s", **p),
    "follow_up_feedback": lambda p: gettext("%(by)s gave feedback on your follow-up: %(feedback)s", **p),
    "lead_assigned": lambda p: ngettext("%(by)s assigned %(num)d customer to you.",
                                        "%(by)s assigned %(num)d customers to you.", p["n"], by=p["by"]),
    "lead_pooled": lambda p: ngettext(
        "%(num)d of your customers went without follow-up past the limit and returned to the public pool.",
        "%(num)d of your customers went without follow-up past the limit and returned to the public pool.",
        p["n"]),
    "question_answered": lambda p: gettext("The manager answered a customer's question: %(question)s", **p),
    "voucher.refund": lambda p: gettext("%(no)s (%(name)s): %(amount)s refunded, voucher %(voucher)s.", **p),
    "voucher.retain": lambda p: gettext(
        "%(no)s (%(name)s): %(amount)s retained as agreed, voucher %(voucher)s.", **p),
    "change_requested": lambda p: gettext(
        "Change request %(no)s: %(kind)s of %(deal)s (%(name)s), asked by %(by)s, waits for your decision.",
        **_change(p)),
    "change_decided.approved": lambda p: gettext(
        "Change request %(no)s: the %(kind)s of %(deal)s (%(name)s) is approved by %(by)s and applied.",
        **_change(p)),
    "change_decided.rejected": lambda p: gettext(
        "Change request %(no)s: the %(kind)s of %(deal)s (%(name)s) is rejected by %(by)s: %(note)s",
        **_change(p)),
    "change_decided.sent_back": lambda p: gettext(
        "Change request %(no)s: the %(kind)s of %(deal)s (%(name)s) is sent back by %(by)s: %(note)s. Correct "
        "and resubmit it, or withdraw it.", **_change(p)),
    "rescission_decided.continue": lambda p: gettext(
        "Rescission review: %(no)s (%(name)s): %(by)s decided to keep collecting: %(note)s", **p),
    "rescission_decided.rescind": lambda p: gettext(
        "Rescission review: %(no)s (%(name)s): %(by)s decided to rescind: %(note)s", **p),
    "ticket_opened": lambda p: gettext(
        "After-sales ticket %(no)s for %(department)s: %(title)s; due on %(due)s.",
        **{**p, "department": choice_label("ticket", "department", p.get("department"))}),
    "ticket_routed": lambda p: gettext(
        "After-sales ticket %(no)s is routed to %(department)s: %(title)s; due on %(due)s.",
        **{**p, "department": choice_label("ticket", "department", p.get("department"))}),
    # issue 24: lottery (R-LCH-2)
    "lottery_abandoned": lambda p: gettext(
        "Lottery of %(name)s: the publication is abandoned (%(reason)s); registration is open again and the "
        "entrants must be published anew with a new seed. The abandoned one stays on the public page.", **p),
}


def _value(key, value):
    if isinstance(value, dict) and "_t" in value:
        return render(None, value)
    if key in MONEY_KEYS and value not in (None, ""):
        try:
            return format_money(value)  # the one money writer (-¥200.00, never ¥-200.00)
        except (InvalidOperation, ValueError, TypeError):
            return str(value)  # a value that is not an amount: shown as stored, never a 500
    return "" if value is None else value


def render(kind: str | None, params: dict | None, message: str = "") -> str:
    """A notification's text in the current language: its message (by `_t`, else its kind) with its
    values; a row without params (written before issue 19) is its stored text as written."""
    if params is None:
        return message
    if not isinstance(params, dict):  # a row not written by notify(): its text or its kind, never a 500
        return message or kind or ""
    template = MESSAGES.get(params.get("_t") or kind)
    if template is None:  # a message this version does not know (written by a newer one)
        return message or kind or ""
    values = {key: _value(key, value) for key, value in params.items() if key != "_t"}
    try:
        return template(values)
    except (KeyError, TypeError, ValueError):  # values not matching the message: say what it is
        return message or kind or ""


def _masked(value):
    from .privacy import mask_text
    if isinstance(value, str):
        return mask_text(value)  # a notification never carries a whole ID or phone number
    if isinstance(value, dict):
        return {key: _masked(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat(" ") if isinstance(value, dt.datetime) else value.isoformat()
    return value


def _in_the_office_language(kind: str, values) -> str:
    """The text in the office's language, kept beside the values for whoever reads the table
    without this code (after a downgrade past 0019f, a report on the database); pages render the
    values in the reader's language."""
    from flask_babel import force_locale
    try:
        with force_locale("zh_Hans_CN"):
            return render(kind, values)
    except RuntimeError:  # no application to translate with (a script outside the app)
        return ""


def notify(session, user_ids, kind: str, params: dict | str, link: str = "") -> None:
    """One notification per user, written with the caller's transaction (set-based). `params`
    are the message's values (see MESSAGES), masked here before they are stored; a plain string
    is kept as finished text (as rows were before issue 19)."""
    if isinstance(params, str):
        from .privacy import mask_text
        message, values = mask_text(params), None
    else:
        values = _masked(params)
        message = _in_the_office_language(kind, values)
    rows = [{"user_id": uid, "kind": kind, "message": message, "params": values, "link": link,
             "created_at": utcnow()} for uid in user_ids]
    if rows:
        session.execute(Notification.__table__.insert(), rows)


def mark_read(session, user, notification_ids) -> int:
    """Mark the user's own unread notifications as read; others' ids are ignored."""
    from sqlalchemy import update

    result = session.execute(update(Notification).where(
        Notification.id.in_([int(i) for i in notification_ids]), Notification.user_id == user.id,
        Notification.read_at.is_(None)).values(read_at=utcnow()))
    return result.rowcount
