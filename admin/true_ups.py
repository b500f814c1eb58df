"""Area true-up screens (R-AFT-3): a building's batches (/admin/true_up_batch/: totals, the
surveyed areas' page per building — entered by file —, compute, apply, the notices), the deals'
true-ups (/admin/true_up/: areas, ratio, money, the refund step), the deal page's section.
The rules are models/true_ups.py (`true_up_amounts` is the one definition)."""
from __future__ import annotations

import datetime as dt

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import select
from wtforms import DateField, HiddenField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from models import Building, Charge, Project, RuleViolation, TrueUp, Unit, Voucher, db
from models.base import office_today
from models.inventory import PriceListRejected
from models.labels import choice_label
from models.money import format_money
from models.permissions import can, can_do
from models.true_ups import (apply_batch, batch_totals, compute_batch, import_surveyed_areas, read_surveyed_areas,
                             refund_true_up, true_up_of)

from .base import ReadOnlyView, run_domain, succeeded
from .deal_sections import deal_section
from .documents import BUTTON_LABELS, SHORT_LABELS, DocumentButton, document_actions, request_and_enqueue
from .filters import AgentFilter, of_agent
from .forms import KeyedForm
from .labels import CHOICES
from .rows import per_request
from .step_actions import FormStep, form_steps
from .steps import StepButton

# The notice's buttons (admin/documents.py keeps one label per kind; this kind's are set here).
BUTTON_LABELS.setdefault("true_up_notice", _l("Print the area true-up notice"))
SHORT_LABELS.setdefault("true_up_notice", _l("True-up notice"))

TOTALS = {"units": _l("Deals"), "up": _l("Larger"), "down": _l("Smaller"), "beyond": _l("Beyond ±3 %"),
          "buyers_pay": _l("Buyers pay"), "refunds": _l("Refunds"), "double": _l("Of which double"),
          "developer_bears": _l("Developer bears")}


def _totals(batch) -> dict:
    return per_request(("true_up_totals", batch.id), lambda: batch_totals(db.session, [batch.id])[batch.id])


def _total(view, context, batch, name):
    value = _totals(batch)[name]
    return value if isinstance(value, int) else format_money(value)


def _true_ups_table(view, context, batch, name):
    """The batch's true-ups, on its details page."""
    rows = Markup("").join(
        Markup('<tr><td><a href="%s">%s</a></td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
               '<td>%s</td><td>%s</td></tr>') % (
            url_for("true_up.details_view", id=t.id), t.subscription.number, t.unit, t.contract_area, t.surveyed_area,
            t.ratio_percent, format_money(t.buyer_pays), format_money(t.refund), format_money(t.developer_bears),
            Markup('<span class="badge badge-status status-%s">%s</span>') % (
                t.status, choice_label("true_up", "status", t.status)))
        for t in batch.true_ups)
    head = "".join(f"<th>{label}</th>" for label in (
        gettext("Subscription"), gettext("Unit"), gettext("Contract area (m²)"), gettext("Surveyed area (m²)"),
        gettext("Error ratio (%)"), gettext("Buyer pays"), gettext("Refund"), gettext("Developer bears"),
        gettext("Status")))
    return Markup('<table class="table table-sm table-bordered true-ups"><thead><tr>%s</tr></thead><tbody>%s'
                  '</tbody></table>') % (Markup(head), rows)


class ConfirmForm(KeyedForm):
    """A money step with nothing to fill in: its one-time key makes a double click count once."""

    ids = HiddenField(validators=[DataRequired()])


class RefundForm(KeyedForm):
    """A true-up's refund voucher (R-AFT-3): how it is paid, and when."""

    ids = HiddenField(validators=[DataRequired()])
    channel = SelectField(_l("Refunded by"), choices=[SelectChoice(v, label) for v, label in CHOICES[("payment", "channel")].items()], validators=[DataRequired()])
    issued_on = DateField(_l("Date"), validators=[DataRequired()])


APPLY_STEP = form_steps(FormStep(
    "apply", _l("Apply (charges and refunds)"), ConfirmForm, one=_l("Select exactly one batch."), again=True,
    context=lambda batch: {"batch": batch, "totals": _totals(batch), "total_labels": TOTALS},
    template="admin/true_up_step.html",
    run=lambda by, form, batch: apply_batch(db.session, by, batch.id, key=form.sent_key()),
    done=lambda form, batch, result: gettext("The true-up of %(batch)s is applied: charges made, refunds "
                                             "waiting for their vouchers.", batch=str(batch))))


class TrueUpBatchView(APPLY_STEP, ReadOnlyView):
    """面积补差批次: a building's true-up, computed from its surveyed areas, applied by finance."""

    column_list = ("id", "building", "surveyed_on", "status", *TOTALS, "created_by", "applied_at")
    column_details_list = (*column_list, "note", "true_ups")
    column_labels = {**TOTALS, "true_ups": _l("Area true-ups"), "id": _l("Batch")}
    column_formatters = {**{name: _total for name in TOTALS}, "true_ups": _true_ups_table}
    column_filters = ("status", "surveyed_on", "building.name")
    column_default_sort = ("id", True)
    extra_endpoints = {"apply_view": "action", "survey": "action", "survey_upload": "action",
                       "survey_compute": "action"}
    operations = {"apply": "true_up.apply", "apply_view": "true_up.apply", "survey": "true_up.survey",
                  "survey_upload": "true_up.survey", "survey_compute": "true_up.survey"}
    action_verbs = {"notices": "list"}
    row_steps = (StepButton("apply", "true_up.apply", when=lambda b: b.status == "draft", icon="fa-money"),
                 StepButton("notices", None, icon="fa-file-pdf-o", style="secondary"))
    list_template = "admin/true_up_batch_list.html"

    def render(self, template, **kwargs):
        if template == self.list_template:
            kwargs["may_survey"] = self._allowed("action") and can_do(current_user, "true_up.survey")
        return super().render(template, **kwargs)

    @action("notices", _l("Notices (PDF, every deal of the batch)"))
    def action_notices(self, ids):
        true_ups = db.session.scalars(select(TrueUp.id).where(
            TrueUp.batch_id.in_([int(i) for i in ids]), TrueUp.status != "void")).all()
        if not true_ups:
            flash(gettext("These batches have no true-up to notify."), "error")
            return redirect(self.get_url(".index_view"))
        return request_and_enqueue("true_up_notice", true_ups)

    # --- the surveyed areas of a building, then its computation -------------------------------------
    def _survey_page(self, building_id=None, errors=None):
        buildings = db.session.execute(select(Building.id, Building.name, Project.name)
                                       .join(Project, Building.project_id == Project.id)
                                       .order_by(Project.name, Building.name)).all()
        units = db.session.scalars(select(Unit).where(Unit.building_id == building_id)
                                   .order_by(Unit.floor, Unit.position)).all() if building_id else []
        return self.render("admin/true_up_survey.html", buildings=buildings, building_id=building_id, units=units,
                           errors=errors, today=office_today())

    def _building_arg(self):
        value = request.values.get("building_id", "")
        return int(value) if value.isdigit() and len(value) < 12 else None

    @expose("/survey/")
    def survey(self):
        return self._survey_page(self._building_arg())

    @expose("/survey/upload", methods=("POST",))
    def survey_upload(self):
        building_id = self._building_arg()
        upload = request.files.get("file")
        if building_id is None or upload is None or not upload.filename:
            flash(gettext("Choose the building and the file of its surveyed areas."), "error")
            return redirect(self.get_url(".survey", building_id=building_id or ""))
        try:
            surveyed_on = dt.date.fromisoformat(request.form.get("surveyed_on", ""))
        except ValueError:
            surveyed_on = None
        content = upload.read()
        try:
            rows = read_surveyed_areas(content, upload.filename)
            count = import_surveyed_areas(db.session, current_user._get_current_object(), building_id, rows,
                                          surveyed_on)
            db.session.commit()
        except PriceListRejected as exc:
            db.session.rollback()
            return self._survey_page(building_id, errors=exc.rows())
        except RuleViolation as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(self.get_url(".survey", building_id=building_id))
        flash(gettext("Surveyed areas of %(n)d units recorded.", n=count), "success")
        return redirect(self.get_url(".survey", building_id=building_id))

    @expose("/survey/compute", methods=("POST",))
    def survey_compute(self):
        building_id = self._building_arg()
        try:
            surveyed_on = dt.date.fromisoformat(request.form.get("surveyed_on", ""))
        except ValueError:
            surveyed_on = None
        batch = run_domain(lambda by: compute_batch(db.session, by, building_id or 0, surveyed_on))
        if not succeeded(batch):
            return redirect(self.get_url(".survey", building_id=building_id or ""))
        flash(gettext("%(n)d deals computed: check the batch, then finance applies it.", n=len(batch.true_ups)),
              "success")
        return redirect(self.get_url(".details_view", id=batch.id))


# --- the deals' true-ups ----------------------------------------------------------------------------

def _refund_pending(true_up) -> bool:
    return true_up.status == "applied" and true_up.refund > 0 and _voucher_no(true_up) is None


def _voucher_no(true_up):
    return per_request(("true_up_voucher", true_up.id), lambda: db.session.scalar(
        select(Voucher.number).where(Voucher.true_up_id == true_up.id)))


def _settled(view, context, true_up, name):
    """What was made of it: the refund's voucher, or the charge and what is still owed."""
    if true_up.refund > 0:
        number = _voucher_no(true_up)
        return gettext("Refunded, voucher %(no)s", no=number) if number else (
            gettext("Refund due") if true_up.status == "applied" else "")
    charge = db.session.scalar(select(Charge).where(Charge.true_up_id == true_up.id))
    if charge is None:
        return ""
    if charge.outstanding <= 0:
        return gettext("Paid")
    return gettext("%(amount)s to pay by %(due)s", amount=format_money(charge.outstanding), due=charge.due_on)


def cancel_button(sub) -> Markup:
    """Beyond ±3 % (R-AFT-3): the deal's "Cancel with refund" request (admin/changes.py), as its
    own step button posts it; shown to those who may ask for a change."""
    if not can_do(current_user, "change.request") or sub.status not in ("active", "contracted"):
        return Markup("")
    return Markup(
        '<form class="d-inline true-up-cancel" method="POST" action="%s">'
        '<input type="hidden" name="csrf_token" value="%s"><input type="hidden" name="action" value="cancel_deal">'
        '<input type="hidden" name="rowid" value="%s"><input type="hidden" name="url" value="%s">'
        '<button type="submit" class="btn btn-sm btn-outline-danger" data-step="cancel_deal">'
        '<span class="fa fa-ban"></span> %s</button></form>') % (
        url_for("subscription.action_view"), generate_csrf(), sub.id,
        url_for("subscription.details_view", id=sub.id), gettext("Request the cancellation (full refund)"))


def _may_cancel(view, context, true_up, name):
    if not true_up.may_cancel:
        return gettext("No")
    text = Markup('<span class="badge badge-status status-warning">%s</span>') % gettext("Yes: beyond ±3 %")
    return text + (Markup(" ") + cancel_button(true_up.subscription) if name == "may_cancel_detail" else "")


REFUND_STEP = form_steps(FormStep(
    "refund", _l("Refund (voucher)"), RefundForm, one=_l("Select exactly one true-up."), again=True,
    fill=lambda true_up: {"issued_on": office_today(), "channel": "bank_transfer"},
    context=lambda true_up: {"subscription": true_up.subscription, "true_up": true_up},
    template="admin/true_up_step.html",
    run=lambda by, form, true_up: refund_true_up(db.session, by, true_up.id, channel=form.channel.data,
                                                 issued_on=form.issued_on.data, key=form.sent_key()),
    done=lambda form, true_up, voucher: gettext("Voucher %(no)s recorded.", no=voucher.number)))


class TrueUpView(document_actions("true_up_notice"), REFUND_STEP, ReadOnlyView):
    """面积补差: per deal, the areas, the ratio and who pays what (art. 20); agents see their own."""

    column_list = ("subscription", "subscription.customer_name", "unit", "contract_area", "surveyed_area",
                   "ratio_percent", "unit_price", "buyer_pays", "refund", "refund_double_part", "developer_bears",
                   "may_cancel", "status", "settled")
    column_details_list = ("subscription", "subscription.customer_name", "unit", "batch", "contract_area",
                           "surveyed_area", "ratio_percent", "unit_price", "buyer_pays", "refund", "refund_double_part",
                           "developer_bears", "may_cancel_detail", "status", "applied_on", "settled")
    column_labels = {"settled": _l("Settled"), "may_cancel_detail": _l("Buyer may cancel"),
                     "contract_area": _l("Contract area (m²)")}
    column_formatters = {"settled": _settled, "may_cancel": _may_cancel, "may_cancel_detail": _may_cancel}
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "unit"
    column_filters = ("status", "may_cancel", "batch_id",
                      AgentFilter(TrueUp.subscription_id, where=of_agent(TrueUp.subscription_id)))
    column_default_sort = ("id", True)
    action_verbs = {"refund": "list", "document_true_up_notice": "list"}
    extra_endpoints = {"refund_view": "list"}
    operations = {"refund": "true_up.refund", "refund_view": "true_up.refund"}
    column_extra_row_actions = [DocumentButton("true_up_notice")]
    row_steps = (StepButton("refund", "true_up.refund", when=_refund_pending, icon="fa-money"),)


# --- the deal's page ---------------------------------------------------------------------------------

def _deal_true_up(sub):
    if not can(current_user, "true_up", "list"):
        return None
    true_up = true_up_of(db.session, sub.id)
    if true_up is None:
        return None
    return {"true_up": true_up, "settled": _settled(None, None, true_up, "settled"),
            "cancel": cancel_button(sub) if true_up.may_cancel else Markup(""),
            "status": choice_label("true_up", "status", true_up.status)}


deal_section("admin/deal/_true_up.html", _deal_true_up)
