"""Tables that fit the terminal: the columns that matter most always, the rest as room allows.

Each column has a priority (0: always shown); columns join in priority order while the
table still fits the console width, so at 80 columns a table keeps its ids and key numbers
whole and names what it left out ("--wide" shows everything). Ids and numbers never wrap
or get cut; only text columns (model names, labels) wrap. A column whose value is the same
in every row moves into the caption instead of taking width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

T = TypeVar("T")
Justify = Literal["left", "right", "center"]

WIDE_HINT = "--wide"


@dataclass(frozen=True)
class Col(Generic[T]):
    """One column: header, how to render a row's cell, and how much it matters."""

    header: str
    cell: Callable[[T], str]
    priority: int = 0  # 0: always shown; larger numbers leave first when space is short
    justify: Justify = "left"
    wrap: bool = False  # text that may wrap (names); ids and numbers never do
    min_width: int | None = None  # for a wrapping column: narrowest readable width
    uniform_caption: bool = False  # same value in every row: say it once in the caption


def fit_table(
    cols: Sequence[Col[T]],
    rows: Sequence[T],
    *,
    console: Console,
    title: str | None = None,
    caption: str | None = None,
    wide: bool = False,
) -> Table:
    """The table of ``rows`` with as many columns as ``console`` is wide (all with ``wide``)."""
    cells = [[c.cell(r) for c in cols] for r in rows]
    notes: list[str] = [caption] if caption else []
    keep = list(range(len(cols)))
    if rows:
        for i, col in enumerate(cols):
            values = {row[i] for row in cells}
            if col.uniform_caption and len(values) == 1 and len(rows) > 1:
                notes.append(f"{col.header}: {next(iter(values))}")
                keep.remove(i)
    hidden: list[str] = []
    widths: dict[int, int] = {}
    if not wide:
        chosen = [i for i in keep if cols[i].priority == 0]
        widths = _wrap_widths(cols, cells, chosen, console.width) or {}
        for level in sorted({cols[i].priority for i in keep} - {0}):
            trial = sorted(chosen + [i for i in keep if cols[i].priority == level])
            fitted = _wrap_widths(cols, cells, trial, console.width, roomy=True)
            if fitted is None:
                hidden += [cols[i].header for i in keep if cols[i].priority >= level]
                break
            chosen, widths = trial, fitted
        keep = chosen
    if hidden:
        notes.append(f"not shown: {', '.join(hidden)} ({WIDE_HINT}, or --format json/csv)")
    return _table(cols, cells, keep, title, "; ".join(notes) or None, widths)


def print_table(table: Table, console: Console, *, wide: bool = False) -> None:
    """Print ``table``; with ``wide`` at its natural width even past the terminal's edge."""
    if not wide:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update(max_width=10_000), table)
    if natural.maximum <= console.width:
        console.print(table)
        return
    # print() clamps a width to the console's, so a wider table needs a wider console.
    Console(
        file=console.file,
        width=natural.maximum,
        color_system=console.color_system,  # type: ignore[arg-type]
        force_terminal=console.is_terminal,
    ).print(table)


def _table(
    cols: Sequence[Col[Any]],
    cells: list[list[str]],
    keep: list[int],
    title: str | None,
    caption: str | None,
    widths: dict[int, int],
) -> Table:
    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),  # with the one-space divider: two spaces between columns
        pad_edge=False,
        title_justify="left",
        caption_justify="left",
    )
    for i in keep:
        col = cols[i]
        table.add_column(
            Text(col.header, no_wrap=False),  # a long header wraps over its column's cells
            justify=col.justify,
            no_wrap=not col.wrap,
            width=widths.get(i),
            overflow="fold",  # squeezed past its minimum, a cell breaks, never loses text
        )
    for row in cells:
        table.add_row(*(row[i] for i in keep))
    return table


GAP = 2  # divider plus one space of padding
DEFAULT_MIN_WRAP = 8
ROOMY_WRAP = 20


def _natural(cols: Sequence[Col[Any]], cells: list[list[str]], i: int, *, full: bool) -> int:
    longest = max((len(row[i]) for row in cells), default=0)
    header = cols[i].header
    return max(longest, len(header) if full else max(len(w) for w in header.split()))


def _wrap_widths(
    cols: Sequence[Col[Any]],
    cells: list[list[str]],
    keep: list[int],
    width: int,
    *,
    roomy: bool = False,
) -> dict[int, int] | None:
    """Widths for the wrapping columns so that ``keep`` fits ``width``; None if it cannot.

    Ids and numbers keep their natural width; the wrapping columns share what is left,
    the widest giving way first, none below its ``min_width`` (with ``roomy``, used for
    optional columns, none below ``ROOMY_WRAP``: a name in three lines is worse than a
    column left to ``--wide``).
    """
    wraps = [i for i in keep if cols[i].wrap]
    fixed = {i: _natural(cols, cells, i, full=False) for i in keep if not cols[i].wrap}
    room = width - sum(fixed.values()) - GAP * (len(keep) - 1)
    natural = {i: _natural(cols, cells, i, full=True) for i in wraps}
    least = {
        i: min(
            natural[i],
            max(cols[i].min_width or DEFAULT_MIN_WRAP, ROOMY_WRAP if roomy else 0),
        )
        for i in wraps
    }
    if room < sum(least.values()):
        return None

    def total(cap: int) -> int:
        return sum(max(least[i], min(natural[i], cap)) for i in wraps)

    cap = max(natural.values(), default=0)
    while cap > 0 and total(cap) > room:
        cap -= 1
    widths = fixed | {i: max(least[i], min(natural[i], cap)) for i in wraps}
    spare = room - total(cap)
    for i in fixed:  # room left over: headers on one line where they fit
        grow = min(spare, len(cols[i].header) - widths[i])
        if grow > 0:
            widths[i] += grow
            spare -= grow
    return widths
