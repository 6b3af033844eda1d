"""The TimescaleDB path.

The fallback tests run everywhere, on the tests' own server (which has no
timescaledb extension, or has it installed but not preloaded: each test
asserts the case that applies). The rest run only when
AISWATCH_TEST_TIMESCALEDB_URL names a server with the extension preloaded
(its user may create databases): TimescaleDB cannot be installed on the build
machines, so CI skips them and says so. Run them with, for example, the
compose file in deploy/.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest

from aiswatch.config import Settings
from aiswatch.service import ingest_paths
from storage.admin import create_database, drop_database
from storage.database import Database
from storage.migrate import TimescaleUnavailable, load_migrations
from tests.test_bad_input import aiswatch

URL = os.environ.get("AISWATCH_TEST_TIMESCALEDB_URL")


def on_timescaledb(test: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a test that needs the server of AISWATCH_TEST_TIMESCALEDB_URL (skipped without it)."""
    skip = pytest.mark.skipif(not URL, reason="no TimescaleDB here: set AISWATCH_TEST_TIMESCALEDB_URL")
    return pytest.mark.timescaledb(skip(test))


def extension_state(url: str) -> str:
    """ "absent", "not preloaded" or "preloaded": the timescaledb extension on the server at ``url``."""
    with psycopg.connect(url) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        row = conn.execute("SHOW shared_preload_libraries").fetchone()
    if available is None:
        return "absent"
    return "preloaded" if row is not None and "timescaledb" in row[0] else "not preloaded"


# -- where TimescaleDB cannot be created ------------------------------------------------------


async def test_auto_falls_back_to_native_partitioning_with_one_warning(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = extension_state(empty_database_url)
    caplog.set_level(logging.INFO, logger="storage")
    db = Database(empty_database_url, timescaledb="auto")
    async with db, db.pool.connection() as conn:  # the schema is there and usable
        await conn.execute("SELECT count(*) FROM positions")
        row = await (await conn.execute("SELECT count(*) FROM schema_migrations")).fetchone()
    assert row == (len(load_migrations()),)
    said = [r for r in caplog.records if "native partitioning" in r.getMessage()]
    if state == "preloaded":
        assert db.flavour == "timescaledb" and not said
        return
    assert db.flavour == "native"
    (record,) = said
    message = record.getMessage()
    assert "\n" not in message and "using native partitioning" in message
    if state == "not preloaded":
        assert record.levelno == logging.WARNING
        assert "must be preloaded" in message and "shared_preload_libraries = 'timescaledb'" in message
    else:
        assert record.levelno == logging.INFO and "no timescaledb extension" in message


async def test_on_fails_in_one_line_where_timescaledb_cannot_be_created(empty_database_url: str) -> None:
    state = extension_state(empty_database_url)
    if state == "preloaded":
        async with Database(empty_database_url, timescaledb="on") as db:
            assert db.flavour == "timescaledb"
        return
    with pytest.raises(TimescaleUnavailable) as caught:
        async with Database(empty_database_url, timescaledb="on"):
            pass
    message = str(caught.value)
    assert "\n" not in message and message.startswith("storage.timescaledb is 'on' but")
    assert ("must be preloaded" if state == "not preloaded" else "no timescaledb extension") in message
    with psycopg.connect(empty_database_url) as conn:  # nothing half-made
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_migrate_with_timescaledb_on_is_one_line(empty_database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "aiswatch.toml"
    config.write_text(f'database_url = "{empty_database_url}"\n[storage]\ntimescaledb = "on"\n')
    result = aiswatch("migrate", "--config", str(config))
    assert "Traceback" not in result.stderr
    state = extension_state(empty_database_url)
    if state == "preloaded":
        assert result.returncode == 0, result.stderr
        return
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 1
    why = "this server has no timescaledb extension" if state == "absent" else "the timescaledb extension"
    assert line.startswith(f"aiswatch: error: storage.timescaledb is 'on' but {why}")


# -- on TimescaleDB ---------------------------------------------------------------------------


@pytest.fixture
def ts_url() -> Iterator[str]:
    assert URL is not None
    name = f"aiswatch_ts_{uuid.uuid4().hex[:10]}"
    yield create_database(URL, name)
    drop_database(URL, name)


async def query(db: Database, text: LiteralString) -> list[tuple[Any, ...]]:
    async with db.pool.connection() as conn:
        return await (await conn.execute(text)).fetchall()


async def policies(db: Database) -> dict[str, timedelta]:
    return dict(
        await query(
            db,
            "SELECT proc_name, coalesce(config ->> 'compress_after', config ->> 'drop_after')::interval"
            " FROM timescaledb_information.jobs WHERE hypertable_name = 'positions'",
        )
    )


@on_timescaledb
async def test_positions_become_a_compressed_hypertable_without_server_warnings(
    ts_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="storage")
    async with Database(ts_url, timescaledb="on", retention_days=3650) as db:
        assert db.flavour == "timescaledb"
        rows = await query(
            db,
            "SELECT compression_enabled FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'positions'",
        )
        settings = await query(
            db,
            "SELECT attname, segmentby_column_index, orderby_column_index"
            " FROM timescaledb_information.compression_settings"
            " WHERE hypertable_name = 'positions' ORDER BY attname",
        )
        assert await policies(db) == {
            "policy_compression": timedelta(days=7),
            "policy_retention": timedelta(days=3650),
        }
    assert rows == [(True,)]
    assert settings == [("mmsi", 1, None), ("payload_crc", None, 2), ("ts", None, 1)]
    assert [r.getMessage() for r in caplog.records] == []  # the server warned of payload_crc before


@on_timescaledb
async def test_a_schema_made_before_0007_gets_payload_crc_in_the_compression_order(ts_url: str) -> None:
    async with Database(ts_url, timescaledb="on") as db, db.pool.connection() as conn:
        await conn.execute("ALTER TABLE positions SET (timescaledb.compress_orderby = 'ts')")  # the old 0002
        await conn.execute("DELETE FROM schema_migrations WHERE version = 7")
        await conn.commit()
    async with Database(ts_url, timescaledb="on") as db:
        assert db.migration is not None and db.migration.applied == ["0007_positions_compression"]
        order = await query(
            db,
            "SELECT attname FROM timescaledb_information.compression_settings"
            " WHERE hypertable_name = 'positions' AND orderby_column_index IS NOT NULL"
            " ORDER BY orderby_column_index",
        )
    assert order == [("ts",), ("payload_crc",)]


@on_timescaledb
async def test_changed_settings_reach_the_existing_policies(ts_url: str) -> None:
    async with Database(ts_url, timescaledb="on", compress_after_days=7, retention_days=3650) as db:
        before = await policies(db)
    async with Database(ts_url, timescaledb="on", compress_after_days=2, retention_days=30) as db:
        changed = await policies(db)
    async with Database(ts_url, timescaledb="on", compress_after_days=2) as db:
        unset = await policies(db)
    assert before == {"policy_compression": timedelta(days=7), "policy_retention": timedelta(days=3650)}
    assert changed == {"policy_compression": timedelta(days=2), "policy_retention": timedelta(days=30)}
    assert unset == {"policy_compression": timedelta(days=2)}  # retention unset: keep everything


@on_timescaledb
async def test_ingest_and_replay_on_timescaledb(ts_url: str, shared_data: Path, tmp_path: Path) -> None:
    settings = Settings(database_url=ts_url, data_dir=tmp_path)  # type: ignore[arg-type]
    path = str(shared_data / "dma-aislib/stream_example.txt")
    async with Database(ts_url, timescaledb="on") as db:
        (first,) = await ingest_paths(settings, [path], db)
        async with db.pool.connection() as conn:  # the replay goes into compressed chunks
            await conn.execute("SELECT compress_chunk(c) FROM show_chunks('positions') c")
            await conn.commit()
        (second,) = await ingest_paths(settings, [path], db)
        async with db.pool.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM positions")).fetchone()
    assert row is not None and row[0] == first.positions_stored > 0
    assert second.stored == 0 and second.already_stored == first.stored


@on_timescaledb
def test_years_of_history_load_in_transactions_of_a_few_days(ts_url: str, tmp_path: Path) -> None:
    """One position a day over 1,200 days in one file: one chunk a day, in
    transactions of at most 32 days (all of them in one exhausted the
    server's lock table: "out of shared memory")."""
    line = b"!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*23"
    path = tmp_path / "days.nmea"
    path.write_bytes(b"".join(b"%s,%d\n" % (line, 946_688_400 + i * 86_400) for i in range(1200)))
    migrated = aiswatch(
        "migrate", env={"AISWATCH_DATABASE_URL": ts_url, "AISWATCH_STORAGE__TIMESCALEDB": "on"}
    )
    assert migrated.returncode == 0, migrated.stderr
    result = aiswatch("ingest", str(path), env={"AISWATCH_DATABASE_URL": ts_url})
    assert result.returncode == 0, result.stderr
    assert "positions stored  1,200;" in result.stdout
    with psycopg.connect(ts_url) as conn:
        chunks = conn.execute("SELECT count(*) FROM show_chunks('positions')").fetchone()
    assert chunks == (1200,)
