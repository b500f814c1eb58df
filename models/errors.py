"""Errors a domain function raises; views and the CLI show their message to the user."""
from __future__ import annotations


class RuleViolation(Exception):
    """A business rule refused the operation.

    `message` is a lazy_gettext string, so it reads in the user's language (Chinese by
    default, English when chosen). `rule` is the rule id from RULES.md, e.g. "R-PAY-5".
    """

    def __init__(self, message, rule: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.rule = rule

    def __str__(self) -> str:  # evaluated lazily, in the current locale
        from flask_babel import gettext

        text = str(self.message)
        return gettext("%(text)s (rule %(rule)s)", text=text, rule=self.rule) if self.rule else text


class PermissionDenied(RuleViolation):
    """The acting user's roles do not allow this (R-ALL-1)."""
