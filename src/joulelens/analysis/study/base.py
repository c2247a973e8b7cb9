"""What every finding shares: numbers with the run ids behind them, and small statistics."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Finding:
    """One named result of the study.

    ``numbers`` is a nested JSON-ready dict; ``sources`` maps the JSON Pointer (RFC 6901) of
    each number (``"/per_task/gpqa/mean_energy_per_response_joules"``; "/" in a model id is
    written "~1") to the run ids it came from, so ``--explain`` can trace every figure.
    """

    id: str
    title: str
    definition: str
    conclusion: str = ""
    status: str = "ok"  # "ok" or "no_data"
    numbers: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, path: str | tuple[str, ...], value: Any, run_ids: Iterable[str] = ()) -> Any:
        """Set ``numbers[a][b][c] = value`` for ``path="a.b.c"`` or ``("a", "b", "c")`` (use a
        tuple when a part may hold a dot, like a model id) and record its run ids."""
        parts = tuple(path.split(".")) if isinstance(path, str) else path
        node = self.numbers
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
        ids = sorted(set(run_ids))
        if ids:
            self.sources[pointer(parts)] = ids
        return value

    def ids_at(self, path: str | tuple[str, ...]) -> list[str]:
        parts = tuple(path.split(".")) if isinstance(path, str) else path
        return self.sources.get(pointer(parts), [])

    def no_data(self, why: str) -> Finding:
        self.status = "no_data"
        self.conclusion = f"not enough runs: {why}"
        return self

    @property
    def run_ids(self) -> list[str]:
        return sorted({i for ids in self.sources.values() for i in ids})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "definition": self.definition,
            "status": self.status,
            "conclusion": self.conclusion,
            "numbers": self.numbers,
            "sources": self.sources,
            "notes": self.notes,
        }


def pointer(parts: tuple[str, ...]) -> str:
    """RFC 6901 JSON Pointer for a path of keys."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, min, quartiles, max and mean; None entries when there are no values."""
    if not values:
        return {
            "n": 0,
            "min": None,
            "p25": None,
            "median": None,
            "p75": None,
            "max": None,
            "mean": None,
        }
    xs = sorted(values)
    return {
        "n": len(xs),
        "min": xs[0],
        "p25": _quantile(xs, 0.25),
        "median": statistics.median(xs),
        "p75": _quantile(xs, 0.75),
        "max": xs[-1],
        "mean": statistics.fmean(xs),
    }


def _quantile(xs: Sequence[float], q: float) -> float:
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def geomean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v > 0]
    return math.exp(statistics.fmean(math.log(v) for v in vals)) if vals else None


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Rank correlation (average ranks for ties); None for fewer than 3 points."""
    if len(xs) < 3 or len(xs) != len(ys):
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    vy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return cov / (vx * vy) if vx and vy else None


def _ranks(xs: Sequence[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pct(change: float | None) -> str:
    return "—" if change is None else f"{change:+.0%}"


def x(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.3g}x"
