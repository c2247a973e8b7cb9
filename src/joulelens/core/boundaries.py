"""Per-boundary sums of per-device energy, honest about what each sum may contain.

Rules (the run record reports these as ``total:<boundary>`` components):

* A single boundary (gpu, cpu, dram) sums its measured devices (counter or integrated) when
  every one of them has a value. If any is null and an estimate of that boundary exists, the
  estimate stands in (method ``estimated``); measured and estimated figures never mix, so a
  CPU estimate next to readable RAPL packages is not double counted.
* A combined boundary (cpu+dram, gpu+cpu, gpu+cpu+dram) is a sum only when all its parts are
  measured: an estimate or a null part makes it null, with the reason.
* The method of a sum is the weakest method among its parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from joulelens.records.schema import EnergyBoundary, EnergyComponent, EnergyMethod

_METHOD_RANK = {
    EnergyMethod.COUNTER: 0,
    EnergyMethod.INTEGRATED: 1,
    EnergyMethod.ATTRIBUTED: 2,
    EnergyMethod.ESTIMATED: 3,
}
# Combined boundaries and the single boundaries they add up, in the order totals list them.
_PARTS: dict[EnergyBoundary, tuple[EnergyBoundary, ...]] = {
    EnergyBoundary.CPU_DRAM: (EnergyBoundary.CPU, EnergyBoundary.DRAM),
    EnergyBoundary.GPU_CPU: (EnergyBoundary.GPU, EnergyBoundary.CPU),
    EnergyBoundary.GPU_CPU_DRAM: (EnergyBoundary.GPU, EnergyBoundary.CPU, EnergyBoundary.DRAM),
}
# The paper's boundary first; then what a CPU-only machine can offer.
HEADLINE_ORDER = (EnergyBoundary.GPU, EnergyBoundary.CPU_DRAM, EnergyBoundary.CPU)


def boundary_parts(boundary: EnergyBoundary) -> tuple[EnergyBoundary, ...]:
    """The single boundaries a (possibly combined) boundary adds up."""
    return _PARTS.get(boundary, (boundary,))


def is_combined(boundary: EnergyBoundary) -> bool:
    return boundary in _PARTS


def weakest_method(methods: Iterable[EnergyMethod]) -> EnergyMethod:
    """The least direct of ``methods`` (counter < integrated < attributed < estimated)."""
    return max(methods, key=_METHOD_RANK.__getitem__)


def total_name(boundary: EnergyBoundary) -> str:
    return f"total:{boundary.value}"


def _null(boundary: EnergyBoundary, method: EnergyMethod, reason: str) -> EnergyComponent:
    return EnergyComponent(
        name=total_name(boundary),
        joules=None,
        boundary=boundary,
        method=method,
        missing_reason=reason,
    )


def _summed(boundary: EnergyBoundary, parts: Sequence[EnergyComponent]) -> EnergyComponent:
    return EnergyComponent(
        name=total_name(boundary),
        joules=sum(p.joules for p in parts if p.joules is not None),
        boundary=boundary,
        method=weakest_method(p.method for p in parts),
    )


def _missing(parts: Iterable[EnergyComponent]) -> str:
    return "; ".join(f"{p.name}: {p.missing_reason}" for p in parts if p.joules is None)


def _single_total(boundary: EnergyBoundary, parts: Sequence[EnergyComponent]) -> EnergyComponent:
    measured = [p for p in parts if p.method is not EnergyMethod.ESTIMATED]
    estimated = [p for p in parts if p.method is EnergyMethod.ESTIMATED]
    if measured and all(p.joules is not None for p in measured):
        return _summed(boundary, measured)
    if estimated and all(p.joules is not None for p in estimated):
        return _summed(boundary, estimated)
    return _null(boundary, weakest_method(p.method for p in parts), _missing(parts))


def boundary_totals(components: Sequence[EnergyComponent]) -> tuple[EnergyComponent, ...]:
    """One total per boundary the components cover, then the combined boundaries they allow."""
    totals: dict[EnergyBoundary, EnergyComponent] = {}
    for boundary in EnergyBoundary:
        parts = [c for c in components if c.boundary is boundary]
        if parts:
            totals[boundary] = _single_total(boundary, parts)
    for combined, needed in _PARTS.items():
        if combined in totals or not all(b in totals for b in needed):
            continue
        parts = [totals[b] for b in needed]
        method = weakest_method(p.method for p in parts)
        if any(p.joules is None for p in parts):
            reason = "; ".join(str(p.missing_reason) for p in parts if p.joules is None)
            totals[combined] = _null(combined, method, reason)
        elif method is EnergyMethod.ESTIMATED:
            estimated = ", ".join(p.name for p in parts if p.method is EnergyMethod.ESTIMATED)
            reason = f"needs measured parts; {estimated} only estimated"
            totals[combined] = _null(combined, method, reason)
        else:
            totals[combined] = _summed(combined, parts)
    return tuple(totals.values())
