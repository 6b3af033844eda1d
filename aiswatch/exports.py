"""Tracks as text, streamed: table, JSON lines, CSV, GeoJSON, KML.

Each renderer takes the track as it comes (:class:`~storage.tracks.Fix` and
:class:`~storage.tracks.Gap` items, time order) and yields text pieces, so
the CLI writes them to standard output and the API streams them, with at
most ``LINE_POINTS`` fixes held at a time (a long segment is written as
several lines that join end to end). A gap is never a line of the track:
GeoJSON and KML give it as a feature of its own (``"kind": "gap"``, with
both ends), which the map draws dashed. Every time is UTC, with a ``Z``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from xml.sax.saxutils import escape

from storage.tracks import Fix, Gap

#: Fixes in one LineString before it is continued in the next.
LINE_POINTS: Final = 5000


class TrackFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"
    geojson = "geojson"
    kml = "kml"


MEDIA_TYPES: Final = {
    TrackFormat.table: "text/plain; charset=utf-8",
    TrackFormat.jsonl: "application/x-ndjson",
    TrackFormat.csv: "text/csv; charset=utf-8",
    TrackFormat.geojson: "application/geo+json",
    TrackFormat.kml: "application/vnd.google-earth.kml+xml",
}


def utc(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def fix_json(fix: Fix) -> dict[str, Any]:
    return {
        "ts": utc(fix.ts), "mmsi": fix.mmsi, "lat": fix.lat, "lon": fix.lon, "speed_kn": fix.speed,
        "course": fix.course, "heading": fix.heading, "status": fix.status, "segment": fix.segment,
    }  # fmt: skip


def gap_json(gap: Gap) -> dict[str, Any]:
    return {
        "kind": "gap", "dark": gap.dark, "start": utc(gap.before.ts), "end": utc(gap.after.ts),
        "hours": round(gap.hours, 3), "from": [gap.before.lon, gap.before.lat],
        "to": [gap.after.lon, gap.after.lat],
    }  # fmt: skip


async def render(items: AsyncIterator[Fix | Gap], fmt: TrackFormat, title: str) -> AsyncIterator[str]:
    """The track in ``fmt``; ``title`` names the vessel and range."""
    renderer = {
        TrackFormat.table: _table, TrackFormat.jsonl: _jsonl, TrackFormat.csv: _csv,
        TrackFormat.geojson: _geojson, TrackFormat.kml: _kml,
    }[fmt]  # fmt: skip
    async for piece in renderer(items, title):
        yield piece


async def _table(items: AsyncIterator[Fix | Gap], title: str) -> AsyncIterator[str]:
    yield f"{title} (times UTC)\n{'time (UTC)':<20} {'MMSI':>9} {'lat':>9} {'lon':>10} {'kn':>5} {'cog':>5}\n"
    async for item in items:
        if isinstance(item, Gap):
            what = "DARK" if item.dark else "silent"
            yield f"  -- {what} {item.hours:.1f} h, {utc(item.before.ts)} to {utc(item.after.ts)} --\n"
            continue
        speed = "" if item.speed is None else f"{item.speed:.1f}"
        course = "" if item.course is None else f"{item.course:.0f}"
        yield (
            f"{item.ts:%Y-%m-%d %H:%M:%S}Z {item.mmsi:>9} {item.lat:>9.5f} {item.lon:>10.5f}"
            f" {speed:>5} {course:>5}\n"
        )


async def _jsonl(items: AsyncIterator[Fix | Gap], title: str) -> AsyncIterator[str]:
    async for item in items:
        yield json.dumps(gap_json(item) if isinstance(item, Gap) else fix_json(item)) + "\n"


def _cell(value: object) -> str:
    return "" if value is None else str(value)


async def _csv(items: AsyncIterator[Fix | Gap], title: str) -> AsyncIterator[str]:
    yield "ts_utc,mmsi,lat,lon,speed_kn,course,heading,status,segment\n"
    async for item in items:
        if isinstance(item, Fix):
            yield ",".join(_cell(v) for v in (utc(item.ts), *item[1:])) + "\n"


class _Lines:
    """Fixes gathered into lines of at most LINE_POINTS, per segment."""

    def __init__(self) -> None:
        self.points: list[Fix] = []

    def add(self, fix: Fix) -> list[Fix] | None:
        """Add ``fix``; a full or ended line is returned (and continued)."""
        done = None
        if self.points and (fix.segment != self.points[-1].segment or len(self.points) >= LINE_POINTS):
            done = self.points
            self.points = [done[-1]] if fix.segment == done[-1].segment else []
        self.points.append(fix)
        return done

    def rest(self) -> list[Fix] | None:
        return self.points or None


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> str:
    return json.dumps({"type": "Feature", "geometry": geometry, "properties": properties})


def _line_feature(points: list[Fix]) -> str:
    geometry: dict[str, Any] = (
        {"type": "LineString", "coordinates": [[p.lon, p.lat] for p in points]}
        if len(points) > 1
        else {"type": "Point", "coordinates": [points[0].lon, points[0].lat]}
    )
    return _feature(
        geometry,
        {"kind": "track", "segment": points[0].segment, "start": utc(points[0].ts), "end": utc(points[-1].ts),
         "mmsi": points[0].mmsi, "times": [utc(p.ts) for p in points]},
    )  # fmt: skip


async def _geojson(items: AsyncIterator[Fix | Gap], title: str) -> AsyncIterator[str]:
    yield '{"type": "FeatureCollection", "name": ' + json.dumps(title) + ', "features": [\n'
    lines = _Lines()
    first = True

    def sep() -> str:
        nonlocal first
        out, first = ("" if first else ",\n"), False
        return out

    async for item in items:
        if isinstance(item, Gap):
            props = gap_json(item)
            coords = [props.pop("from"), props.pop("to")]
            yield sep() + _feature({"type": "LineString", "coordinates": coords}, props)
            continue
        done = lines.add(item)
        if done:
            yield sep() + _line_feature(done)
    rest = lines.rest()
    if rest:
        yield sep() + _line_feature(rest)
    yield "\n]}\n"


def _kml_line(points: list[Fix]) -> str:
    coords = " ".join(f"{p.lon},{p.lat}" for p in points)
    name = f"segment {points[0].segment}: {utc(points[0].ts)} to {utc(points[-1].ts)}"
    return (
        f"<Placemark><name>{escape(name)}</name><styleUrl>#track</styleUrl>"
        f"<LineString><tessellate>1</tessellate><coordinates>{coords}</coordinates></LineString></Placemark>\n"
    )


def _kml_gap(gap: Gap) -> Iterator[str]:
    what = "dark" if gap.dark else "silent"
    for label, fix in ((f"{what} from", gap.before), (f"{what} until", gap.after)):
        yield (
            f"<Placemark><name>{escape(f'{label} {utc(fix.ts)} ({gap.hours:.1f} h)')}</name>"
            f"<styleUrl>#gap</styleUrl><Point><coordinates>{fix.lon},{fix.lat}</coordinates></Point>"
            "</Placemark>\n"
        )


async def _kml(items: AsyncIterator[Fix | Gap], title: str) -> AsyncIterator[str]:
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<name>{escape(title)}</name>"
        '<Style id="track"><LineStyle><color>ffd07020</color><width>2</width></LineStyle></Style>'
        '<Style id="gap"><IconStyle><color>ff0000ff</color></IconStyle></Style>\n'
    )
    lines = _Lines()
    async for item in items:
        if isinstance(item, Gap):
            for piece in _kml_gap(item):
                yield piece
            continue
        done = lines.add(item)
        if done:
            yield _kml_line(done)
    rest = lines.rest()
    if rest:
        yield _kml_line(rest)
    yield "</Document></kml>\n"
