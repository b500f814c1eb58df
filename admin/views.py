"""The grids' registry: every grid, in menu order, with its menu name and category. Each screen
group has its own module (leads, deals, money, contracts, sales_control, documents, exports, system);
a grid is at /admin/<table>/ (or its `entity`)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from models import CommissionLine, CommissionRule, DealSplit  # issue 23: commissions
from models.commissions import CommissionStatement
from models import (ChannelCompany, ChannelConflict, ChannelMember, ChannelRegistration,  # issue 23: channels
                    ArchiveRecord, Bank, Charge, Handover, LateFeeWaiver, LoanFile, Audit, Building, ChangeRequest, Contract,
                    ContractStep, CustomerQuestion, DealBuyer,
                    Document, DocumentBatch, Export, Extension, FollowUp, Instalment, Lead, LeadArchive, LeadConflict, Notification,
                    OverdueEvent, Payment, PaymentMethodTemplate, PriceApproval, Project, Role, StampedCopy,
                    Subscription, Survey, Ticket, TicketNote, TrueUp, TrueUpBatch, Unit, User, Voucher)

from .changes import ChangeRequestView, DealBuyerView
from .channels import ChannelCompanyView, ChannelConflictView, ChannelMemberView, ChannelRegistrationView
from .commissions import CommissionLineView, CommissionRuleView, DealSplitView
from .charges import ChargeView, LateFeeWaiverView
from .commission_statements import ChannelAnalyticsPage, CommissionStatementView, FloorDashboardPage
from .contracts import ArchiveRecordView, ContractStepDueView, ContractStepView, ContractView, StampedCopyView
from .deals import LeadArchiveView, PriceApprovalView, SubscriptionView
from .documents import DocumentBatchView, DocumentView
from .exports import ExportView
from .loans import BankView, LoanAgeingPage, LoanFileView, LoanStuckView
from .handovers import HandoverReadyView, HandoverView
from .leads import (AnswerSheetView, CustomerQuestionView, FollowUpDueView, FollowUpView, LeadConflictView,
                    LeadView, QuestionGroupPage)
from .money import (ExtensionView, InstalmentView, LawyerLetterDueView, OverdueEventView, PaymentMethodView,
                    PaymentView, RescissionView, SettlementView, VoucherView)
from .sales_control import BuildingView, ProjectView, UnitView
from .tickets import SurveyView, TicketDueView, TicketNoteView, TicketView
from .true_ups import TrueUpBatchView, TrueUpView
from .rotation import RotationEventView, VisitView
from .launches import IntentPaymentView, LaunchEntryView, LaunchView  # issue 24: intent registration
from models import IntentPayment, Launch, LaunchEntry  # issue 24: intent registration
from models.reception import RotationEvent, Visit
from .system import ENTITY_LABELS, AuditView, NotificationView, RoleView, UserView

__all__ = ["VIEWS", "QuestionGroupPage", "LoanAgeingPage", "FloorDashboardPage", "ChannelAnalyticsPage"]


# (model, view class, menu name, menu category)
VIEWS = [
    (Lead, LeadView, _l("Customers"), _l("Sales")),
    (Lead, FollowUpDueView, _l("Follow-ups due"), _l("Sales")),
    (FollowUp, FollowUpView, _l("Follow-ups"), _l("Sales")),
    (LeadConflict, LeadConflictView, _l("Duplicate registrations"), _l("Sales")),
    (CustomerQuestion, CustomerQuestionView, _l("Customer questions"), _l("Sales")),
    (CustomerQuestion, AnswerSheetView, _l("Answer sheet"), _l("Sales")),
    (Subscription, SubscriptionView, _l("Subscriptions"), _l("Sales")),
    (PriceApproval, PriceApprovalView, _l("Price approvals"), _l("Sales")),
    (ChangeRequest, ChangeRequestView, _l("Deal changes"), _l("Sales")),
    (DealBuyer, DealBuyerView, _l("Buyers of deals"), _l("Sales")),
    (LeadArchive, LeadArchiveView, _l("Kept records of cancelled deals"), _l("Sales")),
    (Project, ProjectView, _l("Projects"), _l("Sales control")),
    (Building, BuildingView, _l("Buildings"), _l("Sales control")),
    (Unit, UnitView, _l("Units"), _l("Sales control")),
    (TrueUpBatch, TrueUpBatchView, _l("Area true-ups"), _l("Sales control")),
    (TrueUp, TrueUpView, _l("Area true-ups of deals"), _l("Sales control")),
    (Instalment, InstalmentView, _l("Payment plans"), _l("Finance")),
    (Payment, PaymentView, _l("Payments"), _l("Finance")),
    (Extension, ExtensionView, _l("Extensions"), _l("Finance")),
    (PaymentMethodTemplate, PaymentMethodView, _l("Payment methods"), _l("Finance")),
    (OverdueEvent, OverdueEventView, _l("Overdue events"), _l("Finance")),
    (OverdueEvent, LawyerLetterDueView, _l("Lawyer's letters to send"), _l("Contracts")),
    (OverdueEvent, RescissionView, _l("Rescission review"), _l("Contracts")),
    (Subscription, SettlementView, _l("Money to settle"), _l("Finance")),
    (Voucher, VoucherView, _l("Refund and retention vouchers"), _l("Finance")),
    (Charge, ChargeView, _l("Late fees and other charges"), _l("Finance")),
    (LateFeeWaiver, LateFeeWaiverView, _l("Late-fee waivers"), _l("Finance")),
    (CommissionStatement, CommissionStatementView, _l("Commission statements"), _l("Finance")),
    (Contract, ContractView, _l("Contracts"), _l("Contracts")),
    (ContractStep, ContractStepView, _l("Post-signing steps"), _l("Contracts")),
    (ContractStep, ContractStepDueView, _l("Steps past their promised date"), _l("Contracts")),
    (ArchiveRecord, ArchiveRecordView, _l("Contract archive"), _l("Contracts")),
    (StampedCopy, StampedCopyView, _l("Stamped copies issued"), _l("Contracts")),
    (LoanFile, LoanFileView, _l("Mortgage files"), _l("Contracts")),
    (LoanFile, LoanStuckView, _l("Stuck mortgage files"), _l("Contracts")),
    (Subscription, HandoverReadyView, _l("Ready for handover"), _l("After-sales")),
    (Handover, HandoverView, _l("Handovers"), _l("After-sales")),
    (Ticket, TicketView, _l("After-sales tickets"), _l("After-sales")),
    (Ticket, TicketDueView, _l("Tickets overdue"), _l("After-sales")),
    (TicketNote, TicketNoteView, _l("Ticket notes"), _l("After-sales")),
    (Survey, SurveyView, _l("Satisfaction surveys"), _l("After-sales")),
    # issue 23: channels (R-COM-1)
    (ChannelRegistration, ChannelRegistrationView, _l("Channel registrations"), _l("Channels")),
    (ChannelConflict, ChannelConflictView, _l("Channel conflicts"), _l("Channels")),
    (ChannelCompany, ChannelCompanyView, _l("Channel companies"), _l("Channels")),
    (ChannelMember, ChannelMemberView, _l("Channel people"), _l("Channels")),
    (Document, DocumentView, _l("Document centre"), _l("Documents")),
    (DocumentBatch, DocumentBatchView, _l("Document batches"), _l("Documents")),
    (Export, ExportView, _l("Exports"), _l("Finance")),
    (Bank, BankView, _l("Banks"), _l("Finance")),
    # issue 23: commissions (R-COM-2)
    (CommissionRule, CommissionRuleView, _l("Commission rules"), _l("Finance")),
    (CommissionLine, CommissionLineView, _l("Commission lines"), _l("Finance")),
    (DealSplit, DealSplitView, _l("Shared deals"), _l("Sales")),
    (Notification, NotificationView, _l("Notifications"), _l("System")),
    (User, UserView, _l("Users"), _l("System")),
    (Role, RoleView, _l("Roles"), _l("System")),
    (Audit, AuditView, _l("Audit trail"), _l("System")),
    # issue 23: the sales floor (rotation)
    (RotationEvent, RotationEventView, _l("Rotation: turns and exceptions"), _l("Sales floor")),
    (Visit, VisitView, _l("Visit register"), _l("Sales floor")),
    # issue 24: intent registration (R-LCH-1)
    (Launch, LaunchView, _l("Launches"), _l("Opening day")),
    (LaunchEntry, LaunchEntryView, _l("Intent registrations"), _l("Opening day")),
    (IntentPayment, IntentPaymentView, _l("Intent deposits"), _l("Opening day")),
]

for _model, _, _name, _ in VIEWS:  # the audit trail names a table by its first grid's menu name
    ENTITY_LABELS.setdefault(_model.__tablename__, _name)
