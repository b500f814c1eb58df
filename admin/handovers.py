"""Handover (交房, R-AFT-4): the signed deals ready for it (notices, a batch), the handovers'
grid with their steps — book, inspect, hand over the keys — and their PDFs, the deal page's
section. Every step runs through models.handovers, which says what is owed when it refuses."""
from __future__ import annotations

import datetime as dt

from flask import flash, request
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from jobs.documents import QueueUnavailable, enqueue_documents
from models import Subscription, Unit, db
from models.base import office_local, office_time, office_today
from models.document_queue import Document
from models.handovers import (Handover, booking_refusal, book_handover, handover_refusal, hand_over_keys,
                              handovers_booked_on,
                              keys_refusal, notify_handovers, owed_before_handover, ready_for_handover,
                              record_inspection)
from models.labels import choice_label
from models.money import format_money
from models.permissions import can, scope_filter
from models.tickets import Ticket

from .base import ReadOnlyView, run_domain, succeeded
from .deal_sections import deal_section
from .deals import deal_unit
from .documents import DocumentButton, document_actions
from .filters import AgentFilter, of_agent
from .forms import HandoverBookingForm, InspectionForm, KeysForm
from .money import WorklistView
from .step_actions import FormStep, form_steps
from .steps import StepButton


def send_documents(documents) -> None:
    """Hand the queued documents to the workers once committed (the sweep sends them otherwise)."""
    try:
        enqueue_documents(db.session, documents)
    except QueueUnavailable:
        flash(gettext("The documents are recorded but the job queue cannot be reached; they will "
                      "be rendered as soon as it is back."), "warning")


# --- signed deals ready for the handover: notices ---------------------------------------------------

def _owed(view, context, sub, name):
    owed = owed_before_handover(db.session, sub)
    if not owed:
        return Markup('<span class="badge badge-status status-paid">%s</span>') % gettext("Settled")
    return "; ".join(f"{label} {format_money(amount)}" for label, amount in owed)


class HandoverReadyView(WorklistView):
    """待交房: signed deals without a handover; the manager or customer service sends the notices
    (a batch), to those with nothing owed — the others come back with what they owe."""

    entity = "handover_ready"
    choices_of = "subscription"
    waiting = staticmethod(ready_for_handover)
    column_list = ("number", "customer_name", "unit", "agent", "status", "owed")
    column_labels = {"number": _l("Subscription number"), "owed": _l("Still owed")}
    column_formatters = {"owed": _owed}
    column_searchable_list = ("number", "customer_name")
    unit_search = "unit"
    column_filters = (AgentFilter(Subscription.agent_id),)
    operations = {"notify": "handover.notify"}

    @action("notify", _l("Send handover notices"), _l("Send handover notices to the selected deals?"))
    def action_notify(self, ids):
        result = run_domain(lambda by: notify_handovers(db.session, by, [int(i) for i in ids]))
        if not succeeded(result):
            return
        created, refused = result
        if created:
            flash(gettext("%(n)d handover notice(s) sent.", n=len(created)), "success")
            send_documents(db.session.scalars(select(Document).where(
                Document.kind == "handover_notice", Document.subject_id.in_([h.id for h in created]),
                Document.status == "queued", Document.job_id.is_(None))).all())
        for sub, why in refused:
            flash(gettext("%(deal)s: %(why)s", deal=f"{sub.number} {sub.customer_name}", why=str(why)), "error")


# --- the handovers ---------------------------------------------------------------------------------

def _appointment(view, context, row, name):
    return office_time(row.appointment_at)


def _status(view, context, row, name):
    return Markup('<span class="badge badge-status status-%s">%s</span>') % (
        row.status, choice_label("handover", "status", row.status))


def _items(view, context, row, name):
    """The checklist with its results and the defects' tickets (the details page)."""
    rows = []
    for item in row.items:
        result = "—" if item.passed is None else gettext("Passed") if item.passed else gettext("Failed")
        ticket = ""
        if item.ticket_id:
            number = db.session.scalar(select(Ticket.number).where(Ticket.id == item.ticket_id))
            ticket = Markup('<a href="/admin/ticket/details/?id=%d">%s</a>') % (item.ticket_id, number)
        rows.append(Markup('<tr class="%s"><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>') % (
            "table-danger" if item.passed is False else "", item.seq, item.item, result, item.note, ticket))
    return Markup('<table class="table table-sm handover-items"><thead><tr><th>#</th><th>%s</th><th>%s</th>'
                  '<th>%s</th><th>%s</th></tr></thead><tbody>%s</tbody></table>') % (
        gettext("Item"), gettext("Result"), gettext("Note"), gettext("Defect ticket"), Markup("").join(rows))


def _results(form_data, handover) -> dict:
    return {item.id: (form_data.get(f"item_{item.id}", "pass") != "fail", form_data.get(f"note_{item.id}", ""))
            for item in handover.items}


def _of_its_deal(handover) -> dict:
    return {"subscription": handover.subscription}


def _keys_done(form, handover, result):
    _, record = result
    send_documents([record])
    return gettext("Keys handed over: %(deal)s.", deal=handover.subscription.number)


HANDOVER_STEPS = form_steps(
    FormStep("book", _l("Book the handover"), HandoverBookingForm, one=_l("Select exactly one handover."),
             context=_of_its_deal,
             fill=lambda h: {"appointment_at": office_local(h.appointment_at).replace(tzinfo=None)
                             if h.appointment_at else None},
             run=lambda by, form, h: book_handover(db.session, by, h.id, form.appointment_at.data),
             done=lambda form, h, booked: gettext("Handover booked for %(at)s.",
                                                  at=form.appointment_at.data.strftime("%Y-%m-%d %H:%M")),
             missing=_l("Give the appointment's date and time.")),
    FormStep("inspect", _l("Record the inspection"), InspectionForm, one=_l("Select exactly one handover."),
             context=lambda h: {"handover": h}, template="admin/handover_inspect.html",
             run=lambda by, form, h: record_inspection(db.session, by, h.id, _results(request.form, h)),
             done=lambda form, h, done: gettext("Inspection recorded; %(n)d defect(s) opened as tickets.",
                                                n=sum(1 for i in h.items if i.passed is False)),
             missing=_l("Give a result for every item of the inspection.")),
    FormStep("keys", _l("Hand over the keys"), KeysForm, one=_l("Select exactly one handover."), again=True,
             context=_of_its_deal, fill=lambda h: {"on": office_today(), "keys_count": 2},
             run=lambda by, form, h: hand_over_keys(db.session, by, h.id, signed_by=form.signed_by.data,
                                                    keys_count=form.keys_count.data,
                                                    meter_readings=form.meter_readings.data, on=form.on.data,
                                                    key=form.sent_key()),
             done=_keys_done, unknown=_l("Select exactly one handover."),
             missing=_l("Enter who signed, how many keys and the date.")))


class AppointmentDayFilter(BaseSQLAFilter):
    """Appointments on one office day (a date)."""

    def apply(self, query, value, alias=None):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return query
        return query.filter(handovers_booked_on(day))

    def operation(self):
        return gettext("on the day")


class HandoverView(document_actions("handover_notice"), HANDOVER_STEPS, ReadOnlyView):
    """交房: from the notice to the keys (R-AFT-4)."""

    column_list = ("subscription", "subscription.customer_name", "unit", "status", "appointment_at",
                   "inspected_on", "keys_handed_on", "keys_count")
    column_details_list = ("subscription", "subscription.customer_name", "unit", "status", "notified_on",
                           "appointment_at", "inspected_on", "keys_handed_on", "keys_count", "signed_by",
                           "meter_readings", "handed_over_by", "items")
    column_labels = {"subscription": _l("Subscription"), "subscription.customer_name": _l("Customer"),
                     "appointment_at": _l("Appointment"), "inspected_on": _l("Inspected on"),
                     "keys_handed_on": _l("Keys handed over on"), "keys_count": _l("Keys"),
                     "signed_by": _l("Signed for by"), "items": _l("Inspection"),
                     "notified_on": _l("Notified on"), "handed_over_by": _l("Handed over by"),
                     "meter_readings": _l("Meter readings")}
    column_formatters = {"unit": deal_unit, "appointment_at": _appointment, "status": _status}
    column_formatters_detail = {**column_formatters, "items": _items}
    column_formatters_export = {"unit": deal_unit, "appointment_at": _appointment}
    column_sortable_list = (("subscription", "subscription.number"), "status", "appointment_at", "inspected_on",
                            "keys_handed_on")
    column_default_sort = ("appointment_at", False)
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("status", AppointmentDayFilter(Handover.appointment_at, _l("Appointment day")),
                      AgentFilter(Handover.subscription_id, where=of_agent(Handover.subscription_id)))
    extra_endpoints = {"book_view": "action", "inspect_view": "action", "keys_view": "action"}
    operations = {"book": "handover.book", "inspect": "handover.inspect", "keys": "handover.keys",
                  "book_view": "handover.book", "inspect_view": "handover.inspect", "keys_view": "handover.keys"}
    column_extra_row_actions = [DocumentButton("handover_notice"), DocumentButton("handover_record")]
    row_steps = (StepButton("book", "handover.book", icon="fa-calendar",
                            why_not=lambda h: booking_refusal(current_user, h)),
                 StepButton("inspect", "handover.inspect", icon="fa-check-square-o",
                            when=lambda h: h.status in ("notified", "booked")),
                 StepButton("keys", "handover.keys", icon="fa-key",
                            when=lambda h: h.status == "inspected",
                            why_not=lambda h: keys_refusal(db.session, h), explain=("R-AFT-4",)))

    def _of_the_day(self, query):
        """?day=YYYY-MM-DD (the home page's "booked today"): the appointments of that office day."""
        try:
            day = dt.date.fromisoformat(request.args.get("day", ""))
        except ValueError:
            return query
        return query.filter(handovers_booked_on(day))

    def get_query(self):
        return self._of_the_day(super().get_query()).options(
            joinedload(Handover.subscription).joinedload(Subscription.unit).joinedload(Unit.building))

    def get_count_query(self):
        return self._of_the_day(super().get_count_query())


# --- the deal's page: its handover, or what it still owes ---------------------------------------------

def _deal_handover(sub):
    if not can(current_user, "handover", "list") or sub.status != "contracted":
        return None
    query = select(Handover).where(Handover.subscription_id == sub.id, Handover.status != "cancelled")
    clause = scope_filter(Handover, current_user)
    if clause is not None:
        query = query.where(clause)
    handover = db.session.scalar(query)
    why = handover_refusal(db.session, sub) if handover is None or handover.status != "handed_over" else None
    return {"handover": handover, "owed": str(why) if why is not None and why.rule == "R-AFT-4" else "",
            "status": choice_label("handover", "status", handover.status) if handover else "",
            "appointment": office_time(handover.appointment_at) if handover else "",
            "defects": [i for i in handover.items if i.passed is False] if handover else []}


deal_section("admin/deal/_handover.html", _deal_handover)
