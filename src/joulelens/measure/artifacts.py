"""The files written beside a measured run: ``requests.parquet`` and ``timeline.parquet``.

Use with the store: ``store.put(run.record, write_artifacts=lambda d: write_run_artifacts(
d, run.requests, run.timeline))``. A compiled record already lists the files these rows
produce (:func:`artifact_names`), so record and directory agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from joulelens.measure.series import SampledSeries
from joulelens.records.schema import RequestRow, TimelineSample

REQUESTS_FILE = "requests.parquet"
TIMELINE_FILE = "timeline.parquet"


def artifact_names(requests: Sequence[RequestRow], timeline: Sequence[TimelineSample]) -> list[str]:
    """The files :func:`write_run_artifacts` writes for these rows (none for empty tables)."""
    names = []
    if requests:
        names.append(REQUESTS_FILE)
    if timeline:
        names.append(TIMELINE_FILE)
    return names


def write_run_artifacts(
    staging_dir: Path, requests: Sequence[RequestRow], timeline: Sequence[TimelineSample]
) -> list[str]:
    """Write the non-empty tables into ``staging_dir``; returns the file names written."""
    written = []
    if requests:
        columns = list(RequestRow.model_fields)
        table = pa.table(
            {c: [getattr(r, c) for r in requests] for c in columns},
            schema=_REQUEST_SCHEMA,
        )
        pq.write_table(table, staging_dir / REQUESTS_FILE)
        written.append(REQUESTS_FILE)
    if timeline:
        table = pa.table(
            {
                "t_s": [s.t_s for s in timeline],
                "series": [s.series for s in timeline],
                "value": [s.value for s in timeline],
            },
            schema=_TIMELINE_SCHEMA,
        )
        pq.write_table(table, staging_dir / TIMELINE_FILE)
        written.append(TIMELINE_FILE)
    return written


def timeline_rows(series: Mapping[str, SampledSeries], origin_s: float) -> list[TimelineSample]:
    """Rows for every series, times in seconds since ``origin_s``."""
    rows = []
    for name in sorted(series):
        s = series[name]
        rows += [
            TimelineSample.model_construct(t_s=float(t) - origin_s, series=name, value=float(v))
            for t, v in zip(s.times_s, s.values, strict=True)
        ]
    return rows


_REQUEST_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("sent_s", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("e2e_latency_ms", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("finish_reason", pa.string()),
        ("error", pa.string()),
        ("in_steady_state", pa.bool_()),
        ("attributed_energy_joules", pa.float64()),
        ("attributed_prefill_energy_joules", pa.float64()),
        ("attributed_decode_energy_joules", pa.float64()),
    ]
)
_TIMELINE_SCHEMA = pa.schema(
    [("t_s", pa.float64()), ("series", pa.string()), ("value", pa.float64())]
)
