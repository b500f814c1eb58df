"""Concurrent writers on the embedded SQLite database (issue 18, item 19): subscriptions per
second through subscribe() with real commits, N threads released together on distinct units,
and how many failed ("database is locked" or any other error).

    env -u DATABASE_URL .venv/bin/python bench/sqlite_writes.py [threads ...]
"""
from __future__ import annotations

import sys
from collections import Counter

from _office import scratch_app
from sales_control import _fill, _run


def main(counts):
    with scratch_app() as app:
        from models import db
        assert db.engine.dialect.name == "sqlite", "this measures SQLite (unset DATABASE_URL)"
        _, agents, lead_ids, free = _fill(db)
        ids = [a.id for a in agents]
        leads = {agent: iter(lead_ids[agent]) for agent in ids}
        for threads in counts:
            jobs = [(free.pop(), next(leads[ids[i % len(ids)]]), ids[i % len(ids)])
                    for i in range(max(200, threads))]
            seconds, outcomes = _run(app, jobs, threads)
            tally = Counter(o if not o.startswith("error") else o for o in outcomes)
            print(f"{threads:4d} threads: {len(jobs)} subscriptions in {seconds:6.2f} s = "
                  f"{len(jobs) / seconds:6.1f}/s; {dict(tally)}", flush=True)


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [1, 4, 16, 64, 200])
