"""The judging half of ``gpu_validate.py``: checks, series analysis and planning, no device.

Everything here takes numbers (or a ``pynvml``-like module) and returns figures and
:class:`Check` verdicts, so it is tested on synthetic series and the NVML stand-in.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"

IDLE_MIN_W = 30.0
IDLE_MAX_LIMIT_FRACTION = 0.5
IDLE_AGREEMENT = 0.10
LIMIT_PLAUSIBLE_W = (100.0, 1500.0)
LOAD_LIMIT_FRACTION = (0.5, 1.05)
AGREEMENT_PCT = 5.0
MEMORY_LEFT_BYTES = 64 << 20  # torch may keep this little allocated after an engine closes


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, fail, warn, skip
    detail: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(name: str, ok: bool, detail: str, value: Any = None, *, soft: bool = False) -> Check:
    return Check(name, PASS if ok else (WARN if soft else FAIL), detail, value)


def exit_code(checks: Sequence[Check]) -> int:
    """1 if any check failed, else 0 (warnings and skips do not fail the run)."""
    return 1 if any(c.status == FAIL for c in checks) else 0


# -- time budget --------------------------------------------------------------------------------


class Budget:
    """A deadline for the whole script; phases ask what is left before they start."""

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start = clock()
        self.total_s = total_s

    @property
    def left_s(self) -> float:
        return self.total_s - (self.clock() - self.start)

    @property
    def used_s(self) -> float:
        return self.clock() - self.start

    def allows(self, need_s: float) -> bool:
        return self.left_s >= need_s


# -- raw NVML ----------------------------------------------------------------------------------


class RawNvml:
    """Each NVML power/energy reading separately, with its raw return code (preflight, lag)."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml = nvml
        self.handle = handle

    def code(self, fn: Callable[[], Any]) -> tuple[int, Any]:
        try:
            return self.nvml.NVML_SUCCESS, fn()
        except self.nvml.NVMLError as exc:
            return int(getattr(exc, "value", -1)), None

    def field_mw(self, constant: str, scope: str) -> tuple[int, int | None]:
        nvml = self.nvml
        try:
            key = (getattr(nvml, constant), getattr(nvml, f"NVML_POWER_SCOPE_{scope.upper()}"))
        except AttributeError:
            return -1, None
        code, values = self.code(lambda: nvml.nvmlDeviceGetFieldValues(self.handle, [key]))
        if code != nvml.NVML_SUCCESS:
            return code, None
        value = values[0]
        if value.nvmlReturn != nvml.NVML_SUCCESS:
            return int(value.nvmlReturn), None
        return int(nvml.NVML_SUCCESS), int(value.value.uiVal)

    def codes(self) -> dict[str, int]:
        """Return codes of every energy/power reading (0 = success), for the preflight."""
        nvml, h = self.nvml, self.handle
        out = {
            "nvmlDeviceGetTotalEnergyConsumption": self.code(
                lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h)
            )[0],
            "nvmlDeviceGetPowerUsage": self.code(lambda: nvml.nvmlDeviceGetPowerUsage(h))[0],
        }
        for constant in ("NVML_FI_DEV_POWER_INSTANT", "NVML_FI_DEV_POWER_AVERAGE"):
            for scope in ("gpu", "module"):
                out[f"{constant}/{scope}"] = self.field_mw(constant, scope)[0]
        return out

    def readers(self) -> dict[str, Callable[[], float | None]]:
        """Watts per source (``None`` when a read fails), plus the counter in joules."""
        nvml, h = self.nvml, self.handle

        def field(constant: str) -> Callable[[], float | None]:
            def read() -> float | None:
                mw = self.field_mw(constant, "gpu")[1]
                return None if mw is None else mw / 1e3

            return read

        def usage() -> float | None:
            mw = self.code(lambda: nvml.nvmlDeviceGetPowerUsage(h))[1]
            return None if mw is None else mw / 1e3

        def counter() -> float | None:
            mj = self.code(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h))[1]
            return None if mj is None else mj / 1e3

        return {
            "instant": field("NVML_FI_DEV_POWER_INSTANT"),
            "average": field("NVML_FI_DEV_POWER_AVERAGE"),
            "power_usage": usage,
            "counter_j": counter,
        }


@dataclass
class Polled:
    """Series polled from :meth:`RawNvml.readers`: times and values per source (NaN = failed)."""

    t_s: list[float] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, t_s: float, row: Mapping[str, float | None]) -> None:
        self.t_s.append(t_s)
        for name, value in row.items():
            self.values.setdefault(name, []).append(math.nan if value is None else value)

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.t_s), np.asarray(self.values.get(name, []), dtype=float)

    def counter_power(self, min_dt_s: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Power from counter deltas at least ``min_dt_s`` apart, stamped at the interval's end."""
        t, e = self.arrays("counter_j")
        keep = ~np.isnan(e)
        t, e = t[keep], e[keep]
        if len(t) < 2:
            return np.empty(0), np.empty(0)
        out_t, out_w = [], []
        last = 0
        for i in range(1, len(t)):
            if t[i] - t[last] >= min_dt_s:
                out_t.append(t[i])
                out_w.append((e[i] - e[last]) / (t[i] - t[last]))
                last = i
        return np.asarray(out_t), np.asarray(out_w)

    def mean_w(self, name: str, start_s: float, end_s: float) -> float | None:
        t, v = self.arrays(name)
        inside = (t >= start_s) & (t <= end_s) & ~np.isnan(v)
        return float(v[inside].mean()) if inside.any() else None

    def counter_mean_w(self, start_s: float, end_s: float) -> float | None:
        t, e = self.arrays("counter_j")
        keep = ~np.isnan(e) & (t >= start_s) & (t <= end_s)
        if keep.sum() < 2:
            return None
        t, e = t[keep], e[keep]
        return float((e[-1] - e[0]) / (t[-1] - t[0])) if t[-1] > t[0] else None


# -- range checks ------------------------------------------------------------------------------


def idle_checks(idle_w: Mapping[str, float | None], limit_w: float | None) -> list[Check]:
    """Idle power between 30 W and half the limit; the sources within 10% of each other."""
    known = {k: v for k, v in idle_w.items() if v is not None}
    checks = []
    counter = known.get("counter")
    if counter is None:
        checks.append(Check("idle power in range", FAIL, "no counter-derived idle power"))
    else:
        top = IDLE_MAX_LIMIT_FRACTION * limit_w if limit_w else math.inf
        checks.append(
            check(
                "idle power in range",
                IDLE_MIN_W <= counter <= top,
                f"{counter:.1f} W from the counter; want {IDLE_MIN_W:.0f} W..{top:.0f} W "
                "(half the power limit)",
                counter,
            )
        )
    if len(known) >= 2:
        low, high = min(known.values()), max(known.values())
        spread = (high - low) / high if high > 0 else math.inf
        text = ", ".join(f"{k} {v:.1f} W" for k, v in sorted(known.items()))
        checks.append(
            check(
                "idle sources agree",
                spread <= IDLE_AGREEMENT,
                f"{text}: spread {100 * spread:.1f}% (want <= {100 * IDLE_AGREEMENT:.0f}%)",
                spread,
            )
        )
    return checks


def limit_check(
    limit_w: float | None, constraints_w: tuple[float, float] | None, default_w: float | None
) -> Check:
    if limit_w is None:
        return Check("power limit plausible", FAIL, "the enforced power limit is unreadable")
    low, high = LIMIT_PLAUSIBLE_W
    ok = low <= limit_w <= high
    text = f"enforced {limit_w:.0f} W (plausible {low:.0f}..{high:.0f} W)"
    if constraints_w is not None:
        ok &= constraints_w[0] - 1 <= limit_w <= constraints_w[1] + 1
        text += f", constraints {constraints_w[0]:.0f}..{constraints_w[1]:.0f} W"
    if default_w is not None:
        text += f", default {default_w:.0f} W"
    return check("power limit plausible", ok, text, limit_w)


def load_check(mean_w: float | None, limit_w: float | None) -> Check:
    if mean_w is None or not limit_w:
        return Check("load power in range", FAIL, "no mean power under load or no limit")
    low, high = (f * limit_w for f in LOAD_LIMIT_FRACTION)
    return check(
        "load power in range",
        low <= mean_w <= high,
        f"{mean_w:.1f} W under load; want {low:.0f}..{high:.0f} W "
        f"({LOAD_LIMIT_FRACTION[0]}x..{LOAD_LIMIT_FRACTION[1]}x the {limit_w:.0f} W limit)",
        mean_w / limit_w,
    )


def agreement_check(name: str, counter_j: float | None, integrated_j: float | None) -> Check:
    if counter_j is None or integrated_j is None or counter_j <= 0:
        return Check(name, FAIL, f"counter {counter_j} J, integrated {integrated_j} J")
    diff = 100.0 * (integrated_j - counter_j) / counter_j
    return check(
        name,
        abs(diff) <= AGREEMENT_PCT,
        f"counter {counter_j:.1f} J, integrated power timeline {integrated_j:.1f} J: "
        f"{diff:+.2f}% (want within {AGREEMENT_PCT:g}%)",
        diff,
    )


# -- step response -----------------------------------------------------------------------------


def step_lags(
    t_s: np.ndarray, watts: np.ndarray, on_s: Sequence[float], off_s: Sequence[float]
) -> dict[str, float | None]:
    """Median delay from each load edge to the reading crossing halfway between the levels.

    Levels are the medians of the last 40% of each on and off phase.
    """
    keep = ~np.isnan(watts)
    t, w = t_s[keep], watts[keep]

    def level(a: float, b: float) -> float | None:
        inside = (t >= a + 0.6 * (b - a)) & (t <= b)
        return float(np.median(w[inside])) if inside.any() else None

    rises, falls = [], []
    for k, start in enumerate(on_s):
        stop = off_s[k]
        following = on_s[k + 1] if k + 1 < len(on_s) else stop + (stop - start)
        high, low = level(start, stop), level(stop, following)
        before = level(start - (stop - start), start) if k else low
        if high is None or low is None or before is None:
            continue
        rise = _crossing(t, w, start, stop, (before + high) / 2, rising=True)
        fall = _crossing(t, w, stop, following, (high + low) / 2, rising=False)
        if rise is not None:
            rises.append(rise - start)
        if fall is not None:
            falls.append(fall - stop)
    return {
        "rise_lag_s": float(np.median(rises)) if rises else None,
        "fall_lag_s": float(np.median(falls)) if falls else None,
    }


def _crossing(
    t: np.ndarray, w: np.ndarray, a: float, b: float, threshold: float, *, rising: bool
) -> float | None:
    inside = (t >= a) & (t <= b)
    for time_s, value in zip(t[inside], w[inside], strict=True):
        if (value >= threshold) if rising else (value <= threshold):
            return float(time_s)
    return None


# -- sampler -----------------------------------------------------------------------------------


def tick_stats(times_s: Sequence[float], period_s: float) -> dict[str, float | int | None]:
    gaps = np.diff(np.asarray(times_s))
    if len(gaps) == 0:
        return {"samples": len(times_s), "median_gap_ms": None, "p99_gap_ms": None}
    return {
        "samples": len(times_s),
        "median_gap_ms": float(np.median(gaps) * 1e3),
        "p99_gap_ms": float(np.percentile(gaps, 99) * 1e3),
        "max_gap_ms": float(gaps.max() * 1e3),
        "late_gaps": int((gaps > 1.5 * period_s).sum()),
    }


def latency_stats(samples_s: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples_s) * 1e6
    return {"median_us": float(np.median(arr)), "p99_us": float(np.percentile(arr, 99))}


# -- engine sweep ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnginePlan:
    max_num_seqs: int
    num_requests: int
    max_tokens: int
    est_s: float


def plan_engine_runs(
    left_s: float,
    batches: Sequence[int],
    *,
    step_s: float,
    overhead_s: float,
    max_tokens: int = 192,
    min_waves: int = 2,
    max_waves: int = 4,
) -> list[EnginePlan]:
    """Requests per batch size so every run fits its share of ``left_s``.

    A run costs ``overhead_s`` (model build, idle baseline, close) plus waves x tokens x
    the decode step, which grows with the batch (about x(1 + B/64) for an 8B model).
    At least ``min_waves`` waves keep a steady state; fewer tokens if even that is too long.
    """
    plans = []
    share = left_s / max(1, len(batches))
    for b in batches:
        step = step_s * (1 + b / 64)
        tokens = max_tokens
        budget = share - overhead_s
        waves = int(budget // (tokens * step)) if budget > 0 else 0
        while waves < min_waves and tokens > 32:
            tokens //= 2
            waves = int(budget // (tokens * step)) if budget > 0 else 0
        waves = max(min_waves, min(max_waves, waves))
        requests = max(waves * b, 4 if b == 1 else 2 * b)
        est = overhead_s + (requests / b) * tokens * step
        plans.append(EnginePlan(b, requests, tokens, est))
    return plans


def engine_checks(
    records: Sequence[Mapping[str, Any]], gpu_uuid: str, memory_left: Mapping[int, int]
) -> list[Check]:
    """Boundary, method and GPUs of each run; J/token falling with the batch; memory freed."""
    checks = []
    done = [r for r in records if r.get("status") == "completed"]
    for r in records:
        b = r.get("max_num_seqs")
        if r.get("status") != "completed":
            checks.append(Check(f"engine B={b} completed", FAIL, str(r.get("failure_reason"))))
            continue
        used = (r.get("config") or {}).get("gpus", {}).get("uuids", [])
        checks.append(
            check(
                f"engine B={b} boundary, method, GPUs",
                r.get("energy_boundary") == "gpu"
                and r.get("energy_method") == "counter"
                and used == [gpu_uuid],
                f"boundary {r.get('energy_boundary')}, method {r.get('energy_method')}, "
                f"GPUs {used} (want ['{gpu_uuid}'])",
            )
        )
        left = memory_left.get(int(b or 0))
        if left is not None:
            checks.append(
                check(
                    f"engine B={b} memory released",
                    left <= MEMORY_LEFT_BYTES,
                    f"{left / 2**20:.1f} MiB still allocated by torch after the engine closed",
                    left,
                )
            )
    per_token = [
        (r["max_num_seqs"], r.get("energy_per_token_joules"))
        for r in sorted(done, key=lambda r: r["max_num_seqs"])
    ]
    values = [float(v) for _, v in per_token if v is not None]
    if len(values) >= 2 and len(values) == len(per_token):
        falling = all(a > b for a, b in itertools.pairwise(values))
        text = ", ".join(f"B={b}: {v:.4f} J" for b, v in per_token)
        checks.append(check("J/token falls with the batch", falling, text))
    else:
        checks.append(
            Check("J/token falls with the batch", FAIL, f"not enough values: {per_token}")
        )
    return checks


def mlenergy_ratios(
    records: Sequence[Mapping[str, Any]], reference: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each run beside the public row at the nearest batch size, as ratios ours / theirs."""
    rows = list(reference["rows"])
    out = []
    for r in records:
        if r.get("status") != "completed":
            continue
        b = int(r["max_num_seqs"])
        near = min(
            rows, key=lambda row: (abs(math.log(row["max_num_seqs"] / b)), row["max_num_seqs"])
        )
        ratios = {}
        for key in (
            "energy_per_token_joules",
            "avg_power_watts",
            "median_itl_ms",
            "avg_batch_size",
        ):
            ours, theirs = r.get(key), near.get(key)
            ratios[key] = ours / theirs if ours is not None and theirs else None
        out.append(
            {
                "max_num_seqs": b,
                "reference_max_num_seqs": near["max_num_seqs"],
                "ours": {k: r.get(k) for k in ratios},
                "reference": {k: near.get(k) for k in ratios},
                "ratio": ratios,
            }
        )
    return out
