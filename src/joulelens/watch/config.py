"""What ``joulelens watch`` watches: endpoints, the GPUs each one runs on, windows, recording."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from joulelens.errors import InputError

DEFAULT_WINDOWS_S: tuple[float, ...] = (10.0, 60.0, 300.0)
DEFAULT_SAMPLE_PERIOD_S = 1.0
DEFAULT_PORT = 9464
DEFAULT_HOST = "127.0.0.1"
# The aggregate over every endpoint (shared host meters); never a label of one endpoint.
ALL_ENDPOINTS = "all"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration_s(text: str, *, field_name: str) -> float:
    """``"10s"``, ``"1m"``, ``"500ms"``, ``"2h"`` or plain seconds -> seconds (> 0)."""
    match = _DURATION.match(text)
    if match is None:
        raise InputError(
            f"not a duration: {text!r} (use e.g. 10s, 1m, 5m, 500ms)", field=field_name
        )
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise InputError(f"a duration must be positive, got {text!r}", field=field_name)
    return seconds


def duration_label(seconds: float) -> str:
    """The Prometheus-style label of a window: 10 -> "10s", 60 -> "1m", 300 -> "5m"."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and math.isclose(seconds / size, round(seconds / size)):
            return f"{round(seconds / size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def parse_gpus(text: str) -> tuple[int, ...]:
    """``"0,1"`` -> (0, 1): the GPU indices (as joulelens sees them) one server runs on."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise InputError(f"--gpus takes GPU indices like 0,1; got {text!r}", field="gpus")
    indices = tuple(int(p) for p in parts)
    if len(set(indices)) != len(indices):
        raise InputError(f"--gpus lists a GPU twice: {text!r}", field="gpus")
    return indices


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One server to watch. ``label`` (``host:port``) names its series; the URL never
    carries credentials into a label."""

    url: str  # server root, e.g. http://127.0.0.1:8000 (no /v1)
    label: str
    gpus: tuple[int, ...] | None = None  # GPU indices it runs on; None: not assigned
    max_num_seqs: int | None = None  # its batch cap, when known (sharpens the live reading)

    @classmethod
    def parse(
        cls, url: str, *, gpus: tuple[int, ...] | None = None, max_num_seqs: int | None = None
    ) -> EndpointSpec:
        from joulelens.workloads import Endpoint

        try:
            endpoint = Endpoint.parse(url)
        except InputError as exc:
            raise InputError(str(exc), field="endpoint") from exc
        root = endpoint.api_prefix.removesuffix("/v1")
        label = f"{endpoint.host_header}{root}"
        if label == ALL_ENDPOINTS:
            raise InputError(f"{ALL_ENDPOINTS!r} is reserved", field="endpoint")
        if max_num_seqs is not None and max_num_seqs < 1:
            raise InputError("--max-num-seqs must be at least 1", field="max_num_seqs")
        return cls(endpoint.server_url, label, gpus, max_num_seqs)

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"


@dataclass(frozen=True)
class WatchConfig:
    """The exporter's settings.

    ``windows_s``: rolling windows of the per-token figures. ``sample_period_s``: how often
    meters are read and servers scraped. ``record_every_s``: write each such window into
    the store as an observed run (``None``: never). ``idle_watts``: idle power per device
    name (``gpu:0``), for the static share.
    """

    endpoints: tuple[EndpointSpec, ...]
    windows_s: tuple[float, ...] = DEFAULT_WINDOWS_S
    sample_period_s: float = DEFAULT_SAMPLE_PERIOD_S
    scrape_timeout_s: float | None = None  # default: two sample periods, 1 to 5 s
    record_every_s: float | None = None
    task: str = "observed"
    idle_watts: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise InputError("watch needs at least one --endpoint URL", field="endpoint")
        labels = [e.label for e in self.endpoints]
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            raise InputError(f"endpoint given twice: {', '.join(repeated)}", field="endpoint")
        gpus = [g for e in self.endpoints for g in (e.gpus or ())]
        shared = sorted({g for g in gpus if gpus.count(g) > 1})
        if shared:
            raise InputError(
                f"GPU {', '.join(map(str, shared))} is assigned to two endpoints; each GPU's "
                "energy can belong to one server only",
                field="gpus",
            )
        if self.sample_period_s <= 0:
            raise InputError("the sample period must be positive", field="sample_period")
        if not self.windows_s:
            raise InputError("at least one window is needed", field="windows")
        for window_s in self.windows_s:
            if window_s < 2 * self.sample_period_s:
                raise InputError(
                    f"window {duration_label(window_s)} is shorter than two sample periods "
                    f"({duration_label(self.sample_period_s)})",
                    field="windows",
                )
        if self.record_every_s is not None and self.record_every_s < 2 * self.sample_period_s:
            raise InputError(
                "--record-every must be at least two sample periods", field="record_every"
            )
        for device, watts in self.idle_watts.items():
            if not math.isfinite(watts) or watts < 0:
                raise InputError(f"idle power of {device} must be >= 0 W", field="idle_watts")

    @property
    def window_labels(self) -> tuple[str, ...]:
        return tuple(duration_label(w) for w in self.windows_s)

    @property
    def timeout_s(self) -> float:
        # A busy server may answer /metrics late; a late answer delays one tick (the next
        # is skipped) rather than marking the server down.
        if self.scrape_timeout_s is not None:
            return self.scrape_timeout_s
        return min(max(2 * self.sample_period_s, 1.0), 5.0)

    @property
    def horizon_s(self) -> float:
        """How much history the rolling windows and the record window need."""
        return max(*self.windows_s, self.record_every_s or 0.0)


def build_endpoints(
    urls: Sequence[str],
    gpus: Sequence[str] = (),
    max_num_seqs: Sequence[int] = (),
) -> tuple[EndpointSpec, ...]:
    """The k-th ``--gpus`` and ``--max-num-seqs`` belong to the k-th ``--endpoint``."""
    if len(gpus) > len(urls):
        raise InputError(
            f"{len(gpus)} --gpus for {len(urls)} --endpoint: give one --gpus per endpoint, "
            "in the same order",
            field="gpus",
        )
    if len(max_num_seqs) > len(urls):
        raise InputError(
            f"{len(max_num_seqs)} --max-num-seqs for {len(urls)} --endpoint", field="max_num_seqs"
        )
    specs = []
    for k, url in enumerate(urls):
        specs.append(
            EndpointSpec.parse(
                url,
                gpus=parse_gpus(gpus[k]) if k < len(gpus) else None,
                max_num_seqs=max_num_seqs[k] if k < len(max_num_seqs) else None,
            )
        )
    return tuple(specs)


def parse_idle_watts(items: Sequence[str]) -> dict[str, float]:
    """``["gpu:0=62", "gpu:1=60.5"]`` -> {"gpu:0": 62.0, "gpu:1": 60.5}."""
    out: dict[str, float] = {}
    for item in items:
        device, sep, value = item.rpartition("=")
        try:
            watts = float(value)
        except ValueError:
            watts = math.nan
        if not sep or not device or not math.isfinite(watts):
            raise InputError(
                f"--idle-watts takes DEVICE=WATTS like gpu:0=62; got {item!r}", field="idle_watts"
            )
        out[device.strip()] = watts
    return out
