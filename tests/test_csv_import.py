"""CSV archives (MarineCadastre, DMA aisdk, Kystverket) into real PostgreSQL:
the three real samples counted line by line, not-available values as NULL,
statics in the identity history, plain/gzip/zip, bad rows with their line
number, and a replay that stores nothing twice."""

from __future__ import annotations

import csv
import gzip
import itertools
import zipfile
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point

from aiswatch.archive import import_paths
from aiswatch.config import Settings
from ingest.csvfeeds import CsvDecoder, CsvFormat, detect_format
from ingest.pipeline import IngestStats
from storage.database import Database

SAMPLES = {
    "dma": "dma_aisdk_20220917_10k_rows.csv",
    "kystverket": "kystverket_vestland_20220901_10k_rows.csv",
    "marinecadastre": "noaa_marinecadastre_20230101_aisdb.csv",
}


async def rows(db: Database, query: str, *args: Any) -> list[tuple[Any, ...]]:
    async with db.pool.connection() as conn:
        return await (await conn.execute(query, args or None)).fetchall()


def ledger(stats: IngestStats) -> tuple[int, int, int, int, dict[str, int], dict[str, int]]:
    return (
        stats.lines, stats.stored, stats.already_stored, stats.duplicate, dict(stats.filtered),
        dict(stats.malformed),
    )  # fmt: skip


async def test_the_dma_sample_loads_line_by_line(settings: Settings, db: Database, shared_data: Path) -> None:
    path = shared_data / "csv" / SAMPLES["dma"]
    with path.open() as handle:
        table = list(csv.DictReader(handle))
    vessels = [r for r in table if r["Type of mobile"] in ("Class A", "Class B")]
    distinct = {tuple(r.values())[1:] for r in vessels}  # the pandas index aside
    (stats,) = await import_paths(settings, [str(path)], db)
    assert stats.pending == 0
    assert len(table) == 10_001
    # 10,002 lines: the header, 470 base station and AtoN rows, 65 repeated rows
    assert ledger(stats) == (
        10_002, len(distinct), 0, len(vessels) - len(distinct),
        {"header": 1, "type_not_stored": len(table) - len(vessels)}, {},
    )  # fmt: skip
    assert stats.duplicate == 65
    assert stats.messages_by_type == {1: 7_992, 18: 1_539, 4: 408, 21: 62}
    ((stored, no_lat, no_heading),) = await rows(
        db, "SELECT count(*), count(*) FILTER (WHERE lat IS NULL), count(*) FILTER (WHERE heading IS NULL)"
        " FROM positions"
    )  # fmt: skip
    assert stored == len(distinct)
    assert no_lat == len({tuple(r.values())[1:] for r in vessels if r["Latitude"] == "91.0"})
    assert no_heading == len({tuple(r.values())[1:] for r in vessels if r["Heading"] in ("", "511.0")})
    identity = await rows(
        db,
        "SELECT imo, callsign, shipname, ship_type, draught, destination, eta, to_bow, to_starboard"
        " FROM vessel_static WHERE mmsi = 219805000",
    )
    assert [(*tuple(identity[0][:6]), identity[0][6].isoformat(), *identity[0][7:])] == [
        (
            9722405,
            "OWPW2",
            "TERNFJORD",
            80,
            pytest.approx(8.6),
            "NO SLG",
            "2022-09-18T06:00:00+00:00",
            120,
            18,
        )
    ]
    (counters,) = await rows(
        db, "SELECT sum(lines) FROM source_counters WHERE source = %s", "file:" + SAMPLES["dma"]
    )
    assert counters == (10_002,)


async def test_kystverket_and_marinecadastre_samples_load_and_a_replay_stores_nothing_twice(
    settings: Settings, db: Database, shared_data: Path
) -> None:
    paths = [str(shared_data / "csv" / SAMPLES[k]) for k in ("kystverket", "marinecadastre")]
    norway, noaa = await import_paths(settings, paths, db)
    assert ledger(norway) == (10_002, 10_001, 0, 0, {"header": 1}, {})
    assert norway.messages_by_type == {1: 8_532, 3: 1_469}
    assert ledger(noaa) == (1_001, 1_000, 0, 0, {"header": 1}, {})
    assert noaa.messages_by_type == {1: 954, 18: 46}
    # Kystverket carries the IMO only: one identity per ship (5 ships)
    assert await rows(
        db, "SELECT mmsi, imo FROM vessel_static WHERE imo IN (9596791, 7716490, 9436161, 9432646, 9413444)"
        " ORDER BY mmsi"
    ) == [(257706000, 9436161), (257725000, 9596791), (257733000, 9413444), (257736000, 9432646),
          (257744000, 7716490)]  # fmt: skip
    assert await rows(
        db, "SELECT imo, shipname, callsign, ship_type FROM vessels WHERE mmsi = 636021061"
    ) == [(9307839, "MSC NAISHA III", "5LCB4", 70)]
    # MarineCadastre's heading 511 and empty IMO are not available: NULL
    assert await rows(db, "SELECT count(*) FROM positions WHERE heading IS NULL AND ts < '2023-01-12'") == [
        (426,)
    ]
    before = await rows(db, "SELECT count(*), (SELECT count(*) FROM vessel_static) FROM positions")
    norway, noaa = await import_paths(settings, paths, db)
    assert ledger(norway) == (10_002, 0, 10_001, 0, {"header": 1}, {})
    assert ledger(noaa) == (1_001, 0, 1_000, 0, {"header": 1}, {})
    assert await rows(db, "SELECT count(*), (SELECT count(*) FROM vessel_static) FROM positions") == before


async def test_gzip_and_zip_archives_load_like_the_plain_file(
    settings: Settings, db: Database, shared_data: Path, tmp_path: Path
) -> None:
    body = (shared_data / "csv" / SAMPLES["marinecadastre"]).read_bytes()
    (tmp_path / "noaa.csv.gz").write_bytes(gzip.compress(body))
    with zipfile.ZipFile(tmp_path / "AIS_2023_01_11.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("AIS_2023_01_11.csv", body)
    packed, zipped = await import_paths(
        settings, [str(tmp_path / "noaa.csv.gz"), str(tmp_path / "AIS_2023_01_11.zip")], db
    )
    assert packed.source == "file:noaa.csv.gz"
    assert zipped.source == "file:AIS_2023_01_11.zip/AIS_2023_01_11.csv"
    assert ledger(packed) == (1_001, 1_000, 0, 0, {"header": 1}, {})
    assert ledger(zipped) == (1_001, 0, 1_000, 0, {"header": 1}, {})


async def test_bad_rows_are_counted_with_reason_and_line_and_the_rest_loads(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,VesselName,IMO,CallSign,VesselType,Status,Length,Width,"
        "Draft,Cargo,TransceiverClass\n"
        "273456780,2024-03-12T06:00:00,42.25,130.30,0.1,360.0,511,LADY R,IMO9161003,UBCT7,70,5,,,6.1,,A\n"
        "273456780,yesterday,42.25,130.30,0.1,360.0,511,LADY R,,,70,5,,,,,A\n"
        "abc,2024-03-12T06:00:00,42.25,130.30,0.1,360.0,511,,,,,,,,,,A\n"
        "273456780,2024-03-12T06:01:00,42.25,130.30\n"
        "273456780,2024-03-12T06:02:00,north,130.30,0.1,360.0,511,LADY R,,,70,5,,,,,A\n"
        "\n"
        "273456780,2024-03-12T06:03:00,91,181,102.3,360,511,LADY R,,,70,5,,,,,A\n"
    )
    (stats,) = await import_paths(settings, [str(path)], db)
    assert ledger(stats) == (
        8,
        2,
        0,
        0,
        {"header": 1, "blank": 1},
        {"timestamp": 1, "mmsi": 1, "fields": 1, "number": 1},
    )
    assert stats.examples["timestamp"] == [(3, "'yesterday' is not a time")]
    assert stats.examples["fields"][0][0] == 5
    assert stats.examples["number"] == [(6, "lat: 'north' is not a number")]
    assert await rows(db, "SELECT lat, lon, speed, course, heading FROM positions ORDER BY ts") == [
        (42.25, 130.30, pytest.approx(0.1), None, None),
        (None, None, None, None, None),
    ]
    assert await rows(db, "SELECT imo, shipname, callsign, draught FROM vessels") == [
        (9161003, "LADY R", "UBCT7", pytest.approx(6.1))
    ]


def test_the_format_is_told_from_the_header_or_given() -> None:
    assert detect_format(",# Timestamp,Type of mobile,MMSI,Latitude,Longitude,Navigational status") == "dma"
    assert detect_format(";mmsi;imo_nr;length;date_time_utc;lon;lat;sog") == CsvFormat.kystverket
    assert detect_format("MMSI,BaseDateTime,LAT,LON,SOG") == CsvFormat.marinecadastre
    assert detect_format("!AIVDM,1,1,,A,13u?etPv2;0n:dDPwUM1U1Cb069D,0*24") is None
    decoder = CsvDecoder("x")
    decoder.feed([b"time,ship,where"], 1.7e9)
    assert decoder.stats.malformed == {"header": 1}
    given = CsvDecoder("y", CsvFormat.kystverket)
    given.feed([b"MMSI,BaseDateTime,LAT,LON"], 1.7e9)
    assert given.stats.examples["header"][0][1].startswith("no column date_time_utc, lat, lon, mmsi")


async def test_questions_on_the_real_kystverket_day_match_the_file(
    settings: Settings, db: Database, shared_data: Path
) -> None:
    """Real data: a day off Vestland (Kystverket). Each ship's track is its
    rows; a silence over the cut (3 min here) cuts it; the vessels in a box are those with a
    row inside."""
    from datetime import UTC, datetime, timedelta

    from shapely.geometry import box

    from storage.tracks import Fix, Gap, TrackQuery, track
    from storage.vessels import find_vessel, vessels_in

    path = shared_data / "csv" / SAMPLES["kystverket"]
    await import_paths(settings, [str(path)], db)
    with path.open() as handle:
        table = list(csv.DictReader(handle, delimiter=";"))

    def when(row: dict[str, str]) -> datetime:
        return datetime.fromisoformat(row["date_time_utc"]).replace(tzinfo=UTC)

    day = datetime(2022, 9, 1, tzinfo=UTC)
    cuts = 0
    async with db.pool.connection() as conn:
        for mmsi in {r["mmsi"] for r in table}:
            rows = sorted((r for r in table if r["mmsi"] == mmsi), key=when)
            vessel = await find_vessel(conn, mmsi)
            query = TrackQuery(vessel.mmsis, day, day + timedelta(days=2), gap_h=0.05)  # cut at 3 min
            items = [i async for i in track(conn, query)]
            fixes = [i for i in items if isinstance(i, Fix)]
            assert [(f.ts, f.lat, f.lon) for f in fixes] == [
                (when(r), float(r["lat"]), float(r["lon"])) for r in rows
            ]
            silences = [
                (a, b) for a, b in itertools.pairwise(rows) if when(b) - when(a) > timedelta(minutes=3)
            ]
            cuts += len(silences)
            assert [(g.before.ts, g.after.ts, g.dark) for g in items if isinstance(g, Gap)] == [
                (when(a), when(b), False) for a, b in silences
            ]
        area = box(5.2, 60.3, 5.35, 60.45)  # around Bergen's harbour
        found = await vessels_in(conn, area, day, day + timedelta(days=1))
        await conn.rollback()
    inside = [r for r in table if area.contains(Point(float(r["lon"]), float(r["lat"])))]
    assert {(p.mmsi, p.fixes) for p in found} == {
        (int(m), sum(r["mmsi"] == m for r in inside)) for m in {r["mmsi"] for r in inside}
    }
    assert found and cuts > 10  # the box holds some of them; the tracks were cut
