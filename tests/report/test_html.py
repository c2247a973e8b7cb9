"""The HTML file: self-contained, size budget, payload safely embedded."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from joulelens.records import RunRecord
from joulelens.report import build_payload, plotly_js_path, render_html, write_report
from joulelens.report.html import PLOTLY_BUNDLE_SHA256, VENDORED_PLOTLY
from joulelens.store import RunFilter, Store

MAX_REPORT_BYTES = 10 * 1024 * 1024


def embedded_payload(html: str) -> dict:
    m = re.search(r'<script id="jl-data" type="application/json">(.*?)</script>', html, re.S)
    assert m, "payload element missing"
    return json.loads(m.group(1))


def test_report_is_self_contained(report_file: Path) -> None:
    html = report_file.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # Nothing is loaded from elsewhere: no script src, links only to data: URLs, Plotly inlined.
    assert not [t for t in re.findall(r"<script[^>]*>", html) if "src=" in t]
    assert all('href="data:' in t for t in re.findall(r"<link[^>]*>", html))
    assert '<script id="jl-plotly" type="text/plain">' in html
    assert plotly_js_path().read_text()[:200] in html  # the bundle itself, inlined
    assert "{{" not in html.split('<script id="jl-data"')[0]  # every placeholder filled
    payload = embedded_payload(html)
    assert payload["meta"]["runs"] == 12
    assert (
        json.loads(html.split('<script id="jl-live" type="application/json">')[1].split("<")[0])
        is None
    )


def test_hostile_names_cannot_break_out_of_the_script(
    tmp_store: Store, make_record: Callable[..., RunRecord], tmp_path: Path
) -> None:
    evil = "</script><script>alert(1)</script> & <b>"
    tmp_store.put(make_record(run_id="evil", nickname=evil, median_itl_ms=5.0))
    html = write_report(tmp_store, tmp_path / "r.html", title="<i>t</i>").read_text()
    assert "<script>alert(1)" not in html
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in html
    rows = embedded_payload(html)["runs"]
    assert evil in rows["dicts"]["model"]


def test_live_page_references_plotly_instead_of_inlining(report_store: Store) -> None:
    live = {"version_url": "/api/version", "payload_url": "/api/payload", "poll_ms": 1000}
    html = render_html(build_payload(report_store), plotly_src="/static/plotly.min.js", live=live)
    assert '<script src="/static/plotly.min.js"></script>' in html
    assert 'id="jl-plotly"' not in html
    assert len(html) < 500_000


def test_filtered_report(report_store: Store, tmp_path: Path) -> None:
    path = write_report(report_store, tmp_path / "sub" / "r.html", RunFilter(gpu_model="B200"))
    payload = embedded_payload(path.read_text())
    assert payload["meta"]["runs"] == 4
    assert set(payload["runs"]["dicts"]["gpu"]) == {"B200"}


def test_empty_store_still_renders(tmp_store: Store, tmp_path: Path) -> None:
    payload = embedded_payload(write_report(tmp_store, tmp_path / "r.html").read_text())
    assert payload["meta"]["runs"] == 0 and payload["runs"]["n"] == 0


def test_full_public_snapshot_under_10_mb(public_store: Store, tmp_path: Path) -> None:
    path = write_report(public_store, tmp_path / "full.html")
    size = path.stat().st_size
    assert size < MAX_REPORT_BYTES, f"{size / 1e6:.1f} MB"
    assert embedded_payload(path.read_text())["meta"]["runs"] == 1858


def test_vendored_plotly_is_the_recorded_release() -> None:
    import hashlib

    assert plotly_js_path() == VENDORED_PLOTLY
    digest = hashlib.sha256(VENDORED_PLOTLY.read_bytes()).hexdigest()
    assert digest == PLOTLY_BUNDLE_SHA256
    assert (VENDORED_PLOTLY.parent / "plotly-LICENSE").read_text().startswith("MIT License")


def test_page_script_parses(tmp_path: Path) -> None:
    """A syntax check that needs no browser (the browser tests run it for real)."""
    import shutil
    import subprocess

    from joulelens.report.html import _app_js

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = tmp_path / "app.js"
    script.write_text(_app_js())
    result = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
