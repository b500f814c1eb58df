"""Forms of the domain operations (not generic model forms): money goes to models/ from here."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (DateField, DateTimeLocalField, DecimalField, HiddenField, IntegerField, SelectField,
                     StringField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from .base import SecureForm
from .labels import CHOICES


def _choices(entity, column):
    return [SelectChoice(value, label) for value, label in CHOICES[(entity, column)].items()]


class SubscriptionForm(SecureForm):
    """The subscription agreement (认购书, R-SUB-1): every term, complete."""

    unit_id = HiddenField(validators=[DataRequired()])
    lead_id = SelectField(_l("Customer"), coerce=int, validators=[DataRequired()])
    id_number = StringField(_l("ID number"), validators=[DataRequired(), Length(max=30)])
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=200)])
    payment_method = SelectField(_l("Payment method"), choices=_choices("subscription", "payment_method"),
                                 validators=[DataRequired()])
    price = DecimalField(_l("Price"), places=2, validators=[Optional(), NumberRange(min=0.01)])
    price_reason = TextAreaField(_l("Reason for a price other than the list price"),
                                 validators=[Optional(), Length(max=2000)])
    deposit = DecimalField(_l("Deposit"), places=2, validators=[DataRequired(), NumberRange(min=0.01)])
    subscribed_on = DateField(_l("Subscribed on"), validators=[DataRequired()])
    deposit_due_on = DateField(_l("Deposit due on"), validators=[Optional()])


class DepositForm(SecureForm):
    subscription_id = HiddenField(validators=[DataRequired()])
    amount = DecimalField(_l("Amount"), places=2, validators=[DataRequired(), NumberRange(min=0.01)])
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
