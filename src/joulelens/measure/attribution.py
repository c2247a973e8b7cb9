"""Per-request energy under batching: a model-based split of a measured total.

Nothing measures one request's energy when a batch of them shares the GPU, so this is
*attribution* (method ``attributed``), not measurement. The rule:

1. The window is cut into the meter's sampled intervals (every energy sample time inside
   it is an edge), each with its measured energy (differences of the cumulative series).
2. In each interval, every request gets weight for the work it visibly did there:
   * decode: each output token it streamed in the interval after its first one
     (multi-token chunks spread evenly, see :mod:`joulelens.measure.tokens`);
   * prefill: in the interval where its first token arrived, ``prefill_weight`` x its
     input tokens (1 when the input length is unknown). The first token is prefill's
     output, and prefill work grows with the prompt; a request merely queued for its first
     token does no work and gets nothing.
3. The interval's energy is split in proportion to these weights. An interval with no
   weight at all (no token streamed) passes its energy to the next interval that has
   some (the last one, at the end of the window): the work that shows up next was being
   computed. (If the whole window has no weight, which happens only with
   ``prefill_weight`` 0 and nothing but first tokens, every token weighs 1.)

So the attributed energies of all requests sum to the window's measured energy exactly
(up to float rounding), and each request's total splits into prefill + decode.
``prefill_weight`` = 1 counts an input token as much work as an output token; that is a
modelling choice (prefill is compute-bound and batched, decode memory-bound), documented
and adjustable, not a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from joulelens.core.events import RequestTrace
from joulelens.measure.series import FloatArray
from joulelens.measure.tokens import TokenTimes

DEFAULT_PREFILL_WEIGHT = 1.0


@dataclass(frozen=True, slots=True, eq=False)
class Attribution:
    """Attributed J per request (index = position in the traces), split prefill/decode."""

    start_s: float
    end_s: float
    energy_j: float  # the measured window energy that was split
    prefill_j: FloatArray
    decode_j: FloatArray
    intervals: int

    @property
    def total_j(self) -> FloatArray:
        return self.prefill_j + self.decode_j


def attribute_energy(
    traces: Sequence[RequestTrace],
    tokens: TokenTimes,
    edges_s: FloatArray,
    cumulative_j: FloatArray,
    *,
    prefill_weight: float = DEFAULT_PREFILL_WEIGHT,
) -> Attribution | str:
    """Split the energy between ``edges_s[0]`` and ``edges_s[-1]`` over ``traces``.

    ``cumulative_j[i]`` is the cumulative energy at ``edges_s[i]`` (increasing times).
    Returns the reason as a string when nothing can be attributed.
    """
    edges = np.asarray(edges_s, dtype=np.float64)
    cumulative = np.asarray(cumulative_j, dtype=np.float64)
    if edges.size < 2 or edges.shape != cumulative.shape:
        return "attribution needs a window with energy readings at both ends"
    if bool(np.any(np.diff(edges) <= 0)):
        raise ValueError("interval edges must increase")
    if prefill_weight < 0:
        raise ValueError(f"prefill_weight must not be negative, got {prefill_weight}")
    start_s, end_s = float(edges[0]), float(edges[-1])
    interval_j = np.diff(cumulative)
    m = interval_j.size

    inside = tokens.mask_in(start_s, end_s)
    interval_of = np.searchsorted(edges, tokens.times_s[inside], side="left") - 1
    request_of = tokens.request_index[inside]
    first = tokens.is_first[inside]
    input_tokens = np.array(
        [t.input_tokens if t.input_tokens is not None else 1 for t in traces], dtype=np.float64
    )
    token_weight = np.where(first, prefill_weight * input_tokens[request_of], 1.0)
    if tokens.mismatched_requests:
        token_weight = token_weight * np.where(first, 1.0, tokens.request_scale[request_of])

    if interval_of.size == 0:
        return "no output token was streamed inside the window"
    if not token_weight.sum() > 0:  # only weightless prefills (prefill_weight 0): count tokens
        token_weight = np.ones_like(token_weight)
    weight = np.bincount(interval_of, weights=token_weight, minlength=m)
    weighted = np.flatnonzero(weight > 0)
    # Energy of intervals without tokens moves to the next interval with some.
    target = weighted[np.minimum(np.searchsorted(weighted, np.arange(m)), weighted.size - 1)]
    carried_j = np.bincount(target, weights=interval_j, minlength=m)
    # Each token's fraction of its interval's weight (<= 1) times the interval's energy:
    # dividing the weights first keeps tiny prefill weights from overflowing a J/weight price.
    token_interval_weight = weight[interval_of]
    fraction = np.divide(
        token_weight,
        token_interval_weight,
        out=np.zeros_like(token_weight),
        where=token_interval_weight > 0,
    )
    share = carried_j[interval_of] * fraction
    n = len(traces)
    prefill = np.bincount(request_of[first], weights=share[first], minlength=n).astype(np.float64)
    decode = np.bincount(request_of[~first], weights=share[~first], minlength=n).astype(np.float64)
    return Attribution(
        start_s=start_s,
        end_s=end_s,
        energy_j=float(cumulative[-1] - cumulative[0]),
        prefill_j=prefill,
        decode_j=decode,
        intervals=m,
    )
