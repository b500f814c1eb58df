"""Who may do what: the one table that views and domain functions both consult (R-ALL-1).

Each entity (table name) maps verbs to the roles allowed. Verbs of the admin grids:
``list`` (the grid and its count), ``details``, ``create``, ``edit``, ``delete``, ``export``,
``action`` (bulk actions). Domain operations are listed in ``OPERATIONS`` by name.

Row scoping (an agent sees only own customers) is a second, separate check: ``scope_filter``.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

ROLES = ("admin", "sales_manager", "agent", "sales_control", "finance", "lawyer", "archive", "vp",
         "customer_service", "channel")

ROLE_LABELS = {
    "admin": _l("Administrator"),
    "sales_manager": _l("Sales manager"),
    "agent": _l("Sales agent"),
    "sales_control": _l("Sales control officer"),
    "finance": _l("Finance"),
    "lawyer": _l("Lawyer"),
    "archive": _l("Contract archivist"),
    "vp": _l("Vice-president"),
    "customer_service": _l("Customer service"),
    "channel": _l("External channel"),  # issue 23: an agency's person (渠道), sees only his own registrations
}

# One letter per role keeps the table readable at a glance.
_LETTER = {"a": "admin", "m": "sales_manager", "g": "agent", "c": "sales_control",
           "f": "finance", "l": "lawyer", "r": "archive", "v": "vp",
           "s": "customer_service", "x": "channel"}

VERBS = ("list", "details", "create", "edit", "delete", "export", "action")


def _roles(letters: str) -> frozenset[str]:
    return frozenset(_LETTER[c] for c in letters)


def _entity(list="", details=None, create="", edit="", delete="", export="", action=""):
    details = list if details is None else details
    return {"list": _roles(list), "details": _roles(details), "create": _roles(create),
            "edit": _roles(edit), "delete": _roles(delete), "export": _roles(export),
            "action": _roles(action)}


# Status and money columns are never edited here: they change through domain functions only.
# Nothing that records money or history is deletable by anyone (R-ALL-2).
PERMISSIONS: dict[str, dict[str, frozenset[str]]] = {
    "user": _entity(list="a", create="a", edit="a", export="a"),
    "role": _entity(list="a"),
    "project": _entity(list="amgcflrvs", create="a", edit="a", export="amv"),
    "building": _entity(list="amgcflrvs", create="ac", edit="ac", delete="ac", export="amcv"),
    "unit": _entity(list="amgcflrvs", edit="ac", delete="ac", export="amcv", action="ac"),  # by import
    "lead": _entity(list="amgvs", create="amg", edit="amg", export="amgv", action="am"),
    "follow_up_due": _entity(list="amgv"),
    "follow_up": _entity(list="amgv", create="amg", edit="am", export="amv"),
    "lead_conflict": _entity(list="amg", export="am", action="am"),
    "customer_question": _entity(list="amgv", create="amg", export="am"),
    "question_group": _entity(list="amv", action="am"),
    "answer_sheet": _entity(list="amgcflrvs"),
    "notification": _entity(list="amgcflrvsx", action="amgcflrvsx"),
    "subscription": _entity(list="amgcflvs", create="g", export="amcfv", action="gmcf"),
    "price_approval": _entity(list="amgcv", action="v"),
    "board": _entity(list="amgcflrvs", action="amgc"),
    "unit_import": _entity(list="ac", action="ac"),
    "instalment": _entity(list="amgflv", export="amfv", action="amg"),
    "payment": _entity(list="amgflv", export="amfv", action="f"),
    "extension": _entity(list="amgfv", export="amv", action="mv"),
    "lawyer_letter_due": _entity(list="amlv", action="l"),  # letters to send (R-PAY-5)
    "rescission": _entity(list="amlv", action="mlv"),  # signed deals on the forfeit day (R-PAY-4)
    "settlement": _entity(list="amfv", action="f"),  # money held on deals that are over (R-CHG-5)
    "voucher": _entity(list="amgfv", export="amfv"),
    "change_request": _entity(list="amgcflv", export="amfv", action="amgv"),  # R-CHG-1: the deals' changes
    "deal_buyer": _entity(list="amgcflv"),  # R-CHG-3: a deal's buyers, current and former
    "payment_method_template": _entity(list="amfv", create="av", edit="av"),
    "overdue_event": _entity(list="amgflv", export="amflv"),
    "contract": _entity(list="amgflrv", export="amlrv", action="glr"),
    "contract_step": _entity(list="amglrv", export="amlv", action="l"),
    "contract_step_due": _entity(list="amglrv"),
    "archive_record": _entity(list="amlrv", export="amrv", action="r"),
    "stamped_copy": _entity(list="amglrv", export="amrv"),
    "lead_archive": _entity(list="amv"),
    "document": _entity(list="amgcflrvs"),  # rows scoped by subject: models.documents
    "document_batch": _entity(list="amgcflrvs"),
    "finance_export": _entity(list="amgfv", export="amgfv"),  # the payment lists; agents: own customers
    "export": _entity(list="amgfv"),  # background exports; agents see their own
    "sales_target": _entity(list="amv", export="amv", action="am"),  # R-ALL-3
    "audit": _entity(list="av", export="av"),
    # Issue 22: after the contract (R-AFT-1…4, R-SVC-1/2).
    "charge": _entity(list="amgfv", export="amfv", action="amgf"),  # late fees and true-ups owed
    "late_fee_waiver": _entity(list="amgfv", export="amfv", action="mv"),
    "bank": _entity(list="amgflv", create="af", edit="af"),
    "loan_file": _entity(list="amgflv", export="amflv", action="fl"),
    "loan_stuck": _entity(list="amflv", action="fl"),  # files stuck in a stage beyond the project's limit
    "loan_ageing": _entity(list="amfv"),
    "true_up_batch": _entity(list="amcfv", action="acf"),
    "true_up": _entity(list="amgcfv", export="amcfv"),
    "handover": _entity(list="amgsv", export="amsv", action="mgs"),
    "handover_ready": _entity(list="amsv", action="ms"),  # signed deals without a handover (R-AFT-4)
    "ticket": _entity(list="amgcflsv", export="amsv", action="amgfls"),
    "ticket_due": _entity(list="amsv"),  # tickets past their due date (R-SVC-1)
    "ticket_note": _entity(list="amgcflsv"),
    "survey": _entity(list="amgsv", export="amsv"),  # recorded on its own page (survey.record)
    # Issue 23: the sales floor (R-RCP-1/2, R-COM-1/2). The channel role (x) sees only its own rows.
    "rotation": _entity(list="amg", action="amg"),  # the front desk's screen and its moves
    "rotation_event": _entity(list="amv", export="amv"),  # the manager's day: turns and exceptions
    "visit": _entity(list="amgv", export="amv", action="amg"),  # agents: visits they received or own
    "channel_company": _entity(list="amv", create="am", edit="am", export="amv"),
    "channel_member": _entity(list="am", create="am", delete="am"),
    "channel_registration": _entity(list="amvx", export="amv", action="amx"),  # x: his own only
    "channel_conflict": _entity(list="amv", action="m"),
    "channel_analytics": _entity(list="amv", export="amv"),  # visits → subscriptions → signings
    "commission_rule": _entity(list="amfv", create="av", edit="av"),
    "deal_split": _entity(list="amgfv", action="m"),
    "commission_line": _entity(list="amgfvx", export="amfv"),  # agents and channels: their own
    "commission_statement": _entity(list="amgfvx", export="amfv", action="fmv"),
    "floor_dashboard": _entity(list="amfv"),  # rotation fairness, conversion, commissions
    # Issue 24: opening day (R-LCH-1…3). Agents see the entries they registered.
    "launch": _entity(list="amgcfv", create="am", edit="am", export="amcfv", action="amc"),
    "launch_entry": _entity(list="amgcfv", export="amcfv", action="amgcf"),
    "intent_payment": _entity(list="amcfv", export="amfv"),
    "launch_select": _entity(list="amgc", action="amgc"),  # the selection page: a buyer in his slot chooses
    "launch_screen": _entity(list="amgcv"),  # the big screen (大屏): the slot, who chooses, the board
    "launch_control": _entity(list="amcfv", export="amcfv"),  # the day's control room
    "lottery": _entity(list="amgcfv", action="amc"),  # the launch's lottery page: as the launch
}

# Domain operations (functions in models/) and the roles that may call them.
OPERATIONS: dict[str, frozenset[str]] = {
    "user.create": _roles("a"),
    "lead.register": _roles("amg"),
    "lead.follow_up": _roles("amg"),
    "lead.feedback": _roles("am"),
    "lead.assign": _roles("am"),
    "lead.resolve_conflict": _roles("am"),
    "question.ask": _roles("amg"),
    "question.answer": _roles("am"),
    "unit.import": _roles("ac"),
    "unit.withhold": _roles("ac"),
    "unit.hold": _roles("gc"),  # a project may narrow it (Project.hold_roles)
    "unit.release": _roles("gcma"),  # one's own hold
    "unit.release_any": _roles("cma"),  # anyone's hold
    "subscription.create": _roles("g"),
    "subscription.confirm": _roles("c"),
    "subscription.deposit": _roles("f"),
    "subscription.withdraw": _roles("gm"),
    "price.decide": _roles("v"),
    "payment.record": _roles("f"),
    "payment.reverse": _roles("f"),
    "instalment.note": _roles("amg"),
    "extension.request": _roles("amg"),
    "extension.decide": _roles("mv"),  # up to the project's limit in total (R-PAY-6)
    "extension.decide_beyond_limit": _roles("v"),
    "signing.extension.request": _roles("gl"),
    "letter.mark_sent": _roles("l"),  # R-PAY-5: the lawyer sends the lawyer's letter
    "rescission.decide": _roles("mlv"),
    "settlement.record": _roles("f"),  # R-CHG-5: refund or retained, by voucher
    "change.request": _roles("amg"),  # R-CHG-1: an agent (or the manager) asks to change a live deal
    "change.decide": _roles("mv"),  # each step by the role the project's chain names for it
    "change.withdraw": _roles("amg"),  # the requester (or the manager) takes a waiting request back
    "lead.pause": _roles("am"),  # R-LEAD-3
    "ladder.run": _roles("a"),
    "contract.book": _roles("gl"),
    "contract.sign": _roles("l"),
    "contract.step": _roles("l"),
    "contract.archive": _roles("r"),
    "target.set": _roles("am"),
    # Issue 22: after the contract.
    "charge.pay": _roles("f"),  # a late fee or a true-up paid, with a receipt (R-AFT-1, R-AFT-3)
    "late_fee.set_terms": _roles("am"),  # a deal's agreement's own late-fee terms (R-AFT-1)
    "late_fee.waive_request": _roles("amgf"),
    "late_fee.waive": _roles("mv"),  # up to the project's limit per deal in total
    "late_fee.waive_beyond_limit": _roles("v"),
    "bank.manage": _roles("af"),
    "loan.open": _roles("fl"),  # R-AFT-2: the mortgage files (按揭专员: finance or the lawyer)
    "loan.stage": _roles("fl"),
    "loan.disburse": _roles("f"),  # the bank's money: a receipt on the loan line
    "true_up.survey": _roles("ac"),  # R-AFT-3: surveyed areas entered or imported
    "true_up.apply": _roles("f"),  # the building's true-up applied: charges and refunds
    "true_up.refund": _roles("f"),
    "handover.notify": _roles("ms"),  # R-AFT-4
    "handover.book": _roles("gs"),
    "handover.inspect": _roles("s"),
    "handover.keys": _roles("s"),
    "ticket.open": _roles("amgs"),  # R-SVC-1
    "ticket.work": _roles("amgfls"),  # notes, progress, resolution — on the tickets one may see
    "ticket.route": _roles("ams"),  # department and person
    "ticket.close": _roles("ams"),  # after the outcome is fed back to the customer
    "survey.record": _roles("gs"),  # R-SVC-2
    # Issue 23: the sales floor.
    "rotation.join": _roles("amg"),  # sign in/out, break, back: an agent himself, the manager anyone
    "rotation.assign": _roles("amg"),  # the desk gives the next visitor to the next free agent (R-RCP-1)
    "rotation.exception": _roles("amg"),  # skip, out of turn, make-up: with a reason
    "visit.register": _roles("amg"),  # R-RCP-2
    "visit.check_phone": _roles("amg"),  # the desk's check-in answer
    "channel.manage": _roles("am"),  # companies and their people
    "channel.register": _roles("x"),  # R-COM-1: 报备
    "channel.withdraw": _roles("x"),  # his own, while valid
    "channel.resolve": _roles("m"),  # a conflict: keep the first or award the second
    "commission.rules": _roles("av"),  # R-COM-2
    "commission.split": _roles("m"),  # 分单
    "commission.compute": _roles("amf"),  # recompute a deal's or a month's lines (jobs: no user)
    "commission.statement": _roles("fm"),  # draw up a month's statements
    "commission.approve": _roles("mv"),  # up to the project's limit
    "commission.approve_beyond_limit": _roles("v"),
    # Issue 24: opening day.
    "launch.manage": _roles("am"),  # create and edit a launch, open and close its phases
    "launch.register": _roles("amg"),  # R-LCH-1: a buyer's intent registration (认筹)
    "launch.deposit": _roles("f"),  # R-LCH-1: the intent deposit received, with a receipt
    "launch.refund": _roles("f"),  # R-LCH-1: refunded by a voucher
    "launch.convert": _roles("f"),  # R-LCH-1: into the deposit of the subscription chosen
    "launch.publish": _roles("m"),  # R-LCH-2: the entrants and the seed's hash published
    "launch.draw": _roles("m"),  # R-LCH-2: the seed revealed, the order drawn
    # R-LCH-2: a publication whose seed is lost abandoned (published → registration), publicly
    "launch.abandon_publication": _roles("v"),
    "launch.run": _roles("mc"),  # R-LCH-3: start the selection, open the next slots, mark missed
    "launch.choose": _roles("mgc"),  # R-LCH-3: a buyer in his slot picks a unit (agent, kiosk at control)
}


def role_label(name: str):
    return ROLE_LABELS.get(name, name)


def role_names(user) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    return user.role_names


def can(user, entity: str, verb: str) -> bool:
    """May `user` perform `verb` on `entity`? Unknown entities and verbs are refused."""
    allowed = PERMISSIONS.get(entity, {}).get(verb, frozenset())
    return bool(allowed & role_names(user))


def can_do(user, operation: str) -> bool:
    return bool(OPERATIONS.get(operation, frozenset()) & role_names(user))


def require(user, operation: str) -> None:
    """Raise PermissionDenied unless `user` may run the domain operation (R-ALL-1)."""
    from .errors import PermissionDenied

    if not can_do(user, operation):
        raise PermissionDenied(_l("Your role does not allow this operation."), rule="R-ALL-1")


# --- personal data (models/privacy.py applies these on every path that shows a person) -------
# Roles that read full identity numbers; everyone else sees them masked (430***********1234).
SEES_ID_NUMBER = frozenset({"admin", "sales_control", "finance", "lawyer"})
# Roles that read full phone numbers (an agent only his own customers', by row scoping): those who
# call customers. The vice-president and the archivist see 138****5678.
SEES_PHONE = SEES_ID_NUMBER | {"sales_manager", "agent", "customer_service"}
SEES_WHOLE = {"id_number": SEES_ID_NUMBER, "phone": SEES_PHONE}

# Roles that may export customers' personal data (phones, ID numbers) whole; agents only where
# their project allows it (Project.agents_may_export_personal_data).
EXPORTS_PERSONAL_DATA = frozenset({"admin", "sales_manager"})


def sees_id_number(user) -> bool:
    return sees_whole(user, "id_number")


def sees_whole(user, kind: str) -> bool:
    """Whether `user` reads personal data of `kind` ("id_number", "phone") unmasked."""
    return bool(role_names(user) & SEES_WHOLE.get(kind, frozenset()))


def may_export_personal_data(user, projects=None) -> bool:
    """Who may export customers' personal data (R-ALL-1): managers and administrators; an agent
    only when every project the exported rows belong to allows agents to (`projects`: those
    projects, or None when the rows' projects are not known — then agents may not)."""
    names = role_names(user)
    if names & EXPORTS_PERSONAL_DATA:
        return True
    if "agent" not in names or not projects:
        return False
    return all(getattr(p, "agents_may_export_personal_data", False) for p in projects)


# Roles that see every row; everyone else with list rights is scoped by `scope_filter`.
SEES_ALL = frozenset(ROLES) - {"agent", "channel"}


def sees_all_rows(user) -> bool:
    return bool(role_names(user) & SEES_ALL)


def scope_filter(model, user):
    """A WHERE clause limiting `model` rows to those `user` may see, or None for all rows.

    Agents (and only agents) are scoped to their own customers (R-LEAD-5, R-PAY-3). The
    rule is per model, declared as a classmethod ``owned_by(user_id)`` beside the model.
    """
    if sees_all_rows(user) and not getattr(model, "__scoped_for_everyone__", False):
        return None
    if user is None or not getattr(user, "is_authenticated", False):
        from sqlalchemy import false

        return false()  # nobody we know: no rows
    owned_by = getattr(model, "owned_by", None)
    if owned_by is None:
        if role_names(user) <= {"channel"}:  # an outside channel's person: nothing not declared his
            from sqlalchemy import false

            return false()
        return None
    return owned_by(user.id)
