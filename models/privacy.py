"""Customers' personal data, masked by one rule on every path that shows it (R-ALL-1).

Which keys hold personal data (`PERSONAL_KEYS`: a column or a key inside recorded JSON, such as
an audit row's changes or an archived customer's snapshot) and how each kind is masked live
here; who reads each kind whole is models.permissions (`sees_whole`). The grids, their detail
pages and exports (admin/base.py), the audit trail, the archive, notifications and lookups all
go through `mask_value` / `mask_data`.
"""
from __future__ import annotations

import re

from .permissions import sees_whole

# key (a column's name, or a key in recorded JSON) -> kind of personal data
PERSONAL_KEYS = {
    "id_number": "id_number",
    "customer_id_number": "id_number",
    "phone": "phone",
    "customer_phone": "phone",
}


def mask_id_number(id_number: str | None) -> str:
    """430***********1234: first 3 and last 4 characters kept."""
    if not id_number:
        return ""
    if len(id_number) <= 7:
        return "*" * len(id_number)
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:]


def mask_phone(phone: str | None) -> str:
    """138****5678: first 3 and last 4 digits kept."""
    if not phone:
        return ""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "****" + phone[-4:]


def mask_name(name: str | None) -> str:
    """王**: the first character kept, the rest starred — a name shown where anyone reads it (the
    opening day's big screen, issue 24), whoever is looking."""
    name = (name or "").strip()
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


MASKS = {"id_number": mask_id_number, "phone": mask_phone}


def kind_of(key: str | None) -> str | None:
    """The kind of personal data a column or JSON key holds (its last dotted part), or None."""
    if not key:
        return None
    return PERSONAL_KEYS.get(str(key).rsplit(".", 1)[-1])


def mask_value(user, key: str, value):
    """`value` of the column/JSON key `key` as `user` may read it: whole or masked."""
    kind = kind_of(key)
    if kind is None or value in (None, "") or sees_whole(user, kind):
        return value
    if isinstance(value, (list, tuple)):  # an audit row's [before, after]
        return [mask_value(user, key, v) for v in value]
    if isinstance(value, dict):
        return mask_data(user, value)
    return MASKS[kind](str(value))


def mask_data(user, data):
    """Recorded JSON (dicts, lists) with the values of every personal key masked for `user`."""
    if isinstance(data, dict):
        return {k: mask_value(user, k, v) if kind_of(k) else mask_data(user, v) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_data(user, v) for v in data]
    return data


# Free text written for people (notifications): an 18-character ID number or an 11-digit mobile.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    """A message with any whole ID number or mobile number in it masked (for texts stored once
    and shown to whoever receives them, such as notifications)."""
    if not text:
        return text
    text = _ID_IN_TEXT.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)
