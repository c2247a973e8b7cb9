"""Finding ``diffusion_range``: per-model energy per image / video and what orders it."""

from __future__ import annotations

import statistics

from joulelens.analysis.model_arch import diffusion_volume
from joulelens.analysis.selection import RunIndex, gpu_name
from joulelens.analysis.study.base import Finding, spearman, x
from joulelens.records import RunRecord

IMAGE_TASK, VIDEO_TASK = "text-to-image", "text-to-video"


def _minima(index: RunIndex, task: str, gpu: str) -> dict[str, RunRecord]:
    out = {}
    for model_id in sorted({r.model_id for r in index.by_task.get(task, [])}):
        best = index.min_energy(model_id, task, lambda r: gpu_name(r) == gpu)
        if best is not None:
            out[model_id] = best
    return out


def diffusion_range(index: RunIndex, gpu: str = "B200") -> Finding:
    f = Finding(
        "diffusion_range",
        "Diffusion: energy per image and per video",
        f"Each diffusion model's minimum energy per generation on {gpu} (any GPU count and "
        "batch), its compute volume (denoising steps x latent tokens x guidance passes x "
        "active parameters, from the model data) and the rank correlation of the two; the "
        "largest video model (most parameters) against the mean image model.",
    )
    minima = {task: _minima(index, task, gpu) for task in (IMAGE_TASK, VIDEO_TASK)}
    if not any(minima.values()):
        return f.no_data(f"no diffusion runs on {gpu}")
    for task, runs in minima.items():
        energies, volumes = [], []
        for model_id, r in sorted(runs.items(), key=lambda kv: kv[1].energy_per_unit_joules or 0):
            key = ("per_model", task, model_id)
            f.put((*key, "energy_per_generation_joules"), r.energy_per_unit_joules, [r.run_id])
            vol = diffusion_volume(r)
            f.put((*key, "compute_volume"), vol[0] if vol else None, [r.run_id])
            f.put((*key, "steps"), r.inference_steps, [r.run_id])
            f.put((*key, "resolution"), f"{r.width}x{r.height}", [r.run_id])
            f.put((*key, "frames"), r.num_frames, [r.run_id])
            f.put((*key, "batch"), r.batch, [r.run_id])
            f.put((*key, "num_gpus"), r.num_gpus, [r.run_id])
            if vol is not None and r.energy_per_unit_joules:
                energies.append(r.energy_per_unit_joules)
                volumes.append(vol[0])
        if runs:
            e = [r.energy_per_unit_joules or 0 for r in runs.values()]
            ids = [r.run_id for r in runs.values()]
            f.put(("range", task, "min_joules"), min(e), ids)
            f.put(("range", task, "max_joules"), max(e), ids)
            f.put(("range", task, "max_over_min"), max(e) / min(e), ids)
            f.put(
                ("range", task, "compute_volume_energy_spearman"), spearman(volumes, energies), ids
            )
    images, videos = minima[IMAGE_TASK], minima[VIDEO_TASK]
    if images and videos:
        mean_image = statistics.fmean(r.energy_per_unit_joules or 0 for r in images.values())
        image_ids = [r.run_id for r in images.values()]
        for model_id, v in videos.items():
            f.put(
                ("video_over_mean_image", model_id),
                (v.energy_per_unit_joules or 0) / mean_image,
                [v.run_id, *image_ids],
            )
        largest = max(
            videos.values(),
            key=lambda r: (r.total_params_billions or 0, r.energy_per_unit_joules or 0),
        )
        ratio = (largest.energy_per_unit_joules or 0) / mean_image
        f.put("largest_video_model", largest.model_id, [largest.run_id])
        f.put("largest_video_over_mean_image", ratio, [largest.run_id, *image_ids])
        top = max(videos.values(), key=lambda r: r.energy_per_unit_joules or 0)
        img, vid = f.numbers["range"][IMAGE_TASK], f.numbers["range"][VIDEO_TASK]
        top_ratio = (top.energy_per_unit_joules or 0) / mean_image
        f.conclusion = (
            f"On {gpu}, the largest video model ({largest.nickname or largest.model_id}) uses "
            f"{x(ratio)} the energy of the mean image model; the costliest "
            f"({top.nickname or top.model_id}) {x(top_ratio)}. Images span "
            f"{x(img['max_over_min'])}, videos {x(vid['max_over_min'])}; compute volume orders "
            f"them (Spearman {_fmt_rho(img['compute_volume_energy_spearman'])} images, "
            f"{_fmt_rho(vid['compute_volume_energy_spearman'])} videos)."
        )
    else:
        task = IMAGE_TASK if images else VIDEO_TASK
        span = x(f.numbers["range"][task]["max_over_min"])
        f.conclusion = f"On {gpu}, {task} energy spans {span} across models."
    f.notes.append(
        "compute volume is a linear proxy: attention's quadratic cost in latent tokens is not in "
        "it, so long videos cost more than it predicts"
    )
    return f


def _fmt_rho(rho: float | None) -> str:
    return "—" if rho is None else f"{rho:.2f}"
