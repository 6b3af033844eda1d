"""Areas people name: a watched port's zone, a bounding box or a polygon.

* a port (``Vostochny``: the union of its zones) or one zone of it
  (``Vostochny/berth``), from the port zones GeoJSON (the detectors' file);
* a bounding box ``west,south,east,north`` in degrees (``133.0,42.7,133.1,42.8``);
* a polygon in WKT (``POLYGON((lon lat, ...))``) or as GeoJSON geometry.

An area larger than ``max_area_deg2`` square degrees is refused: the
question would read a whole ocean's traffic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from detectors.zones import DEFAULT_ZONES
from storage.vessels import QueryError

#: Largest area accepted (square degrees; 100 is about 10 x 10 degrees).
MAX_AREA_DEG2 = 100.0


def port_zones(path: Path | None = None) -> dict[str, list[tuple[str, dict[str, Any], BaseGeometry]]]:
    """Each port's zones in degrees: port name -> [(zone, properties, polygon)]."""
    doc = json.loads(Path(path or DEFAULT_ZONES).read_text(encoding="utf-8"))
    ports: dict[str, list[tuple[str, dict[str, Any], BaseGeometry]]] = {}
    for feature in doc["features"]:
        props = feature.get("properties") or {}
        if "port" in props:
            ports.setdefault(str(props["port"]), []).append(
                (str(props.get("zone", "")), props, shape(feature["geometry"]))
            )
    return ports


def parse_area(
    text: str, zones: Path | None = None, *, max_area_deg2: float = MAX_AREA_DEG2
) -> tuple[str, BaseGeometry]:
    """(label, polygon in lon/lat degrees) for ``text``; QueryError says what is accepted."""
    value = text.strip()
    port, _, zone = value.partition("/")
    for name, parts in port_zones(zones).items():
        if name.lower() == port.strip().lower():
            chosen = [g for z, _, g in parts if not zone or z.lower() == zone.strip().lower()]
            if not chosen:
                known = ", ".join(z for z, _, _ in parts)
                raise QueryError(f"port {name} has no zone {zone!r} (it has: {known})")
            return (f"{name}/{zone.strip().lower()}" if zone else name), unary_union(chosen)
    area = _geometry(value)
    if area is None:
        names = ", ".join(port_zones(zones))
        raise QueryError(
            f"{text[:60]!r} is not a port ({names}), a box west,south,east,north or a WKT/GeoJSON polygon"
        )
    if area.is_empty or not area.is_valid or area.geom_type not in ("Polygon", "MultiPolygon"):
        raise QueryError(f"{text[:60]!r}: the area must be a valid polygon")
    west, south, east, north = area.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise QueryError(f"{text[:60]!r}: longitudes must be within -180..180 and latitudes -90..90")
    if area.area > max_area_deg2:
        raise QueryError(f"the area is {area.area:.0f} square degrees; at most {max_area_deg2:.0f} allowed")
    return "area", area


def _geometry(value: str) -> BaseGeometry | None:
    parts = value.split(",")
    if len(parts) == 4:
        try:
            west, south, east, north = (float(p) for p in parts)
        except ValueError:
            pass  # perhaps a polygon
        else:
            if not (west < east and south < north):
                raise QueryError(f"{value!r}: a box is west,south,east,north, west < east, south < north")
            return box(west, south, east, north)
    try:
        if value.startswith("{"):
            return shape(json.loads(value))
        return shapely.from_wkt(value)
    except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.GEOSException):
        return None
