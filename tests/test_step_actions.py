"""admin.base.run_domain: what a step's domain call returned, told apart from a refusal (issue 20)."""
from __future__ import annotations

from flask_login import login_user

from models import RuleViolation
from models.submissions import AlreadySubmitted


def test_run_domain_tells_a_refusal_and_a_form_sent_twice_from_a_none_result(app, make_user):
    from admin.base import ALREADY_DONE, REFUSED, run_domain, succeeded

    user = make_user("sales_control")

    def refuse(by):
        raise RuleViolation("no", rule="R-TEST")

    def sent_before(by):
        raise AlreadySubmitted("R1")

    with app.test_request_context():
        login_user(user)
        assert run_domain(lambda by: None) is None and succeeded(None)
        assert run_domain(lambda by: 0) == 0 and run_domain(lambda by: []) == []
        assert run_domain(lambda by: by.id) == user.id
        assert run_domain(refuse) is REFUSED and not succeeded(REFUSED) and not REFUSED
        assert run_domain(sent_before) is ALREADY_DONE and not succeeded(ALREADY_DONE)
