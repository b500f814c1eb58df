"""Labels of columns and of the values of status-like columns, translated lazily."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from models.labels import CHOICES, EMPTY, choice_label, shown  # noqa: F401  (the value labels live with the data)

from .rows import per_request

COLUMN_LABELS = {
    "id": _l("ID"),
    "username": _l("Username"), "display_name": _l("Display name"), "active": _l("Active"),
    "roles": _l("Roles"), "created_at": _l("Created at"), "last_login_at": _l("Last login"),
    "name": _l("Name"), "code": _l("Code"), "developer": _l("Developer"), "city": _l("City"),
    "address": _l("Address"), "is_agency": _l("Agency project"),
    "warning_day": _l("Warning on day"), "lawyer_letter_day": _l("Lawyer's letter on day"),
    "forfeit_day": _l("Forfeit on day"), "extension_limit_days": _l("Manager's extension limit (days)"),
    "follow_up_days": _l("Follow-up cycle (days)"), "reminder_days_before": _l("Remind days before due"),
    "pool_after_days": _l("Back to pool after (days)"), "hold_hours": _l("Hold hours"),
    "signing_due_days": _l("Signing due within (days)"),
    "project": _l("Project"), "building": _l("Building"), "floors": _l("Floors"),
    "floor": _l("Floor"), "position": _l("Position"), "number": _l("Number"), "layout": _l("Layout"),
    "area": _l("Area (m²)"), "list_price": _l("List price"), "status": _l("Status"),
    "held_for_lead_id": _l("Held for customer"), "held_until": _l("Held until"),
    "phone": _l("Phone"), "id_type": _l("ID document"), "customer_id_type": _l("ID document"),
    "id_number": _l("ID number"), "source": _l("Source"), "needs": _l("Needs"),
    "notes": _l("Notes"), "stage": _l("Stage"), "owner": _l("Agent"), "registered_by": _l("Registered by"),
    "registered_at": _l("Registered at"), "next_follow_up_on": _l("Next follow-up"),
    "lead": _l("Customer"), "customer": _l("Customer"), "agent": _l("Agent"), "at": _l("Time"), "channel": _l("Channel"),
    "content": _l("Content"), "outcome": _l("Outcome"), "next_on": _l("Next follow-up"),
    "manager_feedback": _l("Manager's feedback"),
    "subscription": _l("Subscription"), "unit": _l("Unit"), "price": _l("Price"),
    "deposit": _l("Deposit"), "payment_method": _l("Payment method"),
    "subscribed_on": _l("Subscribed on"), "checked_by": _l("Checked by"), "checked_at": _l("Checked at"),
    "seq": _l("No."), "kind": _l("Kind"), "due_on": _l("Due on"), "extended_due_on": _l("Extended to"),
    "amount_due": _l("Amount due"), "amount_paid": _l("Amount paid"), "agent_note": _l("Agent's note"),
    "instalment": _l("Plan line"), "amount": _l("Amount"), "paid_on": _l("Paid on"),
    "bank_ref": _l("Bank reference"), "receipt_no": _l("Receipt no."), "reason": _l("Reason"),
    "recorded_by": _l("Recorded by"), "recorded_at": _l("Recorded at"), "reverses_id": _l("Reverses"),
    "days": _l("Days"), "requested_at": _l("Requested at"), "decided_at": _l("Decided at"),
    "new_due_on": _l("New due date"), "level": _l("Level"), "on": _l("Date"),
    "appointment_at": _l("Appointment"), "signed_on": _l("Signed on"), "bank": _l("Bank"),
    "lawyer": _l("Lawyer"), "contract": _l("Contract"), "promised_on": _l("Promised on"),
    "done_on": _l("Done on"), "customer_action": _l("Customer must supply"),
    "received_on": _l("Received on"), "location": _l("Location"),
    "stamped_copy_on": _l("Stamped copy issued on"), "snapshot": _l("Kept records"),
    "archived_at": _l("Archived at"), "subject_id": _l("Subject"), "file": _l("File"),
    "sha256": _l("SHA-256"), "size": _l("Size"), "error": _l("Error"), "requested_by": _l("Requested by"),
    "title": _l("Title"), "batch": _l("Batch"), "total": _l("Number of documents"), "started_at": _l("Started at"),
    "job_ids": _l("Jobs"), "attempts": _l("Attempts"), "sent_at": _l("Sent to a worker at"),
    "project.name": _l("Project"), "building.name": _l("Building"), "reverses": _l("Reverses"),
    "method": _l("Payment method"), "payment": _l("Payment"), "withdrawn_by": _l("Withdrawn by"),
    "last_no": _l("Last number"),
    "instalment.subscription.customer_name": _l("Customer"), "instalment.subscription.agent": _l("Agent"),
    "subscription.project.name": _l("Project"), "subscription.customer_name": _l("Customer"),
    "subscription.agent": _l("Agent"), "subscription.number": _l("Subscription number"),
"unit.number": _l("Unit number"),
    "contract.number": _l("Contract number"), "contract.subscription.customer_name": _l("Customer"),
    "instalment.subscription.number": _l("Subscription number"),
    "lead.phone": _l("Customer's phone"), "subscription.payment_method": _l("Payment method"),
    "finished_at": _l("Finished at"), "actor": _l("Who"), "entity": _l("Entity"),
    "entity_id": _l("Row"), "action": _l("Action"), "changes": _l("Changes"),
    "budget_wan": _l("Budget (10,000 yuan)"), "wanted_layout": _l("Wanted layout"),
    "wanted_area": _l("Wanted area"), "purpose": _l("Purpose"),
    "last_activity_at": _l("Last activity"), "pooled_at": _l("Back in pool since"),
    "attempted_by": _l("Registered again by"), "attempted_at": _l("Registered again at"),
    "attempted_name": _l("Name given"), "resolved_at": _l("Decided at"),
    "question": _l("Question"), "answer": _l("Answer"), "asked_by": _l("Asked by"),
    "answered_at": _l("Answered at"), "message": _l("Message"), "locale": _l("Language"), "read_at": _l("Read at"),
    "overdue_days": _l("Days overdue"),
    "signing_due_on": _l("Sign by"), "booked_on": _l("Booked on"), "checklist": _l("To bring"),
    "cause": _l("Cause"), "deposit_due_on": _l("Deposit due on"), "customer_name": _l("Customer name"),
    "customer_id_number": _l("ID number"), "customer_address": _l("Address"),
    "price_reason": _l("Reason for the price"), "withdrawn_at": _l("Withdrawn at"),
    "forfeited_at": _l("Forfeited at"), "held_by_id": _l("Held by"), "hold_roles": _l("Who may hold"),
    "agents_may_export_personal_data": _l("Agents may export their customers' personal data"),
    "signing_checklist": _l("Signing checklist"), "record": _l("Contract archive"),
    "issued_to": _l("Given to"), "issued_on": _l("Issued on"), "note": _l("Notes"),
    "percent": _l("Percent"), "fixed_amount": _l("Fixed amount"), "due_offset_days": _l("Days after subscribing"),
    "signing_threshold_percent": _l("Paid before signing (%)"),
    "signing_threshold_amount": _l("Paid before signing (amount)"), "lines": _l("Lines"),
    "subject": _l("Subject"), "topic": _l("Topic"), "lead_id": _l("Customer"), "subscription_id": _l("Subscription"),
    "instalment_id": _l("Plan line"), "archived_by_id": _l("Archived by"),
    "decided_by_id": _l("Decided by"), "requested_by_id": _l("Requested by"),
    "job_id": _l("Job"), "link": _l("Link"),
    "backdate_days": _l("Dates accepted back (days)"), "sales_start_on": _l("Sale started on"),
    "deposit_due_max_days": _l("Deposit due within (days)"), "draft_grace_days": _l("Unpaid deposit grace (days)"),
    "follow_up_max_days": _l("Longest follow-up cycle (days)"), "step_prerequisites": _l("Order of post-signing steps"),
    "expired_at": _l("Expired at"), "rescinded_at": _l("Rescinded at"), "follow_up_paused_until": _l("Follow-up paused until"),
    "follow_up_pause_reason": _l("Why the follow-up is paused"),
    "handled_by": _l("Handled by"), "handled_on": _l("Handled on"), "handling_note": _l("Note"),
    "original_agent": _l("Original agent"), "first_registered_at": _l("First registered at"),
    "lead_stage": _l("Customer's stage"), "last_follow_up": _l("Last follow-up"),
    "discount": _l("Discount"), "discount_percent": _l("Discount (%)"),
}

def choice_formatters(entity: str, html: bool = True) -> dict:
    """Flask-Admin column formatters that show a status value by its translated label."""
    formatters = {}
    for (ent, column), labels in CHOICES.items():
        if ent != entity:
            continue

        def fmt(view, context, model, name, _labels=labels, _column=column):
            value = getattr(model, name)
            if value in (None, ""):  # nothing chosen: the one rule (models/labels.py), never "None"
                return EMPTY if html else ""
            label = _labels.get(value, value)
            if not html:
                return str(label)
            if _column not in ("status", "stage", "level"):
                return label
            return per_request(("badge", id(_labels), value), lambda: Markup(
                '<span class="badge badge-status status-%s">%s</span>') % (escape(value), escape(label)))

        formatters[column] = fmt
    return formatters


# What an audit row's action means (the audit trail, 系统 → 操作日志).
AUDIT_ACTIONS = {
    "insert": _l("Created"), "update": _l("Changed"), "delete": _l("Deleted"),
    "login": _l("Signed in"), "login_failed": _l("Failed sign-in"), "logout": _l("Signed out"),
    "demo": _l("Demo data"), "create_user": _l("Account created"),
    "register": _l("Customer registered"), "register_conflict": _l("Registered again"),
    "assign": _l("Customers assigned"), "pool": _l("Back to the public pool"),
    "follow_up": _l("Follow-up"), "feedback": _l("Manager's feedback"),
    "ask_question": _l("Question logged"), "answer_question": _l("Question answered"),
    "hold": _l("Unit held"), "release": _l("Hold released"), "withhold": _l("Withheld from sale"),
    "import_price_list": _l("Price list imported"),
    "subscribe": _l("Subscribed"), "confirm": _l("Confirmed by sales control"),
    "deposit": _l("Deposit received"), "withdraw": _l("Withdrawn"), "forfeit": _l("Forfeited"),
    "approve_price": _l("Price approved"), "reject_price": _l("Price rejected"),
    "generate_plan": _l("Payment plan generated"), "payment": _l("Payment received"),
    "reverse_payment": _l("Payment reversed"), "payment_follow_up": _l("Agent's note"),
    "request_extension": _l("Extension requested"), "approve_extension": _l("Extension approved"),
    "reject_extension": _l("Extension rejected"), "reminder": _l("Payment reminder"),
    "warning": _l("Overdue warning"), "lawyer_letter": _l("Lawyer's letter"),
    "book_signing": _l("Signing booked"), "sign_contract": _l("Contract signed"),
    "contract_step": _l("Post-signing step"), "archive_original": _l("Original archived"),
    "stamped_copy": _l("Stamped copy issued"), "request_document": _l("Document requested"),
    "render_started": _l("Rendering started"), "render_done": _l("Document ready"),
    "render_failed": _l("Document failed"), "download": _l("Downloaded"),
    "request_export": _l("Export requested"), "export": _l("Exported"),
    "export_started": _l("Export started"), "export_done": _l("Export ready"),
    "export_failed": _l("Export failed"), "set_target": _l("Target set"), "read": _l("Read"),
    "expire": _l("Expired unpaid"), "rescission": _l("Rescission review"),
    "release_hold": _l("Hold released"), "hold_expired": _l("Hold expired"),
    "event_sent": _l("Lawyer's letter sent"), "event_not_needed": _l("Lawyer's letter not needed"),
    "event_continue": _l("Rescission review: keep chasing"), "event_rescind": _l("Rescission review: rescind"),
    "voucher_refund": _l("Money refunded (voucher)"), "voucher_retained": _l("Money retained (voucher)"),
    "pause_follow_up": _l("Follow-up paused"), "conflict_keep": _l("Owner kept"),
    "conflict_transfer": _l("Customer transferred"), "rescind": _l("Contract rescinded"),
}
