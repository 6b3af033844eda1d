"""Derive aiswatch/data/coastline.geojson (the map's land) from Natural Earth.

Natural Earth (naturalearthdata.com) is public domain. The shapes come from
a package, not the web: Debian's ``r-cran-rnaturalearthdata`` carries
Natural Earth's 1:50m admin 0 countries (``countries50``) in R's lazy-load
database; the ``rdata`` package (PyPI) reads R's serialization without R.
The polygons are clipped to the region (lon 124-139 E, lat 36-48 N, around
the Sea of Japan's north-west coast: Rajin, Vostochny, Dunai), simplified to
about 100 m, rounded to 4 decimals and written as a FeatureCollection of
Polygons (WGS 84).

rdata pulls in xarray and pandas, which aiswatch does not need, so run this
in a throwaway environment::

    python3 -m venv /tmp/ne && /tmp/ne/bin/pip install rdata shapely
    /tmp/ne/bin/python scripts/make_coastline.py          # apt-get downloads the .deb
    /tmp/ne/bin/python scripts/make_coastline.py --deb r-cran-rnaturalearthdata_0.1.0-2_all.deb
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import rdata
from shapely.geometry import Polygon, box, mapping
from shapely.ops import unary_union

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "aiswatch" / "data" / "coastline.geojson"
REGION = box(124.0, 36.0, 139.0, 48.0)
SIMPLIFY_DEG = 0.001
PACKAGE = "r-cran-rnaturalearthdata"
LAZY_DB = "usr/lib/R/site-library/rnaturalearthdata/data/Rdata"
#: R's lazy-load databases compress with xz ('Z'): raw LZMA2, preset 9e.
R_XZ = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


def unpack(deb: Path | None, into: Path) -> Path:
    if deb is None:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=into, check=True)  # noqa: S603, S607 - fixed commands
        deb = next(into.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into / "x")], check=True)  # noqa: S603, S607 - fixed commands
    return into / "x" / LAZY_DB


def load(database: Path, name: str) -> Any:
    """One object of an R lazy-load database (``.rdx`` index, ``.rdb`` blobs)."""
    index = rdata.conversion.convert(
        rdata.parser.parse_data(gzip.decompress(database.with_suffix(".rdx").read_bytes()))
    )
    start, length = (int(v) for v in index["variables"][name])
    blob = database.with_suffix(".rdb").read_bytes()[start : start + length]
    if blob[4:5] != b"Z":
        raise ValueError(f"{name}: compression {blob[4:5]!r}, expected xz ('Z')")
    data = lzma.decompress(blob[5:], format=lzma.FORMAT_RAW, filters=R_XZ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS": it is one
        return rdata.conversion.convert(rdata.parser.parse_data(data))


def rounded(polygon: Polygon) -> dict[str, Any]:
    doc = mapping(polygon)
    rings = [[[round(x, 4), round(y, 4)] for x, y in ring] for ring in doc["coordinates"]]
    return {"type": "Polygon", "coordinates": rings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help=f"the {PACKAGE} .deb (else: apt-get download)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        countries = load(unpack(args.deb and args.deb.resolve(), Path(tmp)), "countries50")
    names = list(countries.data["name"])
    features = []
    for name, country in zip(names, countries.polygons, strict=True):
        rings = [(p.coords, bool(p.hole[0])) for p in country.Polygons]
        shells = [Polygon(coords) for coords, hole in rings if not hole]
        holes = [Polygon(coords) for coords, hole in rings if hole]
        land = unary_union(shells).difference(unary_union(holes)) if holes else unary_union(shells)
        land = land.intersection(REGION).simplify(SIMPLIFY_DEG, preserve_topology=True)
        for part in getattr(land, "geoms", [land]):
            if part.geom_type == "Polygon" and not part.is_empty and part.area > 1e-5:
                features.append({"type": "Feature", "geometry": rounded(part),
                                 "properties": {"name": str(name), "kind": "land"}})  # fmt: skip
    doc = {
        "type": "FeatureCollection",
        "name": "coastline (land) around the Sea of Japan's north-west coast",
        "source": "Natural Earth 1:50m admin 0 countries (public domain), via Debian's"
        " r-cran-rnaturalearthdata; made by scripts/make_coastline.py",
        "features": features,
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(features)} polygons, {OUT.stat().st_size:,} bytes")  # noqa: T201


if __name__ == "__main__":
    main()
