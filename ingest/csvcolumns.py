"""A CSV chunk's cells read a column at a time (NumPy). Pure.

:class:`~ingest.csvfeeds.CsvDecoder` reads the rows of a chunk here first: each
column of numbers becomes one array (its "not available" cells NaN), with a
mask of the cells that read as :func:`ingest.csvfeeds` reads one cell, so the
common row costs a few array operations instead of a dozen Python calls. A
cell these functions cannot vouch for (a word where a number goes, an
infinity where an integer goes) marks its row for the row-at-a-time reader,
which says what is wrong with it: the two give the same records, the tests
hold them to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
T = TypeVar("T")

#: Cells that mean "not available" (as ``ingest.csvfeeds`` reads them), lower case, stripped.
NOT_AVAILABLE: Final = frozenset({"", "unknown", "unknown value", "undefined", "nan", "none", "null"})


def _cell(value: str) -> tuple[float, bool]:
    """One cell: its number (NaN when not available), and whether it reads."""
    try:
        number = float(value)
    except ValueError:
        return math.nan, value.strip().lower() in NOT_AVAILABLE
    return number, True


def numbers(cells: Sequence[str]) -> tuple[Floats, Mask]:
    """A column's numbers (NaN: not available, or NaN in the file) and where
    they read; empty cells are the common "not available" and stay fast."""
    text = np.array(cells, dtype=str)
    try:
        if "\x00" in "".join(cells):  # NumPy's text drops trailing NULs, which float() refuses
            raise ValueError("a NUL character")
        return np.where(text == "", "nan", text).astype(np.float64), np.ones(len(cells), np.bool_)
    except ValueError:  # a word somewhere: cell by cell
        read = [_cell(c) for c in cells]
        return np.array([n for n, _ in read], np.float64), np.array([ok for _, ok in read], np.bool_)


def integers(cells: Sequence[str]) -> tuple[Floats, Mask]:
    """As :func:`numbers`, truncated toward zero as ``int()`` does; an
    infinity does not read (it is no integer)."""
    values, ok = numbers(cells)
    return np.trunc(values), ok & ~np.isinf(values)


def measures(cells: Sequence[str], missing: float) -> tuple[Floats, Mask]:
    """As :func:`numbers`, with ``missing`` (its "not available" code) and
    anything above it NaN."""
    values, ok = numbers(cells)
    with np.errstate(invalid="ignore"):
        gone = (np.abs(values - missing) < 1e-9) | (values >= missing)
    return np.where(gone, np.nan, values), ok


def mapped(cells: Sequence[str], lookup: Callable[[str], T]) -> list[T]:
    """``lookup`` of each cell, called once per distinct cell (words: classes, statuses)."""
    seen: dict[str, T] = {}
    out = []
    for cell in cells:
        if cell in seen:
            out.append(seen[cell])
        else:
            out.append(value := lookup(cell))
            seen[cell] = value
    return out
