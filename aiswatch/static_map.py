"""A static copy of the map page for one vessel and range, readable from
disk with no server (``aiswatch demo`` writes one for the scenario).

The page's own files and Leaflet are copied beside it; ``data.js`` holds the
answers the page would ask the API for, keyed by the same request paths, so
the page's script runs unchanged. Times UTC.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import xstatic.pkg.leaflet

from aiswatch.config import Settings
from aiswatch.exports import TrackFormat, render
from aiswatch.history import track, track_query, track_title
from aiswatch.history_views import last_position_json
from aiswatch.map import COASTLINE, STATIC, zones_geojson
from aiswatch.views import event_json
from storage.database import Database
from storage.events import find_events
from storage.vessels import last_positions


async def write_static_map(
    db: Database, settings: Settings, out: Path, vessel: str, since: str, until: str
) -> Path:
    """Write the page for ``vessel`` from ``since`` to ``until`` (ISO dates) into ``out``."""
    start, end = (
        datetime.fromisoformat(since + "T00:00+00:00"),
        datetime.fromisoformat(until + "T00:00+00:00"),
    )
    data: dict[str, Any] = {"/api/v1/zones": zones_geojson(settings.detectors.zones)}
    async with db.pool.connection() as conn:
        data["/api/v1/watched/last-positions"] = {
            "times": "UTC", "items": [last_position_json(p) for p in await last_positions(conn)]
        }  # fmt: skip
        found, query = await track_query(conn, vessel, start, end)
        body = "".join(
            [
                piece
                async for piece in render(track(conn, query), TrackFormat.geojson, track_title(found, query))
            ]
        )
        rows = await find_events(conn, vessel=vessel, since=start, until=end, limit=500)
        await conn.rollback()
    track_path = f"/api/v1/vessels/{quote(vessel, safe='')}/track?" + urlencode(
        {"since": since, "until": until, "format": "geojson"}
    )
    events_path = "/api/v1/events?" + urlencode(
        {"since": since, "until": until, "vessel": vessel, "limit": 500}
    )
    data[track_path] = json.loads(body)
    data[events_path] = {"times": "UTC", "items": [event_json(e, i, r) for e, i, r in rows]}
    return await asyncio.to_thread(_write, out, data, {"vessel": vessel, "since": since, "until": until})


def _write(out: Path, data: dict[str, Any], defaults: dict[str, str]) -> Path:
    data["coastline"] = json.loads(COASTLINE.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(xstatic.pkg.leaflet.BASE_DIR, out / "leaflet", dirs_exist_ok=True)
    for name in ("map.js", "map.css"):
        shutil.copyfile(STATIC / name, out / name)
    (out / "data.js").write_text(
        f"window.AISWATCH_DATA = {json.dumps(data)};\nwindow.AISWATCH_DEFAULTS = {json.dumps(defaults)};\n",
        encoding="utf-8",
    )
    page = (STATIC / "map.html").read_text(encoding="utf-8")
    page = page.replace("/static/leaflet/", "leaflet/").replace("/static/map/", "")
    page = page.replace('<script src="map.js">', '<script src="data.js"></script>\n<script src="map.js">')
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
