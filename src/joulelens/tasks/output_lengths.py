"""Output-length distributions: how long responses are, for models that cannot decide themselves.

An architecture-only model (``arch:<name>``, random weights) never emits a meaningful EOS, so
each of its requests is given a length drawn from the task's published output-length
distribution (ML.ENERGY's histograms). The distribution is kept as a piecewise-linear CDF:
histogram bins are uniform inside, and packaged defaults are quantile points.

Where the histograms come from, in order: records in the user's store (the imported public
snapshot, or any measured run with a histogram), else a small packaged summary per task
(41 quantiles of the public snapshot's histograms, pooled with equal weight per model;
``derive_task_quantiles`` recomputes them and a test checks they still match).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from joulelens.errors import InputError
from joulelens.records import Histogram

if TYPE_CHECKING:
    from joulelens.records import RunRecord
    from joulelens.store import Store

QUANTILE_PROBS = tuple(i / 40 for i in range(41))  # the packaged summary: every 2.5 %
_PACKAGED_FILE = "output_lengths.json"


@dataclass(frozen=True, slots=True)
class OutputLengthDistribution:
    """A CDF through ``(lengths_tokens[i], cdf[i])``, linear in between; both non-decreasing."""

    lengths_tokens: tuple[float, ...]
    cdf: tuple[float, ...]
    source: str  # where it came from, for the run record ("store: 12 runs of ...", "packaged: ...")

    def __post_init__(self) -> None:
        xs, ps = np.asarray(self.lengths_tokens), np.asarray(self.cdf)
        if len(xs) < 2 or len(xs) != len(ps):
            raise InputError("a distribution needs at least two matching points", field="cdf")
        if np.any(np.diff(xs) < 0) or np.any(np.diff(ps) < 0):
            raise InputError("lengths and CDF must be non-decreasing", field="cdf")
        if abs(ps[0]) > 1e-9 or abs(ps[-1] - 1) > 1e-6 or xs[0] < 0:
            raise InputError("the CDF must run from 0 to 1 over lengths >= 0", field="cdf")

    @classmethod
    def from_histogram(cls, hist: Histogram, source: str = "histogram") -> OutputLengthDistribution:
        return cls.from_histograms([hist], source)

    @classmethod
    def from_histograms(
        cls, hists: Sequence[Histogram], source: str, weights: Sequence[float] | None = None
    ) -> OutputLengthDistribution:
        """The mixture of several histograms (equal weight each unless ``weights`` given)."""
        usable = [
            (h, w) for h, w in zip(hists, weights or [1.0] * len(hists), strict=True) if h.total > 0
        ]
        if not usable:
            raise InputError(
                "no non-empty output-length histogram", field="output_length_distribution"
            )
        grid = np.unique(np.concatenate([np.asarray(h.bins, dtype=float) for h, _ in usable]))
        total_weight = sum(w for _, w in usable)
        cdf = sum(w * _histogram_cdf(h, grid) for h, w in usable) / total_weight
        cdf = np.maximum.accumulate(np.clip(cdf, 0.0, 1.0))
        cdf[0], cdf[-1] = 0.0, 1.0
        return cls(tuple(grid.tolist()), tuple(cdf.tolist()), source)

    @classmethod
    def from_quantiles(
        cls,
        lengths_tokens: Sequence[float],
        probs: Sequence[float] = QUANTILE_PROBS,
        *,
        source: str,
    ) -> OutputLengthDistribution:
        return cls(tuple(float(x) for x in lengths_tokens), tuple(float(p) for p in probs), source)

    def sample(self, n: int, rng: np.random.Generator, cap_tokens: int | None = None) -> np.ndarray:
        """``n`` integer lengths >= 1 (inverse-CDF sampling), clipped to ``cap_tokens``."""
        u = rng.random(n)
        lengths = np.ceil(np.interp(u, self.cdf, self.lengths_tokens)).astype(np.int64)
        lengths = np.maximum(lengths, 1)
        if cap_tokens is not None:
            lengths = np.minimum(lengths, cap_tokens)
        return lengths

    def cdf_at(self, lengths_tokens: np.ndarray | Sequence[float]) -> np.ndarray:
        return np.interp(np.asarray(lengths_tokens, dtype=float), self.lengths_tokens, self.cdf)

    def quantiles(self, probs: Sequence[float] = QUANTILE_PROBS) -> np.ndarray:
        return np.interp(np.asarray(probs, dtype=float), self.cdf, self.lengths_tokens)

    @property
    def mean_tokens(self) -> float:
        """Mean of the piecewise-uniform density (the average of each segment's midpoint)."""
        xs, ps = np.asarray(self.lengths_tokens), np.asarray(self.cdf)
        return float(np.sum(np.diff(ps) * (xs[1:] + xs[:-1]) / 2))


def _histogram_cdf(hist: Histogram, at: np.ndarray) -> np.ndarray:
    edges = np.asarray(hist.bins, dtype=float)
    cum = np.concatenate([[0.0], np.cumsum(hist.counts, dtype=float)]) / hist.total
    return np.interp(at, edges, cum, left=0.0, right=1.0)


def pooled_by_model(records: Iterable[RunRecord]) -> tuple[list[Histogram], list[float], list[str]]:
    """Histograms with weights giving each model equal weight, however many runs it has."""
    by_model: dict[str, list[Histogram]] = defaultdict(list)
    for record in records:
        if (
            record.output_length_distribution is not None
            and record.output_length_distribution.total
        ):
            by_model[record.model_id].append(record.output_length_distribution)
    hists: list[Histogram] = []
    weights: list[float] = []
    for model_hists in by_model.values():
        hists += model_hists
        weights += [1.0 / len(model_hists)] * len(model_hists)
    return hists, weights, sorted(by_model)


def from_store(
    store: Store, task: str, model_id: str | None = None
) -> OutputLengthDistribution | None:
    """The task's distribution from the store's records, or ``None`` if none has a histogram.

    With ``model_id``, only that model's runs count when it has any (e.g. the model an
    architecture is taken from); otherwise all models of the task, each with equal weight.
    """
    from joulelens.store import RunFilter

    records = store.query(RunFilter(task=task))
    if model_id is not None:
        own = [r for r in records if r.model_id == model_id and r.output_length_distribution]
        if own:
            records = own
    hists, weights, models = pooled_by_model(records)
    if not hists:
        return None
    label = models[0] if len(models) == 1 else f"{len(models)} models"
    return OutputLengthDistribution.from_histograms(
        hists, f"store: {task}, {label} ({len(hists)} runs)", weights
    )


@cache
def _packaged() -> dict[str, list[float]]:
    text = resources.files("joulelens.tasks").joinpath("data", _PACKAGED_FILE).read_text()
    return dict(json.loads(text)["quantiles_tokens"])


def packaged(task: str) -> OutputLengthDistribution:
    """The packaged default for ``task`` (no store needed)."""
    quantiles = _packaged().get(task)
    if quantiles is None:
        raise InputError(
            f"no packaged output-length distribution for task {task!r}; "
            f"known: {', '.join(sorted(_packaged()))}",
            field="task",
        )
    return OutputLengthDistribution.from_quantiles(
        quantiles, source=f"packaged: {task} (ML.ENERGY v3 histograms, pooled per model)"
    )


def packaged_tasks() -> tuple[str, ...]:
    return tuple(sorted(_packaged()))


def for_task(
    task: str, store: Store | None = None, model_id: str | None = None
) -> OutputLengthDistribution:
    """The store's distribution when it has one for ``task``, else the packaged default."""
    if store is not None:
        found = from_store(store, task, model_id)
        if found is not None:
            return found
    return packaged(task)


def derive_task_quantiles(records: Iterable[RunRecord]) -> dict[str, list[int]]:
    """Recompute the packaged summary: per task, 41 quantiles (rounded to tokens)."""
    by_task: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        by_task[record.task].append(record)
    out: dict[str, list[int]] = {}
    for task, task_records in sorted(by_task.items()):
        hists, weights, _ = pooled_by_model(task_records)
        if hists:
            dist = OutputLengthDistribution.from_histograms(hists, task, weights)
            out[task] = [round(float(q)) for q in dist.quantiles()]
    return out
