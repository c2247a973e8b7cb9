"""CLI fixtures: the stores the command tests read, built by the package tests' helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from joulelens.records import RunRecord
from joulelens.store import Store
from report.report_helpers import fill_report_store


@pytest.fixture
def report_store(tmp_store: Store, make_record: Callable[..., RunRecord]) -> Store:
    return fill_report_store(tmp_store, make_record)
