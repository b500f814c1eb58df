"""admin/step_actions.py: what a step's domain call returned, told apart from a refusal (issue 20)."""
from __future__ import annotations

from flask_login import login_user

from models import RuleViolation
from models.submissions import AlreadySubmitted


def test_run_step_tells_a_refusal_and_a_form_sent_twice_from_a_none_result(app, make_user):
    from admin.base import ALREADY_DONE, run_domain
    from admin.step_actions import REFUSED, run_step, succeeded

    user = make_user("sales_control")

    def refuse(by):
        raise RuleViolation("no", rule="R-TEST")

    def sent_before(by):
        raise AlreadySubmitted("R1")

    with app.test_request_context():
        login_user(user)
        assert run_domain(lambda by: None) is None  # what run_domain says of a step done that returns nothing
        assert run_step(lambda by: None) is None and succeeded(None)
        assert run_step(lambda by: 0) == 0 and run_step(lambda by: []) == []
        assert run_step(lambda by: by.id) == user.id
        assert run_step(refuse) is REFUSED and not succeeded(REFUSED) and not REFUSED
        assert run_step(sent_before) is ALREADY_DONE and not succeeded(ALREADY_DONE)
