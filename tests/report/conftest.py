"""Report fixtures: a small store with LLM, diffusion and joulelens-measured runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from report_helpers import fill_report_store

from joulelens.records import RunRecord
from joulelens.store import Store


@pytest.fixture
def report_store(tmp_store: Store, make_record: Callable[..., RunRecord]) -> Store:
    return fill_report_store(tmp_store, make_record)


@pytest.fixture
def report_file(report_store: Store, tmp_path: Path) -> Path:
    from joulelens.report import write_report

    return write_report(report_store, tmp_path / "report.html")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session's browser tests; skipped where it is missing."""
    from joulelens.report.browser import BrowserUnavailable, browser_paths, headless_chromium

    try:
        browser_paths()
        import selenium  # noqa: F401
    except (BrowserUnavailable, ImportError) as exc:
        pytest.skip(f"headless Chromium unavailable: {exc}")
    with headless_chromium(1400, 1000) as driver:
        yield driver
