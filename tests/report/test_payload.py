"""The report payload: columns, nulls, frontier flags, distributions, measured-run artifacts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any

import pytest
from report_helpers import STEADY_WINDOW_S

from joulelens.records import RunRecord
from joulelens.report import build_payload
from joulelens.report.frontier import frontier_flags, model_key, setup_key
from joulelens.report.measured import downsample, steady_window
from joulelens.report.numbers import sig
from joulelens.store import RunFilter, Store


def decode(payload: dict[str, Any]) -> list[dict[str, Any]]:
    runs = payload["runs"]
    rows = []
    for i in range(runs["n"]):
        row = {}
        for name, values in runs["cols"].items():
            v = values[i]
            row[name] = runs["dicts"][name][v] if name in runs["dicts"] else v
        rows.append(row)
    return rows


def test_columns_round_trip_the_records(report_store: Store) -> None:
    payload = build_payload(report_store)
    rows = {r["run_id"]: r for r in decode(payload)}
    assert payload["meta"]["runs"] == len(rows) == 12
    r = rows["llm-B200-128"]
    assert (r["task"], r["model"], r["gpu"], r["batch"], r["unit"]) == (
        "lm-arena-chat",
        "Model A",
        "B200",
        128,
        "token",
    )
    itl = 10.0 + 128 / 16 * 0.8
    tput = 128 * 1000.0 / itl
    assert r["latency_ms"] == pytest.approx(itl, rel=1e-4)
    assert r["energy_per_unit_j"] == pytest.approx((450 + 128) / tput, rel=1e-4)
    assert r["throughput_per_w"] == pytest.approx(tput / (450 + 128), rel=1e-4)
    assert r["stable"] == 1
    d = rows["diff-4"]
    assert (d["unit"], d["batch"], d["energy_per_unit_j"]) == ("image", 4, 250.0)
    assert d["energy_per_response_j"] == 250.0  # one generation per response
    assert d["latency_ms"] == 20000.0  # batch latency in ms
    u = rows["llm-unstable"]
    assert u["stable"] == 0 and "85%" in u["unstable_reasons"]


def test_unmeasured_values_stay_null_not_zero(report_store: Store) -> None:
    rows = {r["run_id"]: r for r in decode(build_payload(report_store))}
    u = rows["llm-unstable"]
    assert u["power_w"] is None
    assert u["throughput_per_w"] is None  # no power, so no ratio; never 0
    assert u["kv_cache_usage"] is None


def test_payload_is_strict_json(report_store: Store) -> None:
    text = json.dumps(build_payload(report_store), allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text


def test_filters_restrict_the_runs(report_store: Store) -> None:
    payload = build_payload(report_store, RunFilter(task="text-to-image"))
    assert payload["meta"]["runs"] == 2
    assert payload["meta"]["filters"] == {"task": "text-to-image"}
    assert [t["task"] for t in payload["tasks"]] == ["text-to-image"]


def test_frontier_flags_on_the_sweep(report_store: Store) -> None:
    rows = {r["run_id"]: r for r in decode(build_payload(report_store))}
    # Within a setup, larger batch is slower and (here) cheaper per token: all on the frontier.
    assert all(rows[f"llm-H100-{b}"]["frontier_setup"] == 1 for b in (8, 32, 128, 512))
    # Across setups B200 is faster and cheaper at every batch, so H100 is dominated.
    assert all(rows[f"llm-B200-{b}"]["frontier_model"] == 1 for b in (8, 32, 128, 512))
    assert all(rows[f"llm-H100-{b}"]["frontier_model"] == 0 for b in (8, 32, 128, 512))


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], []),
        ([(1.0, 1.0)], [True]),
        ([(1.0, 5.0), (2.0, 3.0), (3.0, 4.0)], [True, True, False]),
        ([(1.0, 2.0), (1.0, 2.0)], [True, True]),  # exact ties are both kept
        ([(1.0, 2.0), (1.0, 3.0)], [True, False]),  # same latency, more energy: dominated
        ([(2.0, 1.0), (1.0, 1.0)], [False, True]),  # same energy, slower: dominated
    ],
)
def test_frontier_flags_within_a_group(
    make_record: Callable[..., RunRecord],
    points: list[tuple[float, float]],
    expected: list[bool],
) -> None:
    records = [
        make_record(run_id=f"p{i}", median_itl_ms=x, energy_per_token_joules=y)
        for i, (x, y) in enumerate(points)
    ]
    assert frontier_flags(records, model_key) == expected


def test_frontier_flags_null_without_coordinates(make_record: Callable[..., RunRecord]) -> None:
    records = [
        make_record(run_id="a", median_itl_ms=10.0, energy_per_token_joules=0.1),
        make_record(run_id="b", median_itl_ms=10.0),
    ]
    assert frontier_flags(records, setup_key) == [True, None]


def test_output_token_density_sums_to_one(report_store: Store) -> None:
    ot = build_payload(report_store)["output_tokens"]
    assert len(ot["edges"]) == len(ot["tasks"]["lm-arena-chat"]["fraction"]) + 1
    assert sum(ot["tasks"]["lm-arena-chat"]["fraction"]) == pytest.approx(1.0, abs=1e-3)
    assert ot["tasks"]["lm-arena-chat"]["runs"] == 8


def test_measured_run_timelines_and_requests(report_store: Store) -> None:
    measured = build_payload(report_store)["measured"]
    assert measured["total"] == 2  # the measured run and the synthetic unstable one
    run = next(r for r in measured["runs"] if r["run_id"] == "own-measured")
    assert run["steady_window_s"] == list(STEADY_WINDOW_S)
    series = run["timeline"]
    assert set(series) == {
        "power_watts:gpu:0",
        "temperature_c:gpu:0",
        "running_batch:server",
        "kv_cache_usage:server",
        "token_rate:client",  # from the requests; no client batch beside the server's gauge
    }  # the cumulative energy series is left out
    assert len(series["power_watts:gpu:0"]["t"]) <= 600
    requests = run["requests"]
    assert requests["n"] == requests["shown"] == 40
    assert sum(requests["attributed_energy_joules"]) == pytest.approx(
        sum(20 + 2 * i for i in range(40))
    )
    other = next(r for r in measured["runs"] if r["run_id"] == "llm-unstable")
    assert other["timeline"] is None and any("timeline.parquet" in n for n in other["notes"])


def test_corrupt_artifact_becomes_a_note(report_store: Store) -> None:
    path = report_store.artifact_path("own-measured", "timeline.parquet")
    path.write_bytes(b"not parquet")
    run = next(
        r for r in build_payload(report_store)["measured"]["runs"] if r["run_id"] == "own-measured"
    )
    assert set(run["timeline"]) == {"token_rate:client", "running_batch:client"}  # requests only
    assert any("cannot read" in n for n in run["notes"])
    assert run["requests"] is not None


def test_missing_run_directory_files(report_store: Store) -> None:
    shutil.rmtree(report_store.run_dir("own-measured"))
    report_store.rebuild()
    assert all(
        r["run_id"] != "own-measured" for r in build_payload(report_store)["measured"]["runs"]
    )


def test_steady_window_forms(make_record: Callable[..., RunRecord]) -> None:
    flat = make_record(config={"steady_state_start_s": 3.0, "steady_state_end_s": 9.0})
    assert steady_window(flat) == [3.0, 9.0]
    assert steady_window(make_record(config={"steady_state": {"start_s": 5, "end_s": 2}})) is None
    assert steady_window(make_record()) is None


def test_downsample_keeps_shape() -> None:
    t = [float(i) for i in range(10_000)]
    v = [2.0 * x for x in t]
    dt, dv = downsample(t, v, 100)
    assert len(dt) == len(dv) == 100
    assert all(b == pytest.approx(2 * a) for a, b in zip(dt, dv, strict=True))
    assert downsample([1.0], [2.0], 100) == ([1.0], [2.0])


def test_sig_rounds_and_keeps_null() -> None:
    assert sig(0.123456789) == 0.12346
    assert sig(123456789.0) == 123460000.0
    assert sig(None) is None
    assert sig(float("nan")) is None
    assert sig(0.0) == 0.0


def test_public_snapshot_payload(public_store: Store) -> None:
    payload = build_payload(public_store)
    assert payload["meta"]["runs"] == 1858
    rows = decode(payload)
    assert {r["gpu"] for r in rows} == {"H100", "B200"}
    assert sum(1 for r in rows if r["unit"] == "video") == 382
    # Every (task, model, setup) with latency and energy has at least one frontier point.
    groups: dict[tuple[Any, ...], list[int]] = {}
    for r in rows:
        if r["frontier_setup"] is not None:
            groups.setdefault((r["task"], r["model_id"], r["gpu"], r["num_gpus"]), []).append(
                r["frontier_setup"]
            )
    assert groups and all(max(flags) == 1 for flags in groups.values())
    assert len(json.dumps(payload)) < 1_000_000  # compact: well under the 10 MB page budget
