"""Detectors against real PostgreSQL: events and outbox in the detector leader's
transactions, replays and restarts that write nothing twice, late data that
withdraws, and real captures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiswatch.config import Settings
from aiswatch.detection import Detection
from aiswatch.service import ingest_paths, new_detection
from storage.database import Database
from storage.events import find_events, load_events, load_matches
from tests.detecting import decode, replay, scenario_lines


async def rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.pool.connection() as conn:
        return await (await conn.execute(query)).fetchall()


async def ingest(settings: Settings, db: Database, *paths: Path) -> Detection:
    detection = new_detection(settings)
    assert detection is not None
    await ingest_paths(settings, [str(p) for p in paths], db, detection=detection)
    return detection


def live(events: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        i: (e.kind, e.state, e.vessel, e.port, e.start, e.end, dict(e.details))
        for i, e in events.items()
        if e.state != "withdrawn"
    }


async def stored_events(db: Database) -> dict[str, Any]:
    async with db.pool.connection() as conn:
        return {e.id: e for e in await load_events(conn)}


async def test_ingest_stores_the_same_events_as_the_pure_engine_with_an_outbox_row_per_revision(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    lines = scenario_lines(tmp_path)
    await ingest(settings, db, tmp_path / "scenario.nmea")
    positions, statics = decode(lines)
    pure = replay(positions, statics, batch=20_000)
    assert live(await stored_events(db)) == live(pure.events())
    (revisions,) = await rows(db, "SELECT sum(revision) FROM events")
    (outbox, distinct) = (
        await rows(db, "SELECT count(*), count(DISTINCT (event_id, revision)) FROM event_outbox")
    )[0]
    assert outbox == distinct == revisions[0] > 30
    (payload_kind,) = await rows(db, "SELECT payload->>'kind' FROM event_outbox ORDER BY seq LIMIT 1")
    assert payload_kind[0] in {"zone_entry", "port_call", "dark_gap", "appeared_in_port"}


async def test_a_replay_writes_no_event_twice(settings: Settings, db: Database, tmp_path: Path) -> None:
    scenario_lines(tmp_path)
    await ingest(settings, db, tmp_path / "scenario.nmea")
    before = await rows(db, "SELECT id, revision, state FROM events ORDER BY id")
    outbox = await rows(db, "SELECT count(*) FROM event_outbox")
    again = await ingest(settings, db, tmp_path / "scenario.nmea")
    assert again.events_written == 0
    assert await rows(db, "SELECT id, revision, state FROM events ORDER BY id") == before
    assert await rows(db, "SELECT count(*) FROM event_outbox") == outbox


async def test_a_restart_in_the_middle_gives_the_events_of_one_run(
    settings: Settings, db: Database, tmp_path: Path, pg_admin_url: str
) -> None:
    lines = scenario_lines(tmp_path)
    half = len(lines) // 2
    while "g:2-" in lines[half]:  # do not split a multi-part message
        half += 1
    (tmp_path / "first.nmea").write_text("\n".join(lines[:half]) + "\n")
    (tmp_path / "second.nmea").write_text("\n".join(lines[half:]) + "\n")
    await ingest(settings, db, tmp_path / "first.nmea")
    await ingest(settings, db, tmp_path / "second.nmea")  # a new process: state rebuilt from the database
    positions, statics = decode(lines)
    one_run = replay(positions, statics, batch=20_000)
    assert live(await stored_events(db)) == live(one_run.events())


async def test_late_data_withdraws_a_gap_in_the_database(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    lines = scenario_lines(tmp_path)
    lady = "144Ldp"  # the armoured start of LADY R's (273100001) position payloads
    start = int(datetime(2024, 3, 10, 0, 20, tzinfo=UTC).timestamp())
    hole = {  # 80 minutes of her reports while under way to Rajin: longer than the 1 h threshold there
        i
        for i, line in enumerate(lines)
        if lady in line and start <= int(line.split("c:")[1][:10]) < start + 4800
    }
    assert len(hole) > 60
    (tmp_path / "holed.nmea").write_text("\n".join(x for i, x in enumerate(lines) if i not in hole) + "\n")
    (tmp_path / "late.nmea").write_text("\n".join(lines[i] for i in sorted(hole)) + "\n")
    await ingest(settings, db, tmp_path / "holed.nmea")
    async with db.pool.connection() as conn:
        gaps = [e for e, _, _ in await find_events(conn, vessel="LADY R", kinds=["dark_gap"])]
    hole_gap = [g for g in gaps if g.details["duration_h"] < 1.5]
    assert len(hole_gap) == 1 and hole_gap[0].state == "closed"
    await ingest(settings, db, tmp_path / "late.nmea")
    async with db.pool.connection() as conn:
        after = {
            e.id: e.state for e, _, _ in await find_events(conn, vessel="LADY R", include_withdrawn=True)
        }
        (state, revision), *_ = await (
            await conn.execute("SELECT state, revision FROM events WHERE id = %s", (hole_gap[0].id,))
        ).fetchall()
        outbox = await (
            await conn.execute(
                "SELECT state FROM event_outbox WHERE event_id = %s ORDER BY seq", (hole_gap[0].id,)
            )
        ).fetchall()
    assert after[hole_gap[0].id] == "withdrawn" and (state, revision) == ("withdrawn", 2)
    assert [s for (s,) in outbox] == ["closed", "withdrawn"]


async def test_real_namesakes_in_a_real_capture_are_rejected_and_never_reported(
    settings: Settings, db: Database, shared_data: Path
) -> None:
    """The AISHub sample has a real MARIA (MMSI 244650796, Dutch MID): not the watched Russian MARIA."""
    detection = await ingest(settings, db, shared_data / "aishub-gpsd/ais-nmea-sample.log")
    async with db.pool.connection() as conn:
        matches = {
            (entry, mmsi): (level, reasons) for entry, mmsi, level, reasons, _ in await load_matches(conn)
        }
        events = await find_events(conn)
    level, reasons = matches[("MARIA", 244650796)]
    assert level == "rejected" and "MID 244 is NL, not RU" in reasons[-1]
    assert events == [] and detection.events_written == 0
    assert 244650796 not in detection.engine.watched
