"""The detectors on real data: they fire where the data says they should and
nowhere else (no jumps, gaps or zone events invented on real tracks)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zlib import crc32

from detectors.zones import load_zones
from ingest.records import Position
from tests.detecting import decode, mmsi_watchlist, replay


def box(west: float, east: float, south: float, north: float) -> dict[str, object]:
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


# Bergen harbour (Vågen, Bontelabo, Dokken), drawn from the map of the city, not from the data.
BERGEN = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"port": "Bergen", "zone": "berth"},
            "geometry": box(5.29, 5.335, 60.385, 60.41),
        },
        {
            "type": "Feature",
            "properties": {"port": "Bergen", "zone": "approach"},
            "geometry": box(5.25, 5.34, 60.38, 60.42),
        },
    ],
}


def kystverket(path: Path) -> list[Position]:
    """Kystverket's CSV rows as positions (its columns: mmsi, date_time_utc, lon, lat, sog, cog, ...)."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            ts = datetime.fromisoformat(row["date_time_utc"]).replace(tzinfo=UTC)
            heading = int(row["true_heading"])
            out.append(
                Position(
                    ts, int(row["mmsi"]), int(row["message_nr"]), float(row["lat"]), float(row["lon"]),
                    float(row["sog"]), float(row["cog"]), None if heading == 511 else heading,
                    int(row["nav_status"]), None, None, None, "kystverket",
                    crc32(repr(sorted(row.items())).encode()),
                )
            )  # fmt: skip
    return out


def test_kystverket_moored_ships_real_silences_and_no_invented_events(
    shared_data: Path, tmp_path: Path
) -> None:
    positions = kystverket(shared_data / "csv/kystverket_vestland_20220901_10k_rows.csv")
    mmsis = {p.mmsi for p in positions}
    zones_file = tmp_path / "bergen.geojson"
    zones_file.write_text(json.dumps(BERGEN))
    run = replay(positions, watchlist=mmsi_watchlist(mmsis), zones=load_zones(zones_file), batch=1000)
    events = run.events().values()
    found = sorted((e.mmsi, e.kind, e.state, e.port) for e in events)
    assert found == [
        # at the quay in Bergen all day (status moored): first seen there, a call still open at midnight
        (257706000, "appeared_in_port", "closed", "Bergen"),
        (257706000, "port_call", "open", "Bergen"),
        (257733000, "appeared_in_port", "closed", "Bergen"),
        (257733000, "port_call", "open", "Bergen"),
        # under way off Vestland, last heard at 06:21: silent for the rest of the day
        (257744000, "dark_gap", "open", None),
    ]
    (gap,) = [e for e in events if e.kind == "dark_gap"]
    assert gap.start == datetime(2022, 9, 1, 6, 21, 56, tzinfo=UTC)
    # within 100 nm of the watched port (Bergen, here): the shorter under-way threshold
    assert gap.details["last_state"] == "under way" and gap.details["threshold_h"] == 1.0
    # the moored ship outside Bergen (257736000) and the transit (257725000) make no event at all
    assert not [e for e in events if e.mmsi in (257736000, 257725000)]
    assert all(w.track.counts["position_implausible"] == 0 for w in run.engine.watched.values())


def test_real_captures_with_every_ship_watched_invent_nothing(shared_data: Path) -> None:
    """Danish (Gatehouse) and worldwide (tag-blocked) captures, every MMSI watched:
    no jumps, gaps or port events; identity changes only where a report really changed."""
    for name in ("dma-aislib/stream_example.txt", "aisdb/test_data_20211101.nm4"):
        positions, statics = decode((shared_data / name).read_bytes().splitlines())
        run = replay(positions, statics, watchlist=mmsi_watchlist({p.mmsi for p in positions}), batch=2000)
        assert len(run.engine.watched) > 700
        assert run.events() == {}, name


def test_two_transmitters_sharing_one_mmsi_are_implausible_positions(shared_data: Path) -> None:
    """In the AISHub sample, MMSI 201006210 is heard both off Xiamen and off Dalian,
    880 nm apart, seconds apart: every such jump is flagged, ordinary ships are not."""
    positions, statics = decode((shared_data / "aishub-gpsd/ais-nmea-sample.log").read_bytes().splitlines())
    shared, ordinary = 201006210, 258130000  # the other: a Norwegian ship heard 90 times
    assert {p.mmsi for p in positions} >= {shared, ordinary}
    run = replay(positions, statics, watchlist=mmsi_watchlist([shared, ordinary]), batch=5000)
    kinds = Counter((e.mmsi, e.kind) for e in run.events().values())
    assert kinds[(shared, "implausible_position")] >= 2
    assert all(
        e.details["jump_nm"] > 400
        for e in run.events().values()
        if e.mmsi == shared and e.kind == "implausible_position"
    )
    assert not [k for k in kinds if k[0] == ordinary]
