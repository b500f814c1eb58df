"""Forms of the domain operations (not generic model forms): money goes to models/ from here."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (BooleanField, DateField, DateTimeLocalField, FieldList, Form, FormField, HiddenField,
                     IntegerField, SelectField, StringField, SubmitField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from models.errors import RuleViolation
from models.money import parse_money
from models.submissions import new_key

from .base import SecureForm
from .labels import CHOICES


class MoneyField(StringField):
    """An amount as staff type it (50000, 50,000.00, ¥５００００), read by the one money parser
    (models/money.py): its refusal shows under the field, and the domain reads the value again."""

    def process_formdata(self, valuelist):
        self.data = None
        if valuelist and str(valuelist[0]).strip():
            try:
                self.data = parse_money(valuelist[0], self.label.text)
            except RuleViolation as exc:
                raise ValueError(str(exc.message)) from None

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return f"{self.data:.2f}" if self.data is not None else ""


def _choices(entity, column):
    return [SelectChoice(value, label) for value, label in CHOICES[(entity, column)].items()]


class SubscriptionForm(SecureForm):
    """The subscription agreement (认购书, R-SUB-1): every term, complete."""

    unit_id = HiddenField(validators=[DataRequired()])
    lead_id = SelectField(_l("Customer"), coerce=int, validators=[DataRequired()],
                          render_kw={"data-prefill-document": "1"})
    id_type = SelectField(_l("ID document"), choices=_choices("subscription", "customer_id_type"),
                          default="resident_id", validators=[DataRequired()])
    # empty: the customer's registered document (models.deals.subscribe); read by models/identity.py
    id_number = StringField(_l("ID number"), validators=[Optional(), Length(max=30)])
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=200)])
    payment_method = SelectField(_l("Payment method"), choices=_choices("subscription", "payment_method"),
                                 validators=[DataRequired()])
    price = MoneyField(_l("Price"), validators=[Optional()])
    price_reason = TextAreaField(_l("Reason for a price other than the list price"),
                                 validators=[Optional(), Length(max=2000)])
    deposit = MoneyField(_l("Deposit"), validators=[InputRequired()])
    subscribed_on = DateField(_l("Subscribed on"), validators=[DataRequired()])
    deposit_due_on = DateField(_l("Deposit due on"), validators=[Optional()])


class KeyedForm(SecureForm):
    """A money form: its one-time submission key is made when the form is shown and sent back
    with it (models.submissions) — the same form sent twice records once."""

    submission_key = HiddenField(default=new_key)

    def sent_key(self) -> str:
        """The key the browser sent back ("" if none: the domain refuses that form as out of date);
        never the fresh default WTForms would put in its place."""
        return self.submission_key.raw_data[0] if self.submission_key.raw_data else ""


class DepositForm(KeyedForm):
    subscription_id = HiddenField(validators=[DataRequired()])
    amount = MoneyField(_l("Amount"), validators=[InputRequired()])
    paid_on = DateField(_l("Paid on"), validators=[DataRequired()])
    channel = SelectField(_l("Payment channel"), choices=_choices("payment", "channel"),
                          validators=[DataRequired()])
    bank_ref = StringField(_l("Bank reference"), validators=[Optional(), Length(max=60)])


class PaymentForm(DepositForm):
    instalment_id = SelectField(_l("Plan line (empty: the oldest open lines first)"), coerce=str,
                                validators=[Optional()])


class ReasonForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class ReversalForm(KeyedForm, ReasonForm):
    """A correction of a payment: money, so keyed like the other money forms."""


class VoucherForm(KeyedForm):
    """A refund or a retention of money held on a deal that is over (R-CHG-5)."""

    ids = HiddenField(validators=[DataRequired()])
    kind = SelectField(_l("Kind"), choices=_choices("voucher", "kind"), validators=[DataRequired()])
    amount = MoneyField(_l("Amount"), validators=[InputRequired()])
    issued_on = DateField(_l("Date"), validators=[DataRequired()])
    channel = SelectField(_l("Refunded by (refunds only)"), choices=[SelectChoice("", "—")] + _choices("payment", "channel"),
                          validators=[Optional()])
    reason = TextAreaField(_l("Reason (the agreement's clause, the customer's request)"),
                           validators=[DataRequired(), Length(max=2000)])


class EventForm(SecureForm):
    """What was done about a lawyer's letter, or the decision on a rescission (R-PAY-5)."""

    ids = HiddenField(validators=[DataRequired()])
    outcome = SelectField(_l("Outcome"), validators=[DataRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


class PauseForm(SecureForm):
    """The manager pauses a customer's follow-up until a date, with a reason (R-LEAD-3)."""

    ids = HiddenField(validators=[DataRequired()])
    until = DateField(_l("Paused until"), validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class NoteForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("What the customer said"), validators=[DataRequired(), Length(max=2000)])


class ExtensionRequestForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    days = IntegerField(_l("Days"), validators=[DataRequired(), NumberRange(min=1, max=365)])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class BookingForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    kind = SelectField(_l("Kind"), choices=_choices("contract", "kind"), validators=[DataRequired()])
    appointment_at = DateTimeLocalField(_l("Appointment"), format="%Y-%m-%dT%H:%M",
                                        validators=[DataRequired()])


class SigningForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    number = StringField(_l("Contract number"), validators=[DataRequired(), Length(max=40)])
    signed_on = DateField(_l("Signed on"), validators=[DataRequired()])
    bank = StringField(_l("Bank (mortgage contract)"), validators=[Optional(), Length(max=100)])


class StepForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    status = SelectField(_l("Status"), choices=_choices("contract_step", "status"), validators=[DataRequired()])
    promised_on = DateField(_l("Promised on"), validators=[Optional()])
    done_on = DateField(_l("Done on"), validators=[Optional()])
    customer_action = TextAreaField(_l("Customer must supply"), validators=[Optional(), Length(max=2000)])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])


class OriginalForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    received_on = DateField(_l("Received on"), validators=[DataRequired()])
    location = StringField(_l("Location"), validators=[DataRequired(), Length(max=100)])


class StampedCopyForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    to_user_id = SelectField(_l("Given to"), coerce=int, validators=[DataRequired()])
    issued_on = DateField(_l("Issued on"), validators=[DataRequired()])
    note = StringField(_l("Notes"), validators=[Optional(), Length(max=200)])


# --- deal changes (R-CHG-1…4): one form per kind of change, each with its reason -------------
MAX_BUYERS = 6


class BuyerRowForm(Form):
    """One buyer (权益人) of a buyer change: an empty row is no buyer. The domain checks the rest
    (models.changes.validate_buyers: a name, a valid document, shares totalling 100 %)."""

    name = StringField(_l("Buyer's name"), validators=[Optional(), Length(max=100)])
    id_type = SelectField(_l("ID document"), choices=_choices("deal_buyer", "id_type"), default="resident_id")
    id_number = StringField(_l("ID number"), validators=[Optional(), Length(max=30)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=30)])
    share = StringField(_l("Share (%)"), validators=[Optional(), Length(max=10)])

    def is_empty(self) -> bool:
        return not any(str(self[f].data or "").strip() for f in ("name", "id_number", "phone", "share"))


class ChangeForm(KeyedForm):
    """What every change request carries: the deal (or the request, to resubmit) and the reason."""

    ids = HiddenField(validators=[DataRequired()])
    reason = TextAreaField(_l("Reason for the change"), validators=[DataRequired(), Length(max=2000)])


class SwapForm(ChangeForm):
    """The new unit, chosen part by part (admin.changes._unit_choices): a part of the project on
    sale (a building, or a range of a large building's floors), then a unit of that part; `refresh`
    shows the part's units without sending the request (admin.step_actions.FormStep)."""

    part = SelectField(_l("Building"), coerce=str, validate_choice=False)
    refresh = SubmitField(_l("Show its units"))
    unit_id = SelectField(_l("New unit"), coerce=str, validators=[DataRequired()])


class BuyersForm(ChangeForm):
    buyers = FieldList(FormField(BuyerRowForm), label=_l("Buyers"), min_entries=MAX_BUYERS, max_entries=MAX_BUYERS)


class MethodForm(ChangeForm):
    payment_method = SelectField(_l("New payment method"), choices=_choices("subscription", "payment_method"),
                                 validators=[DataRequired()])


class PriceForm(ChangeForm):
    price = MoneyField(_l("New price"), validators=[InputRequired()])


class CancellationForm(ChangeForm):
    retain_deposit = BooleanField(_l("Retain the deposit (as the agreement says)"))
    fee = MoneyField(_l("Fee"), validators=[Optional()])


class DecisionForm(KeyedForm):
    """Rejecting or sending back a change request: the reason the requester reads."""

    ids = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


# --- handover (R-AFT-4) ---------------------------------------------------------------------------

class HandoverBookingForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    appointment_at = DateTimeLocalField(_l("Appointment"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()])


class InspectionForm(SecureForm):
    """The results come as item_<id> (pass / fail) and note_<id> per item of the checklist
    (templates/admin/handover_inspect.html)."""
    ids = HiddenField(validators=[DataRequired()])


class KeysForm(KeyedForm):
    ids = HiddenField(validators=[DataRequired()])
    signed_by = StringField(_l("Signed for by"), validators=[DataRequired(), Length(max=100)])
    keys_count = IntegerField(_l("Keys handed over"), validators=[DataRequired(), NumberRange(min=1, max=99)])
    meter_readings = TextAreaField(_l("Meter readings (water, electricity, gas)"),
                                   validators=[Optional(), Length(max=2000)])
    on = DateField(_l("Handed over on"), validators=[DataRequired()])
class ChargePaymentForm(KeyedForm):
    """Money paid on a charge — a late fee or a true-up (R-AFT-1, R-AFT-3): a receipt, no plan line."""

    ids = HiddenField(validators=[DataRequired()])
    amount = MoneyField(_l("Amount"), validators=[InputRequired()])
    paid_on = DateField(_l("Paid on"), validators=[DataRequired()])
    channel = SelectField(_l("Payment channel"), choices=_choices("payment", "channel"), validators=[DataRequired()])
    bank_ref = StringField(_l("Bank reference"), validators=[Optional(), Length(max=60)])


class WaiverRequestForm(SecureForm):
    """A request to waive part or all of a late fee, with the reason (R-AFT-1)."""

    ids = HiddenField(validators=[DataRequired()])
    amount = MoneyField(_l("Amount to waive"), validators=[InputRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])
