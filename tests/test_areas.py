"""Complete days indexed by grid cell for the area question (migration 0009,
storage/areas.py), on the SYNTHETIC scenario in real PostgreSQL: the same
vessels before and after, the index in the plan, today left alone, an
interrupted build built again."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from aiswatch.areas import parse_area
from aiswatch.config import Settings
from aiswatch.service import ingest_paths, open_database
from storage.admin import create_database, drop_database
from storage.areas import cell, cells_of, index_complete_days, keep_indexed
from storage.vessels import vessels_in
from tests.history import aiswatch

TODAY = datetime.now(UTC).date()


@pytest.fixture
def scenario_copy(pg_admin_url: str, template_db: str, tmp_path: Path) -> Iterator[str]:
    from aiswatch.scenario import write_scenario

    url = create_database(pg_admin_url, f"aiswatch_areas_{uuid.uuid4().hex[:10]}", template=template_db)
    write_scenario(tmp_path / "scenario.nmea")
    settings = Settings(database_url=url, data_dir=tmp_path)  # type: ignore[arg-type]

    async def load() -> None:
        async with open_database(settings) as db:
            await ingest_paths(settings, [str(tmp_path / "scenario.nmea")], db)

    asyncio.run(load())
    yield url
    drop_database(pg_admin_url, url.rsplit("/", 1)[-1])


def test_cells_are_computed_alike_here_and_in_the_database(database_url: str) -> None:
    rng = random.Random(9)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(500)]
    points += [(42.8, 132.9), (-0.05, -0.05), (0.0, 0.0), (90.0, 180.0), (-90.0, -180.0), (45.1, 28.7)]
    with psycopg.connect(database_url) as conn:
        theirs = [
            conn.execute("SELECT aiswatch_cell(%s, %s)", (lat, lon)).fetchone()[0]  # type: ignore[index]
            for lat, lon in points
        ]
    assert [cell(lat, lon) for lat, lon in points] == theirs
    covered = cells_of(132.83, 42.71, 132.98, 42.79)
    assert covered is not None and len(covered) == 2  # one row of cells (42.7 to 42.8), two columns
    assert cell(42.75, 132.9) in covered and cell(42.85, 132.9) not in covered
    assert cells_of(-180, -90, 180, 90) is None  # the whole world: by time alone


async def _in_area(url: str, explain: bool = False) -> tuple[object, str]:
    _, area = parse_area("Vostochny")
    since = datetime(2024, 3, 1, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        found = await vessels_in(conn, area, since, since + timedelta(days=40))
        west, south, east, north = area.bounds
        cells = cells_of(west, south, east, north)
        cur = await conn.execute(
            "EXPLAIN SELECT mmsi FROM positions WHERE ts >= %s AND ts < %s AND lat BETWEEN %s AND %s"
            " AND lon BETWEEN %s AND %s AND aiswatch_cell(lat, lon) = ANY(%s::integer[])",
            (since, since + timedelta(days=40), south, north, west, east, cells),
        )
        plan = "\n".join(row[0] for row in await cur.fetchall())
    return [(p.mmsi, p.first, p.last, p.fixes) for p in found], plan


def test_indexing_complete_days_keeps_the_answer_and_the_plan_reads_the_cells(scenario_copy: str) -> None:
    before, plan_before = asyncio.run(_in_area(scenario_copy))
    assert before and "_cell" not in plan_before

    async def index(today: date) -> list[str]:
        async with await psycopg.AsyncConnection.connect(scenario_copy, autocommit=True) as conn:
            return await index_complete_days(conn, today)

    with psycopg.connect(scenario_copy) as conn:
        partitions = {
            name for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'positions'::regclass"
            )
        }  # fmt: skip
    made = asyncio.run(index(TODAY))
    assert made and set(made) <= partitions
    assert not any(name.endswith(f"{TODAY:%Y%m%d}") for name in made)  # today is still being written
    assert asyncio.run(index(TODAY)) == []  # once is enough
    after, plan_after = asyncio.run(_in_area(scenario_copy))
    assert after == before
    assert "_cell" in plan_after  # the index answers it

    # an interrupted build leaves an invalid index: the next run builds it again
    victim = made[0]
    with psycopg.connect(scenario_copy, autocommit=True) as conn:
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (f"{victim}_cell",)
        )
    assert asyncio.run(index(TODAY)) == [victim]
    with psycopg.connect(scenario_copy) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", (f"{victim}_cell",)
        ).fetchone()
    assert valid == (True,)


def test_aiswatch_maintain_indexes_and_says_so(scenario_copy: str) -> None:
    done = aiswatch(scenario_copy, "maintain")
    assert done.returncode == 0, done.stderr
    assert "indexed" in done.stdout and "positions_p2024" in done.stdout
    again = aiswatch(scenario_copy, "maintain")
    assert again.returncode == 0 and again.stdout.strip() == "indexed 0 partition(s) by area"


def test_a_schema_from_before_the_cells_still_answers(scenario_copy: str) -> None:
    before, _ = asyncio.run(_in_area(scenario_copy))
    with psycopg.connect(scenario_copy, autocommit=True) as conn:
        conn.execute("DROP FUNCTION aiswatch_cell(double precision, double precision)")
    _, area = parse_area("Vostochny")
    since = datetime(2024, 3, 1, tzinfo=UTC)

    async def ask() -> list[tuple[object, ...]]:
        async with await psycopg.AsyncConnection.connect(scenario_copy) as conn:
            found = await vessels_in(conn, area, since, since + timedelta(days=40))
        return [(p.mmsi, p.first, p.last, p.fixes) for p in found]

    assert asyncio.run(ask()) == before


def test_positions_off_the_globe_have_no_cell_and_do_not_stop_the_index(scenario_copy: str) -> None:
    with psycopg.connect(scenario_copy, autocommit=True) as conn:
        cells = conn.execute(
            "SELECT aiswatch_cell('NaN', 2), aiswatch_cell(1, '-Infinity'), aiswatch_cell(-1e300, 1),"
            " aiswatch_cell(91, 0), aiswatch_cell(90, 180)"
        ).fetchone()
        assert cells == (None, None, None, None, cell(90, 180))
        conn.execute(  # a day of 2024 in the scenario's partitions, with nonsense a source let through
            "INSERT INTO positions (ts, mmsi, msg_type, lat, lon, payload_crc)"
            " VALUES ('2024-03-05 12:00Z', 1, 1, 'NaN', 1, 1),"
            " ('2024-03-05 12:01Z', 1, 1, -1e300, '-Infinity', 2)"
        )

    async def index() -> list[str]:
        async with await psycopg.AsyncConnection.connect(scenario_copy, autocommit=True) as conn:
            return await index_complete_days(conn, TODAY)

    made = asyncio.run(index())
    with psycopg.connect(scenario_copy) as conn:
        (holder,) = conn.execute(
            "SELECT tableoid::regclass::text FROM positions WHERE mmsi = 1 LIMIT 1"
        ).fetchone()  # type: ignore[misc]
    assert holder in made


def test_the_service_s_indexing_stops_with_the_service(scenario_copy: str) -> None:
    """A build waiting on a lock (as one over a large day takes long) is
    cancelled by the stop, and the next run builds it."""
    with psycopg.connect(scenario_copy) as blocker:
        (partition,) = blocker.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'positions'::regclass AND c.relname LIKE 'positions_p2024%' LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        blocker.execute(f"LOCK TABLE {partition} IN SHARE UPDATE EXCLUSIVE MODE")  # held: the build waits

        async def run_then_stop() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(keep_indexed(scenario_copy, stop))
            await asyncio.sleep(2)
            assert not task.done()  # waiting for the lock
            stop.set()
            await asyncio.wait_for(task, 30)  # without the cancel: for ever (the lock is held below)

        asyncio.run(run_then_stop())
        blocker.rollback()

    async def index() -> list[str]:
        async with await psycopg.AsyncConnection.connect(scenario_copy, autocommit=True) as conn:
            return await index_complete_days(conn, TODAY)

    assert partition in asyncio.run(index())
