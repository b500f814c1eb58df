"""Contracts after the deposit: booking's follow-through, signing, the post-signing steps, and the
contract archive (originals received, stamped copies issued)."""
from __future__ import annotations

from flask import flash
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import get_form_data
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import joinedload
from wtforms.fields.choices import SelectChoice

from models import ArchiveRecord, Contract, ContractStep, Subscription, Unit, db
from models.base import office_today
from models.contracts import (issue_stamped_copy, receive_original, sign_contract, step_refusal, steps_late,
                              update_step)
from models.ladder import request_signing_extension, signing_extension_refusal

from .base import ReadOnlyView, run_domain
from .deals import deal_unit
from .documents import DocumentButton, document_actions
from .filters import AgentFilter, of_agent
from .forms import ExtensionRequestForm, OriginalForm, SigningForm, StampedCopyForm, StepForm
from .steps import StepButton


class ContractView(document_actions("signing_booking"), ReadOnlyView):
    """合同: booked from the payment progress, entered by the lawyer after signing (R-CON-2/4)."""

    column_list = ("number", "subscription", "subscription.customer_name", "unit", "kind", "status",
                   "appointment_at", "signing_due_on", "signed_on", "bank", "lawyer")
    column_labels = {"number": _l("Contract number")}
    column_sortable_list = ("number", ("subscription", "subscription.number"),
                            ("subscription.customer_name", "subscription.customer_name"),
                            ("unit", "subscription.unit.number"), "kind", "status", "appointment_at",
                            "signing_due_on", "signed_on", "bank", ("lawyer", "lawyer.display_name"))
    column_formatters = column_formatters_export = {"unit": deal_unit}
    column_searchable_list = ("number", "subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("status", "kind", "signed_on", "appointment_at", "subscription.project.name",
                      AgentFilter(Contract.subscription_id, where=of_agent(Contract.subscription_id)))
    extra_endpoints = {"sign_view": "action", "original_view": "action", "signing_extension_view": "action"}
    column_extra_row_actions = [DocumentButton("signing_booking")]
    row_steps = (StepButton("sign", "contract.sign", when=lambda c: c.status == "booked", icon="fa-pencil"),
                 StepButton("signing_extension", "signing.extension.request", icon="fa-clock-o",
                            why_not=lambda c: signing_extension_refusal(current_user, c)),
                 StepButton("original", "contract.archive", when=lambda c: c.status == "registered", icon="fa-archive"))

    def get_query(self):
        # The deal's unit (with its building) with the page: one query, not two a row.
        return super().get_query().options(
            joinedload(Contract.subscription).joinedload(Subscription.unit).joinedload(Unit.building))

    @action("signing_extension", _l("Request more time to sign"))
    def action_signing_extension(self, ids):
        rows = self.get_query().filter(Contract.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        return self.render("admin/deal_step.html", form=ExtensionRequestForm(ids=str(rows[0].id)),
                           subscription=rows[0].subscription, action_url=self.get_url(".signing_extension_view"),
                           title=_l("Request more time to sign"))

    @expose("/signing-extension/", methods=("POST",))
    def signing_extension_view(self):
        form = ExtensionRequestForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(Contract.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Give the days (1 to 365) and the reason, and select at least one line."), "error")
        elif run_domain(lambda by: request_signing_extension(db.session, by, rows[0].id, form.days.data,
                                                             form.reason.data)):
            flash(gettext("Extension of the signing date requested; whoever decides it has been told."), "success")
        return self.back()

    @action("original", _l("Receive the original (archive)"))
    def action_original(self, ids):
        rows = self.get_query().filter(Contract.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        form = OriginalForm(ids=str(rows[0].id), received_on=office_today())
        return self.render("admin/deal_step.html", form=form, subscription=rows[0].subscription,
                           action_url=self.get_url(".original_view"), title=_l("Receive the original"))

    @expose("/original/", methods=("POST",))
    def original_view(self):
        form = OriginalForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(Contract.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Give the date received and where the original is kept."), "error")
        elif run_domain(lambda by: receive_original(db.session, by, rows[0].id, received_on=form.received_on.data,
                                                    location=form.location.data)):
            flash(gettext("Original archived."), "success")
        return self.back()

    @action("sign", _l("Enter the signed contract (lawyer)"))
    def action_sign(self, ids):
        rows = self.get_query().filter(Contract.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        form = SigningForm(ids=str(rows[0].id), signed_on=office_today())
        return self.render("admin/deal_step.html", form=form, subscription=rows[0].subscription,
                           action_url=self.get_url(".sign_view"), title=_l("Enter the signed contract"))

    @expose("/sign/", methods=("POST",))
    def sign_view(self):
        form = SigningForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(Contract.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Enter the contract number and the signing date."), "error")
        elif run_domain(lambda by: sign_contract(db.session, by, rows[0].id, number=form.number.data,
                                                 signed_on=form.signed_on.data, bank=form.bank.data)):
            flash(gettext("Contract %(number)s entered.", number=form.number.data), "success")
        return self.back()


class ContractStepView(ReadOnlyView):
    """签约后办理进度 (R-CON-6): the lawyer enters progress; agents read their customers' steps."""

    column_list = ("contract", "kind", "status", "promised_on", "done_on", "customer_action", "notes")
    column_filters = ("status", "kind", "promised_on")
    column_searchable_list = ("contract.number", "contract.subscription.customer_name")
    unit_search = "contract.subscription.unit"
    column_default_sort = ("promised_on", False)
    extra_endpoints = {"step_view": "action"}
    row_steps = (StepButton("step", "contract.step", icon="fa-pencil",
                            when=lambda s: s.status != "done" and s.contract.status != "rescinded",
                            why_not=lambda s: step_refusal(s, "in_progress"), explain=("R-CON-6",)),)

    @action("step", _l("Enter the progress (lawyer)"))
    def action_step(self, ids):
        rows = self.get_query().filter(ContractStep.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one step."), "error")
            return None
        step = rows[0]
        form = StepForm(ids=str(step.id), status=step.status, promised_on=step.promised_on,
                        done_on=step.done_on, customer_action=step.customer_action, notes=step.notes)
        return self.render("admin/deal_step.html", form=form, subscription=step.contract.subscription,
                           action_url=self.get_url(".step_view"), title=_l("Enter the progress"))

    @expose("/step/", methods=("POST",))
    def step_view(self):
        form = StepForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(ContractStep.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Choose the status of the step."), "error")
        elif run_domain(lambda by: update_step(
                db.session, by, rows[0].id, status=form.status.data, promised_on=form.promised_on.data,
                done_on=form.done_on.data, customer_action=form.customer_action.data, notes=form.notes.data)):
            flash(gettext("Progress saved."), "success")
        return self.back()


class ContractStepDueView(ReadOnlyView):
    """Procedures past their promised date, not done: the lawyer's worklist (R-CON-6)."""

    entity = "contract_step_due"
    choices_of = "contract_step"
    verbs = frozenset({"list", "details"})
    column_list = ("contract", "kind", "status", "promised_on", "customer_action")
    column_default_sort = ("promised_on", False)
    column_searchable_list = ("contract.number", "contract.subscription.customer_name")
    unit_search = "contract.subscription.unit"

    def _late(self, query):
        return query.filter(steps_late(office_today()))

    def get_query(self):
        return self._late(super().get_query())

    def get_count_query(self):
        return self._late(super().get_count_query())


class ArchiveRecordView(ReadOnlyView):
    """合同档案 — the contract register (R-CON-7): originals received, stamped copies issued."""

    column_list = ("contract", "received_on", "location", "notes")
    column_filters = ("received_on", "location")
    column_searchable_list = ("location", "contract.number")
    unit_search = "contract.subscription.unit"
    extra_endpoints = {"copy_view": "action"}
    row_steps = (StepButton("copy", "contract.archive", icon="fa-files-o"),)

    @action("copy", _l("Issue a stamped copy (archive)"))
    def action_copy(self, ids):
        rows = self.get_query().filter(ArchiveRecord.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        form = StampedCopyForm(ids=str(rows[0].id), issued_on=office_today())
        _staff_choices(form)
        return self.render("admin/deal_step.html", form=form, subscription=rows[0].contract.subscription,
                           action_url=self.get_url(".copy_view"), title=_l("Issue a stamped copy"))

    @expose("/copy/", methods=("POST",))
    def copy_view(self):
        form = StampedCopyForm(get_form_data())
        _staff_choices(form)
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(ArchiveRecord.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Choose who receives the copy and when."), "error")
        elif run_domain(lambda by: issue_stamped_copy(db.session, by, rows[0].id, to_user_id=form.to_user_id.data,
                                                      issued_on=form.issued_on.data, note=form.note.data)):
            flash(gettext("Stamped copy recorded."), "success")
        return self.back()


def _staff_choices(form):
    from models import User
    form.to_user_id.choices = [SelectChoice(u.id, str(u)) for u in
                               db.session.query(User).filter(User.active.is_(True)).order_by(User.username)]


class StampedCopyView(ReadOnlyView):
    column_list = ("record", "issued_to", "issued_on", "note")
    column_labels = {"record": _l("Contract archive"), "issued_to": _l("Given to"),
                     "issued_on": _l("Issued on"), "note": _l("Notes")}
