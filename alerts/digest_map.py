"""The digest's map picture (PNG, Pillow): the day's tracks, the port zones
and the events, over a coastline when one is given (GeoJSON in lon/lat,
e.g. the Natural Earth file aiswatch ships); no tiles from the internet.

An equirectangular projection scaled by the cosine of the middle latitude:
fine at the scale of a few hundred miles, which is what a day covers.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from alerts.digest import Digest, Track

SIZE = (960, 640)
SEA = (220, 233, 245)
LAND = (239, 233, 220)
COAST = (140, 140, 140)
#: Port zones: the approach outlined, the berth filled (tests look for these colours).
APPROACH = (255, 140, 0)
BERTH = (200, 30, 30)
TRACK_COLOURS = [
    (31, 119, 180),
    (44, 160, 44),
    (148, 103, 189),
    (23, 190, 207),
    (140, 86, 75),
    (227, 119, 194),
]
EVENT = (0, 0, 0)
GAP = (110, 110, 110)

Ring = list[tuple[float, float]]


def _rings(geometry: dict[str, Any]) -> Iterator[tuple[str, Ring]]:
    """(``"polygon"`` or ``"line"``, lon/lat points) of a GeoJSON geometry."""
    kind, coords = geometry.get("type"), geometry.get("coordinates", [])
    if kind == "Polygon":
        yield "polygon", [tuple(p[:2]) for p in coords[0]]
    elif kind == "MultiPolygon":
        for polygon in coords:
            yield "polygon", [tuple(p[:2]) for p in polygon[0]]
    elif kind == "LineString":
        yield "line", [tuple(p[:2]) for p in coords]
    elif kind == "MultiLineString":
        for line in coords:
            yield "line", [tuple(p[:2]) for p in line]


def read_features(path: Path | None) -> list[tuple[dict[str, Any], str, Ring]]:
    """(properties, kind, ring) of every feature of a GeoJSON file (none when ``path`` is None)."""
    if path is None:
        return []
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [
        (f.get("properties") or {}, kind, ring)
        for f in doc.get("features", [])
        if f.get("geometry")
        for kind, ring in _rings(f["geometry"])
    ]


class Frame:
    """Lon/lat bounds to pixels."""

    def __init__(
        self, points: Iterable[tuple[float, float]], size: tuple[int, int] = SIZE, margin: float = 0.08
    ):
        lons, lats = zip(*points, strict=True)
        west, east, south, north = min(lons), max(lons), min(lats), max(lats)
        self.k = math.cos(math.radians((south + north) / 2))
        width, height = max((east - west) * self.k, 0.05), max(north - south, 0.05)
        scale = min(size[0] / (width * (1 + 2 * margin)), size[1] / (height * (1 + 2 * margin)))
        self.scale, self.size = scale, size
        self.cx, self.cy = (west + east) / 2, (south + north) / 2

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self.size[0] / 2 + (lon - self.cx) * self.k * self.scale,
            self.size[1] / 2 - (lat - self.cy) * self.scale,
        )

    def visible(self, ring: Ring) -> bool:
        xs, ys = zip(*(self(lon, lat) for lon, lat in ring), strict=True)
        return bool(max(xs) >= 0 and min(xs) <= self.size[0] and max(ys) >= 0 and min(ys) <= self.size[1])


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType
        return ImageFont.load_default()


def draw_map(digest: Digest, zones: Path, coastline: Path | None = None) -> bytes:
    """The day's map as PNG bytes."""
    zone_features = read_features(zones)
    ports = [(p, ring) for p, kind, ring in zone_features if kind == "polygon" and p.get("zone")]
    points: list[tuple[float, float]] = [pt for _, ring in ports for pt in ring]
    points += [(lon, lat) for track in digest.tracks.values() for _, lat, lon in track]
    points += [(e.lon, e.lat) for e in digest.events if e.lat is not None and e.lon is not None]
    frame = Frame(points)
    image = Image.new("RGB", frame.size, SEA)
    draw = ImageDraw.Draw(image)
    for _, kind, ring in read_features(coastline):
        if len(ring) < 2 or not frame.visible(ring):
            continue
        xy = [frame(lon, lat) for lon, lat in ring]
        if kind == "polygon":
            draw.polygon(xy, fill=LAND, outline=COAST)
        else:
            draw.line(xy, fill=COAST, width=1)
    font = _font(13)
    for props, ring in sorted(ports, key=lambda pr: pr[0].get("zone") == "berth"):
        xy = [frame(lon, lat) for lon, lat in ring]
        if props.get("zone") == "berth":
            draw.polygon(xy, fill=BERTH, outline=BERTH)
        else:
            draw.polygon(xy, outline=APPROACH, width=3)
            x, y = min(p[0] for p in xy), min(p[1] for p in xy)
            draw.text((x, y - 16), str(props.get("port", "")), fill=(0, 0, 0), font=font)
    legend: list[tuple[str, tuple[int, int, int]]] = []
    names = {s.mmsi: s.vessel for s in digest.ships}
    for number, (mmsi, track) in enumerate(sorted(digest.tracks.items())):
        colour = TRACK_COLOURS[number % len(TRACK_COLOURS)]
        for leg in _legs(track):
            if len(leg) > 1:
                draw.line([frame(lon, lat) for _, lat, lon in leg], fill=colour, width=2)
        legend.append((f"{names.get(mmsi, mmsi)} ({mmsi})", colour))
    _events(draw, frame, digest)
    _legend(draw, font, digest, legend)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _legs(track: Track, *, gap: timedelta = timedelta(minutes=30)) -> Iterator[Track]:
    """The track cut where it was not heard for ``gap``: a dark leg is not drawn as seen."""
    leg: Track = []
    for point in track:
        if leg and point[0] - leg[-1][0] > gap:
            yield leg
            leg = []
        leg.append(point)
    if leg:
        yield leg


def _dashed(draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float]) -> None:
    length = math.dist(a, b)
    steps = max(1, int(length // 8))
    for i in range(0, steps, 2):
        p = (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
        q = (a[0] + (b[0] - a[0]) * (i + 1) / steps, a[1] + (b[1] - a[1]) * (i + 1) / steps)
        draw.line([p, q], fill=GAP, width=2)


def _events(draw: ImageDraw.ImageDraw, frame: Frame, digest: Digest) -> None:
    for e in digest.events:
        if e.lat is None or e.lon is None:
            continue
        x, y = frame(e.lon, e.lat)
        if e.kind == "dark_gap":
            end = (e.details.get("end_lon"), e.details.get("end_lat"))
            if end[0] is not None and end[1] is not None:
                _dashed(draw, (x, y), frame(end[0], end[1]))
            draw.line([(x - 5, y - 5), (x + 5, y + 5)], fill=EVENT, width=2)
            draw.line([(x - 5, y + 5), (x + 5, y - 5)], fill=EVENT, width=2)
        elif e.kind in ("port_call", "appeared_in_port"):
            draw.ellipse([x - 5, y - 5, x + 5, y + 5], outline=EVENT, width=2)
        elif e.kind == "implausible_position":
            draw.rectangle([x - 4, y - 4, x + 4, y + 4], outline=EVENT, width=2)


def _legend(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    digest: Digest,
    tracks: Sequence[tuple[str, tuple[int, int, int]]],
) -> None:
    rows = [(f"aiswatch {digest.day:%Y-%m-%d} ({digest.timezone})", (0, 0, 0))]
    rows += list(tracks)
    rows += [("o port call  x dark gap (dashed: unseen)  [] implausible", EVENT)]
    height = 18 * len(rows) + 8
    draw.rectangle([6, 6, 420, 6 + height], fill=(255, 255, 255), outline=(120, 120, 120))
    for number, (text, colour) in enumerate(rows):
        y = 10 + 18 * number
        if 0 < number <= len(tracks):
            draw.line([(12, y + 8), (32, y + 8)], fill=colour, width=3)
        draw.text((38 if 0 < number <= len(tracks) else 12, y), text, fill=(0, 0, 0), font=font)
