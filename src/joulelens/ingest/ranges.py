"""What an imported number may be: finite, of the right JSON type, inside its physical range.

Input documents are validated strictly (``"0.5"`` or ``true`` is not a number, NaN and
Infinity are not measurements) against ranges wide enough for any real hardware and narrow
enough to catch a unit slip or a corrupted file: a GPU does not draw 5 kW, a token does not
cost a kilojoule. A value outside fails the import with an :class:`InputError` naming the
file, the row and the field; nothing is written.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

# Strict JSON types and finite numbers for every input document model.
STRICT_INPUT = ConfigDict(strict=True, allow_inf_nan=False)

JoulesPerToken = Annotated[float, Field(gt=0, le=1_000)]
JoulesPerRequest = Annotated[float, Field(gt=0, le=1e8)]
JoulesPerImage = Annotated[float, Field(gt=0, le=1e8)]
JoulesPerVideo = Annotated[float, Field(gt=0, le=1e10)]
Watts = Annotated[float, Field(gt=0, le=1e6)]
MAX_WATTS_PER_GPU = 5_000.0  # the largest accelerators draw ~1.5 kW
PerSecond = Annotated[float, Field(gt=0, le=1e8)]
Milliseconds = Annotated[float, Field(ge=0, le=1e8)]  # up to ~28 hours
Seconds = Annotated[float, Field(ge=0, le=1e7)]
PositiveSeconds = Annotated[float, Field(gt=0, le=1e7)]
BatchSize = Annotated[float, Field(ge=0, le=1e6)]
Tokens = Annotated[float, Field(ge=0, le=1e7)]
GpuCount = Annotated[int, Field(ge=1, le=4096)]
Degree = Annotated[int, Field(ge=1, le=4096)]
BatchCap = Annotated[int, Field(ge=1, le=1_000_000)]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
Steps = Annotated[int, Field(ge=1, le=100_000)]
Pixels = Annotated[int, Field(ge=1, le=100_000)]
Frames = Annotated[int, Field(ge=1, le=1_000_000)]
Fps = Annotated[int, Field(ge=1, le=10_000)]
ParamsBillions = Annotated[float, Field(gt=0, le=100_000)]
Fraction = Annotated[float, Field(ge=0, le=1.5)]  # vLLM's usage "perc" is 0..1
UnixTime = Annotated[float, Field(ge=0, le=1e11)]
AnyFiniteJoules = Annotated[float, Field(ge=-1e15, le=1e15)]  # a counter's own reading

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _safe_name(value: str) -> str:
    if not _SAFE_NAME.match(value) or value in (".", ".."):
        raise ValueError(
            f"{value!r} is not a plain name (letters, digits, '.', '_', '+', '-'); "
            "a name is used as a file name and may not leave the source tree"
        )
    return value


SafeName = Annotated[str, AfterValidator(_safe_name)]  # task ids, used in file names
