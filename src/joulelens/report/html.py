"""The self-contained HTML report: template + CSS + our JS + Plotly + the JSON payload.

Everything is inlined so the file opens offline from anywhere; nothing is fetched from a CDN.
The live server uses the same page with Plotly served as a separate, cacheable file.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from joulelens import __version__
from joulelens.errors import JoulelensError
from joulelens.store import RunFilter, Store

ASSETS = Path(__file__).with_name("assets")
# The page's script, in order; one function scope around all of them (see _app_js).
JS_FILES = ("core.js", "leaderboard.js", "plots.js", "findings.js", "measured.js")
# Plotly's cartesian bundle, vendored (see assets/vendor/SOURCE.txt): every trace type the
# page draws, at a third of the full bundle's size and compile time.
VENDORED_PLOTLY = ASSETS / "vendor" / "plotly-cartesian.min.js"
PLOTLY_BUNDLE_SHA256 = "79542150855a52c567260e3137095dbe2b744e6d702a5cabe67da246942fba7a"
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


class ReportError(JoulelensError):
    """The report cannot be built (e.g. the Plotly bundle is missing)."""


def plotly_js_path() -> Path:
    """The vendored cartesian bundle; else the full ``plotly.min.js`` of the ``plotly`` package."""
    if VENDORED_PLOTLY.is_file():
        return VENDORED_PLOTLY
    spec = importlib.util.find_spec("plotly")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    raise ReportError("plotly.min.js not found: install the 'plotly' Python package")


def _script_safe(text: str) -> str:
    """Text that cannot close its <script> element early."""
    return text.replace("</", "<\\/")


def payload_json(payload: dict[str, Any]) -> str:
    """Compact JSON with every ``<`` escaped, so it can sit inside a <script> element as is."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c")


def render_html(
    payload: dict[str, Any],
    *,
    plotly_src: str | None = None,
    live: dict[str, Any] | None = None,
) -> str:
    """The page. ``plotly_src=None`` inlines Plotly; a URL references it (live server).

    Inlined, Plotly sits in a ``text/plain`` script element and is evaluated when a plot is
    first needed (or when the browser is idle after the first view): compiling 4.8 MB of
    JavaScript is most of a cold open, and the leaderboard does not need it.
    """
    if plotly_src is None:
        bundle = plotly_js_path().read_text(encoding="utf-8")
        if "</script" in bundle.lower() or "<!--" in bundle:  # would derail the HTML parser
            raise ReportError("the Plotly bundle contains '</script' or '<!--'; cannot inline it")
        plotly_tag = f'<script id="jl-plotly" type="text/plain">{bundle}</script>'
    else:
        plotly_tag = f'<script src="{plotly_src}"></script>'
    title = str(payload["meta"]["title"])
    parts = {
        "TITLE": _escape_html(title),
        "VERSION": __version__,
        "CSS": (ASSETS / "report.css").read_text(encoding="utf-8"),
        "DATA": payload_json(payload),
        "LIVE": payload_json(live) if live is not None else "null",
        "PLOTLY": plotly_tag,
        "APP_JS": _script_safe(_app_js()),
    }
    template = (ASSETS / "report.html").read_text(encoding="utf-8")
    # One pass over the template only: inserted text is never scanned for placeholders.
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], template)


def _app_js() -> str:
    """Our JavaScript: plain files sharing one private scope, so nothing leaks to ``window``."""
    parts = [(ASSETS / "js" / name).read_text(encoding="utf-8") for name in JS_FILES]
    return "(function () {\n'use strict';\n" + "\n".join(parts) + "})();\n"


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_report(
    store: Store,
    path: Path | str,
    filters: RunFilter | None = None,
    *,
    title: str = "joulelens report",
) -> Path:
    """Render the store's runs (matching ``filters``) into one self-contained HTML file."""
    from joulelens.core.files import atomic_write_text
    from joulelens.report.payload import build_payload

    out = Path(path)
    html = render_html(build_payload(store, filters, title=title))
    atomic_write_text(out, html)
    return out
