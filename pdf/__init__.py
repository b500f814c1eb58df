"""WeasyPrint rendering: ``render(kind, context) -> bytes`` (PDF).

Templates (Jinja, autoescaped) and the stylesheet live in this package; the fonts are the
system's CJK fonts named explicitly (Debian ``fonts-wqy-microhei``, with ``fonts-hanazono`` for
rare characters outside its range, e.g. 𠀀), embedded and subset by WeasyPrint with HarfBuzz.

Nothing in a document may reach the file system or the network: the URL fetcher serves only
files of ``pdf/assets`` addressed as ``asset:NAME`` and refuses everything else (file://,
http(s)://, data:…); data is autoescaped and never used as a template; each render has a time
limit (RENDER_SECONDS), in workers, the CLI and the embedded web process alike; rq's job timeout
bounds a worker's job as a whole.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import mimetypes
import threading
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import jinja2
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from models.base import office_local, office_time
from models.labels import shown
from models.money import format_money

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
KINDS = ("subscription_agreement", "receipt", "payment_reminder", "overdue_warning",
         "lawyer_letter", "forfeit_notice", "signing_booking", "statement", "board", "addendum",
         "handover_notice", "handover_record", "survey_summary", "true_up_notice",
         "commission_statement",
         "intent_card")  # issue 24: the intent registration card
KINDS += ("lottery_entrants", "lottery_result")  # issue 24: the lottery (R-LCH-2)
REPORTS = ("monthly_review",)  # office reports rendered on request, not document rows
# The CJK families, in order; the stylesheet names the same ones.
FONT_FAMILIES = ("WenQuanYi Micro Hei", "HanaMinA", "HanaMinB")
RENDER_SECONDS = 60


class RenderTimeout(Exception):
    """A render took longer than its time limit."""


class AssetFetcher(URLFetcher):
    """Serves `asset:NAME` from pdf/assets and nothing else; remembers what it refused."""

    def __init__(self):
        super().__init__(allowed_protocols=("asset",), allow_redirects=False)
        self.refused: list[str] = []
        self.served: list[str] = []

    def fetch(self, url, headers=None):
        if url.startswith("asset:"):
            path = (ASSETS / url[len("asset:"):]).resolve()
            if path.parent == ASSETS and path.is_file():
                self.served.append(url)
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})
        self.refused.append(url)
        raise ValueError(f"refused: documents fetch only their own assets, not {url[:200]!r}")


# --- formatting helpers for the templates ----------------------------------------------------

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ["", "拾", "佰", "仟"]
_GROUPS = ["", "万", "亿", "万亿"]


def rmb_upper(amount) -> str:
    """人民币大写: 1234567.80 → 壹佰贰拾叁万肆仟伍佰陆拾柒元捌角整 (as on receipts and agreements)."""
    value = Decimal(amount).quantize(Decimal("0.01"), ROUND_HALF_UP)
    sign = "负" if value < 0 else ""
    value = abs(value)
    yuan, fen = divmod(int(value * 100), 100)
    jiao, fen = divmod(fen, 10)
    text = ""
    if yuan:
        groups = []
        while yuan:
            yuan, group = divmod(yuan, 10000)
            groups.append(group)
        zero_pending = False
        for index in range(len(groups) - 1, -1, -1):
            group = groups[index]
            if group == 0:
                zero_pending = bool(text)
                continue
            part = ""
            digits = f"{group:04d}"
            leading = True
            for pos, ch in enumerate(digits):
                d = int(ch)
                if d == 0:
                    if not leading:
                        zero_pending = True
                    continue
                if zero_pending or (leading and text and pos > 0):
                    part += "零"
                zero_pending = False
                leading = False
                part += _DIGITS[d] + _UNITS[3 - pos]
            text += part + _GROUPS[index]
            zero_pending = False  # a group's trailing zeros say nothing; the next group's leading ones do
        text += "元"
    if jiao:
        text += ("零" if text and not text.endswith("元") else "") + _DIGITS[jiao] + "角"
    elif fen and text:
        text += "零"
    if fen:
        text += _DIGITS[fen] + "分"
    if not text:
        text = "零元"
    if not fen:
        text += "整"
    return sign + text


money = format_money  # the one writer of amounts (models.money): -¥200,000.00


def date(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return office_time(value)  # stored in UTC; read in the office's time zone
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def share(value) -> str:
    """A buyer's share (R-CHG-3): 50 → "50%", 33.33 → "33.33%"."""
    if value is None or value == "":
        return ""
    text = f"{Decimal(str(value)):.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def cn_date(value) -> str:
    if value is None:
        return "____年__月__日"
    return f"{value.year}年{value.month}月{value.day}日"


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                          autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True, finalize=shown)  # None: a dash
_env.filters.update(money=money, date=date, cn_date=cn_date, share=share, rmb_upper=rmb_upper, office_time=office_time,
                    office_local=office_local)

_shared: dict = {}
_shared_lock = threading.Lock()
# WeasyPrint (with its Pango/HarfBuzz/fontconfig underneath) is not safe in two threads of one
# process at once: two batches rendered together crashed the embedded server ("corrupted
# double-linked list"). Every WeasyPrint call of the process takes this lock; rq workers render
# one job per process, the embedded process renders one document at a time.
render_lock = threading.RLock()


def _font_config_and_css():
    """One FontConfiguration and one parsed stylesheet per process: a warm render reuses them."""
    with _shared_lock:
        if not _shared:
            fonts = FontConfiguration()
            css = CSS(string=(ASSETS / "document.css").read_text(encoding="utf-8"),
                      font_config=fonts, url_fetcher=AssetFetcher())
            _shared.update(fonts=fonts, css=css)
        return _shared["fonts"], _shared["css"]


def warm_up() -> None:
    """Load the fonts and the stylesheet (a worker calls this once, before forking)."""
    with render_lock:
        fonts, css = _font_config_and_css()
        HTML(string='<p style="font-family: \'WenQuanYi Micro Hei\'">售楼通 <b>认购书</b> 0123 ¥</p>',
             url_fetcher=AssetFetcher()).write_pdf(stylesheets=[css], font_config=fonts)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise RenderTimeout in this thread once `seconds` have passed (any thread: a watchdog raises
    it asynchronously at the thread's next Python instruction; WeasyPrint is Python). WeasyPrint
    catches broad exceptions around fetches and fonts, so the watchdog raises again every 50 ms
    until the render gives up, and a render that swallowed it all is still reported late."""
    if seconds <= 0:
        yield
        return
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False, "timer": None}

    def _expire():
        with lock:
            if state["done"]:
                return
            state["fired"] = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target),
                                                       ctypes.py_object(RenderTimeout))
            state["timer"] = threading.Timer(0.05, _expire)
            state["timer"].daemon = True
            state["timer"].start()

    state["timer"] = threading.Timer(seconds, _expire)
    state["timer"].daemon = True
    state["timer"].start()
    try:
        yield
    finally:
        with lock:
            state["done"] = True
            state["timer"].cancel()
            if state["fired"]:  # one may be pending still: withdraw it, the render is over
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)
    if state["fired"]:
        raise RenderTimeout(f"rendering took more than {seconds:g} s")


def render_html(kind: str, context: dict) -> str:
    if kind not in KINDS + REPORTS:
        raise ValueError(f"unknown document kind {kind!r}")
    return _env.get_template(f"{kind}.html").render(kind=kind, **context)


def render(kind: str, context: dict, *, fetcher: AssetFetcher | None = None,
           seconds: float = RENDER_SECONDS) -> bytes:
    """The PDF of document `kind` filled with `context` (plain values: str, Decimal, date…).

    One render at a time in the process (`render_lock`), whichever thread asks (the embedded
    worker thread, a request's PDF, the CLI); the time limit counts from when it may start."""
    fetcher = fetcher or AssetFetcher()
    with render_lock:
        fonts, css = _font_config_and_css()
        with time_limit(seconds):
            html = HTML(string=render_html(kind, context), url_fetcher=fetcher, base_url=None)
            return html.write_pdf(stylesheets=[css], font_config=fonts, attachments=[],
                                  uncompressed_pdf=False)
