"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) for screenshots and checks.

Selenium drives the system browser through the system chromedriver; selenium-manager is never
asked to download anything. Used by ``joulelens report --screenshot``, the browser tests and
``bench/bench_report.py``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from joulelens.errors import JoulelensError

CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROME_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


class BrowserUnavailable(JoulelensError):
    """Headless Chromium or its driver is not installed (``scripts/setup-browser``)."""


def _first_existing(candidates: tuple[str, ...], which: str) -> str | None:
    for path in candidates:
        if Path(path).is_file():
            return path
    return shutil.which(which)


def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver) or :class:`BrowserUnavailable` naming what is missing."""
    chromium = _first_existing(CHROMIUM_CANDIDATES, "chromium")
    driver = _first_existing(CHROMEDRIVER_CANDIDATES, "chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(
            n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None
        )
        raise BrowserUnavailable(f"{missing} not found; install Debian's chromium-driver")
    return chromium, driver


@contextmanager
def headless_chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A selenium WebDriver on headless Chromium with the browser console log enabled."""
    chromium, driver_path = browser_paths()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserUnavailable("selenium is not installed (pip install selenium)") from exc
    profile = tempfile.mkdtemp(prefix="joulelens-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_ready(driver: Any, timeout_s: float = 30.0) -> float:
    """Wait until the report's script has rendered its first view; returns seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if driver.execute_script("return document.body && document.body.dataset.ready === '1'"):
            return time.perf_counter() - started
        time.sleep(0.02)
    raise JoulelensError(f"the report did not finish rendering within {timeout_s:.0f} s")


def console_errors(driver: Any) -> list[str]:
    """SEVERE entries of the browser console since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def screenshot(
    html_path: Path, png_path: Path, *, tab: str = "tradeoff", width: int = 1400, height: int = 900
) -> Path:
    """Open the report on ``tab`` and save a PNG of the window (for the README)."""
    with headless_chromium(width, height) as driver:
        driver.get(html_path.resolve().as_uri() + f"#{tab}")
        wait_ready(driver)
        time.sleep(0.5)  # let Plotly finish its transitions
        errors = console_errors(driver)
        if errors:
            raise JoulelensError("the report logged console errors: " + "; ".join(errors))
        png_path.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(png_path))
    return png_path
