"""Typed run records: the contract between measurement, the store and analysis."""

from joulelens.records.schema import (
    SCHEMA_VERSION,
    EnergyBoundary,
    EnergyComponent,
    EnergyMethod,
    Histogram,
    Provenance,
    RequestRow,
    RunKind,
    RunRecord,
    RunStatus,
    SourceKind,
    TimelineSample,
    generation_unit,
    missing_reasons,
    required_metric_fields,
    stable_run_id,
)

__all__ = [
    "SCHEMA_VERSION",
    "EnergyBoundary",
    "EnergyComponent",
    "EnergyMethod",
    "Histogram",
    "Provenance",
    "RequestRow",
    "RunKind",
    "RunRecord",
    "RunStatus",
    "SourceKind",
    "TimelineSample",
    "generation_unit",
    "missing_reasons",
    "required_metric_fields",
    "stable_run_id",
]
