"""Identity documents of customers: one validator for every path that takes one in (R-SUB-1).

The registration and edit forms of a customer, the subscription agreement, the domain functions
behind them and the demo office all read a document through `validate_id_document`; nothing else
decides whether an ID number is good. A document has a type and a number:

| code | document | accepted number |
|---|---|---|
| `resident_id` | 居民身份证 (mainland resident identity card, GB 11643-1999) | 18 characters: a 6-digit region code of the national list (python-stdnum's, any period: see `_region_known`), an 8-digit birth date (a real day, not in the future), a 3-digit sequence and the ISO 7064 MOD 11-2 check digit (0–9 or X) — python-stdnum's `stdnum.cn.ric` |
| `passport` | 护照 (any country's passport) | 5–20 Latin letters and digits, at least one digit (China: E + 8 digits or E + letter + 7 digits; other countries' numbers vary, ICAO 9303 allows up to 9 characters in the machine-readable zone, longer ones are printed) |
| `hk_macao_permit` | 港澳居民来往内地通行证 (回乡证) | H (Hong Kong) or M (Macao) and 8 digits; the card edition since 2013 adds 2 digits (the number of times issued): H/M + 10 digits |
| `taiwan_permit` | 台湾居民来往大陆通行证 (台胞证) | the card edition since 2015: 8 digits; the older booklet: 10 digits |
| `foreign_permanent_resident` | 外国人永久居留身份证 | the 2017 edition: 15 characters, 3 letters (the holder's nationality, ISO 3166-1 alpha-3) + 2-digit issuing office + 6-digit birth date YYMMDD + 3-digit sequence + 1 check digit; the 2023 edition: 18 characters starting with 9 (9 + 2-digit province + 3-digit nationality + 8-digit birth date + 3-digit sequence + check digit), with the resident card's birth date and ISO 7064 MOD 11-2 check digit |

Numbers are stored as typed, normalised: full-width characters to ASCII (NFKC, what a Chinese
input method types), spaces, dashes and brackets dropped, letters upper-case. Whatever the type,
the number is masked by the one rule of models/privacy.py (first 3 and last 4 characters kept).

Rows saved before this validator existed keep their number, even an invalid one: nothing is
rewritten. Such a number is shown as it is, and the next save of the customer's form asks for a
valid one (the form validates the number typed or kept); a subscription always needs a valid one.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

from flask_babel import lazy_gettext as _l
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from .base import office_today
from .errors import RuleViolation

RESIDENT_ID = "resident_id"
ID_TYPES = (RESIDENT_ID, "passport", "hk_macao_permit", "taiwan_permit", "foreign_permanent_resident")

# The documents' own names, as the Chinese documents (PDF, always in Chinese) print them.
DOCUMENT_NAMES_ZH = {RESIDENT_ID: "居民身份证", "passport": "护照", "hk_macao_permit": "港澳居民来往内地通行证",
                     "taiwan_permit": "台湾居民来往大陆通行证", "foreign_permanent_resident": "外国人永久居留身份证"}

_SEPARATORS = re.compile(r"[\s\-()（）]")
_PASSPORT = re.compile(r"^(?=.*\d)[A-Z0-9]{5,20}$", re.ASCII)
_HK_MACAO = re.compile(r"^[HM](\d{8}|\d{10})$", re.ASCII)
_TAIWAN = re.compile(r"^(\d{8}|\d{10})$", re.ASCII)
_FOREIGN_2017 = re.compile(r"^[A-Z]{3}\d{2}(\d{6})\d{4}$", re.ASCII)
_FOREIGN_2023 = re.compile(r"^9\d{16}[\dX]$", re.ASCII)


def as_typed_ascii(raw: str | None) -> str:
    """Text as the data stores it: NFKC (full-width to ASCII) and every decimal digit of another
    script (Arabic-Indic ١٢٣, Devanagari…) as its ASCII digit. Without the second step such digits
    passed the numbers' patterns (`\\d` reads them) and were stored as they were: a phone that no
    duplicate check (R-LEAD-5) or search would ever match, a permit number no one can read."""
    text = unicodedata.normalize("NFKC", raw or "")
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c for c in text)


def normalise_id_number(raw: str | None) -> str:
    """The number as stored: NFKC (full-width to ASCII), digits as ASCII, separators dropped, upper-case."""
    return _SEPARATORS.sub("", as_typed_ascii(raw)).upper()


def _refuse(message) -> RuleViolation:
    return RuleViolation(message, rule="R-SUB-1")


def _region_known(code: str) -> bool:
    """Whether the 6-digit administrative division code is in python-stdnum's national list, in
    any period. Not `ric.validate`'s stricter test (the code existed in the birth year): a number
    takes the code of where the holder was registered when the card was first issued (from 1985),
    so a customer born in 1970 in Changsha's 岳麓区 rightly holds 430104, a code created in 1983."""
    from stdnum import numdb
    merged = {k: v for _part, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    return "county" in merged


def _resident_id(number: str, today: dt.date) -> str:
    if len(number) != 18 or not number.isascii() or not number[:17].isdigit() or number[17] not in "0123456789X":
        raise _refuse(_l("A resident ID number has 18 characters: 17 digits and a last digit or X."))
    try:
        birth = ric.get_birth_date(number)
    except (ValidationError, ValueError):
        raise _refuse(_l("This ID number's birth date (%(date)s) is not a real date.",
                         date=f"{number[6:10]}-{number[10:12]}-{number[12:14]}")) from None
    if birth > today:
        raise _refuse(_l("This ID number's birth date (%(date)s) lies in the future.", date=birth.isoformat()))
    if number[17] != ric.calc_check_digit(number):
        raise _refuse(_l("This ID number is not valid (its check digit is wrong)."))
    if not _region_known(number[:6]):
        raise _refuse(_l("This ID number's region code (%(code)s) does not exist.", code=number[:6]))
    return number


def _foreign_permanent_resident(number: str, today: dt.date) -> str:
    old = _FOREIGN_2017.match(number)
    if old:
        try:
            dt.datetime.strptime(old.group(1), "%y%m%d")
        except ValueError:
            raise _refuse(_l("This permanent residence card's birth date is not a real date.")) from None
        return number
    if _FOREIGN_2023.match(number):
        try:
            birth = ric.get_birth_date(number)
        except (ValidationError, ValueError):
            raise _refuse(_l("This permanent residence card's birth date is not a real date.")) from None
        if birth > today:
            raise _refuse(_l("This permanent residence card's birth date lies in the future."))
        if number[-1] != ric.calc_check_digit(number):
            raise _refuse(_l("This permanent residence card number is not valid (its check digit is wrong)."))
        return number
    raise _refuse(_l("A foreign permanent resident ID card number has 15 characters (3 letters and 12 "
                     "digits) or 18 characters starting with 9."))


def validate_id_document(id_type: str | None, raw: str | None, today: dt.date | None = None) -> tuple[str, str]:
    """(type, number) of an identity document, normalised, or RuleViolation saying what is wrong.
    An empty type is the resident identity card; an empty number is refused (callers that
    accept none check for it first)."""
    id_type = id_type or RESIDENT_ID
    if id_type not in ID_TYPES:
        raise _refuse(_l("Choose the kind of identity document."))
    number = normalise_id_number(raw)
    if not number:
        raise _refuse(_l("Enter the customer's identity document number."))
    today = today or office_today()
    if id_type == RESIDENT_ID:
        return id_type, _resident_id(number, today)
    if id_type == "passport":
        if not _PASSPORT.match(number):
            raise _refuse(_l("A passport number has 5 to 20 letters and digits."))
    elif id_type == "hk_macao_permit":
        if not _HK_MACAO.match(number):
            raise _refuse(_l("A Hong Kong/Macao permit number is H or M followed by 8 or 10 digits."))
    elif id_type == "taiwan_permit":
        if not _TAIWAN.match(number):
            raise _refuse(_l("A Taiwan permit number has 8 digits (10 in the older booklet)."))
    else:
        _foreign_permanent_resident(number, today)
    return id_type, number


def id_document_problem(id_type: str | None, raw: str | None) -> str | None:
    """What is wrong with a stored document (None: nothing), for forms that show old rows."""
    try:
        validate_id_document(id_type, raw)
    except RuleViolation as exc:
        return str(exc.message)
    return None


# --- phone numbers ---------------------------------------------------------------------------
# Mainland mobile (1[3-9] + 9 digits) or a landline with its area code (0 + 2–3 digits + 7–8 digits).
_MOBILE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$", re.ASCII)


# What people put between the digits of a phone: spaces, dashes of every width, dots, brackets.
_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−.()（）]")


def normalise_phone(raw: str) -> str:
    """Digits of a mainland number without spaces, dashes, brackets or the +86 prefix; full-width
    characters (１３８００１３８０００ typed with a Chinese input method) read as ASCII (NFKC)."""
    digits = _PHONE_SEPARATORS.sub("", as_typed_ascii(raw))  # digits of any script as ASCII
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits


def is_phone(phone: str) -> bool:
    """Whether a normalised number is a whole mainland mobile or landline number."""
    return bool(_MOBILE.match(phone) or _LANDLINE.match(phone))
