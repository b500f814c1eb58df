"""Commands: `flask --app app user create …`, `flask --app app demo`. (`db …` is Flask-Migrate's.)"""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from models import RuleViolation, db
from models.audit import audit_context
from models.documents import DOCUMENT_KINDS
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
    signing_booking a contract; statement a customer (lead); board a building."""
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


def init_app(app) -> None:
    app.cli.add_command(user_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(pool_command)
    app.cli.add_command(overdue_command)
    app.cli.add_command(document_command)
