"""Contracts after the deposit: booking's follow-through, signing, the post-signing steps, and the
contract archive (originals received, stamped copies issued)."""
from __future__ import annotations

from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import joinedload
from wtforms.fields.choices import SelectChoice

from models import Contract, Subscription, Unit, User, db
from models.base import office_today
from models.contracts import (issue_stamped_copy, receive_original, sign_contract, step_refusal, steps_late,
                              update_step)
from models.ladder import request_signing_extension, signing_extension_refusal

from .base import ReadOnlyView
from .deals import deal_unit
from .documents import DocumentButton, document_actions
from .filters import AgentFilter, of_agent
from .forms import ExtensionRequestForm, OriginalForm, SigningForm, StampedCopyForm, StepForm
from .step_actions import FormStep, form_steps
from .steps import StepButton


def _of_its_deal(contract) -> dict:
    return {"subscription": contract.subscription}


CONTRACT_STEPS = form_steps(
    FormStep("signing_extension", _l("Request more time to sign"), ExtensionRequestForm, url="/signing-extension/",
             one=_l("Select exactly one contract."), context=_of_its_deal,
             run=lambda by, form, contract: request_signing_extension(db.session, by, contract.id, form.days.data,
                                                                      form.reason.data),
             done=lambda form, contract, extension: gettext(
                 "Extension of the signing date requested; whoever decides it has been told."),
             missing=_l("Give the days (1 to 365) and the reason, and select at least one line.")),
    FormStep("original", _l("Receive the original (archive)"), OriginalForm, title=_l("Receive the original"),
             one=_l("Select exactly one contract."), context=_of_its_deal,
             fill=lambda contract: {"received_on": office_today()},
             run=lambda by, form, contract: receive_original(db.session, by, contract.id,
                                                             received_on=form.received_on.data,
                                                             location=form.location.data),
             done=lambda form, contract, record: gettext("Original archived."),
             missing=_l("Give the date received and where the original is kept.")),
    FormStep("sign", _l("Enter the signed contract (lawyer)"), SigningForm, title=_l("Enter the signed contract"),
             one=_l("Select exactly one contract."), context=_of_its_deal,
             fill=lambda contract: {"signed_on": office_today()},
             run=lambda by, form, contract: sign_contract(db.session, by, contract.id, number=form.number.data,
                                                          signed_on=form.signed_on.data, bank=form.bank.data),
             done=lambda form, contract, signed: gettext("Contract %(number)s entered.", number=form.number.data),
             missing=_l("Enter the contract number and the signing date.")))


class ContractView(document_actions("signing_booking"), CONTRACT_STEPS, ReadOnlyView):
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


def _progress_of(step) -> dict:
    return {"status": step.status, "promised_on": step.promised_on, "done_on": step.done_on,
            "customer_action": step.customer_action, "notes": step.notes}


PROGRESS_STEP = form_steps(FormStep(
    "step", _l("Enter the progress (lawyer)"), StepForm, title=_l("Enter the progress"),
    one=_l("Select exactly one step."), fill=_progress_of,
    context=lambda step: {"subscription": step.contract.subscription},
    run=lambda by, form, step: update_step(
        db.session, by, step.id, status=form.status.data, promised_on=form.promised_on.data,
        done_on=form.done_on.data, customer_action=form.customer_action.data, notes=form.notes.data),
    done=lambda form, step, updated: gettext("Progress saved."),
    missing=_l("Choose the status of the step.")))


class ContractStepView(PROGRESS_STEP, ReadOnlyView):
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


def _staff_choices(form, rows=()):
    """Who may receive a stamped copy: the active staff."""
    form.to_user_id.choices = [SelectChoice(u.id, str(u)) for u in
                               db.session.query(User).filter(User.active.is_(True)).order_by(User.username)]


COPY_STEP = form_steps(FormStep(
    "copy", _l("Issue a stamped copy (archive)"), StampedCopyForm, title=_l("Issue a stamped copy"),
    one=_l("Select exactly one contract."), prepare=_staff_choices,
    fill=lambda record: {"issued_on": office_today()},
    context=lambda record: {"subscription": record.contract.subscription},
    run=lambda by, form, record: issue_stamped_copy(db.session, by, record.id, to_user_id=form.to_user_id.data,
                                                    issued_on=form.issued_on.data, note=form.note.data),
    done=lambda form, record, copy: gettext("Stamped copy recorded."),
    missing=_l("Choose who receives the copy and when.")))


class ArchiveRecordView(COPY_STEP, ReadOnlyView):
    """合同档案 — the contract register (R-CON-7): originals received, stamped copies issued."""

    column_list = ("contract", "received_on", "location", "notes")
    column_filters = ("received_on", "location")
    column_searchable_list = ("location", "contract.number")
    unit_search = "contract.subscription.unit"
    extra_endpoints = {"copy_view": "action"}
    row_steps = (StepButton("copy", "contract.archive", icon="fa-files-o"),)


class StampedCopyView(ReadOnlyView):
    column_list = ("record", "issued_to", "issued_on", "note")
    column_labels = {"record": _l("Contract archive"), "issued_to": _l("Given to"),
                     "issued_on": _l("Issued on"), "note": _l("Notes")}
