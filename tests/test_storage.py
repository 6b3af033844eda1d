"""Storage on a real PostgreSQL: schema, batched writes, replays, identity history."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from aiswatch.config import Settings
from aiswatch.service import ingest_paths
from ingest.errors import StorageError
from ingest.pipeline import IngestStats, LineDecoder
from ingest.records import StaticReport
from storage.database import Database
from storage.migrate import load_migrations
from storage.writer import RecordWriter, counter_snapshot

DMA = "dma-aislib/stream_example.txt"


async def scalar(db: Database, query: str) -> int:
    async with db.pool.connection() as conn:
        row = await (await conn.execute(query)).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return int(row[0])


def assert_accounted(stats: IngestStats) -> None:
    assert stats.pending == 0
    assert stats.lines == (
        stats.stored + stats.already_stored + stats.duplicate
        + sum(stats.filtered.values()) + sum(stats.malformed.values())
    )  # fmt: skip


async def test_migrations_are_versioned_and_idempotent(empty_database_url: str) -> None:
    async with Database(empty_database_url, timescaledb="off") as first:
        assert first.migration is not None
        shipped = [f"{m.version:04d}_{m.name}" for m in load_migrations()]
        assert first.migration.applied == shipped and shipped[:3] == [
            "0001_vessels",
            "0002_positions",
            "0003_events",
        ]
        assert first.flavour == "native"
    async with Database(empty_database_url) as second:
        assert second.migration is not None and second.migration.applied == []
        assert second.flavour == "native"
        assert await scalar(second, "SELECT count(*) FROM schema_migrations") == len(shipped)


async def test_partitions_are_made_ahead_of_today(empty_database_url: str) -> None:
    async with Database(empty_database_url, timescaledb="off", partitions_ahead_days=2) as db:
        today = datetime.now(UTC).date()
        names = {f"positions_p{today + timedelta(days=i):%Y%m%d}" for i in range(3)}
        async with db.pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT relname FROM pg_class WHERE relname LIKE 'positions_p%'")
            ).fetchall()
        assert names <= {name for (name,) in rows}


async def test_a_capture_is_stored_and_every_line_accounted(
    settings: Settings, db: Database, shared_data: Path
) -> None:
    (stats,) = await ingest_paths(settings, [str(shared_data / DMA)], db)
    assert_accounted(stats)
    assert stats.stored > 0 and stats.already_stored == 0
    assert await scalar(db, "SELECT count(*) FROM positions") == stats.positions_stored == stats.positions
    # an archive's day (older than a month) got its month's partition
    assert await scalar(db, "SELECT count(*) FROM positions_p20100601_20100701") == stats.positions
    assert await scalar(db, "SELECT count(*) FROM positions WHERE ts::date <> '2010-06-11'") == 0
    # the counters in the database say the same as the summary
    async with db.pool.connection() as conn:
        rows = await (await conn.execute("SELECT outcome, reason, lines FROM source_counters")).fetchall()
    assert Counter({(o, r): n for o, r, n in rows}) == +counter_snapshot(stats)


async def test_the_database_holds_exactly_what_the_decoder_produced(
    settings: Settings, db: Database, shared_data: Path
) -> None:
    path = shared_data / DMA
    await ingest_paths(settings, [str(path)], db)
    decoder = LineDecoder("again", dedup_window_s=settings.ingest.dedup_window_s)
    decoder.feed(path.read_bytes().splitlines(), time.time())
    decoder.close()
    positions, _ = decoder.take()
    expected = Counter((p.ts, p.mmsi, p.msg_type, p.lat, p.lon, p.heading) for p in positions)
    async with db.pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT ts, mmsi, msg_type, lat, lon, heading FROM positions")
        ).fetchall()
    assert Counter(map(tuple, rows)) == expected


async def test_replaying_a_timestamped_file_stores_nothing_twice(
    settings: Settings, db: Database, shared_data: Path
) -> None:
    path = str(shared_data / DMA)
    (first,) = await ingest_paths(settings, [path], db)
    counts = [
        await scalar(db, f"SELECT count(*) FROM {t}") for t in ("positions", "vessel_static", "vessels")
    ]
    (second,) = await ingest_paths(settings, [path], db)
    assert_accounted(second)
    assert second.stored == 0
    assert second.already_stored == first.stored
    assert second.identity_changes == 0
    assert [
        await scalar(db, f"SELECT count(*) FROM {t}") for t in ("positions", "vessel_static", "vessels")
    ] == counts


async def test_a_replay_with_new_lines_stores_only_the_new(
    settings: Settings, db: Database, shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / DMA).read_bytes().splitlines(keepends=True)
    half = tmp_path / "half.txt"
    half.write_bytes(b"".join(lines[: len(lines) // 2]))
    (part,) = await ingest_paths(settings, [str(half)], db)
    (whole,) = await ingest_paths(settings, [str(shared_data / DMA)], db)
    assert_accounted(whole)
    assert whole.already_stored == part.stored
    assert await scalar(db, "SELECT count(*) FROM positions") == whole.positions


def report(ts: datetime, **fields: object) -> StaticReport:
    base: dict[str, object] = dict.fromkeys(StaticReport._fields)
    base.update(ts=ts, mmsi=273456780, msg_type=5, sentences=2)
    base.update(fields)
    return StaticReport(**base)  # type: ignore[arg-type]


async def write_statics(db: Database, *reports: StaticReport) -> IngestStats:
    stats = IngestStats("static-test", lines=2 * len(reports), accepted=2 * len(reports))
    async with RecordWriter(db) as writer:
        await writer.put(stats, [], list(reports))
    return stats


async def test_identity_history_has_a_row_only_when_something_changed(db: Database) -> None:
    t0 = datetime(2024, 3, 12, 6, tzinfo=UTC)
    stats = await write_statics(
        db,
        report(t0, imo=9161003, shipname="LADY R", callsign="UBCD7", draught=5.1, destination="RAJIN"),
        report(t0 + timedelta(minutes=6), imo=9161003, shipname="LADY R", callsign="UBCD7", draught=5.1,
               destination="RAJIN"),
        # loaded, in a report that carries only draught and destination
        report(t0 + timedelta(hours=30), draught=7.4, destination="VOSTOCHNY"),
    )  # fmt: skip
    assert stats.identity_changes == 2
    async with db.pool.connection() as conn:
        history = await (
            await conn.execute(
                "SELECT valid_from, shipname, draught, destination FROM vessel_static ORDER BY valid_from"
            )
        ).fetchall()
        current = await (
            await conn.execute("SELECT shipname, imo, draught, destination, static_at FROM vessels")
        ).fetchall()
    assert [(h[1], h[2], h[3]) for h in history] == [("LADY R", 5.1, "RAJIN"), ("LADY R", 7.4, "VOSTOCHNY")]
    assert current == [("LADY R", 9161003, 7.4, "VOSTOCHNY", t0 + timedelta(hours=30))]


async def test_a_late_report_enters_history_without_moving_the_present(db: Database) -> None:
    t0 = datetime(2024, 4, 2, tzinfo=UTC)
    await write_statics(db, report(t0, shipname="LADY R", destination="VOSTOCHNY"))
    late = await write_statics(db, report(t0 - timedelta(days=5), shipname="LADY R", destination="RAJIN"))
    assert late.identity_changes == 1
    async with db.pool.connection() as conn:
        current = await (await conn.execute("SELECT destination, static_at FROM vessels")).fetchone()
    assert current == ("VOSTOCHNY", t0)
    replay = await write_statics(db, report(t0 - timedelta(days=5), shipname="LADY R", destination="RAJIN"))
    assert (replay.identity_changes, replay.already_stored, replay.stored) == (0, 2, 0)


async def test_a_wrong_database_url_is_one_clear_error(pg_admin_url: str) -> None:
    with pytest.raises(StorageError, match=r"cannot connect to .*127\.0\.0\.1"):
        async with Database("postgresql://nobody@127.0.0.1:1/none"):
            pass
    info = psycopg.conninfo.conninfo_to_dict(pg_admin_url)
    info["dbname"] = "no_such_database_here"
    with pytest.raises(StorageError, match="no_such_database_here"):
        async with Database(psycopg.conninfo.make_conninfo("", **info)):  # type: ignore[arg-type]
            pass


def test_partition_names_are_by_utc_day_or_span() -> None:
    from storage.partitions import partition_name

    assert partition_name(date(2010, 6, 11)) == "positions_p20100611"
    assert partition_name(date(2010, 6, 11), date(2010, 6, 12)) == "positions_p20100611"
    assert partition_name(date(2010, 6, 1), date(2010, 7, 1)) == "positions_p20100601_20100701"


async def test_decoding_in_process_and_in_a_worker_store_the_same(
    settings: Settings, db: Database, shared_data: Path, database_url: str, tmp_path: Path
) -> None:
    path = str(shared_data / "amsa-risky/ais.txt.gz")
    (worker,) = await ingest_paths(settings, [path], db)
    async with db.pool.connection() as conn:
        stored = await (
            await conn.execute("SELECT ts, mmsi, lat, lon FROM positions ORDER BY 1, 2, 3, 4")
        ).fetchall()
        await conn.execute("TRUNCATE positions, vessels, vessel_static, source_counters")
        await conn.commit()
    in_process = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"decode_workers": 0})}
    )
    (local,) = await ingest_paths(in_process, [path], db)
    async with db.pool.connection() as conn:
        again = await (
            await conn.execute("SELECT ts, mmsi, lat, lon FROM positions ORDER BY 1, 2, 3, 4")
        ).fetchall()
    assert_accounted(worker)
    assert_accounted(local)
    # Positions and the decoder's counts match exactly. (Whether a late static report that changes
    # nothing counts as stored or already stored depends on the batch it shares, which timing decides.)
    assert worker.positions_stored == local.positions_stored
    assert (worker.duplicate, worker.malformed, worker.filtered) == (
        local.duplicate,
        local.malformed,
        local.filtered,
    )
    # AMSA mixes timed and untimed lines; compare the timed ones (untimed take the clock)
    cutoff = datetime(2020, 1, 1, tzinfo=UTC)
    assert [r for r in stored if r[0] < cutoff] == [r for r in again if r[0] < cutoff]
    assert len(stored) == len(again)


async def test_positions_stored_from_the_aishub_sample_agree_with_gpsd(
    settings: Settings, db: Database, shared_data: Path
) -> None:
    """What is in the database, not just what the decoder made, agrees with
    gpsd's decode: nothing stored that gpsd did not decode, and gpsd's extra
    messages are exactly the 11 explained in test_pipeline_captures plus the
    repeats the database recognised as already stored."""
    from tests.test_pipeline_captures import gpsd_key, gpsd_positions

    no_window = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"dedup_window_s": 0})}
    )
    (stats,) = await ingest_paths(no_window, [str(shared_data / "aishub-gpsd/ais-nmea-sample.log")], db)
    async with db.pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT mmsi, msg_type, lat, lon, speed, course FROM positions")
        ).fetchall()
    stored = Counter(
        (mmsi, t, None if lat is None else round(lat, 4), None if lon is None else round(lon, 4),
         None if speed is None else round(speed, 1), None if course is None else round(course, 1))
        for mmsi, t, lat, lon, speed, course in rows
    )  # fmt: skip
    decoded = Counter(map(gpsd_key, gpsd_positions(shared_data, "ais-nmea-sample.log")))
    assert len(rows) == stats.positions_stored > 70_000
    assert not stored - decoded
    assert sum((decoded - stored).values()) == 11 + (stats.positions - stats.positions_stored)


async def test_a_writer_cancelled_as_a_batch_arrives_stops(db: Database) -> None:
    """A cancellation that comes in the same turn as a batch stops the writer.
    (With ``asyncio.wait_for`` on Python 3.11 it was swallowed, and a Ctrl-C'd
    ingest waited on the writer for ever: found by the Ctrl-C test in CI.)"""
    from storage.writer import _Pending

    writer = RecordWriter(db, max_delay_s=60)
    await writer.__aenter__()
    task = writer._task
    assert task is not None
    writer._queue.put_nowait(_Pending(IngestStats("cancel-test")))
    await asyncio.sleep(0.01)  # the writer holds a batch, waiting up to 60 s for more
    writer._queue.put_nowait(_Pending(IngestStats("cancel-test")))
    task.cancel()
    await asyncio.wait({task}, timeout=10)
    assert task.cancelled()


async def test_a_database_interrupted_while_its_pool_opens_leaves_no_worker(database_url: str) -> None:
    """Ctrl-C while the pool opens: the pool is closed on the way out. (Left
    open, a pool worker whose connect swallowed asyncio.run's final
    cancellation kept the interrupted CLI waiting for ever.)"""

    def pool_tasks() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name().startswith("aiswatch-")]

    db = Database(database_url, migrate=False)
    opening = asyncio.create_task(db.__aenter__())
    while not pool_tasks() and not opening.done():  # noqa: ASYNC110 (one loop turn at a time)
        await asyncio.sleep(0)
    assert not opening.done(), "the pool opened before it could be interrupted"
    opening.cancel()
    await asyncio.wait({opening}, timeout=10)
    assert opening.cancelled()
    assert db.pool.closed
    assert not [t for t in pool_tasks() if not t.done()]
