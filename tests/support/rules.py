"""`raises_rule("R-PAY-6")`: a refusal test that passes only when the rule it names refused.

`pytest.raises(RuleViolation)` accepts any refusal: a test of the extension limit would pass when
the extension was refused for another reason (the deal was not live, the agent not the owner).
Every refusal test names its rule with this instead.
"""
from __future__ import annotations

import contextlib

import pytest

from models import RuleViolation


@contextlib.contextmanager
def raises_rule(rule: str, match: str | None = None):
    """Expect a RuleViolation whose `rule` is `rule` (and whose message contains `match`, read in
    the current language); yields pytest's ExceptionInfo."""
    with pytest.raises(RuleViolation) as caught:
        yield caught
    assert caught.value.rule == rule, f"refused by {caught.value.rule!r}, not {rule!r}: {caught.value}"
    if match is not None:
        assert match in str(caught.value), str(caught.value)
