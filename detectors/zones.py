"""Port zones and regions from an editable GeoJSON file.

A feature with ``port`` and ``zone`` properties (``berth`` for the inner zone,
``approach`` for the outer one; other names are allowed) is a port zone; one
with a ``region`` property is a region whose presence corroborates a name
match. Polygons are loaded once, projected to a local kilometre frame and
prepared, so a point test costs a few microseconds; a bounding box around all
zones rejects the rest of the world's traffic with four comparisons.

A ship enters a zone when a fix lies inside the polygon and leaves it only
when a fix lies outside the polygon grown by ``exit_margin_km``: a ship on
the boundary does not flap in and out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from detectors.geo import KM_PER_DEGREE, LocalFrame, distance_nm
from ingest.errors import ConfigError

#: The zones shipped with aiswatch (from DOMAIN.md's boxes).
DEFAULT_ZONES = Path(__file__).with_name("data") / "ports.geojson"


@dataclass(frozen=True)
class Zone:
    port: str
    name: str
    frame: LocalFrame
    inner: BaseGeometry  # prepared, in the local frame
    outer: BaseGeometry  # grown by the exit margin, prepared
    #: Degrees: (west, south, east, north) of the outer polygon.
    bounds: tuple[float, float, float, float]

    def contains(self, lat: float, lon: float, *, inside_already: bool) -> bool:
        """Is the fix in the zone? With ``inside_already`` the exit margin counts as inside."""
        west, south, east, north = self.bounds
        if not (south <= lat <= north and west <= lon <= east):
            return False
        x, y = self.frame.xy(lat, lon)
        return bool(shapely.contains_xy(self.outer if inside_already else self.inner, x, y))


@dataclass(frozen=True)
class Port:
    name: str
    zones: tuple[Zone, ...]
    #: A representative point (degrees) of the innermost zone, for distances.
    lat: float
    lon: float

    @property
    def outermost(self) -> Zone:
        return max(self.zones, key=lambda z: z.inner.area)


@dataclass(frozen=True)
class Region:
    name: str
    frame: LocalFrame
    polygon: BaseGeometry
    #: Degrees: (west, south, east, north).
    bounds: tuple[float, float, float, float]

    def contains(self, lat: float, lon: float) -> bool:
        west, south, east, north = self.bounds
        if not (south <= lat <= north and west <= lon <= east):
            return False
        x, y = self.frame.xy(lat, lon)
        return bool(shapely.contains_xy(self.polygon, x, y))


class PortZones:
    """The watched ports and regions; see the module docs."""

    def __init__(self, ports: list[Port], regions: list[Region]) -> None:
        self.ports = tuple(ports)
        self.regions = tuple(regions)
        bounds = [z.bounds for p in ports for z in p.zones]
        self.bounds = (
            (
                min(b[0] for b in bounds),
                min(b[1] for b in bounds),
                max(b[2] for b in bounds),
                max(b[3] for b in bounds),
            )
            if bounds
            else (0.0, 0.0, -1.0, -1.0)
        )

    def near_any(self, lat: float, lon: float) -> bool:
        """Cheap pre-test: could the fix be in (or near) any port zone?"""
        west, south, east, north = self.bounds
        return south <= lat <= north and west <= lon <= east

    def in_region(self, lat: float, lon: float) -> bool:
        return self.near_any(lat, lon) or any(r.contains(lat, lon) for r in self.regions)

    def near_port(self, lat: float, lon: float, within_nm: float) -> bool:
        """Is a port within ``within_nm``? (A latitude difference alone rules most out.)"""
        return any(
            abs(lat - p.lat) * 60.0 <= within_nm and distance_nm(lat, lon, p.lat, p.lon) <= within_nm
            for p in self.ports
        )


def _local(geometry: BaseGeometry) -> tuple[LocalFrame, BaseGeometry]:
    point = geometry.representative_point()
    frame = LocalFrame(point.y, point.x)
    scale = np.array([frame.kx, KM_PER_DEGREE])
    offset = np.array([frame.lon0, frame.lat0])
    return frame, shapely.transform(geometry, lambda coords: (coords - offset) * scale)


def load_zones(path: Path = DEFAULT_ZONES, *, exit_margin_km: float = 1.0) -> PortZones:
    """Read the GeoJSON file; raise :class:`ConfigError` naming the file and feature."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        features = doc["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"port zones {path}: not a GeoJSON FeatureCollection ({exc})", setting="detectors.zones"
        ) from exc
    zones: dict[str, list[Zone]] = {}
    regions: list[Region] = []
    for number, feature in enumerate(features, 1):
        try:
            props = feature.get("properties") or {}
            geometry = shape(feature["geometry"])
            if (
                geometry.is_empty
                or not geometry.is_valid
                or geometry.geom_type not in ("Polygon", "MultiPolygon")
            ):
                raise ValueError(f"needs a valid polygon, has {geometry.geom_type}")
            frame, local = _local(geometry)
            if "region" in props:
                shapely.prepare(local)
                regions.append(Region(str(props["region"]), frame, local, geometry.bounds))
                continue
            port, name = str(props["port"]), str(props["zone"])
            outer = local.buffer(exit_margin_km)
            shapely.prepare(local)
            shapely.prepare(outer)
            margin_deg = exit_margin_km / frame.kx
            west, south, east, north = geometry.bounds
            bounds = (west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg)
            zones.setdefault(port, []).append(Zone(port, name, frame, local, outer, bounds))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"port zones {path}: feature {number}: {exc!s} (needs properties port and zone, or region)",
                setting="detectors.zones",
            ) from exc
    ports = []
    for name, port_zones in zones.items():
        inner = min(port_zones, key=lambda z: z.inner.area)
        centre = inner.inner.representative_point()
        lat = inner.frame.lat0 + centre.y / KM_PER_DEGREE
        lon = inner.frame.lon0 + centre.x / inner.frame.kx
        ports.append(Port(name, tuple(port_zones), lat, lon))
    return PortZones(ports, regions)
