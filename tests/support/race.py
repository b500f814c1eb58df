"""`race(*workers)`: run callables in threads released at the same instant (a Barrier), as the
concurrency tests need: two people acting on one deal, ten posts of one form, two job runs.

With `app`, each worker runs in its own app context and so its own database session, as a
separate request or work-horse would: it is called as `worker(session)`, its session is rolled
back if it raises and removed when it ends. The workers must not touch the test's own session or
its objects (hand them plain ids).

Returns what each worker returned, in the order given. An exception of a type in `expected` (the
loser's refusal) is returned as that worker's result; any other exception, or a thread still
running after `join` seconds, fails the test once every thread has been waited for.
"""
from __future__ import annotations

import threading


def race(*workers, app=None, expected=(), barrier=30, join=60):
    start = threading.Barrier(len(workers), timeout=barrier)
    results, errors = [None] * len(workers), []

    def run(index, worker):
        try:
            if app is None:
                start.wait()
                results[index] = worker()
                return
            from models import db
            with app.app_context():
                try:
                    start.wait()
                    results[index] = worker(db.session)
                except BaseException:
                    db.session.rollback()
                    raise
                finally:
                    db.session.remove()
        except expected as exc:  # noqa: PERF203 - the loser's refusal is the point
            results[index] = exc
        except Exception as exc:  # shown by the assertion below, with the others
            errors.append((index, exc))

    threads = [threading.Thread(target=run, args=(index, worker)) for index, worker in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(join)
    running = [index for index, thread in enumerate(threads) if thread.is_alive()]
    assert not running, f"workers {running} still running after {join} s"
    assert not errors, "; ".join(f"worker {index}: {type(exc).__name__}: {exc}" for index, exc in errors)
    return results


def post_at_once(app, cookie, path, data, n=10):
    """`n` posts of one form at the same instant, each its own request from a browser holding the
    session `cookie` (a double click, a retry); returns the pages they end on."""
    from tests.conftest import FreshContextClient

    def post():
        browser = FreshContextClient(app, app.response_class)
        browser.set_cookie("session", cookie.value, domain=cookie.domain)
        return browser.post(path, data=data, follow_redirects=True).get_data(as_text=True)

    return race(*[post] * n)
