"""Derive aiswatch/data/coastline.geojson (the map's land) from Natural Earth.

Natural Earth (naturalearthdata.com) is public domain. The data comes from a
package, not the web: the ``naturalearth_lowres`` countries (Natural Earth
1:110m admin 0) that geopandas shipped up to 0.14, read from its wheel with
pyshp; both wheels are fetched with ``pip download`` (PyPI is the only
source). No package on PyPI or in Debian was found to carry the 1:50m or
1:10m shapes in a form readable without R.

The countries are clipped to the region (lon 124-139 E, lat 36-48 N, around
the Sea of Japan's north-west coast: Rajin, Vostochny, Dunai), rounded to
4 decimals, and written as a FeatureCollection of Polygons (WGS 84).

Usage: ``.venv/bin/python scripts/make_coastline.py [--wheels DIR]``.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "aiswatch" / "data" / "coastline.geojson"
REGION = box(124.0, 36.0, 139.0, 48.0)
GEOPANDAS = "geopandas==0.14.4"
PYSHP = "pyshp>=2.3,<4"
SHAPES = "geopandas/datasets/naturalearth_lowres/naturalearth_lowres"


def wheels(directory: Path) -> tuple[Path, Path]:
    subprocess.run(  # noqa: S603 - pip, with fixed arguments
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(directory), GEOPANDAS, PYSHP],
        check=True,
    )
    return next(directory.glob("geopandas-*.whl")), next(directory.glob("pyshp-*.whl"))


def rounded(geometry: BaseGeometry) -> dict[str, object]:
    doc = mapping(geometry)

    def walk(value: object) -> object:
        if isinstance(value, tuple | list):
            if value and isinstance(value[0], float):
                return [round(float(v), 4) for v in value]
            return [walk(v) for v in value]
        return value

    return {"type": doc["type"], "coordinates": walk(doc["coordinates"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, help="a folder holding the two wheels (else: pip download)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        geopandas_wheel, pyshp_wheel = wheels(args.wheels or Path(tmp))
        sys.path.insert(0, str(pyshp_wheel))  # a wheel is a zip: importable as it is
        import shapefile  # noqa: PLC0415

        with zipfile.ZipFile(geopandas_wheel) as wheel:
            parts = {ext: io.BytesIO(wheel.read(f"{SHAPES}.{ext}")) for ext in ("shp", "shx", "dbf")}
        reader = shapefile.Reader(**parts, encoding="latin-1")  # the .cpg says UTF-8; it is not
        features = []
        for record in reader.shapeRecords():
            land = shape(record.shape.__geo_interface__).intersection(REGION)
            if land.is_empty:
                continue
            polygons = list(getattr(land, "geoms", [land]))
            for polygon in polygons:
                if polygon.geom_type != "Polygon":
                    continue
                features.append({
                    "type": "Feature", "geometry": rounded(polygon),
                    "properties": {"name": record.record["name"], "kind": "land"},
                })  # fmt: skip
    doc = {
        "type": "FeatureCollection",
        "name": "coastline (land) around the Sea of Japan's north-west coast",
        "source": "Natural Earth 1:110m admin 0 countries (public domain), via geopandas 0.14.4's"
        " naturalearth_lowres; made by scripts/make_coastline.py",
        "features": features,
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(features)} polygons, {OUT.stat().st_size:,} bytes")  # noqa: T201


if __name__ == "__main__":
    main()
