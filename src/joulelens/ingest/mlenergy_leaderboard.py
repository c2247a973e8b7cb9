"""Import the ML.ENERGY Leaderboard's published JSON (``index.json``, ``tasks/``, ``models/``).

Every file is parsed and validated before anything is written, so a malformed file is
reported by name and field and nothing from it reaches the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from joulelens.errors import InputError
from joulelens.ingest.benchmark_files import field_path
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
    model_config = ConfigDict(extra="allow")


class IndexDoc(_Row):
    architectures: dict[str, list[str]]
    last_updated: str
    models: dict[str, dict[str, Any]]
    tasks: list[str]


class LlmRow(_Row):
    model_id: str
    nickname: str | None = None
    gpu_model: str
    num_gpus: int
    max_num_seqs: int
    tensor_parallel: int = 1
    expert_parallel: int = 1
    data_parallel: int = 1
    weight_precision: str | None = None
    architecture: str | None = None
    total_params_billions: float | None = None
    activated_params_billions: float | None = None
    energy_per_token_joules: float
    energy_per_request_joules: float
    avg_power_watts: float
    output_throughput_tokens_per_sec: float
    median_itl_ms: float
    p90_itl_ms: float
    p95_itl_ms: float
    p99_itl_ms: float
    avg_batch_size: float
    avg_output_len: float


class DiffusionRow(_Row):
    model_id: str
    nickname: str | None = None
    gpu_model: str
    num_gpus: int
    batch_size: int
    weight_precision: str | None = None
    total_params_billions: float | None = None
    activated_params_billions: float | None = None
    avg_power_watts: float
    batch_latency_s: float
    inference_steps: int
    ulysses_degree: int = 1
    ring_degree: int = 1
    energy_per_image_joules: float | None = None
    energy_per_video_joules: float | None = None
    throughput_images_per_sec: float | None = None
    throughput_videos_per_sec: float | None = None
    image_height: int | None = None
    image_width: int | None = None
    video_height: int | None = None
    video_width: int | None = None
    num_frames: int | None = None
    fps: int | None = None


# Result fields the published rows do not carry: null, with NOT_PUBLISHED as the reason.
LLM_NOT_PUBLISHED = tuple(f for f in LLM_METRIC_FIELDS if f not in LlmRow.model_fields)
DIFFUSION_NOT_PUBLISHED = tuple(
    f for f in DIFFUSION_METRIC_FIELDS if f not in DiffusionRow.model_fields
)


class TaskDoc(_Row):
    task: str
    task_display_name: str | None = None
    configurations: list[dict[str, Any]]


class ModelConfigRow(_Row):
    gpu_model: str
    num_gpus: int
    max_num_seqs: int | None = None
    parallelization: dict[str, Any] = {}
    output_length_distribution: Histogram | None = None


class ModelDoc(_Row):
    model_id: str
    task: str
    configurations: list[ModelConfigRow]


def _validate(model: type[_M], data: Any, source: str, prefix: str = "") -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        inner = field_path(err["loc"])
        field = ".".join(p for p in (prefix, inner) if p)
        raise InputError(err["msg"], source=source, field=field or None) from exc


def model_file_name(model_id: str, task: str) -> str:
    return f"models/{model_id.replace('/', '__')}__{task}.json"


def _llm_key(gpu_model: str, num_gpus: int, batch: int | None, par: dict[str, Any]) -> tuple:
    return (
        gpu_model,
        num_gpus,
        batch,
        int(par.get("tensor_parallel", 1)),
        int(par.get("expert_parallel", 1)),
        int(par.get("data_parallel", 1)),
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
        out.setdefault(key, []).append(cfg.output_length_distribution)
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
    meta: dict[str, Any],
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
        nickname=row.nickname or meta.get("nickname"),
        architecture=row.architecture or meta.get("architecture"),
        total_params_billions=row.total_params_billions or meta.get("total_params_billions"),
        activated_params_billions=row.activated_params_billions
        or meta.get("activated_params_billions"),
        weight_precision=row.weight_precision or meta.get("weight_precision"),
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
    row: DiffusionRow, task: str, meta: dict[str, Any], provenance: Provenance, seen: dict
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
        nickname=row.nickname or meta.get("nickname"),
        architecture=meta.get("architecture") or "diffusion",
        total_params_billions=row.total_params_billions or meta.get("total_params_billions"),
        activated_params_billions=row.activated_params_billions
        or meta.get("activated_params_billions"),
        weight_precision=row.weight_precision or meta.get("weight_precision"),
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
    kinds = {t: RunKind(arch) for arch, ts in index.architectures.items() for t in ts}
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
                meta = index.models.get(drow.model_id, {})
                try:
                    records.append(_diffusion_record(drow, task, meta, provenance, seen))
                except ValueError as exc:
                    raise InputError(str(exc), source=where, field=prefix) from exc
                continue
            lrow = _validate(LlmRow, raw, where, prefix)
            if lrow.model_id not in hist_cache:
                hist_cache[lrow.model_id] = _histograms(source, lrow.model_id, task)
            key = (lrow.model_id, *_llm_key(lrow.gpu_model, lrow.num_gpus, lrow.max_num_seqs, raw))
            id_key, repeat = _with_repeat(key, seen)
            hists = hist_cache[lrow.model_id].get(key[1:], [])
            hist = hists[repeat] if repeat < len(hists) else None
            meta = index.models.get(lrow.model_id, {})
            records.append(
                _llm_record(lrow, task, kind, meta, hist, provenance, id_key[1:], repeat)
            )
    ids = [r.run_id for r in records]
    if len(set(ids)) != len(ids):
        raise InputError(
            "two configurations share the same identifying fields", source=source.describe("tasks/")
        )
    return records
