"""The role matrix (R-ALL-1): every endpoint × every role has one expected outcome here.

The table is written out by hand on purpose: it is the specification that the permission
module and the views must meet. An endpoint missing from it fails
`test_every_endpoint_is_classified`, so a new endpoint cannot ship unclassified.

Letters: a admin, m sales_manager, g agent, c sales_control, f finance, l lawyer,
r archive, v vp, s customer_service, x channel (an outside agency's person). "*" means public (no login needed).
"""
from __future__ import annotations

import datetime as dt

import pytest

from models import ChannelCompany, ChannelConflict, ChannelMember, ChannelRegistration  # issue 23: channels
from models import CommissionLine, CommissionRule, DealSplit  # issue 23: commissions
from models.commissions import CommissionStatement
from models import (Attachment, Bank, Charge, Handover, LateFeeWaiver, LoanFile, Survey, Ticket, TicketNote,
                    TrueUp, TrueUpBatch)
from models import (ArchiveRecord, ChangeRequest, ContractStep, CustomerQuestion, DealBuyer, DocumentBatch, Export,
                    Extension, LeadArchive, LeadConflict, Notification, PaymentMethodTemplate, PriceApproval,
                    PriceListImport, Role)
from models.reception import RotationEvent, Visit
from models import Launch  # issue 24: lottery
from tests import factories as f
from tests.conftest import Auth, csrf_token

ROLE_OF = {"a": "admin", "m": "sales_manager", "g": "agent", "c": "sales_control",
           "f": "finance", "l": "lawyer", "r": "archive", "v": "vp", "s": "customer_service",
           "x": "channel"}
ALL = "amgcflrvsx"

EXPECTED = {
    "home": "*",
    "favicon": "*",
    "static": "*",
    "admin.static": "*",
    "auth.login": "*",
    "i18n.set_language": "*",
    "admin.index": ALL,
    "auth.logout": ALL,
    "lead.index_view": "amgvs",
    "lead.details_view": "amgvs",
    "lead.create_view": "amg",
    "lead.edit_view": "amg",
    "lead.delete_view": "",
    "lead.action_view": "am",
    "lead.export": "amv",  # agents: only where the project allows it (issue 18, item 7)
    "lead.ajax_lookup": "amgvs",
    "lead.ajax_update": "amg",
    "lead.assign_view": "am",
    "lead.pause_view": "am",
    "follow_up_due.index_view": "amgv",
    "follow_up_due.details_view": "amgv",
    "follow_up_due.create_view": "",
    "follow_up_due.edit_view": "",
    "follow_up_due.delete_view": "",
    "follow_up_due.action_view": "",
    "follow_up_due.export": "",
    "follow_up_due.ajax_lookup": "amgv",
    "follow_up_due.ajax_update": "",
    "follow_up.index_view": "amgv",
    "follow_up.details_view": "amgv",
    "follow_up.create_view": "amg",
    "follow_up.edit_view": "am",
    "follow_up.delete_view": "",
    "follow_up.action_view": "",
    "follow_up.export": "amv",
    "follow_up.ajax_lookup": "amgv",
    "follow_up.ajax_update": "am",
    "lead_conflict.index_view": "amg",
    "lead_conflict.details_view": "amg",
    "lead_conflict.create_view": "",
    "lead_conflict.edit_view": "",
    "lead_conflict.delete_view": "",
    "lead_conflict.action_view": "am",
    "lead_conflict.export": "am",
    "lead_conflict.ajax_lookup": "amg",
    "lead_conflict.ajax_update": "",
    "customer_question.index_view": "amgv",
    "customer_question.details_view": "amgv",
    "customer_question.create_view": "amg",
    "customer_question.edit_view": "",
    "customer_question.delete_view": "",
    "customer_question.action_view": "",
    "customer_question.export": "am",
    "customer_question.ajax_lookup": "amgv",
    "customer_question.ajax_update": "",
    "answer_sheet.index_view": "amgcflrvs",
    "answer_sheet.details_view": "amgcflrvs",
    "answer_sheet.create_view": "",
    "answer_sheet.edit_view": "",
    "answer_sheet.delete_view": "",
    "answer_sheet.action_view": "",
    "answer_sheet.export": "",
    "answer_sheet.ajax_lookup": "amgcflrvs",
    "answer_sheet.ajax_update": "",
    "subscription.index_view": "amgcflvs",
    "subscription.details_view": "amgcflvs",
    "subscription.create_view": "g",
    "subscription.edit_view": "",
    "subscription.delete_view": "",
    "subscription.action_view": "mgcf",
    "subscription.export": "amcfv",
    "subscription.ajax_lookup": "amgcflvs",
    "subscription.ajax_update": "",
    "subscription.deposit_view": "mgcf",
    "subscription.withdraw_view": "mgcf",
    "subscription.payment_view": "mgcf",
    "subscription.book_view": "mgcf",
    # Requesting a change of a deal (R-CHG-1): the subscription's action right and change.request.
    "subscription.change_unit_view": "mg",
    "subscription.change_buyers_view": "mg",
    "subscription.change_method_view": "mg",
    "subscription.change_price_view": "mg",
    "subscription.cancel_deal_view": "mg",
    "change_request.index_view": "amgcflv",
    "change_request.details_view": "amgcflv",
    "change_request.create_view": "",
    "change_request.edit_view": "",
    "change_request.delete_view": "",
    "change_request.action_view": "amgv",
    "change_request.export": "amfv",
    "change_request.ajax_lookup": "amgcflv",
    "change_request.ajax_update": "",
    "change_request.reject_view": "mv",  # change.decide; the step's own role is the domain's check
    "change_request.send_back_view": "mv",
    "change_request.resubmit_view": "amg",  # change.request; the requester only is the domain's check
    "change_request.withdraw_view": "amg",  # change.withdraw
    "deal_buyer.index_view": "amgcflv",
    "deal_buyer.details_view": "amgcflv",
    "deal_buyer.create_view": "",
    "deal_buyer.edit_view": "",
    "deal_buyer.delete_view": "",
    "deal_buyer.action_view": "",
    "deal_buyer.export": "",
    "deal_buyer.ajax_lookup": "amgcflv",
    "deal_buyer.ajax_update": "",
    "price_approval.index_view": "amgcv",
    "price_approval.details_view": "amgcv",
    "price_approval.create_view": "",
    "price_approval.edit_view": "",
    "price_approval.delete_view": "",
    "price_approval.action_view": "v",
    "price_approval.export": "",
    "price_approval.ajax_lookup": "amgcv",
    "price_approval.ajax_update": "",
    "lead_archive.index_view": "amv",
    "lead_archive.details_view": "amv",
    "lead_archive.create_view": "",
    "lead_archive.edit_view": "",
    "lead_archive.delete_view": "",
    "lead_archive.action_view": "",
    "lead_archive.export": "",
    "lead_archive.ajax_lookup": "amv",
    "lead_archive.ajax_update": "",
    "project.index_view": "amgcflrvs",
    "project.details_view": "amgcflrvs",
    "project.create_view": "a",
    "project.edit_view": "a",
    "project.delete_view": "",
    "project.action_view": "",
    "project.export": "amv",
    "project.ajax_lookup": "amgcflrvs",
    "project.ajax_update": "a",
    "building.index_view": "amgcflrvs",
    "building.details_view": "amgcflrvs",
    "building.create_view": "ac",
    "building.edit_view": "ac",
    "building.delete_view": "ac",
    "building.action_view": "",
    "building.export": "amcv",
    "building.ajax_lookup": "amgcflrvs",
    "building.ajax_update": "ac",
    "unit.index_view": "amgcflrvs",
    "unit.details_view": "amgcflrvs",
    "unit.create_view": "",
    "unit.edit_view": "ac",
    "unit.delete_view": "ac",
    "unit.action_view": "ac",
    "unit.export": "amcv",
    "unit.ajax_lookup": "amgcflrvs",
    "unit.ajax_update": "ac",
    "instalment.index_view": "amgflv",
    "instalment.details_view": "amgflv",
    "instalment.create_view": "",
    "instalment.edit_view": "",
    "instalment.delete_view": "",
    "instalment.action_view": "amg",
    "instalment.export": "amfv",
    "instalment.ajax_lookup": "amgflv",
    "instalment.ajax_update": "",
    "instalment.note_view": "amg",
    "instalment.extension_view": "amg",
    "payment.index_view": "amgflv",
    "payment.details_view": "amgflv",
    "payment.create_view": "",
    "payment.edit_view": "",
    "payment.delete_view": "",
    "payment.action_view": "f",
    "payment.export": "amfv",
    "payment.ajax_lookup": "amgflv",
    "payment.ajax_update": "",
    "payment.reverse_view": "f",
    "extension.index_view": "amgfv",
    "extension.details_view": "amgfv",
    "extension.create_view": "",
    "extension.edit_view": "",
    "extension.delete_view": "",
    "extension.action_view": "mv",
    "extension.export": "amv",
    "extension.ajax_lookup": "amgfv",
    "extension.ajax_update": "",
    "payment_method_template.index_view": "amfv",
    "payment_method_template.details_view": "amfv",
    "payment_method_template.create_view": "av",
    "payment_method_template.edit_view": "av",
    "payment_method_template.delete_view": "",
    "payment_method_template.action_view": "",
    "payment_method_template.export": "",
    "payment_method_template.ajax_lookup": "amfv",
    "payment_method_template.ajax_update": "av",
    "overdue_event.index_view": "amgflv",
    "overdue_event.details_view": "amgflv",
    "overdue_event.create_view": "",
    "overdue_event.edit_view": "",
    "overdue_event.delete_view": "",
    "overdue_event.action_view": "",
    "overdue_event.export": "amflv",
    "overdue_event.ajax_lookup": "amgflv",
    "overdue_event.ajax_update": "",
    "contract.index_view": "amgflrv",
    "contract.details_view": "amgflrv",
    "contract.create_view": "",
    "contract.edit_view": "",
    "contract.delete_view": "",
    "contract.action_view": "glr",
    "contract.sign_view": "glr",
    "contract.original_view": "glr",
    "contract.signing_extension_view": "glr",
    "contract.export": "amlrv",
    "contract.ajax_lookup": "amgflrv",
    "contract.ajax_update": "",
    "lawyer_letter_due.index_view": "amlv",
    "lawyer_letter_due.details_view": "amlv",
    "lawyer_letter_due.create_view": "",
    "lawyer_letter_due.edit_view": "",
    "lawyer_letter_due.delete_view": "",
    "lawyer_letter_due.action_view": "l",
    "lawyer_letter_due.handle_view": "l",
    "lawyer_letter_due.export": "",
    "lawyer_letter_due.ajax_lookup": "amlv",
    "lawyer_letter_due.ajax_update": "",
    "rescission.index_view": "amlv",
    "rescission.details_view": "amlv",
    "rescission.create_view": "",
    "rescission.edit_view": "",
    "rescission.delete_view": "",
    "rescission.action_view": "mlv",
    "rescission.handle_view": "mlv",
    "rescission.export": "",
    "rescission.ajax_lookup": "amlv",
    "rescission.ajax_update": "",
    "settlement.index_view": "amfv",
    "settlement.details_view": "amfv",
    "settlement.create_view": "",
    "settlement.edit_view": "",
    "settlement.delete_view": "",
    "settlement.action_view": "f",
    "settlement.voucher_view": "f",
    "settlement.export": "",
    "settlement.ajax_lookup": "amfv",
    "settlement.ajax_update": "",
    "voucher.index_view": "amgfv",
    "voucher.details_view": "amgfv",
    "voucher.create_view": "",
    "voucher.edit_view": "",
    "voucher.delete_view": "",
    "voucher.action_view": "",
    "voucher.export": "amfv",
    "voucher.ajax_lookup": "amgfv",
    "voucher.ajax_update": "",
    "contract_step.index_view": "amglrv",
    "contract_step.details_view": "amglrv",
    "contract_step.create_view": "",
    "contract_step.edit_view": "",
    "contract_step.delete_view": "",
    "contract_step.action_view": "l",
    "contract_step.step_view": "l",
    "contract_step.export": "amlv",
    "contract_step.ajax_lookup": "amglrv",
    "contract_step.ajax_update": "",
    "contract_step_due.index_view": "amglrv",
    "contract_step_due.details_view": "amglrv",
    "contract_step_due.create_view": "",
    "contract_step_due.edit_view": "",
    "contract_step_due.delete_view": "",
    "contract_step_due.action_view": "",
    "contract_step_due.export": "",
    "contract_step_due.ajax_lookup": "amglrv",
    "contract_step_due.ajax_update": "",
    "archive_record.index_view": "amlrv",
    "archive_record.details_view": "amlrv",
    "archive_record.create_view": "",
    "archive_record.edit_view": "",
    "archive_record.delete_view": "",
    "archive_record.action_view": "r",
    "archive_record.copy_view": "r",
    "archive_record.export": "amrv",
    "archive_record.ajax_lookup": "amlrv",
    "archive_record.ajax_update": "",
    "stamped_copy.index_view": "amglrv",
    "stamped_copy.details_view": "amglrv",
    "stamped_copy.create_view": "",
    "stamped_copy.edit_view": "",
    "stamped_copy.delete_view": "",
    "stamped_copy.action_view": "",
    "stamped_copy.export": "amrv",
    "stamped_copy.ajax_lookup": "amglrv",
    "stamped_copy.ajax_update": "",
    "document.index_view": "amgcflrvs",
    "document.details_view": "amgcflrvs",
    "document.create_view": "",
    "document.edit_view": "",
    "document.delete_view": "",
    "document.action_view": "",
    "document.export": "",
    "document.ajax_lookup": "amgcflrvs",
    "document.ajax_update": "",
    "document.request_view": "amgcflrvs",
    "document.download_view": "amgcflrvs",
    "document.retry_view": "amgcflrvs",
    "document_batch.index_view": "amgcflrvs",
    "document_batch.details_view": "amgcflrvs",
    "document_batch.create_view": "",
    "document_batch.edit_view": "",
    "document_batch.delete_view": "",
    "document_batch.action_view": "",
    "document_batch.export": "",
    "document_batch.ajax_lookup": "amgcflrvs",
    "document_batch.ajax_update": "",
    "document_batch.zip_view": "amgcflrvs",
    "finance_export.index": "amgfv",
    "finance_export.run": "amgfv",
    "export.index_view": "amgfv",
    "export.details_view": "amgfv",
    "export.create_view": "",
    "export.edit_view": "",
    "export.delete_view": "",
    "export.action_view": "",
    "export.export": "",
    "export.ajax_lookup": "amgfv",
    "export.ajax_update": "",
    "export.download_view": "amgfv",
    "export.retry_view": "amgfv",
    "sales_target.index": "amv",
    "sales_target.save": "am",
    "sales_target.review_xlsx": "amv",
    "sales_target.review_pdf": "amv",
    "notification.index_view": "amgcflrvsx",
    "notification.details_view": "amgcflrvsx",
    "notification.create_view": "",
    "notification.edit_view": "",
    "notification.delete_view": "",
    "notification.action_view": "amgcflrvsx",
    "notification.export": "",
    "notification.ajax_lookup": "amgcflrvsx",
    "notification.ajax_update": "",
    "user.index_view": "a",
    "user.details_view": "a",
    "user.create_view": "a",
    "user.edit_view": "a",
    "user.delete_view": "",
    "user.action_view": "",
    "user.export": "a",
    "user.ajax_lookup": "a",
    "user.ajax_update": "a",
    "role.index_view": "a",
    "role.details_view": "a",
    "role.create_view": "",
    "role.edit_view": "",
    "role.delete_view": "",
    "role.action_view": "",
    "role.export": "",
    "role.ajax_lookup": "a",
    "role.ajax_update": "",
    "audit.index_view": "av",
    "audit.details_view": "av",
    "audit.create_view": "",
    "audit.edit_view": "",
    "audit.delete_view": "",
    "audit.action_view": "",
    "audit.export": "av",
    "audit.ajax_lookup": "av",
    "audit.ajax_update": "",
    "question_group.index": "amv",
    "question_group.answer": "am",
    "board.index": "amgcflrvs",
    "board.unit": "amgcflrvs",
    "board.hold": "amgc",
    "board.release": "amgc",
    "board.withhold": "amgc",
    "unit_import.index": "ac",
    "unit_import.upload": "ac",
    "unit_import.show": "ac",  # one's own imports; an administrator's, all (models.imports.visible_to)
    # issue 22: after the contract (R-AFT-1…4, R-SVC-1/2)
    "charge.index_view": "amgfv",
    "charge.details_view": "amgfv",
    "charge.create_view": "",
    "charge.edit_view": "",
    "charge.delete_view": "",
    "charge.action_view": "amgf",
    "charge.export": "amfv",
    "charge.ajax_lookup": "amgfv",
    "charge.ajax_update": "",
    "late_fee_waiver.index_view": "amgfv",
    "late_fee_waiver.details_view": "amgfv",
    "late_fee_waiver.create_view": "",
    "late_fee_waiver.edit_view": "",
    "late_fee_waiver.delete_view": "",
    "late_fee_waiver.action_view": "mv",
    "late_fee_waiver.export": "amfv",
    "late_fee_waiver.ajax_lookup": "amgfv",
    "late_fee_waiver.ajax_update": "",
    "bank.index_view": "amgflv",
    "bank.details_view": "amgflv",
    "bank.create_view": "af",
    "bank.edit_view": "af",
    "bank.delete_view": "",
    "bank.action_view": "",
    "bank.export": "",
    "bank.ajax_lookup": "amgflv",
    "bank.ajax_update": "af",
    "loan_file.index_view": "amgflv",
    "loan_file.details_view": "amgflv",
    "loan_file.create_view": "",
    "loan_file.edit_view": "",
    "loan_file.delete_view": "",
    "loan_file.action_view": "fl",
    "loan_file.export": "amflv",
    "loan_file.ajax_lookup": "amgflv",
    "loan_file.ajax_update": "",
    "loan_stuck.index_view": "amflv",
    "loan_stuck.details_view": "amflv",
    "loan_stuck.create_view": "",
    "loan_stuck.edit_view": "",
    "loan_stuck.delete_view": "",
    "loan_stuck.action_view": "fl",
    "loan_stuck.export": "",
    "loan_stuck.ajax_lookup": "amflv",
    "loan_stuck.ajax_update": "",
    "true_up_batch.index_view": "amcfv",
    "true_up_batch.details_view": "amcfv",
    "true_up_batch.create_view": "",
    "true_up_batch.edit_view": "",
    "true_up_batch.delete_view": "",
    "true_up_batch.action_view": "acf",
    "true_up_batch.export": "",
    "true_up_batch.ajax_lookup": "amcfv",
    "true_up_batch.ajax_update": "",
    "true_up.index_view": "amgcfv",
    "true_up.details_view": "amgcfv",
    "true_up.create_view": "",
    "true_up.edit_view": "",
    "true_up.delete_view": "",
    "true_up.action_view": "",
    "true_up.export": "amcfv",
    "true_up.ajax_lookup": "amgcfv",
    "true_up.ajax_update": "",
    "handover.index_view": "amgsv",
    "handover.details_view": "amgsv",
    "handover.create_view": "",
    "handover.edit_view": "",
    "handover.delete_view": "",
    "handover.action_view": "mgs",
    "handover.export": "amsv",
    "handover.ajax_lookup": "amgsv",
    "handover.ajax_update": "",
    "handover_ready.index_view": "amsv",
    "handover_ready.details_view": "amsv",
    "handover_ready.create_view": "",
    "handover_ready.edit_view": "",
    "handover_ready.delete_view": "",
    "handover_ready.action_view": "ms",
    "handover_ready.export": "",
    "handover_ready.ajax_lookup": "amsv",
    "handover_ready.ajax_update": "",
    "ticket.index_view": "amgcflsv",
    "ticket.details_view": "amgcflsv",
    "ticket.create_view": "",
    "ticket.edit_view": "",
    "ticket.delete_view": "",
    "ticket.action_view": "amgfls",
    "ticket.export": "amsv",
    "ticket.ajax_lookup": "amgcflsv",
    "ticket.ajax_update": "",
    "ticket_due.index_view": "amsv",
    "ticket_due.details_view": "amsv",
    "ticket_due.create_view": "",
    "ticket_due.edit_view": "",
    "ticket_due.delete_view": "",
    "ticket_due.action_view": "",
    "ticket_due.export": "",
    "ticket_due.ajax_lookup": "amsv",
    "ticket_due.ajax_update": "",
    "ticket_note.index_view": "amgcflsv",
    "ticket_note.details_view": "amgcflsv",
    "ticket_note.create_view": "",
    "ticket_note.edit_view": "",
    "ticket_note.delete_view": "",
    "ticket_note.action_view": "",
    "ticket_note.export": "",
    "ticket_note.ajax_lookup": "amgcflsv",
    "ticket_note.ajax_update": "",
    "survey.index_view": "amgsv",
    "survey.details_view": "amgsv",
    "survey.create_view": "",
    "survey.edit_view": "",
    "survey.delete_view": "",
    "survey.action_view": "",
    "survey.export": "amsv",
    "survey.ajax_lookup": "amgsv",
    "survey.ajax_update": "",
    "charge.pay_view": "f",  # charge.pay: finance records a charge's payment
    "charge.waive_view": "amgf",  # late_fee.waive_request
    "loan_ageing.index": "amfv",  # R-AFT-2: ageing per bank and stage
    "loan_file.open_view": "fl",  # loan.open
    "loan_file.next_stage_view": "fl",  # loan.stage
    "loan_file.missing_view": "fl",  # loan.stage
    "loan_file.close_view": "fl",  # loan.stage
    "loan_file.disburse_view": "f",  # loan.disburse
    "loan_stuck.open_view": "fl",  # loan.open
    "loan_stuck.next_stage_view": "fl",  # loan.stage
    "loan_stuck.missing_view": "fl",  # loan.stage
    "loan_stuck.close_view": "fl",  # loan.stage
    "loan_stuck.disburse_view": "f",  # loan.disburse
    "true_up.refund_view": "f",  # true_up.refund
    "true_up_batch.apply_view": "f",  # true_up.apply
    "true_up_batch.survey": "ac",  # true_up.survey
    "true_up_batch.survey_upload": "ac",  # true_up.survey
    "true_up_batch.survey_compute": "ac",  # true_up.survey
    "handover.book_view": "gs",  # handover.book
    "handover.inspect_view": "s",  # handover.inspect
    "handover.keys_view": "s",  # handover.keys
    "ticket.open_view": "amgs",  # ticket.open
    "ticket.customers_view": "amgs",  # ticket.open: the customer search, scoped
    "ticket.route_view": "ams",  # ticket.route
    "ticket.note_view": "amgfls",  # ticket.work
    "ticket.resolve_view": "amgfls",  # ticket.work
    "ticket.reopen_view": "amgfls",  # ticket.work
    "ticket.close_view": "ams",  # ticket.close
    "ticket.attach_view": "amgfls",  # ticket.work
    "ticket.attachment_view": "amgcflsv",  # the subject's list right and row scope
    "survey.due_view": "amgsv",  # R-SVC-2: surveys due
    "survey.record_view": "gs",  # survey.record
    "survey.summary_view": "amsv",  # survey_summary PDF: survey export
    # issue 23: channels (R-COM-1)
    "channel_company.index_view": "amv",
    "channel_company.details_view": "amv",
    "channel_company.create_view": "am",
    "channel_company.edit_view": "am",
    "channel_company.delete_view": "",
    "channel_company.action_view": "",  # deactivate/activate: the edit right and channel.manage
    "channel_company.export": "amv",
    "channel_company.ajax_lookup": "amv",
    "channel_company.ajax_update": "am",
    "channel_member.index_view": "am",
    "channel_member.details_view": "am",
    "channel_member.create_view": "am",
    "channel_member.edit_view": "",
    "channel_member.delete_view": "am",
    "channel_member.action_view": "",
    "channel_member.export": "",
    "channel_member.ajax_lookup": "am",
    "channel_member.ajax_update": "",
    "channel_registration.index_view": "amvx",  # x: his own only
    "channel_registration.details_view": "amvx",
    "channel_registration.create_view": "",
    "channel_registration.edit_view": "",
    "channel_registration.delete_view": "",
    "channel_registration.action_view": "amx",
    "channel_registration.export": "amv",
    "channel_registration.ajax_lookup": "amvx",
    "channel_registration.ajax_update": "",
    "channel_registration.register_view": "x",  # channel.register
    "channel_conflict.index_view": "amv",
    "channel_conflict.details_view": "amv",
    "channel_conflict.create_view": "",
    "channel_conflict.edit_view": "",
    "channel_conflict.delete_view": "",
    "channel_conflict.action_view": "m",
    "channel_conflict.export": "",
    "channel_conflict.ajax_lookup": "amv",
    "channel_conflict.ajax_update": "",
    "channel_conflict.decide_view": "m",  # channel.resolve
    # issue 23: rotation
    "rotation.index": "amg",  # the front desk (R-RCP-1)
    "rotation.panel": "amg",  # its live part
    "rotation.check": "amg",  # visit.check_phone (JSON)
    "rotation.move_view": "amg",  # rotation.join
    "rotation.receive_view": "amg",  # rotation.assign
    "rotation.finish_view": "amg",  # rotation.assign
    "rotation.skip_view": "amg",  # rotation.exception
    "rotation.make_up_view": "amg",  # rotation.exception (the manager's, checked in the domain)
    "rotation_event.index_view": "amv",
    "rotation_event.details_view": "amv",
    "rotation_event.create_view": "",
    "rotation_event.edit_view": "",
    "rotation_event.delete_view": "",
    "rotation_event.action_view": "",
    "rotation_event.export": "amv",
    "rotation_event.ajax_lookup": "amv",
    "rotation_event.ajax_update": "",
    "visit.index_view": "amgv",
    "visit.details_view": "amgv",
    "visit.create_view": "",
    "visit.edit_view": "",
    "visit.delete_view": "",
    "visit.action_view": "",
    "visit.export": "amv",
    "visit.ajax_lookup": "amgv",
    "visit.ajax_update": "",
    # issue 23: commissions
    "commission_rule.index_view": "amfv",
    "commission_rule.details_view": "amfv",
    "commission_rule.create_view": "av",
    "commission_rule.edit_view": "av",
    "commission_rule.delete_view": "",
    "commission_rule.action_view": "",
    "commission_rule.export": "",
    "commission_rule.ajax_lookup": "amfv",
    "commission_rule.ajax_update": "av",
    "commission_line.index_view": "amgfvx",
    "commission_line.details_view": "amgfvx",
    "commission_line.create_view": "",
    "commission_line.edit_view": "",
    "commission_line.delete_view": "",
    "commission_line.action_view": "",
    "commission_line.export": "amfv",
    "commission_line.ajax_lookup": "amgfvx",
    "commission_line.ajax_update": "",
    "deal_split.index_view": "amgfv",
    "deal_split.details_view": "amgfv",
    "deal_split.create_view": "",
    "deal_split.edit_view": "",
    "deal_split.delete_view": "",
    "deal_split.action_view": "m",
    "deal_split.export": "",
    "deal_split.ajax_lookup": "amgfv",
    "deal_split.ajax_update": "",
    "deal_split.split_view": "m",  # commission.split, from the deal's page
    # issue 23: statements
    "commission_statement.index_view": "amgfvx",  # agents and channels: their own
    "commission_statement.details_view": "amgfvx",
    "commission_statement.create_view": "",
    "commission_statement.edit_view": "",
    "commission_statement.delete_view": "",
    "commission_statement.action_view": "fmv",
    "commission_statement.export": "amfv",
    "commission_statement.ajax_lookup": "amgfvx",
    "commission_statement.ajax_update": "",
    "commission_statement.draw_view": "fm",  # commission.statement
    "commission_statement.lines_xlsx": "amfv",  # finance's workbook: the statements' export right
    "floor_dashboard.index": "amfv",
    "channel_analytics.index": "amv",
    "channel_analytics.export_xlsx": "amv",
    # issue 24: intent registration (R-LCH-1)
    "launch.index_view": "amgcfv",
    "launch.details_view": "amgcfv",
    "launch.create_view": "am",
    "launch.edit_view": "am",
    "launch.delete_view": "",
    "launch.action_view": "amc",  # the grid's action right (delete itself is nobody's)
    "launch.export": "amcfv",
    "launch.ajax_lookup": "amgcfv",
    "launch.ajax_update": "am",
    "launch_entry.index_view": "amgcfv",  # agents: their own registrations
    "launch_entry.details_view": "amgcfv",
    "launch_entry.create_view": "",
    "launch_entry.edit_view": "",
    "launch_entry.delete_view": "",
    "launch_entry.action_view": "amgcf",  # the card's PDF; each step also needs its operation
    "launch_entry.export": "amv",  # personal data: who sees it whole may not export it (control, finance)
    "launch_entry.ajax_lookup": "amgcfv",
    "launch_entry.ajax_update": "",
    "launch_entry.register_view": "amg",  # launch.register
    "launch_entry.deposit_view": "f",  # launch.deposit
    "launch_entry.refund_view": "f",  # launch.refund
    "launch_entry.convert_view": "f",  # launch.convert
    "intent_payment.index_view": "amcfv",
    "intent_payment.details_view": "amcfv",
    "intent_payment.create_view": "",
    "intent_payment.edit_view": "",
    "intent_payment.delete_view": "",
    "intent_payment.action_view": "",
    "intent_payment.export": "amfv",
    "intent_payment.ajax_lookup": "amcfv",
    "intent_payment.ajax_update": "",
    # issue 24: lottery (R-LCH-2)
    "lottery.index": "amgcfv",  # the launch's list right
    "lottery.verify_view": "amgcfv",
    "lottery.publish_view": "m",  # launch.publish
    "lottery.draw_view": "m",  # launch.draw
    "lottery_public.lottery_page": "*",  # public: numbers and groups only
    "lottery_public.lottery_json": "*",
    # issue 24: selection (R-LCH-3)
    "launch_select.index": "amgc",
    "launch_select.choose": "mgc",  # launch.choose: the agent (his own entries), the manager, the kiosk
    "launch_screen.index": "amgcv",
    "launch_screen.screen": "amgcv",
    "launch_screen.data": "amgcv",
    "launch_control.index": "amcfv",
    "launch_control.export_xlsx": "amcfv",
    "launch_control.start_view": "mc",  # launch.run
    "launch_control.advance_view": "mc",
    "launch_control.close_view": "mc",
    # issue 24: live board (R-LCH-3): the board's state and its stream, as the board itself
    "board.state": "amgcflrvs",
    "board.stream": "amgcflrvs",
    # issue 24: lottery, a lost seed (R-LCH-2)
    "lottery.abandon_view": "v",  # launch.abandon_publication
}

PUBLIC_PATHS = {
    "home": ("GET", "/"),
    "favicon": ("GET", "/favicon.ico"),
    "static": ("GET", "/static/salesdesk.css"),
    "admin.static": ("GET", "/admin/static/admin/css/bootstrap4/admin.css"),
    "auth.login": ("GET", "/login"),
    "i18n.set_language": ("POST", "/language"),
    "admin.index": ("GET", "/admin/"),
    "auth.logout": ("POST", "/logout"),
    "question_group.index": ("GET", "/admin/question_group/"),
    "question_group.answer": ("POST", "/admin/question_group/answer/"),
    "lead.assign_view": ("POST", "/admin/lead/assign/"),
    "lead.pause_view": ("POST", "/admin/lead/pause/"),
    "contract.signing_extension_view": ("POST", "/admin/contract/signing-extension/"),
    "lawyer_letter_due.handle_view": ("POST", "/admin/lawyer_letter_due/handle/"),
    "rescission.handle_view": ("POST", "/admin/rescission/handle/"),
    "settlement.voucher_view": ("POST", "/admin/settlement/voucher/"),
    "subscription.deposit_view": ("POST", "/admin/subscription/deposit/"),
    "subscription.withdraw_view": ("POST", "/admin/subscription/withdraw/"),
    "subscription.payment_view": ("POST", "/admin/subscription/payment/"),
    "subscription.book_view": ("POST", "/admin/subscription/book/"),
    "subscription.change_unit_view": ("POST", "/admin/subscription/change_unit/"),
    "subscription.change_buyers_view": ("POST", "/admin/subscription/change_buyers/"),
    "subscription.change_method_view": ("POST", "/admin/subscription/change_method/"),
    "subscription.change_price_view": ("POST", "/admin/subscription/change_price/"),
    "subscription.cancel_deal_view": ("POST", "/admin/subscription/cancel_deal/"),
    "change_request.reject_view": ("POST", "/admin/change_request/reject/"),
    "change_request.send_back_view": ("POST", "/admin/change_request/send_back/"),
    "change_request.resubmit_view": ("POST", "/admin/change_request/resubmit/"),
    "change_request.withdraw_view": ("POST", "/admin/change_request/withdraw/"),
    "contract.sign_view": ("POST", "/admin/contract/sign/"),
    "contract_step.step_view": ("POST", "/admin/contract_step/step/"),
    "contract.original_view": ("POST", "/admin/contract/original/"),
    "archive_record.copy_view": ("POST", "/admin/archive_record/copy/"),
    "instalment.note_view": ("POST", "/admin/instalment/note/"),
    "instalment.extension_view": ("POST", "/admin/instalment/extension/"),
    "payment.reverse_view": ("POST", "/admin/payment/reverse/"),
    "charge.pay_view": ("POST", "/admin/charge/pay/"),
    "charge.waive_view": ("POST", "/admin/charge/waive/"),
    "loan_ageing.index": ("GET", "/admin/loan_ageing/"),
    "loan_file.open_view": ("GET", "/admin/loan_file/open/?subscription_id={subscription}"),
    "loan_file.next_stage_view": ("POST", "/admin/loan_file/next_stage/"),
    "loan_file.missing_view": ("POST", "/admin/loan_file/missing/"),
    "loan_file.close_view": ("POST", "/admin/loan_file/close/"),
    "loan_file.disburse_view": ("POST", "/admin/loan_file/disburse/"),
    "loan_stuck.open_view": ("GET", "/admin/loan_stuck/open/?subscription_id={subscription}"),
    "loan_stuck.next_stage_view": ("POST", "/admin/loan_stuck/next_stage/"),
    "loan_stuck.missing_view": ("POST", "/admin/loan_stuck/missing/"),
    "loan_stuck.close_view": ("POST", "/admin/loan_stuck/close/"),
    "loan_stuck.disburse_view": ("POST", "/admin/loan_stuck/disburse/"),
    "true_up.refund_view": ("POST", "/admin/true_up/refund/"),
    "true_up_batch.apply_view": ("POST", "/admin/true_up_batch/apply/"),
    "true_up_batch.survey": ("GET", "/admin/true_up_batch/survey/?building_id={building}"),
    "true_up_batch.survey_upload": ("POST", "/admin/true_up_batch/survey/upload"),
    "true_up_batch.survey_compute": ("POST", "/admin/true_up_batch/survey/compute"),
    "handover.book_view": ("POST", "/admin/handover/book/"),
    "handover.inspect_view": ("POST", "/admin/handover/inspect/"),
    "handover.keys_view": ("POST", "/admin/handover/keys/"),
    "ticket.open_view": ("GET", "/admin/ticket/open/"),
    "ticket.customers_view": ("GET", "/admin/ticket/customers/?q=a"),
    "ticket.route_view": ("POST", "/admin/ticket/route/"),
    "ticket.note_view": ("POST", "/admin/ticket/note/"),
    "ticket.resolve_view": ("POST", "/admin/ticket/resolve/"),
    "ticket.reopen_view": ("POST", "/admin/ticket/reopen/"),
    "ticket.close_view": ("POST", "/admin/ticket/close/"),
    "ticket.attach_view": ("POST", "/admin/ticket/attach/"),
    "ticket.attachment_view": ("GET", "/admin/ticket/attachment/{attachment}/"),
    "survey.due_view": ("GET", "/admin/survey/due/"),
    "survey.record_view": ("GET", "/admin/survey/record/?subscription_id={subscription}"),
    "survey.summary_view": ("POST", "/admin/survey/summary/"),
    "board.index": ("GET", "/admin/board/"),
    "board.unit": ("GET", "/admin/board/unit/{unit}"),
    "board.hold": ("POST", "/admin/board/unit/{unit}/hold"),
    "board.release": ("POST", "/admin/board/unit/{unit}/release"),
    "board.withhold": ("POST", "/admin/board/unit/{unit}/withhold"),
    "unit_import.index": ("GET", "/admin/unit_import/"),
    "unit_import.upload": ("POST", "/admin/unit_import/upload"),
    "unit_import.show": ("GET", "/admin/unit_import/{price_list_import}"),
    "document.request_view": ("POST", "/admin/document/request/"),
    "document.download_view": ("GET", "/admin/document/download/{document}"),
    "document.retry_view": ("POST", "/admin/document/retry/{document}"),
    "document_batch.zip_view": ("GET", "/admin/document_batch/zip/{document_batch}"),
    "finance_export.index": ("GET", "/admin/finance_export/"),
    "finance_export.run": ("POST", "/admin/finance_export/run"),
    "export.download_view": ("GET", "/admin/export/download/{export}"),
    "export.retry_view": ("POST", "/admin/export/retry/{export}"),
    "sales_target.index": ("GET", "/admin/sales_target/"),
    "sales_target.save": ("POST", "/admin/sales_target/save"),
    "sales_target.review_xlsx": ("GET", "/admin/sales_target/review.xlsx"),
    "sales_target.review_pdf": ("GET", "/admin/sales_target/review.pdf"),
    # issue 23: channels
    "channel_registration.register_view": ("GET", "/admin/channel_registration/register/"),
    "channel_conflict.decide_view": ("POST", "/admin/channel_conflict/decide/"),
    # issue 23: rotation
    "rotation.index": ("GET", "/admin/rotation/"),
    "rotation.panel": ("GET", "/admin/rotation/panel"),
    "rotation.check": ("GET", "/admin/rotation/check?phone=13800000000"),
    "rotation.move_view": ("POST", "/admin/rotation/move"),
    "rotation.receive_view": ("POST", "/admin/rotation/receive"),
    "rotation.finish_view": ("POST", "/admin/rotation/finish"),
    "rotation.skip_view": ("POST", "/admin/rotation/skip"),
    "rotation.make_up_view": ("POST", "/admin/rotation/make_up"),
    # issue 23: commissions
    "deal_split.split_view": ("POST", "/admin/deal_split/split/"),
    # issue 23: statements
    "commission_statement.draw_view": ("GET", "/admin/commission_statement/draw/"),
    "commission_statement.lines_xlsx": ("GET", "/admin/commission_statement/lines.xlsx"),
    "floor_dashboard.index": ("GET", "/admin/floor_dashboard/"),
    "channel_analytics.index": ("GET", "/admin/channel_analytics/"),
    "channel_analytics.export_xlsx": ("GET", "/admin/channel_analytics/export.xlsx"),
    # issue 24: intent registration
    "launch_entry.register_view": ("GET", "/admin/launch_entry/register/"),
    "launch_entry.deposit_view": ("POST", "/admin/launch_entry/deposit/"),
    "launch_entry.refund_view": ("POST", "/admin/launch_entry/refund/"),
    "launch_entry.convert_view": ("POST", "/admin/launch_entry/convert/"),
    # issue 24: lottery
    "lottery.index": ("GET", "/admin/lottery/?launch={lottery_launch}"),
    "lottery.verify_view": ("GET", "/admin/lottery/verify?launch={lottery_launch}"),
    "lottery.publish_view": ("POST", "/admin/lottery/publish"),
    "lottery.draw_view": ("POST", "/admin/lottery/draw"),
    "lottery_public.lottery_page": ("GET", "/launch/{lottery_launch}/lottery"),
    "lottery_public.lottery_json": ("GET", "/launch/{lottery_launch}/lottery.json"),
    # issue 24: selection
    "launch_select.index": ("GET", "/admin/launch_select/?launch={launch_select}"),
    "launch_select.choose": ("POST", "/admin/launch_select/choose"),
    "launch_screen.index": ("GET", "/admin/launch_screen/"),
    "launch_screen.screen": ("GET", "/admin/launch_screen/{launch_select}"),
    "launch_screen.data": ("GET", "/admin/launch_screen/{launch_select}/data"),
    "launch_control.index": ("GET", "/admin/launch_control/?launch={launch_select}"),
    "launch_control.export_xlsx": ("GET", "/admin/launch_control/export.xlsx?launch={launch_select}"),
    "launch_control.start_view": ("POST", "/admin/launch_control/start"),
    "launch_control.advance_view": ("POST", "/admin/launch_control/advance"),
    "launch_control.close_view": ("POST", "/admin/launch_control/close"),
    # issue 24: live board
    "board.state": ("GET", "/admin/board/state?project={project}"),
    "board.stream": ("GET", "/admin/board/stream?project={project}"),
    # issue 24: lottery, a lost seed
    "lottery.abandon_view": ("POST", "/admin/lottery/abandon"),
}
PUBLIC_DATA = {
    "i18n.set_language": {"lang": "en", "next": "/admin/"},
    "question_group.answer": {"project_id": "999999", "topic": "x", "answer": "y"},
    "lead.assign_view": {"ids": "999999", "mode": "one", "agent": "999999"},
    "document.request_view": {"kind": "receipt", "subject_id": "999999"},
    "finance_export.run": {"list": "payments", "format": "csv"},
    # issue 23: commissions
    "deal_split.split_view": {"subscription_id": "999999"},
    # issue 24: selection — the agent's entry choosing now, a unit on offer
    "launch_select.choose": {"entry": "{launch_entry_choosing}", "unit": "{launch_unit}"},
    "launch_control.start_view": {"launch": "{launch_select}"},
    "launch_control.advance_view": {"launch": "{launch_select}"},
    "launch_control.close_view": {"launch": "{launch_select}"},
}


def _request_for(endpoint: str, ids: dict[str, int]):
    """(method, path, form data) exercising `endpoint` on a row the agent under test owns."""
    if endpoint in PUBLIC_PATHS:
        method, path = PUBLIC_PATHS[endpoint]
        return method, path.format(**ids), {k: v.format(**ids) for k, v in PUBLIC_DATA.get(endpoint, {}).items()}
    table, view = endpoint.split(".")
    base = f"/admin/{table}"
    row = ids[table]
    return {
        "index_view": ("GET", f"{base}/", {}),
        "details_view": ("GET", f"{base}/details/?id={row}", {}),
        "create_view": ("GET", f"{base}/new/", {}),
        "edit_view": ("GET", f"{base}/edit/?id={row}", {}),
        # A missing id: an allowed role gets past the role check and finds nothing (404).
        "delete_view": ("POST", f"{base}/delete/", {"id": "999999"}),
        "action_view": ("POST", f"{base}/action/", {"action": "delete", "rowid": "999999"}),
        "export": ("GET", f"{base}/export/csv/", {}),
        "ajax_lookup": ("GET", f"{base}/ajax/lookup/?name=x&query=a", {}),
        "ajax_update": ("POST", f"{base}/ajax/update/", {"list_form_pk": str(row)}),
    }[view]


def _outcome(response) -> str:
    assert response.status_code < 500, response.get_data(as_text=True)[-2000:]
    if response.status_code == 403:
        return "denied"
    if response.status_code in (301, 302, 303) and "/login" in response.headers.get("Location", ""):
        return "login"
    return "allowed"


def _expected(endpoint: str, letter: str | None) -> str:
    if endpoint == "auth.logout":
        return "login"  # signed-in roles are signed out and sent to /login; anonymous too
    allowed = EXPECTED[endpoint]
    if allowed == "*":
        return "allowed"
    if letter is None:
        return "login"
    return "allowed" if letter in allowed else "denied"


@pytest.fixture
def office(db, make_user):
    """One row of every entity, owned by the agent under test where ownership applies."""
    users = {letter: make_user(role, username=f"matrix_{role}") for letter, role in ROLE_OF.items()}
    agent, s = users["g"], db.session
    lead = f.lead(s, owner=agent)
    unit = f.unit(s, f.building(s, lead.project))
    follow_up = f.follow_up(s, lead)
    sub = f.subscription(s, agent, lead_=lead, unit_=unit)
    inst = f.instalment(s, sub)
    pay = f.payment(s, inst, users["f"])
    ext = Extension(subscription=sub, instalment=inst, days=5, reason="客户资金周转", requested_by_id=agent.id)
    s.add(ext)
    event = f.overdue_event(s, inst)
    contract = f.contract(s, sub)
    step = ContractStep(contract=contract, kind="notarisation")
    s.add(step)
    record = ArchiveRecord(contract=contract, received_on=dt.date(2026, 11, 1), location="A-01")
    kept = LeadArchive(lead=lead, subscription_id=sub.id, reason="forfeit", snapshot={"name": lead.name})
    conflict = LeadConflict(lead=lead, attempted_by_id=users["m"].id, attempted_name="重复")
    question = CustomerQuestion(project_id=lead.project_id, asked_by_id=agent.id, question="车位价格？",
                                topic="车位价格", answer="10万起", answered_at=dt.datetime(2026, 11, 1))
    note = Notification(user_id=agent.id, kind="lead_assigned", message="分配了客户")
    approval = PriceApproval(subscription=sub, list_price=sub.price, price=sub.price - 1000,
                             reason="老客户", requested_by_id=agent.id)
    s.add(approval)
    change = ChangeRequest(subscription=sub, kind="buyers", chain="sales_manager", reason="增加配偶",
                           requested_by_id=agent.id, proposal={}, before={}, difference={})
    buyer = DealBuyer(subscription=sub, seq=1, name=lead.name, id_number=f.VALID_ID_NUMBER, share=100)
    s.add_all([ext, step, record, kept, conflict, question, note, change, buyer])
    batch = DocumentBatch(kind="receipt", total=1, requested_by_id=agent.id)
    doc = f.document(s, agent, batch=batch, subject_id=pay.id)
    export = Export(list="payments", format="csv", requested_by_id=agent.id)
    s.add(export)
    price_list = PriceListImport(filename="p.csv", content=b"x", requested_by_id=users["c"].id)
    s.add(price_list)
    # issue 22: one row of each after-contract entity, of the agent's deal
    today = dt.date(2026, 11, 20)
    charge = Charge(project_id=sub.project_id, subscription_id=sub.id, kind="late_fee", instalment_id=inst.id,
                    amount=100, rate_percent=0.05, cap=5000)
    s.add(charge)
    s.flush()
    waiver = LateFeeWaiver(charge_id=charge.id, subscription_id=sub.id, amount=50, reason="客户困难",
                           requested_by_id=agent.id)
    bank = Bank(name="中国建设银行")
    s.add_all([waiver, bank])
    s.flush()
    loan = LoanFile(project_id=sub.project_id, subscription_id=sub.id, line_kind="commercial_loan", bank_id=bank.id,
                    loan_kind="commercial", amount=500000, stage_since=today, opened_by_id=users["f"].id)
    batch22 = TrueUpBatch(project_id=sub.project_id, building_id=unit.building_id, surveyed_on=today,
                          created_by_id=users["c"].id)
    s.add_all([loan, batch22])
    s.flush()
    true_up = TrueUp(batch_id=batch22.id, project_id=sub.project_id, subscription_id=sub.id, unit_id=unit.id,
                     contract_area=100, surveyed_area=101, ratio_percent=1, unit_price=10000, buyer_pays=10000)
    handover = Handover(project_id=sub.project_id, subscription_id=sub.id, unit_id=unit.id, notified_on=today,
                        notified_by_id=users["m"].id)
    ticket = Ticket(number="SH-T-000001", project_id=sub.project_id, lead_id=lead.id, subscription_id=sub.id,
                    category="quality", source="phone", department="engineering", title="窗户漏水",
                    opened_on=today, due_on=today, opened_by_id=agent.id)
    s.add_all([true_up, handover, ticket])
    s.flush()
    ticket_note = TicketNote(ticket_id=ticket.id, by_id=agent.id, note="已联系工程部")
    survey = Survey(project_id=sub.project_id, subscription_id=sub.id, agent_id=agent.id, occasion="signing",
                    overall=5, recorded_on=today, recorded_by_id=agent.id)
    photo = Attachment(subject="ticket", subject_id=ticket.id, filename="a.png", content_type="image/png", size=8,
                       sha256="0" * 64, content=b"\x89PNG\r\n\x1a\n", uploaded_by_id=agent.id)
    s.add_all([ticket_note, survey, photo])
    # issue 23: channels — a company, the channel user under test its person, his registration and
    # a refused one of the same phone in conflict with it
    company = ChannelCompany(name="矩阵渠道")
    s.add(company)
    s.flush()
    s.add(ChannelMember(user_id=users["x"].id, company_id=company.id))
    registration = ChannelRegistration(project_id=lead.project_id, company_id=company.id,
                                       registered_by_id=users["x"].id, customer_name="渠道客户",
                                       phone="13900000001", registered_on=today, valid_until=today)
    refused = ChannelRegistration(project_id=lead.project_id, company_id=company.id,
                                  registered_by_id=users["x"].id, customer_name="渠道客户",
                                  phone="13900000001", registered_on=today, valid_until=today, status="refused")
    s.add_all([registration, refused])
    s.flush()
    channel_conflict = ChannelConflict(project_id=lead.project_id, registration_id=refused.id,
                                       against_registration_id=registration.id)
    s.add(channel_conflict)
    # issue 23: rotation — a visit the agent received and its turn
    visit = Visit(project_id=sub.project_id, lead_id=lead.id, phone=lead.phone, kind="first", channel="walk_in",
                  received_by_id=agent.id, registered_by_id=users["m"].id)
    s.add(visit)
    s.flush()
    rotation_event = RotationEvent(project_id=sub.project_id, day=today, kind="assign", agent_id=agent.id,
                                   visit_id=visit.id, by_id=users["m"].id)
    s.add(rotation_event)
    # issue 23: commissions — a rule, the agent's line on his deal, a split of it
    rule = CommissionRule(project_id=sub.project_id, role="agent", basis="rate", rate_percent=1)
    s.add(rule)
    s.flush()
    commission_line = CommissionLine(project_id=sub.project_id, subscription_id=sub.id, rule_id=rule.id, role="agent",
                                     stage="subscribed", payee_user_id=agent.id, base=sub.price, amount=100,
                                     month=dt.date(2026, 11, 1), earned_on=today)
    split = DealSplit(subscription_id=sub.id, agent_id=agent.id, percent=100, created_by_id=users["m"].id)
    s.add_all([commission_line, split])
    # issue 23: statements — the agent's own statement of the month
    statement = CommissionStatement(project_id=sub.project_id, month=dt.date(2026, 11, 1), payee_user_id=agent.id,
                                    earned=1000, total=1000, line_count=1)
    s.add(statement)
    # issue 24: intent registration — a launch of the agent's project taking registrations today, the
    # agent's registration on it and its deposit
    from models import IntentPayment, LaunchEntry
    launch = Launch(project_id=sub.project_id, name="矩阵认筹", registration_opens_on=dt.date(2000, 1, 1),
                    registration_closes_on=dt.date(2100, 1, 1), selection_on=dt.date(2100, 1, 2), intent_deposit=50000,
                    card_valid_until=dt.date(2100, 2, 1), questions=["持有本市购房资格"], created_by_id=users["m"].id)
    s.add(launch)
    s.flush()
    entry = LaunchEntry(launch_id=launch.id, number="RC01-0001", lead_id=lead.id, agent_id=agent.id, name=lead.name,
                        phone=lead.phone, id_type="resident_id", id_number=f.VALID_ID_NUMBER, address="长沙",
                        answers={"持有本市购房资格": True}, eligible=True, status="paid")
    s.add(entry)
    s.flush()
    intent = IntentPayment(project_id=sub.project_id, entry_id=entry.id, kind="deposit", amount=50000,
                           number="SJ-M-000001", paid_on=today, channel="pos", recorded_by_id=users["f"].id)
    s.add(intent)
    # issue 24: lottery — a published launch (its public pages answer; publishing and drawing refuse it)
    lottery_launch = Launch(project_id=sub.project_id, name="矩阵开盘", status="published",
                            registration_opens_on=today, registration_closes_on=today, selection_on=today,
                            intent_deposit=50000, card_valid_until=today, created_by_id=users["m"].id,
                            seed_hash="0" * 64, entrants_digest="0" * 64, published_at=dt.datetime(2026, 11, 20))
    s.add(lottery_launch)
    # issue 24: selection — a launch selecting now, the agent's buyer in his slot, a unit on offer
    from models.base import utcnow
    from models.launches import LaunchBuilding, LaunchEntry
    select_building = f.building(s, lead.project)
    select_unit = f.unit(s, select_building)
    select_launch = Launch(project_id=lead.project_id, name="矩阵选房", status="selecting",
                           registration_opens_on=today, registration_closes_on=today, selection_on=today,
                           intent_deposit=50000, card_valid_until=dt.date(2099, 1, 1), created_by_id=users["m"].id,
                           seed_hash="0" * 64, seed="1" * 64, selection_started_at=utcnow())
    s.add(select_launch)
    s.flush()
    s.add(LaunchBuilding(launch_id=select_launch.id, building_id=select_building.id))
    select_entry = LaunchEntry(launch_id=select_launch.id, number="K0001", lead_id=lead.id, agent_id=agent.id,
                               name=lead.name, phone=lead.phone, id_type="resident_id", id_number=f.VALID_ID_NUMBER,
                               address="长沙", eligible=True, status="paid", position=1, queue_no=1,
                               selection_status="choosing", slot_starts_at=utcnow(),
                               slot_ends_at=utcnow() + dt.timedelta(days=1))
    s.add(select_entry)
    s.flush()
    s.commit()
    ids = {"lead": lead.id, "follow_up": follow_up.id, "subscription": sub.id, "instalment": inst.id,
           "payment": pay.id, "extension": ext.id, "overdue_event": event.id, "contract": contract.id,
           "contract_step": step.id, "archive_record": record.id, "lead_archive": kept.id,
           "document": doc.id, "document_batch": batch.id, "export": export.id, "price_list_import": price_list.id, "project": lead.project_id, "building": unit.building_id,
           "unit": unit.id, "user": agent.id, "role": s.query(Role).first().id, "audit": 1,
           "follow_up_due": lead.id, "lead_conflict": conflict.id, "customer_question": question.id,
           "answer_sheet": question.id, "notification": note.id, "price_approval": approval.id,
           "payment_method_template": s.query(PaymentMethodTemplate).first().id,
           "contract_step_due": step.id, "stamped_copy": 1, "lawyer_letter_due": event.id,
           "rescission": event.id, "settlement": sub.id, "voucher": 1, "change_request": change.id,
           "deal_buyer": buyer.id, "charge": charge.id, "late_fee_waiver": waiver.id, "bank": bank.id,
           "loan_file": loan.id, "loan_stuck": loan.id, "true_up_batch": batch22.id, "true_up": true_up.id,
           "handover": handover.id, "handover_ready": sub.id, "ticket": ticket.id, "ticket_due": ticket.id,
           "ticket_note": ticket_note.id, "survey": survey.id, "attachment": photo.id,
           # issue 23: channels
           "channel_company": company.id, "channel_member": users["x"].id,
           "channel_registration": registration.id, "channel_conflict": channel_conflict.id,
           # issue 23: rotation
           "visit": visit.id, "rotation_event": rotation_event.id,
           # issue 23: commissions
           "commission_rule": rule.id, "commission_line": commission_line.id, "deal_split": split.id,
           # issue 23: statements
           "commission_statement": statement.id,
           # issue 24: intent registration
           "launch": launch.id, "launch_entry": entry.id, "intent_payment": intent.id,
           # issue 24: lottery
           "lottery_launch": lottery_launch.id,
           # issue 24: selection
           "launch_select": select_launch.id, "launch_entry_choosing": select_entry.id,
           "launch_unit": select_unit.id}
    return users, ids


def test_every_endpoint_is_classified(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - EXPECTED.keys() == set(), "classify these endpoints in EXPECTED"
    assert EXPECTED.keys() - endpoints == set(), "these endpoints no longer exist"


@pytest.mark.parametrize("letter", [None, *ALL], ids=["anonymous", *[ROLE_OF[c] for c in ALL]])
def test_role_matrix(app, client, office, letter):
    users, ids = office
    if letter is not None:
        assert Auth(client).login(users[letter].username).status_code == 302
    token = csrf_token(client, "/admin/" if letter else "/login")
    mismatches = []
    # logout last: it ends the session the other checks need
    for endpoint in sorted(EXPECTED, key=lambda e: e == "auth.logout"):
        method, path, data = _request_for(endpoint, ids)
        if method == "POST":
            response = client.post(path, data={**data, "csrf_token": token})
        else:
            response = client.get(path)
        got, want = _outcome(response), _expected(endpoint, letter)
        if got != want:
            mismatches.append(f"{endpoint} {method} {path}: expected {want}, got {got} "
                              f"({response.status_code})")
    assert mismatches == [], "\n".join(mismatches)
    assert _outcome(client.get("/admin/")) == "login"  # the logout above ended the session
