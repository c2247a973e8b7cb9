"""Reports render stored records: a self-contained HTML file, a live server and static plots.

Nothing here measures; everything reads the store. Heavy imports (matplotlib, selenium) stay
inside the functions that need them, so ``import joulelens.report`` is cheap.
"""

from joulelens.report.html import ReportError, plotly_js_path, render_html, write_report
from joulelens.report.payload import build_payload

__all__ = ["ReportError", "build_payload", "plotly_js_path", "render_html", "write_report"]
