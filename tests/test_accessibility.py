"""Issue 19, item 19 (accessible): the status colours read at WCAG AA, computed from the CSS
itself. The browser side (landmarks, names of controls, colours as rendered) is in
tests/test_browser_i19_a11y.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parent.parent / "static" / "salesdesk.css"
AA = 4.5  # WCAG 2 AA, normal-size text (badges and board cells are small text)

NAMED = {"white": "#ffffff", "black": "#000000"}


def rgb(value: str) -> tuple[float, float, float]:
    """#rgb, #rrggbb, rgb(r, g, b) or a few names -> (r, g, b) in 0..255."""
    value = NAMED.get(value.strip().lower(), value.strip().lower())
    if value.startswith("#"):
        digits = value[1:]
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        assert len(digits) == 6, value
        return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))
    numbers = re.fullmatch(r"rgba?\(\s*([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:\s*[,/]\s*([\d.]+))?\s*\)", value)
    assert numbers, f"a colour this test cannot read: {value!r}"
    assert numbers.group(4) in (None, "1"), f"a translucent colour: {value!r}"
    return tuple(float(n) for n in numbers.groups()[:3])


def luminance(colour) -> float:
    """WCAG 2 relative luminance."""
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def css_rules(text: str):
    """(selectors, {property: value}) for each plain rule of a style sheet (no @media here)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        declarations = {}
        for declaration in body.split(";"):
            if ":" in declaration:
                name, value = declaration.split(":", 1)
                declarations[name.strip().lower()] = value.replace("!important", "").strip()
        yield [s.strip() for s in selectors.split(",") if s.strip()], declarations


def status_pairs():
    """Each rule colouring a status-* class: its selectors, text colour and background."""
    pairs = []
    for selectors, declarations in css_rules(CSS.read_text(encoding="utf-8")):
        if not any(re.search(r"\.status-[a-z_]+", s) for s in selectors):
            continue
        background = declarations.get("background-color", declarations.get("background"))
        pairs.append((selectors, declarations.get("color"), background))
    return pairs


def test_issue19_accessible_the_contrast_formula_gives_wcags_figures():
    """The issue's figures, from the old colours: white on paid #20c997 2.13, on confirmed
    #17a2b8 3.04, on available #28a745 3.13; black on white 21."""
    assert round(contrast(rgb("#fff"), rgb("#20c997")), 2) == 2.13
    assert round(contrast(rgb("#fff"), rgb("#17a2b8")), 2) == 3.04
    assert round(contrast(rgb("#fff"), rgb("#28a745")), 2) == 3.13
    assert round(contrast(rgb("#fff"), rgb("#fd7e14")), 2) == 2.57
    assert round(contrast(rgb("#fff"), rgb("#007bff")), 2) == 3.98
    assert contrast(rgb("white"), rgb("rgb(0, 0, 0)")) == pytest.approx(21)


def test_issue19_accessible_every_status_rule_of_the_css_reads_at_4_5_to_1():
    """R-SC-1's colours, on the board's cells, its legend and every status badge: each status-*
    rule sets both its text colour and its background, and the two differ by at least 4.5:1."""
    pairs = status_pairs()
    covered = {c for selectors, _, _ in pairs for s in selectors for c in re.findall(r"\.status-([a-z_]+)", s)}
    # The board's five unit statuses and the payment states the issue measured are all there.
    assert {"available", "held", "subscribed", "signed", "withheld", "paid", "partly_paid",
            "confirmed"} <= covered, covered
    failing = []
    for selectors, colour, background in pairs:
        assert colour and background, f"{selectors}: a status rule sets both color and background"
        ratio = contrast(rgb(colour), rgb(background))
        if ratio < AA:
            failing.append(f"{', '.join(selectors)}: {colour} on {background} = {ratio:.2f}")
    assert not failing, "\n".join(failing)
