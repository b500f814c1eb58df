"""Labels of the coded values (statuses, kinds, sources…), translated lazily.

They live with the data because domain messages name statuses too ("it is 已认购").
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

_UNIT = {"available": _l("Available"), "held": _l("Held"), "subscribed": _l("Subscribed"),
         "signed": _l("Signed"), "withheld": _l("Withheld")}

# Identity documents (models/identity.py)
_ID_TYPES = {"resident_id": _l("Resident identity card"), "passport": _l("Passport"),
             "hk_macao_permit": _l("Mainland travel permit for Hong Kong and Macao residents"),
             "taiwan_permit": _l("Mainland travel permit for Taiwan residents"),
             "foreign_permanent_resident": _l("Foreign permanent resident ID card")}

CHOICES: dict[tuple[str, str], dict] = {
    ("lead", "id_type"): _ID_TYPES,
    ("subscription", "customer_id_type"): _ID_TYPES,
    ("unit", "status"): _UNIT,
    ("lead", "stage"): {"new": _l("New"), "contacted": _l("Contacted"), "visited": _l("Visited (intent)"),
                        "subscribed": _l("Subscribed"), "signed": _l("Signed"), "lost": _l("Lost")},
    ("lead", "purpose"): {"own_home": _l("Own home"), "upgrade": _l("Upgrade"),
                          "investment": _l("Investment"), "for_family": _l("For family"),
                          "other": _l("Other")},
    ("lead_conflict", "status"): {"open": _l("Open"), "kept": _l("Owner kept"),
                                  "transferred": _l("Transferred")},
    ("lead", "source"): {"phone_call": _l("Phone call"), "walk_in": _l("Walk-in"),
                         "referral": _l("Referral"), "advert": _l("Advertisement"), "web": _l("Web"),
                         "fair": _l("Property fair"), "other": _l("Other")},
    ("follow_up", "channel"): {"phone": _l("Phone"), "visit": _l("Visit"), "wechat": _l("WeChat"),
                               "other": _l("Other")},
    ("subscription", "status"): {"draft": _l("Draft"), "confirmed": _l("Confirmed"),
                                 "active": _l("Active"), "contracted": _l("Contracted"),
                                 "forfeited": _l("Forfeited"), "withdrawn": _l("Withdrawn"),
                                 "expired": _l("Expired unpaid"), "rescinded": _l("Rescinded"),
                                 "cancelled": _l("Cancelled")},
    ("subscription", "payment_method"): {"one_off": _l("One-off payment"), "instalments": _l("Instalments"),
                                         "commercial_mortgage": _l("Commercial mortgage"),
                                         "provident_fund": _l("Provident-fund loan")},
    ("instalment", "kind"): {"deposit": _l("Deposit"), "down_payment": _l("Down payment"),
                             "instalment": _l("Instalment"), "commercial_loan": _l("Commercial loan"),
                             "provident_fund_loan": _l("Provident-fund loan"), "balance": _l("Balance")},
    ("instalment", "status"): {"pending": _l("Unpaid"), "partly_paid": _l("Partly paid"), "paid": _l("Paid"),
                               "replaced": _l("Replaced by a change")},
    ("change_request", "kind"): {"unit_swap": _l("Unit swap"), "buyers": _l("Buyer change"),
                                 "payment_method": _l("Payment-method change"), "price": _l("Price change"),
                                 "cancellation": _l("Cancellation with refund")},
    ("change_request", "status"): {"requested": _l("Awaiting approval"), "sent_back": _l("Sent back"),
                                   "approved": _l("Approved"), "rejected": _l("Rejected"),
                                   # its own words: a deal's "Withdrawn" is 已退订 (unsubscribed)
                                   "withdrawn": _l("Withdrawn by the requester")},
    ("change_step", "decision"): {"approved": _l("Approved"), "rejected": _l("Rejected"),
                                  "sent_back": _l("Sent back")},
    ("payment", "channel"): {"bank_transfer": _l("Bank transfer"), "pos": _l("Card (POS)"),
                             "cash": _l("Cash"), "cheque": _l("Cheque"),
                             "loan_disbursement": _l("Loan disbursement"), "other": _l("Other")},
    ("extension", "status"): {"requested": _l("Requested"), "approved": _l("Approved"),
                              "rejected": _l("Rejected")},
    ("price_approval", "status"): {"requested": _l("Requested"), "approved": _l("Approved"),
                                   "rejected": _l("Rejected")},
    ("overdue_event", "level"): {"reminder": _l("Reminder"), "warning": _l("Warning"),
                                 "lawyer_letter": _l("Lawyer's letter"), "forfeit": _l("Forfeit"),
                                 "rescission": _l("Rescission review")},
    ("overdue_event", "outcome"): {"sent": _l("Letter sent"), "not_needed": _l("Letter not needed"),
                                   "continue": _l("Keep chasing"), "rescind": _l("Rescind")},
    ("voucher", "kind"): {"refund": _l("Refund"), "retained": _l("Retained")},
    ("overdue_event", "cause"): {"payment": _l("Payment overdue"), "signing": _l("Signing overdue")},
    ("contract", "kind"): {"sale": _l("Sale contract"), "mortgage": _l("Mortgage contract")},
    ("contract", "status"): {"booked": _l("Booked"), "signed": _l("Signed"),
                             "registered": _l("Title registered"), "archived": _l("Archived"),
                             "rescinded": _l("Rescinded")},
    ("contract_step", "kind"): {"online_filing": _l("Online filing"), "notarisation": _l("Notarisation"),
                                "mortgage": _l("Mortgage processing"),
                                "registration": _l("Title registration")},
    ("contract_step", "status"): {"pending": _l("Not started"), "in_progress": _l("In progress"),
                                  "done": _l("Done")},
    ("document", "kind"): {"subscription_agreement": _l("Subscription agreement"),
                           "receipt": _l("Receipt"), "payment_reminder": _l("Payment reminder"),
                           "overdue_warning": _l("Overdue warning"), "lawyer_letter": _l("Lawyer's letter"),
                           "forfeit_notice": _l("Forfeit notice"), "signing_booking": _l("Signing booking"),
                           "statement": _l("Statement"), "board": _l("Sales-control board"),
                           "addendum": _l("Addendum")},
    ("document", "status"): {"queued": _l("Queued"), "running": _l("Running"), "done": _l("Done"),
                             "failed": _l("Failed")},
    ("export", "list"): {"payments": _l("Payments received"), "instalments": _l("Payment plans")},
    ("export", "format"): {"csv": "CSV", "xlsx": "XLSX"},
    ("export", "status"): {"queued": _l("Queued"), "running": _l("Running"), "done": _l("Done"),
                           "failed": _l("Failed")},
    ("price_list_import", "status"): {"queued": _l("Queued"), "running": _l("Running"), "done": _l("Done"),
                                      "failed": _l("Failed")},
    ("lead_archive", "reason"): {"forfeit": _l("Forfeited"), "withdrawal": _l("Withdrawn"),
                                 "rescission": _l("Rescinded"), "cancellation": _l("Cancelled")},
}

# Issue 22: after the contract.
_WAIVER = {"requested": _l("Requested"), "approved": _l("Approved"), "rejected": _l("Rejected")}
CHOICES.update({
    ("charge", "kind"): {"late_fee": _l("Late fee"), "area_true_up": _l("Area true-up")},
    ("late_fee_waiver", "status"): _WAIVER,
    ("loan_file", "loan_kind"): {"commercial": _l("Commercial loan"), "provident_fund": _l("Provident-fund loan"),
                                 "combined": _l("Combined loan")},
    ("loan_file", "line_kind"): {"commercial_loan": _l("Commercial loan"),
                                 "provident_fund_loan": _l("Provident-fund loan")},
    ("loan_file", "stage"): {"collecting": _l("Collecting documents"), "documents_complete": _l("Documents complete"),
                             "bank_interview": _l("Signed at the bank"), "approved": _l("Loan approved"),
                             "mortgage_registered": _l("Mortgage registered"), "disbursed": _l("Disbursed")},
    ("loan_file", "status"): {"open": _l("In progress"), "disbursed": _l("Disbursed"), "closed": _l("Closed")},
    ("true_up", "status"): {"computed": _l("Computed"), "applied": _l("Applied"), "void": _l("Void")},
    ("true_up_batch", "status"): {"draft": _l("Draft"), "applied": _l("Applied")},
    ("handover", "status"): {"notified": _l("Notified"), "booked": _l("Appointment booked"),
                             "inspected": _l("Inspected"), "handed_over": _l("Handed over"),
                             "cancelled": _l("Cancelled")},
    ("ticket", "category"): {"quality": _l("Quality"), "service": _l("Service"), "documents": _l("Documents"),
                             "defect": _l("Handover defect"), "other": _l("Other")},
    ("ticket", "source"): {"phone": _l("Phone"), "visit": _l("Visit"), "wechat": _l("WeChat"),
                           "handover": _l("Handover inspection"), "web": _l("Web"), "letter": _l("Letter"),
                           "other": _l("Other")},
    ("ticket", "department"): {"engineering": _l("Engineering"), "property": _l("Property management"),
                               "customer_service": _l("Customer service"), "finance": _l("Finance"),
                               "legal": _l("Legal"), "sales": _l("Sales")},
    ("ticket", "status"): {"open": _l("Open"), "in_progress": _l("In progress"), "resolved": _l("Resolved"),
                           "closed": _l("Closed")},
    ("survey", "occasion"): {"signing": _l("After signing"), "handover": _l("After handover"),
                             "ticket": _l("After a ticket")},
})
CHOICES[("document", "kind")].update({"true_up_notice": _l("Area true-up notice"),
                                      "handover_notice": _l("Handover notice"),
                                      "handover_record": _l("Handover record"),
                                      "survey_summary": _l("Satisfaction survey summary")})

CHOICES[("voucher", "channel")] = CHOICES[("payment", "channel")]
CHOICES[("deal_buyer", "id_type")] = _ID_TYPES


# The one rule for a value that is not there (no purpose given, no decision yet): it reads as a
# dash wherever a person reads it — grids, detail pages, the unit card, the history, documents —
# never as "None". Grids and details apply it by their formatters (admin/base.py), templates by
# Jinja's finalize (admin/__init__.py, pdf/__init__.py). Exports keep an empty cell.
EMPTY = "—"


def shown(value):
    """`value` as printed for a person: None as EMPTY (the one rule above), anything else as is."""
    return EMPTY if value is None else value


def choice_label(entity: str, column: str, value):
    """The translated label of a coded value, e.g. ("subscription", "status", "draft") → 草稿."""
    return CHOICES.get((entity, column), {}).get(value, value)

# Issue 23: the sales floor.
_VISIT_CHANNELS = {"walk_in": _l("Walk-in"), "phone_call": _l("Phone call"), "referral": _l("Referral"),
                   "web": _l("Web"), "advert": _l("Advertisement"), "fair": _l("Property fair"),
                   "channel": _l("External channel")}
_COMMISSION_ROLES = {"agent": _l("Agent"), "manager": _l("Sales manager"), "channel": _l("External channel")}
_COMMISSION_STAGES = {"subscribed": _l("Subscription"), "signed": _l("Contract signed"),
                      "down_payment": _l("Down payment received"), "disbursed": _l("Loan disbursed")}
CHOICES.update({
    ("rotation_entry", "status"): {"free": _l("Free"), "receiving": _l("Receiving"), "break": _l("On a break"),
                                   "out": _l("Signed out")},
    ("rotation_event", "kind"): {"sign_in": _l("Signed in"), "sign_out": _l("Signed out"), "break": _l("Break"),
                                 "back": _l("Back from a break"), "assign": _l("Received in turn"),
                                 "finish": _l("Reception finished"), "owner_return": _l("Returning visitor to the owner"),
                                 "on_behalf": _l("Received on the owner's behalf"), "skip": _l("Turn skipped"),
                                 "out_of_turn": _l("Received out of turn"), "make_up": _l("Make-up turn")},
    ("visit", "kind"): {"first": _l("First visit"), "return": _l("Return visit")},
    ("visit", "channel"): _VISIT_CHANNELS,
    ("channel_registration", "status"): {"valid": _l("Valid"), "confirmed": _l("Confirmed by a visit"),
                                         "expired": _l("Expired"), "refused": _l("Refused"),
                                         "withdrawn": _l("Withdrawn")},
    ("channel_conflict", "status"): {"open": _l("Open"), "kept": _l("First registration kept"),
                                     "awarded": _l("Awarded to the later registration")},
    ("commission_rule", "role"): _COMMISSION_ROLES,
    ("commission_rule", "basis"): {"rate": _l("Rate on the deal price"), "fixed": _l("Fixed amount")},
    ("commission_line", "role"): _COMMISSION_ROLES,
    ("commission_line", "stage"): _COMMISSION_STAGES,
    ("commission_line", "kind"): {"earned": _l("Earned"), "adjustment": _l("Adjustment"),
                                  "clawback": _l("Clawback")},
    ("commission_statement", "status"): {"draft": _l("Draft"), "approved": _l("Approved")},
})
CHOICES[("lead", "source")]["channel"] = _l("External channel")
CHOICES[("document", "kind")]["commission_statement"] = _l("Commission statement")

# Issue 24: opening day.
CHOICES.update({
    ("launch", "status"): {"registration": _l("Registration open"), "published": _l("Entrants published"),
                           "drawn": _l("Drawn"), "selecting": _l("Selecting"), "closed": _l("Closed")},
    ("launch", "missed_rule"): {"requeue": _l("To the end of the queue"), "out": _l("Out of the selection")},
    ("launch_entry", "status"): {"registered": _l("Registered, deposit not yet received"),
                                 "paid": _l("Deposit received"), "converted": _l("Converted into a deposit"),
                                 "refunded": _l("Refunded"), "expired": _l("Expired"), "withdrawn": _l("Withdrawn")},
    ("launch_entry", "selection_status"): {"waiting": _l("Waiting"), "choosing": _l("Choosing now"),
                                           "chosen": _l("Chosen"), "missed": _l("Missed the slot"),
                                           "out": _l("Out of the selection")},
    ("launch_entry", "group_name"): {"first_home": _l("First home"), "other": _l("Other buyers")},
    ("launch_entry", "id_type"): _ID_TYPES,
    ("intent_payment", "kind"): {"deposit": _l("Intent deposit received"), "refund": _l("Intent deposit refunded"),
                                 "conversion": _l("Converted into a subscription's deposit")},
})
CHOICES[("document", "kind")].update({"intent_card": _l("Intent registration card"),
                                      "lottery_entrants": _l("Lottery entrants and seed hash"),
                                      "lottery_result": _l("Lottery result")})
