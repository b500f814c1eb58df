"""The one reader of amounts typed by people (R-PAY-1): every form, import and domain function
that takes money from outside goes through `parse_money`, so ¥12.345 is refused everywhere
instead of becoming ¥12.34 in one place and an error in another.

Accepted: ASCII digits, optionally grouped by thousands with commas, with at most two decimals,
a leading ¥/￥ and surrounding spaces; digits, point and comma typed full-width by a Chinese
input method (１２３４５．６０). Refused with a message saying why: more than two decimals,
`_`, exponents, NaN/Infinity, signs, digits of other scripts (٣, ३…), zero or less (unless
`allow_zero`), and amounts from ¥1,000,000,000,000 up (Numeric(14, 2)).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from .errors import RuleViolation

FEN = Decimal("0.01")
LIMIT = Decimal("1000000000000")  # Numeric(14, 2) holds less than a trillion yuan

# Full-width digits, point, comma and space, as a Chinese input method types them.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９．，　", "0123456789., ")
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?", re.ASCII)


def format_money(value, places: int = 2) -> str:
    """The one way an amount is written for people (grids, pages, PDFs, messages): ¥1,234,567.00,
    and a negative one with its sign before the currency sign, -¥200,000.00, as accountants write
    it. Empty when there is none."""
    if value is None or value == "":
        return ""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    text = f"{abs(amount):,.{places}f}"
    return f"-¥{text}" if amount < 0 and text.strip("0.,") else f"¥{text}"


def parse_amount(value, what, *, places: int = 2, limit: Decimal = LIMIT, allow_zero: bool = False,
                 rule: str | None = "R-PAY-1") -> Decimal:
    """`value` (text as typed, or a Decimal/int from code) as a Decimal with `places` decimals.
    Raises RuleViolation naming `what` and the problem."""
    if isinstance(value, bool) or value is None:
        raise RuleViolation(_l("Enter %(what)s.", what=what), rule=rule)
    if isinstance(value, (int, Decimal)):
        amount = Decimal(value)
        if not amount.is_finite():
            raise _not_an_amount(what, rule)
        if amount != amount.quantize(Decimal(1).scaleb(-places)):
            raise _too_many_decimals(what, places, rule)
    else:
        text = str(value).translate(_FULL_WIDTH).strip()
        if text[:1] in ("¥", "￥"):
            text = text[1:].strip()
        if not text:
            raise RuleViolation(_l("Enter %(what)s.", what=what), rule=rule)
        if text.startswith("-"):
            raise _not_positive(what, allow_zero, rule)
        if not (_PLAIN.fullmatch(text) or _GROUPED.fullmatch(text)):
            raise _not_an_amount(what, rule)
        digits = text.replace(",", "")
        if "." in digits and len(digits.split(".")[1]) > places:
            raise _too_many_decimals(what, places, rule)
        try:
            amount = Decimal(digits)
        except InvalidOperation:  # pragma: no cover - the patterns above admit only plain numbers
            raise _not_an_amount(what, rule) from None
    if amount < 0 or (amount == 0 and not allow_zero):
        raise _not_positive(what, allow_zero, rule)
    if amount >= limit:
        raise RuleViolation(_l("%(what)s must be less than %(limit)s.", what=what,
                               limit=f"{limit:,.0f}"), rule=rule)
    return amount.quantize(Decimal(1).scaleb(-places))


def parse_money(value, what=None, *, allow_zero: bool = False, rule: str | None = "R-PAY-1") -> Decimal:
    """An amount of money in yuan, to the fen (see the module's docstring)."""
    return parse_amount(value, what or _l("The amount"), allow_zero=allow_zero, rule=rule)


def _not_an_amount(what, rule):
    return RuleViolation(_l("%(what)s must be an amount in yuan written with digits, e.g. 50000.00 or "
                            "50,000.00.", what=what), rule=rule)


def _too_many_decimals(what, places, rule):
    return RuleViolation(_l("%(what)s may have at most %(n)d decimals.", what=what, n=places), rule=rule)


def _not_positive(what, allow_zero, rule):
    if allow_zero:
        return RuleViolation(_l("%(what)s cannot be negative.", what=what), rule=rule)
    return RuleViolation(_l("%(what)s must be more than zero.", what=what), rule=rule)
