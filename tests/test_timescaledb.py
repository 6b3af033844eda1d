"""The TimescaleDB path. These tests run only when AISWATCH_TEST_TIMESCALEDB_URL
names a server with the timescaledb extension (its user may create databases):
TimescaleDB cannot be installed on the build machines, so CI skips them and
says so. Run them with, for example, the compose file in deploy/."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiswatch.config import Settings
from aiswatch.service import ingest_paths
from storage.admin import create_database, drop_database
from storage.database import Database

URL = os.environ.get("AISWATCH_TEST_TIMESCALEDB_URL")
pytestmark = [
    pytest.mark.timescaledb,
    pytest.mark.skipif(not URL, reason="no TimescaleDB here: set AISWATCH_TEST_TIMESCALEDB_URL to run these"),
]


@pytest.fixture
def ts_url() -> Iterator[str]:
    assert URL is not None
    name = f"aiswatch_ts_{uuid.uuid4().hex[:10]}"
    yield create_database(URL, name)
    drop_database(URL, name)


async def test_positions_become_a_compressed_hypertable(ts_url: str) -> None:
    async with Database(ts_url, timescaledb="on", retention_days=3650) as db:
        assert db.flavour == "timescaledb"
        async with db.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT compression_enabled FROM timescaledb_information.hypertables "
                    "WHERE hypertable_name = 'positions'"
                )
            ).fetchone()
            jobs = await (
                await conn.execute(
                    "SELECT proc_name FROM timescaledb_information.jobs "
                    "WHERE hypertable_name = 'positions' ORDER BY proc_name"
                )
            ).fetchall()
    assert row == (True,)
    assert [j for (j,) in jobs] == ["policy_compression", "policy_retention"]


async def test_ingest_and_replay_on_timescaledb(ts_url: str, shared_data: Path, tmp_path: Path) -> None:
    settings = Settings(database_url=ts_url, data_dir=tmp_path)  # type: ignore[arg-type]
    path = str(shared_data / "dma-aislib/stream_example.txt")
    async with Database(ts_url, timescaledb="on") as db:
        (first,) = await ingest_paths(settings, [path], db)
        (second,) = await ingest_paths(settings, [path], db)
        async with db.pool.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM positions")).fetchone()
    assert row is not None and row[0] == first.positions_stored > 0
    assert second.stored == 0 and second.already_stored == first.stored
