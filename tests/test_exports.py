"""Track exports: every format streams, a gap is never a line of the track,
and a long stretch is cut into lines that join end to end."""

from __future__ import annotations

import csv
import io
import itertools
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from aiswatch import exports
from aiswatch.exports import TrackFormat, render
from storage.tracks import Fix, Gap

T0 = datetime(2024, 3, 12, tzinfo=UTC)


def fixes(n: int, segment: int, start: datetime, lon0: float) -> list[Fix]:
    return [Fix(start + timedelta(minutes=i), 273100001, 42.0 + i * 1e-3, lon0 + i * 1e-3, 10.0, 45.0, 45, 0,
                segment) for i in range(n)]  # fmt: skip


def items(n: int = 12) -> list[Fix | Gap]:
    before = fixes(n, 0, T0, 130.0)
    after = fixes(n, 1, T0 + timedelta(hours=16), 133.0)
    return [*before, Gap(before[-1], after[0], dark=True), *after]


async def stream(values: list[Fix | Gap]) -> AsyncIterator[Fix | Gap]:
    for value in values:
        yield value


async def text(fmt: TrackFormat, values: list[Fix | Gap]) -> str:
    return "".join([piece async for piece in render(stream(values), fmt, "Track of TEST")])


async def test_geojson_keeps_the_gap_apart_and_cuts_long_lines_that_join(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "LINE_POINTS", 5)
    doc = json.loads(await text(TrackFormat.geojson, items()))
    tracks = [f for f in doc["features"] if f["properties"]["kind"] == "track"]
    (gap,) = [f for f in doc["features"] if f["properties"]["kind"] == "gap"]
    assert gap["properties"] | {"from": None} == {
        "kind": "gap", "dark": True, "start": "2024-03-12T00:11:00Z", "end": "2024-03-12T16:00:00Z",
        "hours": 15.817, "from": None,
    }  # fmt: skip
    assert gap["geometry"]["coordinates"] == [[130.011, 42.011], [133.0, 42.0]]
    for line in tracks:  # no track line crosses the gap
        lons = [c[0] for c in line["geometry"]["coordinates"]]
        assert max(lons) < 131 or min(lons) > 132
    segment0 = [t for t in tracks if t["properties"]["segment"] == 0]
    assert len(segment0) == 3 and all(len(t["geometry"]["coordinates"]) <= 5 for t in segment0)
    for a, b in itertools.pairwise(segment0):
        assert a["geometry"]["coordinates"][-1] == b["geometry"]["coordinates"][0]
    assert sum(len(t["properties"]["times"]) for t in tracks) == 24 + 4  # the joins repeat once


async def test_kml_csv_jsonl_and_table() -> None:
    kml = ET.fromstring(await text(TrackFormat.kml, items()))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    names = [
        p.findtext("k:name", namespaces=ns) for p in kml.iter("{http://www.opengis.net/kml/2.2}Placemark")
    ]
    assert (
        "dark from 2024-03-12T00:11:00Z (15.8 h)" in names
        and "dark until 2024-03-12T16:00:00Z (15.8 h)" in names
    )
    assert len(kml.findall(".//k:LineString", ns)) == 2
    rows = list(csv.DictReader(io.StringIO(await text(TrackFormat.csv, items()))))
    assert len(rows) == 24 and rows[0]["ts_utc"] == "2024-03-12T00:00:00Z" and rows[-1]["segment"] == "1"
    lines = [json.loads(line) for line in (await text(TrackFormat.jsonl, items())).splitlines()]
    assert [line.get("kind") for line in lines].count("gap") == 1 and len(lines) == 25
    table = await text(TrackFormat.table, items())
    assert "times UTC" in table and "-- DARK 15.8 h, 2024-03-12T00:11:00Z to 2024-03-12T16:00:00Z --" in table
