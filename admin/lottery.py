"""The lottery (摇号, R-LCH-2): the manager's page at /admin/lottery/?launch=ID (publish the
entrants and the seed's hash — a generated seed shown once, to seal —, draw with the seed, the
result, verify, the PDFs) and the public pages /launch/<id>/lottery and /launch/<id>/lottery.json
(no sign-in: card numbers and groups only, the digest, the seed's hash, after the draw the seed and
the order; 404 before publication; cacheable).

Thin: publish, draw and verify are models.lottery's, run through `run_domain`."""
from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request
from flask_admin import expose
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from models import Launch, LaunchEntry, RuleViolation, db
from models.labels import choice_label
from models.lottery import DRAWN_STATUSES, entrants, public_document, publish, verify
from models.lottery import draw as draw_lottery
from models.permissions import can, can_do
from models.submissions import new_key

from .base import ProtectedPage, row_id, run_domain, succeeded

RESULT_ROWS = 500  # the admin page shows the first positions; the public page and its JSON all


class LotteryPage(ProtectedPage):
    """The manager's lottery page of a launch (R-LCH-2). Seen by whoever may list the launches;
    publishing and drawing are the manager's (launch.publish, launch.draw), checked here and in
    the domain."""

    entity = "lottery"
    verb_of = {"index": "list", "verify_view": "list", "publish_view": "action", "draw_view": "action"}
    operations = {"publish_view": "launch.publish", "draw_view": "launch.draw"}

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is None and name in self.operations and not can_do(current_user, self.operations[name]):
            abort(403)
        return refused

    def _launch(self, value=None):
        launches = list(db.session.scalars(select(Launch).order_by(Launch.id.desc())))
        chosen = row_id(value if value is not None else request.args.get("launch"))
        return next((x for x in launches if x.id == chosen), launches[0] if launches else None), launches

    def _page(self, launch, launches, **extra):
        context = {"launch": launch, "launches": launches, "label": choice_label, "key": new_key(),
                   "may_publish": can_do(current_user, "launch.publish"),
                   "may_draw": can_do(current_user, "launch.draw"),
                   "may_document": can(current_user, "launch", "list"),
                   "drawn": launch is not None and launch.status in DRAWN_STATUSES, "rows": [], "count": 0,
                   "seed": None, "report": None, "limit": RESULT_ROWS}
        if launch is not None:  # before publication: who would take part if published now
            context["count"] = len(entrants(db.session, launch))
        if context["drawn"]:
            context["rows"] = db.session.execute(
                select(LaunchEntry.position, LaunchEntry.number, LaunchEntry.group_name, LaunchEntry.draw_key)
                .where(LaunchEntry.launch_id == launch.id, LaunchEntry.position.is_not(None))
                .order_by(LaunchEntry.position).limit(RESULT_ROWS)).all()
        context.update(extra)
        return self.render("admin/lottery.html", **context)

    @expose("/")
    def index(self):
        launch, launches = self._launch()
        return self._page(launch, launches)

    @expose("/verify")
    def verify_view(self):
        """Recompute the digest, the seed's hash and the order from the database (models.lottery.verify)."""
        launch, launches = self._launch()
        report = None
        if launch is not None:
            try:
                report = verify(db.session, launch.id)
            except RuleViolation as exc:
                flash(str(exc), "error")
        return self._page(launch, launches, report=report)

    @expose("/publish", methods=("POST",))
    def publish_view(self):
        launch, launches = self._launch(request.form.get("launch", ""))
        if launch is None:
            abort(404)
        page = []

        def operation(by):
            published = publish(db.session, by, launch.id, seed_hash=request.form.get("seed_hash"),
                                key=request.form.get("submission_key"))
            flash(gettext("Published: %(n)d entrants, their digest and the seed's hash. Registration is closed.",
                          n=published.count), "success")
            # The generated seed is shown in this response only, never stored nor sent again; the
            # page is made before the commit, so a publication whose seed was never shown is none.
            page.append(self._page(launch, launches, seed=published.seed))
            return published

        if not succeeded(run_domain(operation)):
            return redirect(self.get_url(".index", launch=launch.id))
        return page[0]

    @expose("/draw", methods=("POST",))
    def draw_view(self):
        launch, _ = self._launch(request.form.get("launch", ""))
        if launch is None:
            abort(404)
        if succeeded(run_domain(lambda by: draw_lottery(db.session, by, launch.id, request.form.get("seed", ""),
                                                        key=request.form.get("submission_key")))):
            flash(gettext("Drawn: the seed is revealed and the order is fixed."), "success")
        return redirect(self.get_url(".index", launch=launch.id))


# --- the public pages (no sign-in) -------------------------------------------------------------------------

public = Blueprint("lottery_public", __name__)


def _published(launch_id: int):
    launch = db.session.get(Launch, launch_id)
    doc = public_document(db.session, launch) if launch is not None else None
    if doc is None:
        abort(404)  # before publication the launch's lottery does not exist for the public
    return launch, doc


def _cacheable(response: Response, doc: dict) -> Response:
    """Cached by browsers and proxies: a minute while the draw is to come, an hour after it (the
    document no longer changes); revalidated by its ETag."""
    response.headers["Cache-Control"] = f"public, max-age={3600 if doc['seed'] else 60}"
    response.set_etag(hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32])
    return response.make_conditional(request)


@public.route("/launch/<int:launch_id>/lottery.json")
def lottery_json(launch_id):
    """The lottery's published inputs and, after the draw, its seed and order (scripts/verify_draw.py)."""
    _, doc = _published(launch_id)
    body = json.dumps(doc, ensure_ascii=False, indent=1)
    return _cacheable(Response(body, mimetype="application/json"), doc)


@public.route("/launch/<int:launch_id>/lottery")
def lottery_page(launch_id):
    """The lottery's public page, in the reader's language (Chinese by default)."""
    launch, doc = _published(launch_id)
    html = render_template("lottery_public.html", doc=doc, launch=launch,
                           group_label=lambda g: choice_label("launch_entry", "group_name", g))
    return _cacheable(Response(html, mimetype="text/html"), doc)
