"""Whether Flask-Babel's catalogue kept per request (the patch admin/i18n.py applied until issue 20,
`keep_catalogue_per_request` below; dropped since it measured under 5 % of a page) still matters: the same pages with and without it, in the same process and run, one request
with it and one without, in turn (the machine's load falls on both alike). "ours" is with the
patch, "peer" Flask-Babel as shipped, each page's time as the wall clock reads it and as the
process's CPU time (the part the patch can change; less disturbed by other processes on a shared
machine); the look-ups are the catalogue look-ups of one page.

    DATABASE_URL=postgresql://… .venv/bin/python bench/babel_catalogue.py [SCALE] [PAIRS]
"""
from __future__ import annotations

import sys
import time
from statistics import median

from _office import print_table, scratch_app

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 0.02
PAIRS = int(sys.argv[2]) if len(sys.argv) > 2 else 40

PAGES = [  # (measure, path); every page in Chinese (the office's language, a catalogue to read)
    ("leads grid, first page", "/admin/lead/"),
    ("units grid, first page", "/admin/unit/"),
    ("subscriptions grid, first page", "/admin/subscription/"),
    ("manager's dashboard (gettext-heavy)", "/admin/"),
    ("a customer's detail page", "/admin/lead/details/?id=1"),
]


def keep_catalogue_per_request(domain) -> None:
    """The patch as it was. Flask-Babel finds the request's locale and catalogue again for every message (~8 µs; a
    grid page translates ~200 of them, ~1.5 ms). This keeps the catalogue found on the request's
    Babel context, per domain and locale object: a locale changed within the request
    (force_locale, refresh) is a new object, hence a new lookup. Undone by `del
    domain.get_translations` (the class's method shows again)."""
    from flask_babel import _get_current_context
    find = domain.get_translations
    key = f"salesdesk_catalogue_{id(domain)}"

    def get_translations():
        context = _get_current_context()
        if context is None:
            return find()
        locale = getattr(context, "babel_locale", None)
        kept = getattr(context, key, None)
        if kept is not None and locale is not None and kept[0] is locale:
            return kept[1]
        catalogue = find()
        setattr(context, key, (getattr(context, "babel_locale", None), catalogue))
        return catalogue

    domain.get_translations = get_translations



def _switch(domains, on: bool) -> None:
    for domain in domains:
        if "get_translations" in vars(domain):
            del domain.get_translations  # the class's method: Flask-Babel as shipped
        if on:
            keep_catalogue_per_request(domain)


def _lookups(domains, fn) -> int:
    """How many catalogue look-ups `fn` makes (Flask-Babel as shipped)."""
    _switch(domains, False)
    count = [0]
    for domain in domains:
        find = domain.get_translations

        def counted(find=find):
            count[0] += 1
            return find()
        domain.get_translations = counted
    fn()
    _switch(domains, True)
    return count[0]


def _gettext_us(app, n: int = 2000) -> float:
    """One message translated, in µs, within one request."""
    from flask_babel import gettext
    with app.test_request_context():
        gettext("Sales Desk")
        start = time.perf_counter()
        for _ in range(n):
            gettext("Sales Desk")
        return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    with scratch_app() as app:
        from admin.fast_list import babel_domains
        from big_office import build
        from models import db

        counts = build(db, SCALE)
        domains = babel_domains(app)
        client = app.test_client()
        assert client.post("/login", data={"username": "manager", "password": "bench-pass-1"}).status_code == 302
        for _, path in PAGES:
            assert client.get(path).status_code == 200, path
        rows, lookups, saved = [], {}, {}
        for measure, path in PAGES:
            lookups[measure] = _lookups(domains, lambda: client.get(path))
            wall, cpu = {True: [], False: []}, {True: [], False: []}
            for _ in range(PAIRS):
                for on in (True, False):
                    _switch(domains, on)
                    started, cpu_started = time.perf_counter(), time.process_time()
                    client.get(path)
                    cpu[on].append((time.process_time() - cpu_started) * 1000)
                    wall[on].append((time.perf_counter() - started) * 1000)
            rows.append((f"{measure}, catalogue kept (wall)", median(wall[True]), median(wall[False]), "-"))
            rows.append((f"{measure}, catalogue kept (CPU)", median(cpu[True]), median(cpu[False]), "-"))
            saved[measure] = [(median(t[False]) - median(t[True]), (median(t[False]) - median(t[True]))
                               / median(t[False]) * 100) for t in (wall, cpu)]
        words = {}
        for on in (True, False):
            _switch(domains, on)
            words[on] = median(_gettext_us(app) for _ in range(5))
        _switch(domains, True)
    print(", ".join(f"{k} {v:,.0f}" for k, v in counts.items()))
    print_table(rows)
    print(f"gettext, one message: {words[True]:.1f} µs kept, {words[False]:.1f} µs as shipped")
    delta_ms = (words[False] - words[True]) / 1000
    for measure, _ in PAGES:
        (wall_ms, wall_share), (cpu_ms, cpu_share) = saved[measure]
        print(f"{measure:38} {lookups[measure]:4} look-ups (x {delta_ms * 1000:.1f} µs = {lookups[measure] * delta_ms:4.2f} ms);"
              f" kept saves {wall_ms:5.2f} ms wall = {wall_share:4.1f} %, {cpu_ms:5.2f} ms CPU = {cpu_share:4.1f} %")


if __name__ == "__main__":
    main()
