"""Import the ML.ENERGY Leaderboard's published JSON (``index.json``, ``tasks/``, ``models/``).

Every file is parsed and validated before anything is written, so a malformed file is
reported by name and field and nothing from it reaches the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from joulelens.errors import InputError, from_validation
from joulelens.ingest.ranges import (
    MAX_WATTS_PER_GPU,
    STRICT_INPUT,
    BatchCap,
    BatchSize,
    Count,
    Degree,
    Fps,
    Frames,
    GpuCount,
    JoulesPerImage,
    JoulesPerRequest,
    JoulesPerToken,
    JoulesPerVideo,
    Milliseconds,
    ParamsBillions,
    PerSecond,
    Pixels,
    PositiveSeconds,
    SafeName,
    Steps,
    Tokens,
    Watts,
)
from joulelens.ingest.sources import JsonSource, open_source
from joulelens.records import (
    EnergyBoundary,
    EnergyMethod,
    Histogram,
    Provenance,
    RunKind,
    RunRecord,
    SourceKind,
    missing_reasons,
    stable_run_id,
)
from joulelens.records.schema import DIFFUSION_METRIC_FIELDS, LLM_METRIC_FIELDS

NOT_PUBLISHED = "not published in the ML.ENERGY Leaderboard JSON"
_M = TypeVar("_M", bound=BaseModel)
STABILITY_NOTE = "published leaderboard rows passed the ML.ENERGY benchmark's stability filter"


class _Row(BaseModel):
    model_config = ConfigDict(extra="allow", **STRICT_INPUT)


class ModelMeta(_Row):
    """``index.json``'s ``models`` entry: metadata the rows may leave out."""

    nickname: str | None = None
    architecture: str | None = None
    total_params_billions: ParamsBillions | None = None
    activated_params_billions: ParamsBillions | None = None
    weight_precision: str | None = None


class IndexDoc(_Row):
    architectures: dict[Annotated[RunKind, Field(strict=False)], list[SafeName]]
    last_updated: str
    models: dict[str, ModelMeta]
    tasks: list[SafeName]


class _GpuRow(_Row):
    @model_validator(mode="after")
    def _power_per_gpu(self) -> Any:
        watts = getattr(self, "avg_power_watts", None)
        if watts is not None and watts / self.num_gpus > MAX_WATTS_PER_GPU:  # type: ignore[attr-defined]
            raise ValueError(
                f"avg_power_watts {watts:g} W is over {MAX_WATTS_PER_GPU:g} W per GPU "
                f"for {self.num_gpus} GPUs: not a physical reading"  # type: ignore[attr-defined]
            )
        return self


class LlmRow(_GpuRow):
    model_id: str
    nickname: str | None = None
    gpu_model: str
    num_gpus: GpuCount
    max_num_seqs: BatchCap
    tensor_parallel: Degree = 1
    expert_parallel: Degree = 1
    data_parallel: Degree = 1
    weight_precision: str | None = None
    architecture: str | None = None
    total_params_billions: ParamsBillions | None = None
    activated_params_billions: ParamsBillions | None = None
    energy_per_token_joules: JoulesPerToken
    energy_per_request_joules: JoulesPerRequest
    avg_power_watts: Watts
    output_throughput_tokens_per_sec: PerSecond
    median_itl_ms: Milliseconds
    p90_itl_ms: Milliseconds
    p95_itl_ms: Milliseconds
    p99_itl_ms: Milliseconds
    avg_batch_size: BatchSize
    avg_output_len: Tokens


class DiffusionRow(_GpuRow):
    model_id: str
    nickname: str | None = None
    gpu_model: str
    num_gpus: GpuCount
    batch_size: BatchCap
    weight_precision: str | None = None
    total_params_billions: ParamsBillions | None = None
    activated_params_billions: ParamsBillions | None = None
    avg_power_watts: Watts
    batch_latency_s: PositiveSeconds
    inference_steps: Steps
    ulysses_degree: Degree = 1
    ring_degree: Degree = 1
    energy_per_image_joules: JoulesPerImage | None = None
    energy_per_video_joules: JoulesPerVideo | None = None
    throughput_images_per_sec: PerSecond | None = None
    throughput_videos_per_sec: PerSecond | None = None
    image_height: Pixels | None = None
    image_width: Pixels | None = None
    video_height: Pixels | None = None
    video_width: Pixels | None = None
    num_frames: Frames | None = None
    fps: Fps | None = None


# Result fields the published rows do not carry: null, with NOT_PUBLISHED as the reason.
LLM_NOT_PUBLISHED = tuple(f for f in LLM_METRIC_FIELDS if f not in LlmRow.model_fields)
DIFFUSION_NOT_PUBLISHED = tuple(
    f for f in DIFFUSION_METRIC_FIELDS if f not in DiffusionRow.model_fields
)


class TaskDoc(_Row):
    task: str
    task_display_name: str | None = None
    configurations: list[dict[str, Any]]


class HistogramDoc(_Row):
    bins: list[float]
    counts: list[Count]

    @model_validator(mode="after")
    def _shape(self) -> HistogramDoc:
        self.histogram()  # the record's own checks: edges match counts, never decrease
        return self

    def histogram(self) -> Histogram:
        try:
            return Histogram(bins=self.bins, counts=self.counts)
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


class Parallelization(_Row):
    tensor_parallel: Degree = 1
    expert_parallel: Degree = 1
    data_parallel: Degree = 1


class ModelConfigRow(_Row):
    gpu_model: str
    num_gpus: GpuCount
    max_num_seqs: BatchCap | None = None
    parallelization: Parallelization = Parallelization()
    output_length_distribution: HistogramDoc | None = None


class ModelDoc(_Row):
    model_id: str
    task: str
    configurations: list[ModelConfigRow]


def _validate(model: type[_M], data: Any, source: str, prefix: str = "") -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, source, prefix) from exc


def model_file_name(model_id: str, task: str) -> str:
    return f"models/{model_id.replace('/', '__')}__{task}.json"


def _llm_key(gpu_model: str, num_gpus: int, batch: int | None, par: Any) -> tuple:
    return (
        gpu_model,
        num_gpus,
        batch,
        par.tensor_parallel,
        par.expert_parallel,
        par.data_parallel,
    )


def _histograms(
    source: JsonSource, model_id: str, task: str
) -> dict[tuple, list[Histogram | None]]:
    """Histograms by configuration key, in file order (the snapshot repeats a few configs)."""
    rel = model_file_name(model_id, task)
    if not source.exists(rel):
        return {}
    doc = _validate(ModelDoc, source.read(rel), source.describe(rel))
    out: dict[tuple, list[Histogram | None]] = {}
    for cfg in doc.configurations:
        key = _llm_key(cfg.gpu_model, cfg.num_gpus, cfg.max_num_seqs, cfg.parallelization)
        hist = cfg.output_length_distribution
        out.setdefault(key, []).append(hist.histogram() if hist else None)
    return out


def _with_repeat(key: tuple, seen: dict[tuple, int]) -> tuple[tuple, int]:
    """Key plus the row's repeat number among identical configurations (0 for the first)."""
    repeat = seen.get(key, 0)
    seen[key] = repeat + 1
    return ((*key, repeat) if repeat else key), repeat


def _llm_record(
    row: LlmRow,
    task: str,
    kind: RunKind,
    meta: ModelMeta,
    hist: Histogram | None,
    provenance: Provenance,
    id_key: tuple,
    repeat: int,
) -> RunRecord:
    missing = missing_reasons(LLM_NOT_PUBLISHED, NOT_PUBLISHED)
    if hist is None:
        missing["output_length_distribution"] = (
            f"no histogram in {model_file_name(row.model_id, task)}"
        )
    return RunRecord(
        run_id=stable_run_id("mle", {"task": task, "model": row.model_id, "key": id_key}),
        kind=kind,
        task=task,
        model_id=row.model_id,
        nickname=row.nickname or meta.nickname,
        architecture=row.architecture or meta.architecture,
        total_params_billions=row.total_params_billions or meta.total_params_billions,
        activated_params_billions=row.activated_params_billions or meta.activated_params_billions,
        weight_precision=row.weight_precision or meta.weight_precision,
        gpu_model=row.gpu_model,
        num_gpus=row.num_gpus,
        tensor_parallel=row.tensor_parallel,
        expert_parallel=row.expert_parallel,
        data_parallel=row.data_parallel,
        max_num_seqs=row.max_num_seqs,
        arrival="saturation",
        energy_per_token_joules=row.energy_per_token_joules,
        energy_per_request_joules=row.energy_per_request_joules,
        avg_power_watts=row.avg_power_watts,
        output_throughput_tokens_per_sec=row.output_throughput_tokens_per_sec,
        median_itl_ms=row.median_itl_ms,
        p90_itl_ms=row.p90_itl_ms,
        p95_itl_ms=row.p95_itl_ms,
        p99_itl_ms=row.p99_itl_ms,
        avg_batch_size=row.avg_batch_size,
        avg_output_len=row.avg_output_len,
        output_length_distribution=hist,
        energy_boundary=EnergyBoundary.GPU,
        energy_method=EnergyMethod.COUNTER,
        stable=True,
        warnings=[STABILITY_NOTE, *_repeat_note(repeat)],
        provenance=provenance,
        missing=missing,
    )


def _repeat_note(repeat: int) -> list[str]:
    if not repeat:
        return []
    return [f"repeat {repeat + 1} of a configuration the snapshot lists more than once"]


def _diffusion_record(
    row: DiffusionRow, task: str, meta: ModelMeta, provenance: Provenance, seen: dict
) -> RunRecord:
    video = task == "text-to-video" or row.energy_per_video_joules is not None
    energy = row.energy_per_video_joules if video else row.energy_per_image_joules
    if energy is None:
        raise ValueError(f"energy_per_{'video' if video else 'image'}_joules is required")
    key, repeat = _with_repeat(
        (
            row.model_id,
            row.gpu_model,
            row.num_gpus,
            row.batch_size,
            row.ulysses_degree,
            row.ring_degree,
        ),
        seen,
    )
    return RunRecord(
        run_id=stable_run_id("mle", {"task": task, "model": row.model_id, "key": key[1:]}),
        kind=RunKind.DIFFUSION,
        task=task,
        model_id=row.model_id,
        nickname=row.nickname or meta.nickname,
        architecture=meta.architecture or "diffusion",
        total_params_billions=row.total_params_billions or meta.total_params_billions,
        activated_params_billions=row.activated_params_billions or meta.activated_params_billions,
        weight_precision=row.weight_precision or meta.weight_precision,
        gpu_model=row.gpu_model,
        num_gpus=row.num_gpus,
        ulysses_degree=row.ulysses_degree,
        ring_degree=row.ring_degree,
        batch_size=row.batch_size,
        inference_steps=row.inference_steps,
        height=row.video_height if video else row.image_height,
        width=row.video_width if video else row.image_width,
        num_frames=row.num_frames,
        fps=row.fps,
        avg_power_watts=row.avg_power_watts,
        batch_latency_s=row.batch_latency_s,
        energy_per_video_joules=energy if video else None,
        energy_per_image_joules=None if video else energy,
        throughput_videos_per_sec=row.throughput_videos_per_sec if video else None,
        throughput_images_per_sec=None if video else row.throughput_images_per_sec,
        energy_boundary=EnergyBoundary.GPU,
        energy_method=EnergyMethod.COUNTER,
        stable=True,
        warnings=[STABILITY_NOTE, *_repeat_note(repeat)],
        provenance=provenance,
        missing=missing_reasons(DIFFUSION_NOT_PUBLISHED, NOT_PUBLISHED),
    )


def read_leaderboard(path_or_url: str | Path) -> list[RunRecord]:
    """Parse and validate a whole leaderboard snapshot into run records (writes nothing)."""
    source = open_source(path_or_url)
    index = _validate(IndexDoc, source.read("index.json"), source.describe("index.json"))
    kinds = {t: arch for arch, ts in index.architectures.items() for t in ts}
    records: list[RunRecord] = []
    for task in index.tasks:
        rel = f"tasks/{task}.json"
        where = source.describe(rel)
        doc = _validate(TaskDoc, source.read(rel), where)
        if doc.task != task:
            raise InputError(
                f"task {doc.task!r} does not match index entry {task!r}", source=where, field="task"
            )
        kind = kinds.get(task)
        if kind is None:
            raise InputError(
                f"task {task!r} has no architecture in index.json",
                source=source.describe("index.json"),
                field="architectures",
            )
        provenance = Provenance(
            source=SourceKind.MLENERGY_LEADERBOARD,
            source_version=f"snapshot {index.last_updated}",
            source_path=where,
        )
        hist_cache: dict[str, dict[tuple, list[Histogram | None]]] = {}
        seen: dict[tuple, int] = {}
        for i, raw in enumerate(doc.configurations):
            prefix = f"configurations[{i}]"
            if kind is RunKind.DIFFUSION:
                drow = _validate(DiffusionRow, raw, where, prefix)
                meta = index.models.get(drow.model_id, ModelMeta())
                try:
                    records.append(_diffusion_record(drow, task, meta, provenance, seen))
                except ValidationError as exc:
                    raise from_validation(exc, where, prefix) from exc
                except ValueError as exc:
                    raise InputError(str(exc), source=where, field=prefix) from exc
                continue
            lrow = _validate(LlmRow, raw, where, prefix)
            if lrow.model_id not in hist_cache:
                hist_cache[lrow.model_id] = _histograms(source, lrow.model_id, task)
            key = (lrow.model_id, *_llm_key(lrow.gpu_model, lrow.num_gpus, lrow.max_num_seqs, lrow))
            id_key, repeat = _with_repeat(key, seen)
            hists = hist_cache[lrow.model_id].get(key[1:], [])
            hist = hists[repeat] if repeat < len(hists) else None
            meta = index.models.get(lrow.model_id, ModelMeta())
            try:
                records.append(
                    _llm_record(lrow, task, kind, meta, hist, provenance, id_key[1:], repeat)
                )
            except ValidationError as exc:  # a combination the record's schema refuses
                raise from_validation(exc, where, prefix) from exc
    ids = [r.run_id for r in records]
    if len(set(ids)) != len(ids):
        raise InputError(
            "two configurations share the same identifying fields", source=source.describe("tasks/")
        )
    return records
