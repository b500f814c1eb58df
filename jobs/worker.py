"""The entry point of a job worker: the rq worker class for production, started by `flask --app
app worker` (which listens on this instance's queues) or `rq worker --worker-class
jobs.worker.Worker …`.

rq forks a work-horse for every job. This worker takes the app once, before it forks — the one
`flask --app app worker` loaded, or, started by `rq worker`, the one the flask CLI would load
(`jobs.context.load_app`: FLASK_APP, default "app") — and loads the PDF fonts and stylesheet
then, so each job starts warm instead of paying ~1 s for them; the database engine is disposed
of after the warm-up so that no connection is shared with a child.

It runs only jobs stamped with its own database's fingerprint (`jobs.queue.enqueue` stamps
them): a job of another office that reached its queues — two offices sharing a Redis database
under the same SALESDESK_INSTANCE — is put back for that office's workers, never run here.
"""
from __future__ import annotations

import logging
import time

import click
from flask.cli import ScriptInfo
from rq.worker import Worker as RQWorker

from .context import preload

log = logging.getLogger(__name__)

MAX_REFUSALS = 5  # a foreign job put back this many times is failed (its own office's sweep re-sends it)


class Worker(RQWorker):
    refusal_pause = 1.0  # seconds, so that a worker alone with a foreign job does not spin

    def __init__(self, *args, app=None, **kwargs):
        """`app`: the app its entry point loaded (None: found as the flask CLI finds it)."""
        super().__init__(*args, **kwargs)
        self.fingerprint = preload(app)

    def execute_job(self, job, queue):
        stamp = (job.meta or {}).get("db")
        if stamp is not None and stamp != self.fingerprint:
            self.refuse(job, queue)
            return
        super().execute_job(job, queue)

    def refuse(self, job, queue) -> None:
        """Never run a job of another database: put it back at the end of its queue for the
        workers of its own office (or, after MAX_REFUSALS, fail it: no code of it runs here)."""
        refusals = int(job.meta.get("refusals", 0)) + 1
        job.meta["refusals"] = refusals
        job.save_meta()
        log.error("job %s belongs to database %s, not to this worker's (%s): refused (%d)",
                  job.id, job.meta.get("db"), self.fingerprint, refusals)
        with self.connection.pipeline() as pipe:
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.execute()
        if refusals >= MAX_REFUSALS:
            from rq.registry import FailedJobRegistry
            job.set_status("failed")
            FailedJobRegistry(queue.name, connection=self.connection).add(
                job, exc_string=f"refused: the job belongs to another database ({job.meta.get('db')})")
        else:
            queue.push_job_id(job.id)
        time.sleep(self.refusal_pause)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--queues", "names", default="default,documents,exports", show_default=True,
              help="Which of this instance's queues to listen on, comma-separated.")
def worker_command(burst, names):
    """Run an rq worker on this instance's queues (named after SALESDESK_INSTANCE or the
    database URL), with this worker class."""
    from rq import Queue

    from .queue import get_connection, is_embedded, queue_name
    app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    with app.app_context():  # to name the queues; the jobs run in this app too (handed to the worker)
        if is_embedded():
            raise click.UsageError("REDIS_URL is not set: in embedded mode jobs run in the web process.")
        connection = get_connection()
        queues = [Queue(queue_name(name.strip()), connection=connection)
                  for name in names.split(",") if name.strip()]
    click.echo("listening on " + ", ".join(q.name for q in queues))
    Worker(queues, connection=connection, app=app).work(burst=burst)
