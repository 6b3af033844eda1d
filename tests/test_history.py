"""History questions on the synthetic scenario (real PostgreSQL, the real
detectors' events), checked against answers worked out from the scenario's
own records: LADY R's voyages and dark leg, its track cut at the gap, who was
in Vostochny, where the watched ships were last; and the CLI reading
without changing anything."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from shapely.geometry import box

from aiswatch.areas import parse_area
from aiswatch.history import EPOCH
from aiswatch.times import parse_time
from detectors.geo import distance_nm
from ingest.records import Position
from storage.tracks import Fix, Gap, TrackQuery, track
from storage.vessels import QueryError, VesselNotFound, find_vessel, last_positions, vessels_in
from storage.voyages import find_voyages
from tests.detecting import decode, scenario_lines
from tests.history import aiswatch, scenario_url

__all__ = ["scenario_url"]

LADY_R = 273_100_001
END = datetime(2030, 1, 1, tzinfo=UTC)
DEPARTED_RAJIN = datetime(2024, 3, 12, 1, 19, 53, tzinfo=UTC)
WENT_DARK = datetime(2024, 3, 12, 4, 11, 31, tzinfo=UTC)
ARRIVED_VOSTOCHNY = datetime(2024, 3, 12, 19, 48, 43, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario_positions(tmp_path_factory: pytest.TempPathFactory) -> list[Position]:
    positions, _ = decode(scenario_lines(tmp_path_factory.mktemp("lines")))
    return sorted(positions, key=lambda p: p.ts)


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(url)
    await conn.execute("SET TIME ZONE 'UTC'")
    return conn


def path_nm(fixes: list[Position]) -> float:
    return sum(distance_nm(a.lat, a.lon, b.lat, b.lon) for a, b in itertools.pairwise(fixes))  # type: ignore[arg-type]


async def test_vessels_are_found_by_watchlist_name_mmsi_imo_and_name(scenario_url: str) -> None:
    async with await connect(scenario_url) as conn:
        assert (await find_vessel(conn, "lady r")).mmsis == (LADY_R,)
        angara = await find_vessel(conn, "ANGARA")  # both of its MMSIs, the Sierra Leone decoy not
        assert (angara.mmsis, angara.matched_by) == ((273_100_002, 273_100_012), "watchlist")
        assert (await find_vessel(conn, "IMO 9124043")).mmsis == (667_100_006,)
        assert (await find_vessel(conn, "9161003")).mmsis == (LADY_R,)
        assert (await find_vessel(conn, "215100005")).matched_by == "mmsi"
        assert (await find_vessel(conn, "maia 1")).mmsis == (273_100_004,)  # the broadcast name
        with pytest.raises(VesselNotFound, match="'NOBODY'"):
            await find_vessel(conn, "NOBODY")
        await conn.execute("INSERT INTO vessel_static (mmsi, valid_from, msg_type, shipname) VALUES"
                           " (1, now(), 5, 'TWIN'), (2, now(), 5, 'TWIN')")  # fmt: skip
        with pytest.raises(QueryError, match="2 vessels were called 'twin' \\(MMSI 1, 2\\)"):
            await find_vessel(conn, "twin")
        await conn.rollback()


async def test_lady_r_sails_rajin_to_vostochny_with_its_dark_leg(
    scenario_url: str, scenario_positions: list[Position]
) -> None:
    async with await connect(scenario_url) as conn:
        voyages = await find_voyages(conn, (LADY_R,), EPOCH, END)
    lady = [p for p in scenario_positions if p.mmsi == LADY_R]
    assert [(v.origin, v.destination, v.ongoing) for v in voyages] == [
        (None, "Rajin", False), ("Rajin", "Vostochny", False), ("Vostochny", None, True)
    ]  # fmt: skip
    leg = voyages[1]
    assert (leg.departure, leg.arrival) == (DEPARTED_RAJIN, ARRIVED_VOSTOCHNY)
    assert leg.duration_h == pytest.approx(18.48, abs=0.01)
    ((dark,),) = [leg.dark_legs]
    assert (dark.start, dark.end) == (WENT_DARK, ARRIVED_VOSTOCHNY)
    assert leg.dark_h == pytest.approx(15.62, abs=0.01)
    on_leg = [p for p in lady if DEPARTED_RAJIN <= p.ts <= ARRIVED_VOSTOCHNY]
    assert leg.fixes == len(on_leg)
    assert leg.distance_nm == pytest.approx(path_nm(on_leg), rel=1e-3)  # the dark leg as a straight line
    assert dark.distance_nm == pytest.approx(path_nm([on_leg[-2], on_leg[-1]]), abs=0.05)
    # the spoofed fix after Vostochny is not counted as sailing
    last = voyages[2]
    after = [p for p in lady if p.ts >= last.departure and not (p.lat == 41.0 and p.lon == 136.5)]
    assert last.arrival == lady[-1].ts
    assert last.distance_nm == pytest.approx(path_nm(after), rel=1e-3)


async def test_the_track_breaks_at_the_dark_gap_and_simplifies_keeping_ends_and_stops(
    scenario_url: str, scenario_positions: list[Position]
) -> None:
    lady = [p for p in scenario_positions if p.mmsi == LADY_R and not (p.lat == 41.0 and p.lon == 136.5)]
    query = TrackQuery((LADY_R,), EPOCH, END)
    async with await connect(scenario_url) as conn:
        full = [item async for item in track(conn, query)]
        simple = [item async for item in track(conn, TrackQuery((LADY_R,), EPOCH, END, tolerance_m=500))]
    fixes = [f for f in full if isinstance(f, Fix)]
    assert [(f.ts, f.lat, f.lon) for f in fixes] == [(p.ts, p.lat, p.lon) for p in lady]
    (gap,) = [g for g in full if isinstance(g, Gap)]
    assert (gap.before.ts, gap.after.ts, gap.dark) == (WENT_DARK, ARRIVED_VOSTOCHNY, True)
    assert {f.segment for f in fixes if f.ts <= WENT_DARK} == {0}
    assert {f.segment for f in fixes if f.ts >= ARRIVED_VOSTOCHNY} == {1}
    assert full.index(gap) + 1 == next(i for i, f in enumerate(full) if isinstance(f, Fix) and f.segment == 1)
    kept = [f for f in simple if isinstance(f, Fix)]
    assert len(kept) < len(fixes) / 20
    kept_times = {f.ts for f in kept}
    assert {fixes[0].ts, WENT_DARK, ARRIVED_VOSTOCHNY, fixes[-1].ts} <= kept_times  # gap ends
    moving = [(a, b) for a, b in itertools.pairwise(fixes) if (a.speed or 0) < 0.5 <= (b.speed or 0)]
    assert moving and all({a.ts, b.ts} <= kept_times for a, b in moving)  # where stops end
    assert [g for g in simple if isinstance(g, Gap)] == [gap]


async def test_vessels_in_vostochny_and_the_last_positions_of_the_watched(
    scenario_url: str, scenario_positions: list[Position]
) -> None:
    _label, area = parse_area("Vostochny")
    west, south, east, north = area.bounds
    assert area.equals(box(west, south, east, north))  # the approach zone holds the berth
    day = datetime(2024, 3, 10, tzinfo=UTC)
    inside = [
        p for p in scenario_positions
        if day <= p.ts < day + timedelta(days=5) and west <= p.lon <= east and south <= p.lat <= north
    ]  # fmt: skip
    async with await connect(scenario_url) as conn:
        found = await vessels_in(conn, area, day, day + timedelta(days=5))
        last = await last_positions(conn)
    assert {(p.mmsi, p.first, p.last, p.fixes) for p in found} == {
        (m, min(p.ts for p in inside if p.mmsi == m), max(p.ts for p in inside if p.mmsi == m),
         sum(p.mmsi == m for p in inside))
        for m in {p.mmsi for p in inside}
    }  # fmt: skip
    assert {p.mmsi for p in found} == {215_100_005, 667_100_006, 273_100_004, LADY_R}
    newest = {p.mmsi: p for p in scenario_positions}
    assert {(p.entry, p.mmsi): (p.ts, p.lat, p.lon) for p in last} == {
        (entry, m): (newest[m].ts, newest[m].lat, newest[m].lon)
        for entry, m in [("LADY R", LADY_R), ("ANGARA", 273_100_002), ("ANGARA", 273_100_012),
                         ("MARIA", 273_100_003), ("MAIA-1", 273_100_004)]
    }  # fmt: skip


async def test_read_commands_change_nothing_and_say_where_they_looked(
    scenario_url: str, tmp_path: Path
) -> None:
    snapshot = (
        "SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM pg_inherits),"
        " (SELECT count(*) FROM events), (SELECT count(*) FROM positions)"
    )
    async with await connect(scenario_url) as conn:
        before = await (await conn.execute(snapshot)).fetchone()
    voyages = aiswatch(scenario_url, "voyages", "LADY R", "--format", "jsonl", data_dir=tmp_path)
    assert voyages.returncode == 0, voyages.stderr
    legs = [json.loads(line) for line in voyages.stdout.splitlines()]
    assert [(v["origin"], v["destination"], v["dark_h"]) for v in legs] == [
        (None, "Rajin", 0), ("Rajin", "Vostochny", 15.62), ("Vostochny", None, 0)
    ]  # fmt: skip
    assert legs[1]["departure"] == "2024-03-12T01:19:53Z"
    table = aiswatch(scenario_url, "track", "LADY R", "--since", "2024-03-12", "--until", "2024-03-13",
                     data_dir=tmp_path)  # fmt: skip
    assert "times UTC" in table.stdout
    assert "-- DARK 15.6 h, 2024-03-12T04:11:31Z to 2024-03-12T19:48:43Z --" in table.stdout
    nothing = aiswatch(scenario_url, "track", "LADY R", "--since", "2023-01", "--until", "2023-02",
                       data_dir=tmp_path)  # fmt: skip
    assert nothing.returncode == 0
    assert "No positions of LADY R from 2023-01-01 to 2023-03-01 in the database at" in nothing.stderr
    assert "dbname=" in nothing.stderr and "password" not in nothing.stderr
    empty = aiswatch(scenario_url, "vessels", "--in", "Rajin", "--since", "2020", "--until", "2020",
                     data_dir=tmp_path)  # fmt: skip
    assert "No vessels in Rajin from 2020-01-01 to 2021-01-01 in the database at" in empty.stderr
    bad = aiswatch(scenario_url, "vessels", "--in", "Atlantis", data_dir=tmp_path)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "aiswatch: error: 'Atlantis' is not a port (Rajin, Vostochny, Dunai), a box west,south,east,north"
        " or a WKT/GeoJSON polygon"
    ]
    async with await connect(scenario_url) as conn:
        assert await (await conn.execute(snapshot)).fetchone() == before


def test_times_accept_iso_months_years_and_ago() -> None:
    now = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)
    assert parse_time("7d", now) == datetime(2024, 3, 13, 12, 0, tzinfo=UTC)
    assert parse_time("12h", now) == datetime(2024, 3, 20, 0, 0, tzinfo=UTC)
    assert parse_time("2024-03", now) == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_time("2024-12", now, upper=True) == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_time("2024", now, upper=True) == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_time("2024-03-14T06:00+03:00", now) == datetime(2024, 3, 14, 3, 0, tzinfo=UTC)
    assert parse_time("2024-03-14", now) == datetime(2024, 3, 14, tzinfo=UTC)
    for bad in ("2024-13", "yesterday", "7y", "'; DROP TABLE positions;--"):
        with pytest.raises(ValueError, match=r"month|not a time"):
            parse_time(bad, now)


async def test_angara_across_its_change_of_mmsi_with_open_dark_gaps(scenario_url: str) -> None:
    """ANGARA's old MMSI ends in a dark gap still open (it went silent and a
    new MMSI took over): the track reads past it, and the voyage's dark leg
    ends where the new MMSI is first heard."""
    async with await connect(scenario_url) as conn:
        angara = await find_vessel(conn, "ANGARA")
        items = [item async for item in track(conn, TrackQuery(angara.mmsis, EPOCH, END))]
        voyages = await find_voyages(conn, angara.mmsis, EPOCH, END)
        (first_new,) = await (
            await conn.execute("SELECT min(ts) FROM positions WHERE mmsi = 273100012")
        ).fetchone() or (None,)
    gaps = [g for g in items if isinstance(g, Gap)]
    assert [(round(g.hours, 1), g.dark) for g in gaps] == [(30.0, True), (1.0, True)]
    assert gaps[1].after.mmsi == 273_100_012 and gaps[1].after.ts == first_new
    ((origin, destination, legs),) = [(v.origin, v.destination, v.dark_legs) for v in voyages if v.origin]
    assert (origin, destination) == ("Dunai", "Dunai")
    assert [leg.end for leg in legs][1] == first_new
    dark_s = sum((leg.end - leg.start).total_seconds() for leg in legs if leg.end is not None)
    assert voyages[1].dark_h == pytest.approx(dark_s / 3600, abs=0.01)
