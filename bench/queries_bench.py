"""Benchmark: the history questions at growing table sizes.

Builds a synthetic history in a fresh database: the project's SYNTHETIC
scenario (aiswatch/scenario.py, through the real ingest with the detectors:
the watched ships, their port calls and dark gaps) plus ``--vessels`` other
vessels over ``--days`` days, generated here as Position records (random
voyages across the region, 50 of them lingering in Vostochny's zone at every
size) and
written in time order with binary COPY into the partitions, until the table holds
``--positions`` rows. 100 of the synthetic vessels are added to the
watchlist matches as identified. Then, ``--repeat`` times each, it measures
p50 and p95 of:

* one vessel's 7-day track (found by MMSI, every fix read to the end, as the API asks it);
* 30 days of port calls at one port (storage.events.find_events);
* the vessels inside Vostochny's zone over one day (storage.vessels.vessels_in);
* the last positions of the 100 watched ships (storage.vessels.last_positions);
* the same 7-day track through the HTTP API (``aiswatch api`` on a free port, httpx, GeoJSON),
  against the same track rendered as GeoJSON directly, and ``/health`` (the
  HTTP round trip's floor: no token, ``SELECT 1``) beside it.

and the storage bytes per million positions (table and indexes). The
reporting rate follows from the sizes: ``vessels x days x 86,400 /
positions`` seconds between stored fixes (at 1M rows, 1,000 vessels over 60
days: one fix every 86 minutes, a sparse receiver's catch, not a vessel's
own rate). Usage: ``bench/queries [--positions N] [--database-url URL]``;
results go to stdout and to bench/results/queries-<N>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

from aiswatch.areas import parse_area
from aiswatch.config import Settings
from aiswatch.exports import TrackFormat, render
from aiswatch.history import track_query, track_title
from aiswatch.scenario import SCENARIO_START, write_scenario
from aiswatch.service import ingest_paths, new_detection, open_database
from storage.admin import create_database, drop_database
from storage.areas import index_complete_days
from storage.database import Database
from storage.events import find_events
from storage.tracks import TrackQuery, track
from storage.vessels import last_positions, vessels_in
from storage.writer import POSITION_COLUMNS, POSITION_FIELDS

REPO = Path(__file__).resolve().parents[1]
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
START = SCENARIO_START - timedelta(days=30)
VOSTOCHNY = (133.06, 42.745)
#: Vessels that stay in Vostochny's zone, at every size: the area question's
#: answer keeps its size while the table grows (passing traffic grows with it).
LINGERING = 50


def synthetic_rows(vessels: int, days: int, positions: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """The rows in time order, as a feed or an archive brings them (a
    generator: 20 million are never in memory). Every vessel reports once per
    step; a lingering one stays near Vostochny's berths."""
    rng = np.random.default_rng(seed)
    steps = max(2, positions // vessels)
    step_s = days * 86_400 / steps
    mmsis = np.arange(vessels) + 200_000_000
    lingering = np.arange(vessels) < LINGERING
    lon = np.where(lingering, VOSTOCHNY[0], rng.uniform(128, 135, vessels))
    lat = np.where(lingering, VOSTOCHNY[1], rng.uniform(40, 45, vessels))
    course = rng.uniform(0, 360, vessels)
    speed = np.where(lingering, 0.1, 10.0)
    offsets = rng.uniform(0, step_s, vessels)
    for i in range(steps):
        course = (course + rng.normal(0, 15, vessels)) % 360
        miles = np.where(lingering, 0.0, speed * step_s / 3600)
        lat = np.clip(lat + miles / 60 * np.cos(np.radians(course)), 39.0, 45.5)
        lon = np.clip(lon + miles / 60 * np.sin(np.radians(course)) / np.cos(np.radians(lat)), 127, 136)
        here_lon = np.where(lingering, VOSTOCHNY[0] + rng.normal(0, 0.01, vessels), lon)
        here_lat = np.where(lingering, VOSTOCHNY[1] + rng.normal(0, 0.01, vessels), lat)
        base = START + timedelta(seconds=i * step_s)
        for mmsi, x, y, v, c, off in zip(
            mmsis.tolist(), here_lon.tolist(), here_lat.tolist(), speed.tolist(), course.tolist(),
            offsets.tolist(), strict=True,
        ):  # fmt: skip
            yield (base + timedelta(seconds=off), mmsi, 1, y, x, v, c, None, 0, None, True, None, "bench", i)


async def fill(db: Database, rows: Iterator[tuple[Any, ...]], days: int) -> None:
    async with db.pool.connection() as conn:
        await db.partitions.ensure(conn, {(START + timedelta(days=d)).date() for d in range(days + 2)})
        async with conn.transaction(), conn.cursor() as cur:
            async with cur.copy(f"COPY positions ({POSITION_FIELDS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(POSITION_COLUMNS[:-1])
                for row in rows:
                    await copy.write_row(row)
            await cur.execute(
                "INSERT INTO watchlist_matches (entry, mmsi, level, reasons)"
                " SELECT 'BENCH ' || m, m, 'identified', ARRAY['bench'] FROM generate_series(%s, %s) m",
                (200_000_001, 200_000_100),
            )
        await conn.commit()
        await conn.set_autocommit(True)
        await conn.execute("VACUUM ANALYZE positions")  # what autovacuum does after a load
        await conn.set_autocommit(False)


async def timed(repeat: int, question: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await question()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


async def measure(url: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(database_url=url, data_dir=data_dir)
    settings.storage.timescaledb = "on" if args.timescaledb else "off"
    scenario = data_dir / "scenario.nmea"
    write_scenario(scenario)
    async with open_database(settings) as db:
        await ingest_paths(settings, [str(scenario)], db, detection=new_detection(settings))
        began = time.perf_counter()
        await fill(db, synthetic_rows(args.vessels, args.days, args.positions), args.days)
        fill_s = time.perf_counter() - began
        count, size = await table_size(db)
        # what the service does every hour: complete days indexed by area (storage/areas.py)
        began = time.perf_counter()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await index_complete_days(conn, datetime.now(UTC).date())
        index_s = time.perf_counter() - began
        _, size_indexed = await table_size(db)
        week = TrackQuery((200_000_042,), START + timedelta(days=20), START + timedelta(days=27))
        _, zone = parse_area("Vostochny")
        day = START + timedelta(days=30)

        async def read_track() -> int:  # the API's question, asked directly: vessel, range, fixes
            async with db.pool.connection() as conn:
                _, query = await track_query(conn, str(week.mmsis[0]), week.since, week.until, tolerance_m=0)
                n = sum([1 async for _ in track(conn, query)])
                await conn.rollback()
                return n

        async def geojson_track() -> int:  # the same, answered as the API answers it: GeoJSON text
            async with db.pool.connection() as conn:
                vessel, since, until = str(week.mmsis[0]), week.since, week.until
                found, query = await track_query(conn, vessel, since, until, tolerance_m=0)
                pieces = render(track(conn, query), TrackFormat.geojson, track_title(found, query))
                text = "".join([piece async for piece in pieces])
                await conn.rollback()
                return len(text)

        async def port_calls() -> Any:
            async with db.pool.connection() as conn:
                return await find_events(conn, kinds=["port_call"], port="Vostochny", since=START,
                                         until=START + timedelta(days=60))  # fmt: skip

        async def in_zone() -> Any:
            async with db.pool.connection() as conn:
                return await vessels_in(conn, zone, day, day + timedelta(days=1))

        async def watched() -> Any:
            async with db.pool.connection() as conn:
                return await last_positions(conn)

        results: dict[str, Any] = {
            "track_7d": await timed(args.repeat, read_track),
            "track_7d_geojson": await timed(args.repeat, geojson_track),
            "port_calls_30d": await timed(args.repeat, port_calls),
            "vessels_in_zone_1d": await timed(args.repeat, in_zone),
            "last_positions_100": await timed(args.repeat, watched),
        }
        results["track_7d_fixes"] = await read_track()
        results["vessels_in_zone_1d_found"] = len(await in_zone())
        results["last_positions_found"] = len(await watched())
    results["track_7d_api"] = await api_track(url, data_dir, week, args.repeat)
    if args.timescaledb:  # every chunk compressed, as the policy would once they are old enough
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            began = time.perf_counter()
            await conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('positions') c"
            )
            results["compress_s"] = round(time.perf_counter() - began, 1)
            row = await (await conn.execute("SELECT hypertable_size('positions')")).fetchone()
            results["bytes_per_million_compressed"] = round(float(row[0] if row else 0) / count * 1e6)
    results["api_over_direct_geojson_p50"] = round(
        results["track_7d_api"]["p50_ms"] / results["track_7d_geojson"]["p50_ms"], 2
    )
    return {
        "positions": count, "fill_s": round(fill_s, 1), "area_index_s": round(index_s, 1),
        "bytes_per_million": round(float(size) / count * 1e6),
        "bytes_per_million_with_area_index": round(float(size_indexed) / count * 1e6), **results,
    }  # fmt: skip


async def table_size(db: Database) -> tuple[int, int]:
    """Rows of ``positions`` and the bytes of its partitions with their indexes."""
    async with db.pool.connection() as conn:
        count, size = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM positions),"
                " (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                "  WHERE inhparent = 'positions'::regclass)"
            )
        ).fetchone() or (0, 0)
        await conn.rollback()
    return int(count), int(size)


async def api_track(url: str, data_dir: Path, week: TrackQuery, repeat: int) -> dict[str, Any]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "AISWATCH_DATABASE_URL": url, "AISWATCH_DATA_DIR": str(data_dir)}
    token = subprocess.run(  # noqa: ASYNC221 - once, before measuring
        [sys.executable, "-m", "aiswatch", "api", "token", "create", "bench"], env=env, capture_output=True,
        text=True, check=True,
    ).stdout.strip()  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "aiswatch", "api", "--port", str(port)], env=env)  # noqa: ASYNC220
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(100):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            params: dict[str, str | int] = {
                "since": week.since.isoformat(),
                "until": week.until.isoformat(),
                "tolerance_m": 0,
            }

            async def ask() -> None:
                answer = await client.get(f"/api/v1/vessels/{week.mmsis[0]}/track", params=params, timeout=60)
                answer.raise_for_status()

            async def health() -> None:  # the floor: an HTTP round trip and SELECT 1, no token
                (await client.get("/health")).raise_for_status()

            return {**await timed(repeat, ask), "health": await timed(repeat, health)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--vessels", type=int, default=1000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=LOCAL_URL)
    parser.add_argument(
        "--timescaledb", action="store_true",
        help="a hypertable (the server must preload TimescaleDB); also reports the size compressed",
    )  # fmt: skip
    args = parser.parse_args()
    name = f"aiswatch_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(args.database_url, name)
    try:
        with tempfile.TemporaryDirectory(prefix="aiswatch-bench-") as tmp:
            result = asyncio.run(measure(url, Path(tmp), args))
    finally:
        drop_database(args.database_url, name)
    result = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores,"
        f" Python {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        **result,
    }
    print(json.dumps(result, indent=2))
    suffix = "-timescaledb" if args.timescaledb else ""
    out = REPO / "bench" / "results" / f"queries-{args.positions}{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
