"""Positions by grid cell, for "which vessels were in this area" (migration 0009).

A cell is a tenth of a degree square (``aiswatch_cell(lat, lon)`` in SQL,
:func:`cell` here, the same arithmetic). The partitions of complete days
(every one that ends before today) get an index on (cell, time), built once
by :func:`index_complete_days`: the service runs it every hour
(:func:`keep_indexed`), ``aiswatch maintain`` runs it by hand. The area
question (:func:`storage.vessels.vessels_in`) then asks for the cells its
bounding box covers, and reads those instead of the whole day; on today's
partition, not indexed yet, the same condition is a filter. Native
partitioning only (on TimescaleDB the area question scans the time range, as
it did before).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import UTC, date, datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from storage.partitions import span_of

log = logging.getLogger(__name__)

_LOCK_ID: Final = 0x616973_0009
#: A bounding box over more cells than this is asked for by time alone (the answer is large anyway).
MAX_CELLS: Final = 2000
#: How often the service indexes the days that became complete.
EVERY_S: Final = 3600.0


def cell(lat: float, lon: float) -> int:
    """The cell of a position, as ``aiswatch_cell`` computes it."""
    return (math.floor(lat * 10) + 900) * 3601 + (math.floor(lon * 10) + 1800)


def cells_of(west: float, south: float, east: float, north: float) -> list[int] | None:
    """Every cell a bounding box touches (degrees), or None past :data:`MAX_CELLS`."""
    rows = range(math.floor(south * 10), math.floor(north * 10) + 1)
    columns = range(math.floor(west * 10), math.floor(east * 10) + 1)
    if len(rows) * len(columns) > MAX_CELLS:
        return None
    return [(r + 900) * 3601 + (c + 1800) for r in rows for c in columns]


async def index_complete_days(conn: psycopg.AsyncConnection[Any], today: date) -> list[str]:
    """Index by cell every partition of ``positions`` that ends on or before
    ``today`` and has no valid such index yet (an interrupted build leaves an
    invalid one: it is dropped and built again). ``conn`` must be in
    autocommit (the builds are concurrent: writing goes on meanwhile). One
    instance at a time; another finds the lock taken and returns. The names
    of the partitions indexed."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_ID,))
    if not (await cur.fetchone() or (False,))[0]:
        return []
    try:
        rows = await (
            await conn.execute(
                """SELECT c.relname, x.indisvalid FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                   JOIN pg_class p ON p.oid = i.inhparent AND p.relname = 'positions'
                   LEFT JOIN pg_class ic ON ic.relname = c.relname || '_cell'
                   LEFT JOIN pg_index x ON x.indexrelid = ic.oid"""
            )
        ).fetchall()
        made = []
        for name, valid in sorted(rows):
            span = span_of(name)
            if span is None or span[1] > today or valid:
                continue
            index = sql.Identifier(f"{name}_cell")
            try:
                if valid is False:  # an interrupted build's
                    await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(index))
                await conn.execute(
                    sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} (aiswatch_cell(lat, lon), ts)").format(
                        index, sql.Identifier(name)
                    )
                )
            except psycopg.errors.DataError as exc:  # this partition's data; the others go on
                log.warning("database: %s not indexed by area: %s", name, str(exc).strip().splitlines()[0])
                continue
            made.append(name)
        if made:
            log.info(
                "database: indexed %d complete partition(s) by area (%s to %s)", len(made), made[0], made[-1]
            )
        return made
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


async def keep_indexed(url: str, stop: asyncio.Event, *, every_s: float = EVERY_S) -> None:
    """The service's task: :func:`index_complete_days` now and every
    ``every_s`` until ``stop``; a failure is logged and tried again next time.
    ``stop`` cancels a build under way (the first run after an upgrade indexes
    every past day, which can take long): the service's shutdown never waits
    for it, and the next run builds that index again."""
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, application_name="aiswatch-areas"
            ) as conn:
                work = asyncio.ensure_future(index_complete_days(conn, datetime.now(UTC).date()))
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not work.done():
                    work.cancel()  # psycopg cancels the statement on the server
                    with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                        await work
                    return
                work.result()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning(
                "database: indexing complete days by area failed (%s); again in %.0f s", reason, every_s
            )
        try:
            async with asyncio.timeout(every_s):
                await stop.wait()
        except TimeoutError:
            continue
