"""Build detectors/data/inland.npz: which 0.1-degree cells are far inland.

Run once by a maintainer (``pip install global-land-mask``, ~1 GB of RAM for a
minute); the result ships with aiswatch. Source: the global-land-mask package
(MIT licence, Todd Karin), itself from NOAA's GLOBE 1 km elevation data
(public domain). A cell is *inland* when every 1 km pixel in it and in its
eight neighbours is land, so a position in an inland cell is roughly 10 km or
more from the sea.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from global_land_mask import globe

CELL = 12  # 1 km pixels (1/120 degree) per 0.1-degree cell

if __name__ == "__main__":
    land = ~globe._mask  # the package stores the ocean mask, (21600, 43200)
    lat = globe._lat
    rows, cols = land.shape[0] // CELL, land.shape[1] // CELL
    cells = land[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL).all(axis=(1, 3))
    padded = np.pad(cells, 1, mode="edge")
    eroded = np.ones_like(cells)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            eroded &= padded[dy : dy + rows, dx : dx + cols]
    if lat[0] > lat[-1]:  # store with row 0 at the south
        eroded = eroded[::-1]
    out = Path(__file__).resolve().parents[1] / "detectors" / "data" / "inland.npz"
    np.savez_compressed(out, inland=np.packbits(eroded, axis=1), shape=np.array(eroded.shape))
    print(f"{out}: {eroded.shape}, {eroded.mean():.1%} of cells inland, lat {lat[0]}..{lat[-1]}")  # noqa: T201
