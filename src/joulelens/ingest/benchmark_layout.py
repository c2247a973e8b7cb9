"""Where things are in an ML.ENERGY Benchmark tree: run directories and the ``configs/`` tree.

The harness writes LLM runs to
``run/{llm,mllm}/{task}/results/{org}/{model}/{gpu}/{params}/results.json`` (``params`` like
``num_gpus+1+max_num_seqs+128+...``) and diffusion runs to
``run/diffusion/{task}/{org}/{model}/{params}/results.json`` (``batch-1+size-1024x1024+...``).
Model metadata (``model_info.json``) and vLLM server arguments (``monolithic.config.yaml``)
live in the benchmark repository's ``configs/vllm/...`` and ``configs/xdit/...``, not beside
the results; the toolkit that builds the leaderboard reads them from there, and so do we.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from joulelens.errors import InputError
from joulelens.ingest.benchmark_files import RESULTS_FILE, ModelInfo, read_json_object, validate_doc
from joulelens.ingest.sources import confined

LLM_TASKS = frozenset({"lm-arena-chat", "gpqa", "sourcegraph-fim", "length-control"})
MLLM_TASKS = frozenset({"image-chat", "video-chat", "audio-chat", "omni-chat"})
DIFFUSION_TASKS = frozenset({"text-to-image", "text-to-video"})

# Directories under a run tree that hold inputs or generated media, never results.
_SKIP_DIRS = frozenset(
    {"requests", "tokenization", "multimodal_dump", "image_outputs", "video_outputs"}
)
_GPU_NAME = re.compile(r"^(?:[ABHLV]\d{2,3}[A-Z]*|GB\d{3}|MI\d{3}[A-Z]*|L4|T4)$", re.IGNORECASE)


def find_results_files(root: Path) -> list[Path]:
    """Every run's ``results.json`` under ``root`` (a tree, one run directory, or the file)."""
    if root.is_file():
        return [root]
    return list(_iter_results(root))


def looks_like_benchmark_tree(path: Path) -> bool:
    """A local directory of raw results rather than the leaderboard's published JSON."""
    if not path.is_dir() or (path / "index.json").is_file():
        return False
    return next(_iter_results(path), None) is not None


def _iter_results(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        if RESULTS_FILE in filenames:
            yield Path(dirpath) / RESULTS_FILE


def run_dir_params(name: str) -> dict[str, str]:
    """Parameters encoded in a run directory's name (both of the harness' styles)."""
    tokens = name.split("+")
    if all("-" in t for t in tokens):
        return dict(t.split("-", 1) for t in tokens)  # diffusion: batch-4+size-1024x1024+...
    if len(tokens) % 2 == 0:
        return dict(zip(tokens[::2], tokens[1::2], strict=True))  # llm: num_gpus+1+...
    return {}


def llm_task_from_path(results_path: Path, model_id: str) -> str | None:
    """``{task}`` in ``.../{task}/results/{org}/{model}/{gpu}/{params}/results.json``."""
    parts = results_path.absolute().parts
    model_parts = tuple(model_id.split("/"))
    n = len(model_parts)
    for i in range(len(parts) - n - 1, 0, -1):
        if parts[i] == "results" and parts[i + 1 : i + 1 + n] == model_parts:
            return parts[i - 1]
    known = [p for p in parts if p in LLM_TASKS or p in MLLM_TASKS]
    return known[-1] if known else None


def is_multimodal(results_path: Path, task: str) -> bool:
    if task in MLLM_TASKS:
        return True
    parts = results_path.absolute().parts
    return any(parts[i] == "mllm" and parts[i + 1] == task for i in range(len(parts) - 1))


def diffusion_task_from_path(results_path: Path) -> str | None:
    known = [p for p in results_path.absolute().parts if p in DIFFUSION_TASKS]
    return known[-1] if known else None


def gpu_from_path(results_path: Path) -> str | None:
    """A GPU model named by a directory above the run (``.../H100/...``), upper-cased."""
    for part in reversed(results_path.absolute().parts[:-2]):
        if _GPU_NAME.match(part):
            return part.upper()
    return None


class BenchmarkConfigs:
    """The benchmark repository's ``configs/`` tree (``vllm/`` and ``xdit/`` below it)."""

    def __init__(self, root: Path):
        if not ((root / "vllm").is_dir() or (root / "xdit").is_dir()):
            raise InputError(
                "not an ML.ENERGY Benchmark configs directory (no vllm/ or xdit/ inside)",
                source=root,
                field="--configs",
            )
        self.root = root
        self._info: dict[Path, ModelInfo | None] = {}
        self._yaml: dict[Path, dict[str, Any] | None] = {}

    @classmethod
    def find(cls, start: Path) -> BenchmarkConfigs | None:
        """``configs/`` in ``start`` or up to four directories above it, as the toolkit does."""
        base = start.absolute()
        for candidate in [base, *list(base.parents)[:4]]:
            configs = candidate / "configs"
            if (configs / "vllm").is_dir() or (configs / "xdit").is_dir():
                return cls(configs)
        return None

    def model_info(self, runtime: str, task: str, model_id: str) -> ModelInfo | None:
        """``configs/{vllm|xdit}/{task}/{model_id}/model_info.json``, or None if absent."""
        path = self._inside(runtime, task, model_id, "model_info.json")
        if path not in self._info:
            self._info[path] = (
                validate_doc(ModelInfo, read_json_object(path), path) if path.is_file() else None
            )
        return self._info[path]

    def parallelism(
        self, task: str, model_id: str, gpu_model: str, num_gpus: int
    ) -> tuple[int, int, int] | None:
        """(tensor, expert, data) parallel degrees as the leaderboard reports them.

        The harness passes ``--data-parallel-size N`` when the server config mentions data
        parallelism and ``--tensor-parallel-size N`` otherwise; with expert parallelism on,
        the leaderboard counts the GPUs as expert-parallel (attention TP of 1).
        """
        path = self._inside("vllm", task, model_id, gpu_model, "monolithic.config.yaml")
        raw = self._server_config(path)
        if raw is None:
            return None
        try:
            ep = (
                int(raw.get("expert-parallel-size", num_gpus))
                if raw.get("enable-expert-parallel")
                else 1
            )
            tp = int(raw.get("tensor-parallel-size", 1 if ep > 1 else num_gpus))
            dp = int(raw.get("data-parallel-size", 1)) or num_gpus
        except (TypeError, ValueError) as exc:
            raise InputError(f"not an integer ({exc})", source=path, field="parallel") from exc
        return tp, ep, dp

    def _inside(self, *parts: str) -> Path:
        """``configs/<parts>``; names from a results file may not lead outside configs/."""
        return self.root / confined("/".join(parts), str(self.root))

    def _server_config(self, path: Path) -> dict[str, Any] | None:
        if path not in self._yaml:
            if not path.is_file():
                self._yaml[path] = None
            else:
                try:
                    raw = yaml.safe_load(path.read_text())
                except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                    raise InputError(f"cannot read YAML ({exc})", source=path) from exc
                if not isinstance(raw, dict):
                    raise InputError("expected a YAML mapping", source=path)
                self._yaml[path] = raw
        return self._yaml[path]
