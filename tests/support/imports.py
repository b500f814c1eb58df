"""Sending a price list through the import page, as a browser would, and running its job."""
from __future__ import annotations

import io

from tests.conftest import Auth, submission_key


def run_jobs():
    """Production mode: a worker would take the job; here a burst worker in this process does.
    Embedded mode: the job ran when it was queued."""
    from rq import SimpleWorker

    from jobs.queue import get_queue, is_embedded
    if not is_embedded():
        queue = get_queue("default")
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def post_price_list(client, content: bytes, name: str, key: str | None = None):
    """POST the import form as a browser would (its CSRF token and one-time key)."""
    page = client.get("/admin/unit_import/").get_data(as_text=True)
    return client.post("/admin/unit_import/upload", data={
        "csrf_token": Auth(client).csrf(), "submission_key": key or submission_key(page),
        "file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


def send_price_list(client, content: bytes, name: str) -> str:
    """Upload, let the job run, and read the import's page (what the person sees)."""
    response = post_price_list(client, content, name)
    if response.status_code != 302:
        return response.get_data(as_text=True)
    run_jobs()
    return client.get(response.headers["Location"]).get_data(as_text=True)
