"""The runs an explanation consults, read from the store with catalog queries."""

from __future__ import annotations

from joulelens.analysis.model_arch import model_arch
from joulelens.records import RunRecord
from joulelens.store import RunFilter, Store


def related_runs(store: Store, records: list[RunRecord]) -> list[RunRecord]:
    """Every run of the given runs' models and their text counterparts (all that ``why``
    consults), read with catalog queries instead of loading the whole store."""
    models = {r.model_id for r in records}
    for r in records:
        arch = model_arch(r.model_id)
        if arch is not None and arch.text_counterpart:
            models.add(arch.text_counterpart)
    found: dict[str, RunRecord] = {}
    for model in sorted(models):
        for run in store.query(RunFilter(model=model, include_failed=True)):
            if run.model_id in models:
                found[run.run_id] = run
    return list(found.values())
