"""The deal's page after the contract (issue 22): sections other screen groups add to it — late
fees, the mortgage file, the area true-up, the handover, after-sales tickets and surveys.

Each screen group registers its section once, at import, with `deal_section(template, context)`:
`context(sub)` returns the section's variables (or None to leave the section out for this deal);
the template (under templates/admin/deal/) reads them as `section`. The deal's page
(admin/deals.py, templates/admin/subscription_details.html) renders them in registration order.
Every section checks what the reader may see itself (models.permissions), as every screen does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class DealSection:
    template: str
    context: Callable


SECTIONS: list[DealSection] = []


def deal_section(template: str, context: Callable) -> None:
    if all(s.template != template for s in SECTIONS):
        SECTIONS.append(DealSection(template, context))


def sections_for(sub) -> list[dict]:
    """[{"template": …, "section": {…}}] of the sections this deal shows."""
    shown = []
    for section in SECTIONS:
        data = section.context(sub)
        if data is not None:
            shown.append({"template": section.template, "section": data})
    return shown
