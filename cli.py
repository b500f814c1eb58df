"""Commands: `flask --app app user create …`, `flask --app app demo`. (`db …` is Flask-Migrate's.)"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from models import RuleViolation, db
from models.audit import audit_context
from models.document_queue import DOCUMENT_KINDS
from models.permissions import ROLES
from models.users import create_user

user_cli = AppGroup("user", help="Manage accounts.")


@user_cli.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES),
              help="A role of the account; repeat for several.")
@click.option("--display-name", default=None, help="The name staff see (default: USERNAME).")
@click.password_option(help="Asked for when not given.")
def create_user_command(username, roles, display_name, password):
    """Create an account USERNAME with one or more roles."""
    try:
        with audit_context(db.session, action="create_user"):
            user = create_user(db.session, username, password, list(roles), display_name)
        db.session.commit()
    except RuleViolation as exc:
        db.session.rollback()
        raise click.ClickException(str(exc))
    click.echo(f"created {user.username} ({', '.join(sorted(user.role_names))})")


@click.command("demo")
@with_appcontext
def demo_command():
    """Fill the database with a realistic demo office (safe to run again)."""
    from demo import DEMO_PASSWORD, build_demo

    if current_app.config["PRODUCTION"]:
        raise click.ClickException("The demo office is refused when SALESDESK_ENV=production.")
    from jobs.documents import QueueUnavailable, enqueue_pending

    summary = build_demo(db.session)
    db.session.commit()
    try:  # the letters of today's ladder run: rendered here (embedded) or by the workers
        summary["letters"] = enqueue_pending()
    except QueueUnavailable as exc:
        summary["letters"] = f"queued; the job queue is unreachable ({exc})"
    for key, value in summary.items():
        click.echo(f"{key}: {value}")
    click.echo(f"password of every demo account: {DEMO_PASSWORD}")


@click.command("pool")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The office day to run for (default: today in the office's time zone).")
@with_appcontext
def pool_command(today):
    """Return leads idle past their project's limit to the public pool (公海)."""
    from jobs.leads import pool_stale_leads
    from models.base import office_today

    day = today.date() if today else office_today()
    click.echo(f"{day}: {pool_stale_leads(day.isoformat())} leads returned to the public pool")


@click.command("overdue")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The office day to run for (default: today in the office's time zone).")
@click.option("--dry-run", is_flag=True, help="Count what would happen; write nothing.")
@with_appcontext
def overdue_command(today, dry_run):
    """Run the day's money rules: expire subscriptions whose deposit never came, then the overdue
    ladder (reminders, warnings, lawyer's letters, forfeits, rescission reviews of signed deals)."""
    from jobs.ladder import run_ladder
    from models.base import office_today

    day = today.date() if today else office_today()
    counts = run_ladder(day.isoformat(), dry_run=dry_run)
    label = "would write" if dry_run else "written"
    levels = ("expired", "reminder", "warning", "lawyer_letter", "forfeit", "rescission",
              "signing_warning", "signing_lawyer_letter", "signing_forfeit")
    click.echo(f"{day} ({label}): " + ", ".join(f"{level} {counts.get(level, 0)}" for level in levels))


@click.command("document")
@click.argument("kind", type=click.Choice(DOCUMENT_KINDS))
@click.argument("subject_id", type=int)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Where to write the PDF.")
@with_appcontext
def document_command(kind, subject_id, out):
    """Render one document of KIND for SUBJECT_ID now, in this process, into --out.

    Subjects: subscription_agreement and forfeit_notice a subscription; receipt a payment;
    payment_reminder an instalment; overdue_warning and lawyer_letter an overdue event;
    signing_booking a contract; statement a customer (lead); board a building; addendum an
    approved change request."""
    import time

    import pdf
    from models.documents import document_context

    start = time.perf_counter()
    try:
        context = document_context(db.session, kind, subject_id)
    except RuleViolation as exc:
        raise click.ClickException(str(exc))
    data = pdf.render(kind, context)
    with open(out, "wb") as handle:
        handle.write(data)
    click.echo(f"{out}: {context['kind_label']} {context['title']}, {len(data):,} bytes, "
               f"{time.perf_counter() - start:.2f} s")


# --- Backups (README "Backups") -------------------------------------------------------------------

PG_BACKUP_HELP = ("With PostgreSQL, back up with pg_dump in its custom format, e.g.\n"
                  "  pg_dump -Fc --file=salesdesk-$(date +%F).dump \"$DATABASE_URL\"\n"
                  "and restore into an emptied or new database with\n"
                  "  pg_restore --clean --if-exists --no-owner -d \"$DATABASE_URL\" salesdesk-….dump\n"
                  "then `flask --app app db upgrade` (README, \"Backups\").")
SQLITE_HEADER = b"SQLite format 3\x00"


def _sqlite_file(url) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _revisions():
    from alembic.script import ScriptDirectory

    config = current_app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    return {rev.revision for rev in script.walk_revisions()}, script.get_current_head()


def _checked_copy(path: Path) -> str:
    """The revision of a Sales Desk SQLite database file, after SQLite's integrity check."""
    with open(path, "rb") as handle:
        if handle.read(16) != SQLITE_HEADER:
            raise click.ClickException(f"{path} is not an SQLite database.")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise click.ClickException(f"{path} fails SQLite's integrity check: {problems[:5]}")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"alembic_version", "audit", "user", "project"} <= tables:
            raise click.ClickException(f"{path} is not a Sales Desk database (no alembic_version, "
                                       "audit, user and project tables).")
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        conn.close()
    known, _ = _revisions()
    if not revision or revision[0] not in known:
        raise click.ClickException(f"{path} is at revision {revision[0] if revision else 'none'}, which "
                                   "this version of Sales Desk does not know (a backup of newer code?).")
    return revision[0]


def sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup API: one consistent snapshot, taken while the app reads and writes
    (WAL or not: the copy reads in one transaction; it never copies a file mid-write). The copy
    is a single self-contained file (journal mode DELETE), written next to TARGET and renamed."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    os.replace(partial, target)


@click.command("backup")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The backup file to write (never overwritten).")
@with_appcontext
def backup_command(out):
    """Back up the database into --out while the app runs: SQLite's online backup in embedded
    mode; pg_dump -Fc with PostgreSQL (when pg_dump is installed)."""
    target = Path(out)
    if target.exists():
        raise click.ClickException(f"{target} exists; backups are never overwritten: give a new name.")
    url = db.engine.url
    source = _sqlite_file(url)
    if source is not None:
        if not source.exists():
            raise click.ClickException(f"{source} does not exist: nothing to back up.")
        sqlite_backup(source, target)
        revision = _checked_copy(target)
        click.echo(f"{target}: {target.stat().st_size:,} bytes, a copy of {source} at revision "
                   f"{revision}, integrity checked. Restore: flask --app app restore --from {target}")
        return
    if url.get_backend_name() != "postgresql":
        raise click.ClickException(f"No backup for {url.get_backend_name()}.")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise click.ClickException("pg_dump is not installed here (Debian: apt-get install "
                                   "postgresql-client).\n" + PG_BACKUP_HELP)
    env = dict(os.environ, **({"PGPASSWORD": url.password} if url.password else {}))
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    partial = target.with_name(target.name + ".partial")
    done = subprocess.run([pg_dump, "--format=custom", f"--file={partial}", f"--dbname={dsn}"],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"pg_dump failed: {done.stderr.strip()}\n{PG_BACKUP_HELP}")
    os.replace(partial, target)
    click.echo(f"{target}: {target.stat().st_size:,} bytes (pg_dump -Fc of {url.database}). Restore: "
               f"pg_restore --clean --if-exists --no-owner -d DATABASE_URL {target}")


@click.command("restore")
@click.option("--from", "source", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A backup written by `flask --app app backup` (SQLite).")
@click.option("--yes", is_flag=True, help="Replace the database without asking.")
@with_appcontext
def restore_command(source, yes):
    """Replace the embedded (SQLite) database by a backup. Stop the app first. The current
    database is kept next to it (….before-restore-TIME) before anything is replaced."""
    current = _sqlite_file(db.engine.url)
    if current is None:
        raise click.ClickException("restore replaces the embedded SQLite database only.\n" + PG_BACKUP_HELP)
    source = Path(source)
    revision = _checked_copy(source)
    if current.exists() and current.resolve() == source.resolve():
        raise click.ClickException(f"{source} is the database itself.")
    if not yes:
        click.confirm(f"Replace {current} by the backup {source} (revision {revision})?", abort=True)
    db.session.remove()
    db.engine.dispose()
    kept = None
    if current.exists():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = current.with_name(f"{current.name}.before-restore-{stamp}")
        sqlite_backup(current, kept)
    current.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(current, timeout=30)
    try:
        src.backup(dst)  # page by page under SQLite's write lock; no half-copied file is ever read
    finally:
        dst.close()
        src.close()
    _checked_copy(current)
    _, head = _revisions()
    click.echo(f"{current}: restored from {source} (revision {revision})."
               + (f" The database before is kept in {kept}." if kept else ""))
    if revision != head:
        click.echo(f"The backup is at an older revision than this code ({head}): run "
                   "`flask --app app db upgrade` before starting the app.")


# --- Opening day (issue 24): the lottery's verification (R-LCH-2) -----------------------------------

launch_cli = AppGroup("launch", help="Opening day (开盘): launches and their lottery.")


@launch_cli.command("verify")
@click.argument("launch_id", type=int)
@click.option("--json", "json_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A published lottery JSON (/launch/<id>/lottery.json) to re-run instead of the database.")
def launch_verify_command(launch_id, json_file):
    """Re-run the lottery of LAUNCH_ID: the entrants' digest, the seed's hash and the order,
    recomputed from the database (or from a published JSON file, which must also agree with the
    database), compared with what was published. Exit code 1 on a mismatch, naming the first
    difference."""
    import json

    from models.lottery import public_document, verify, verify_document
    from models import Launch

    try:
        report = verify(db.session, launch_id)
        if json_file:
            with open(json_file, "rb") as handle:
                doc = json.loads(handle.read())
            from_file = verify_document(doc)
            stored = public_document(db.session, db.session.get(Launch, launch_id)) or {}
            for name in ("entrants_digest", "seed_hash", "seed"):
                from_file.checks[f"file {name} = database"] = doc.get(name) == stored.get(name)
            from_file.checks["file order = database"] = doc.get("order") == stored.get("order")
            if not from_file.difference and not from_file.ok:
                wrong = [name for name, good in from_file.checks.items() if not good]
                from_file.difference = "the file differs from the database: " + ", ".join(wrong)
            report = from_file
    except RuleViolation as exc:
        raise click.ClickException(str(exc))
    for name, good in report.checks.items():
        click.echo(f"{name}: {'match' if good else 'MISMATCH'}")
    click.echo(f"launch {launch_id}: {report.entrants} entrants, " + ("drawn" if report.drawn else "not drawn yet"))
    if not report.ok:
        click.echo(f"first difference: {report.difference}")
        click.echo("MISMATCH")
        raise SystemExit(1)
    click.echo("match")


def init_app(app) -> None:
    app.cli.add_command(user_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(pool_command)
    app.cli.add_command(overdue_command)
    app.cli.add_command(document_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(launch_cli)  # issue 24: opening day
