"""Events are a function of what is stored (issue 11), on real PostgreSQL:
an archive loaded after newer data, the scenario in pieces ingested in any
order, a replay while a service leads, and a leader that loses its
connection. The scenario is synthetic (aiswatch/scenario.py, real port
geometry); the newer data is the real AISHub capture."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from aiswatch.config import Settings
from aiswatch.detection import Detection, engine_factory, utcnow
from aiswatch.service import ingest_paths, new_detection, new_writer
from ingest.records import Position
from storage.database import Database
from tests.detecting import decode, replay, scenario_lines
from tests.test_detection_db import ingest, live, stored_events
from tests.test_live import eventually

TABLES = (
    "positions, vessels, vessel_static, source_counters, events, event_outbox, watchlist_matches,"
    " detector_state, detector_inbox, detector_periods"
)


def today_capture(shared_data: Path, tmp_path: Path, n: int = 5000) -> Path:
    """Real AISHub lines without tag blocks: stored at the time they are read (now)."""
    raw = (shared_data / "aishub-gpsd/ais-nmea-sample.log").read_bytes().splitlines()
    path = tmp_path / "today.nmea"
    path.write_bytes(b"\n".join([line for line in raw if line.startswith(b"!")][:n]) + b"\n")
    return path


def pure_events(tmp_path: Path) -> dict[str, tuple[Any, ...]]:
    return live(replay(*decode(scenario_lines(tmp_path)), batch=20_000).events())


async def test_an_archive_ingested_after_newer_data_gives_the_events_of_an_empty_database(
    settings: Settings, db: Database, tmp_path: Path, shared_data: Path
) -> None:
    await ingest(settings, db, today_capture(shared_data, tmp_path))
    async with db.pool.connection() as conn:
        (newest,) = await (await conn.execute("SELECT max(ts) FROM positions")).fetchone() or (None,)
    assert newest is not None and newest > datetime.now(UTC) - timedelta(hours=1)
    expected = pure_events(tmp_path)
    detection = await ingest(settings, db, tmp_path / "scenario.nmea")
    assert live(await stored_events(db)) == expected
    assert len(expected) > 20 and detection.events_written >= len(expected)
    assert detection.engine.counts["rebuilds_from_window"] == 0  # nothing of the archive left out


def pieces(lines: list[str], cuts: list[float]) -> list[list[str]]:
    """``lines`` cut at fractions ``cuts``, between whole messages."""
    ends = {i + 1 for i, line in enumerate(lines) if _last_fragment(line)}
    bounds = sorted({min((e for e in ends if e >= int(c * len(lines))), default=len(lines)) for c in cuts})
    starts = [0, *bounds]
    return [lines[a:b] for a, b in zip(starts, [*bounds, len(lines)], strict=True) if b > a]


def _last_fragment(line: str) -> bool:
    fields = line[line.index("!") :].split(",")
    return fields[1] == fields[2]


async def _reset(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"TRUNCATE {TABLES} CASCADE")


@settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # each example is a few ingests: no slow shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cuts=st.lists(st.floats(0.02, 0.98), min_size=1, max_size=4), seed=st.integers(0, 2**31))
def test_the_scenario_in_pieces_ingested_in_any_order_gives_the_same_events(
    settings: Settings, database_url: str, tmp_path: Path, cuts: list[float], seed: int
) -> None:
    """Each piece a separate ``aiswatch ingest``, the pieces in a random
    order, some of them twice."""
    rng = random.Random(seed)
    count = len(pieces(scenario_lines(tmp_path), cuts))
    order = [*range(count), *rng.sample(range(count), k=rng.randint(0, count))]
    rng.shuffle(order)
    ingest_in_order(settings, database_url, tmp_path, cuts, order)


def test_an_older_piece_moves_an_mmsi_change_earlier_and_withdraws_the_later_one(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """Found by the test above: ANGARA's new MMSI is first heard in the
    second piece of three; the third piece, loaded first, had made it an MMSI
    change at a later time, which must be withdrawn."""
    ingest_in_order(settings, database_url, tmp_path, [0.541, 0.85], [0, 2, 1, 0])


def ingest_in_order(
    settings: Settings, database_url: str, tmp_path: Path, cuts: list[float], order: list[int]
) -> None:
    expected = pure_events(tmp_path)
    parts = pieces(scenario_lines(tmp_path), cuts)
    paths = []
    for n, index in enumerate(order):
        paths.append(tmp_path / f"piece-{n}.nmea")
        paths[-1].write_text("\n".join(parts[index]) + "\n")

    async def run() -> dict[str, tuple[Any, ...]]:
        await _reset(database_url)
        async with Database(database_url, timescaledb="off") as db:
            for path in paths:
                await ingest(settings, db, path)
            return live(await stored_events(db))

    assert asyncio.run(run()) == expected


async def test_a_replay_while_a_service_leads_is_detected_by_the_leader(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    """``aiswatch ingest`` beside a running service: the service's leader
    detects the file, judged by the clock of the file's own period."""
    leader = Detection(engine_factory(settings), clock=utcnow, poll_s=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(leader.run(db.url, stop))
    try:
        await eventually(lambda: leader.leader, 10)
        expected = pure_events(tmp_path)
        replaying = new_detection(settings)
        assert replaying is not None
        await ingest_paths(settings, [str(tmp_path / "scenario.nmea")], db, detection=replaying)
        assert replaying.deferred and replaying.events_written == 0
        await eventually(lambda: _inbox_empty(db), 30)

        async def detected() -> bool:  # what waits for the hold is taken a moment later
            return live(await stored_events(db)) == expected

        await eventually(detected, 10)
    finally:
        stop.set()
        await task


async def test_a_leader_that_loses_its_connection_is_replaced_and_stands_by(
    settings: Settings, db: Database
) -> None:
    make = engine_factory(settings)
    one, two = (Detection(make, clock=utcnow, poll_s=0.2, standby_poll_s=0.2) for _ in range(2))
    one.application_name, two.application_name = "aiswatch-detectors-one", "aiswatch-detectors-two"
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.run(db.url, stop)) for d in (one, two)]
    try:
        await eventually(lambda: one.leader or two.leader, 10)
        first, second = (one, two) if one.leader else (two, one)
        assert not second.leader
        async with db.pool.connection() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (first.application_name,),
            )
        await eventually(lambda: second.leader and not first.leader, 15)
        await asyncio.sleep(1.0)
        assert second.leader and not first.leader  # the first came back as a standby
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _inbox_empty(db: Database) -> bool:
    async with db.pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM detector_inbox")).fetchone()
        return row is not None and row[0] == 0


async def test_a_rebuild_pending_when_the_leader_stops_is_done_by_its_successor(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    """Found in review: a late record's rebuild waits (debounced) in memory;
    it is committed with the inbox rows it consumed, so a successor does it."""
    from ingest.pipeline import IngestStats
    from storage.leader import connect
    from storage.writer import POSITION_FIELDS

    await ingest(settings, db, _scenario(tmp_path))
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute(
                f"SELECT {POSITION_FIELDS} FROM positions WHERE mmsi = (SELECT mmsi FROM events"
                " WHERE vessel = 'LADY R' LIMIT 1) ORDER BY ts LIMIT 1 OFFSET 10"
            )
        ).fetchone()
    assert row is not None
    late = Position(*row)._replace(ts=row[0] + timedelta(seconds=1), payload_crc=row[-1] ^ 1)
    first = Detection(engine_factory(settings), clock=utcnow)
    async with await connect(db.url, "first") as conn:
        first._leading(True)
        await first._start(conn)
        async with new_writer(settings, db, first) as writer:
            await writer.put(IngestStats("late"), [late], [])
        await first.cycle(conn)  # noticed as late: its rebuild waits for the settle time
    async with db.pool.connection() as conn:
        pending = await (await conn.execute("SELECT mmsi, since FROM detector_stale")).fetchall()
    assert pending == [(late.mmsi, late.ts)]
    second = Detection(engine_factory(settings), clock=utcnow)
    async with await connect(db.url, "second") as conn:
        await second._start(conn)  # the first stopped (its memory is gone): the successor rebuilds
        async with db.pool.connection() as other:
            left = await (await other.execute("SELECT count(*) FROM detector_stale")).fetchone()
    assert second.engine.counts["rebuilds"] >= 1 and left == (0,)


def _scenario(tmp_path: Path) -> Path:
    scenario_lines(tmp_path)
    return tmp_path / "scenario.nmea"
