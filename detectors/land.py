"""Far inland: positions no ship can have, from a coarse land mask.

``data/inland.npz`` marks the 0.1-degree cells that are land, with land all
around them (about 10 km or more from the sea); ``scripts/make_inland_mask.py``
builds it from the global-land-mask package (MIT), from NOAA's GLOBE data
(public domain). Coastal water, rivers and ports are never inland, so a ship
in a canal or a port is not ignored; only the gross errors are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

MASK = Path(__file__).with_name("data") / "inland.npz"


class InlandMask:
    def __init__(self, path: Path = MASK) -> None:
        with np.load(path) as data:
            rows, cols = (int(n) for n in data["shape"])
            cells = np.unpackbits(data["inland"], axis=1, count=cols)
            self._cells: npt.NDArray[np.bool_] = cells.astype(np.bool_)
        self._rows, self._cols = rows, cols

    def far_inland(self, lat: float, lon: float) -> bool:
        row = min(self._rows - 1, max(0, int((lat + 90.0) * self._rows / 180.0)))
        col = min(self._cols - 1, max(0, int((lon + 180.0) * self._cols / 360.0)))
        return bool(self._cells[row, col])
