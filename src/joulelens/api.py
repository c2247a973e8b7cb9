"""The public Python API: open a store, import published results, measure one configuration,
and explain and plan from the stored runs.

Each function is a thin wrapper over what the matching CLI command runs, so both give the same
answers. Units follow the records: energy in joules (J), power in watts (W), latency in
milliseconds (ms) unless a name says otherwise. Errors are :class:`JoulelensError` subclasses;
bad input is an :class:`InputError` naming the file and field. Only the names in ``__all__``
are public; importing this module loads none of the engine extras (torch, vLLM, Ray).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from joulelens.analysis.diagnose import Diagnosis
from joulelens.analysis.diagnose import diagnose as _decompose
from joulelens.analysis.planning import BudgetPer, LatencyMetric, Plan
from joulelens.analysis.planning import plan as _plan
from joulelens.analysis.related import related_runs
from joulelens.analysis.render import diagnosis_dict, diagnosis_summary, diagnosis_text
from joulelens.analysis.study import Finding, run_study
from joulelens.errors import AnalysisError, InputError, JoulelensError
from joulelens.ingest import into_store
from joulelens.ingest.into_store import StoredImport
from joulelens.records import RunRecord
from joulelens.runner import RunConfig, RunObserver, run_one
from joulelens.store import RunFilter, Store

__all__ = [
    "AnalysisError",
    "BudgetPer",
    "Diagnosis",
    "Finding",
    "InputError",
    "JoulelensError",
    "LatencyMetric",
    "Plan",
    "RunConfig",
    "RunFilter",
    "RunObserver",
    "RunRecord",
    "Store",
    "StoredImport",
    "diagnose",
    "diagnosis_dict",
    "diagnosis_summary",
    "diagnosis_text",
    "import_benchmark",
    "import_leaderboard",
    "open_store",
    "plan",
    "run",
    "study",
]


def open_store(path: str | Path | None = None) -> Store:
    """The run store at ``path`` (created on first write); by default ``$JOULELENS_STORE``,
    else the user data directory. Run files it set aside while opening are in
    ``store.set_aside``."""
    return Store(path)


def import_leaderboard(source: str | Path, store: Store) -> StoredImport:
    """Import the ML.ENERGY Leaderboard's published JSON (a directory with index.json, or its
    base URL). All or nothing: any bad value raises :class:`InputError` before a write."""
    return into_store.import_leaderboard(source, store)


def import_benchmark(
    path: str | Path,
    store: Store,
    *,
    configs: str | Path | None = None,
    gpu_model: str | None = None,
    skip_invalid: bool = False,
) -> StoredImport:
    """Import raw ML.ENERGY Benchmark results (a run tree, one run directory or a
    results.json). ``configs`` is the benchmark's configs/ directory (default: found in or
    above ``path``); ``gpu_model`` names the GPU of diffusion runs whose path does not;
    ``skip_invalid`` imports the valid runs and lists the others in ``skipped``."""
    return into_store.import_benchmark(
        Path(path),
        store,
        configs=Path(configs) if configs is not None else None,
        gpu_model=gpu_model,
        skip_invalid=skip_invalid,
    )


def run(config: RunConfig, store: Store, *, observer: RunObserver | None = None) -> RunRecord:
    """Measure one configuration and store its record (also when it fails: the failed record
    is stored, then the error raised). ``observer`` sees progress; it never changes results."""
    return run_one(config, store, observer=observer)


def study(
    store: Store, *, only: Sequence[str] | None = None, gpu: str = "B200"
) -> dict[str, Finding]:
    """The paper's findings recomputed from every run in ``store``, by finding id (all by
    default); ``gpu`` is the GPU type of the per-GPU findings."""
    return run_study(store.all(), only=only, gpu=gpu)


def diagnose(
    a: str | RunRecord, b: str | RunRecord, store: Store, *, per_token: bool = False
) -> Diagnosis:
    """Why run B's energy per response (or per token, or per image) differs from run A's:
    factors B/A that multiply to the observed ratio. Runs are records or ids (or unique id
    prefixes) in ``store``; the store's related runs say why each batch stopped."""
    run_a = a if isinstance(a, RunRecord) else store.get(a)
    run_b = b if isinstance(b, RunRecord) else store.get(b)
    return _decompose(run_a, run_b, related_runs(store, [run_a, run_b]), per_token=per_token)


def plan(
    store: Store,
    task: str,
    deadline_ms: float,
    *,
    model: str | None = None,
    energy_budget_joules: float | None = None,
    budget_per: BudgetPer = BudgetPer.UNIT,
    latency: LatencyMetric = LatencyMetric.PAPER,
    tighter_ms: float | None = None,
    with_predictions: bool = False,
) -> Plan:
    """The minimum-energy configuration of ``task`` whose latency (``latency``: median ITL
    for LLMs, batch latency for diffusion, by default) stays within ``deadline_ms``, and
    within ``energy_budget_joules`` per unit (``budget_per``) if given. ``model`` keeps runs
    whose model id or nickname contains it. Raises :class:`AnalysisError` when nothing fits."""
    runs = store.query(RunFilter(task=task, model=model))
    return _plan(
        runs,
        task,
        deadline_ms,
        model=model,
        energy_budget_joules=energy_budget_joules,
        budget_per=budget_per,
        metric=latency,
        tighter_ms=tighter_ms,
        with_predictions=with_predictions,
    )
