"""Time partitioning of ``positions``: native daily partitions, or TimescaleDB
policies.

Native: a partition per UTC day, named ``positions_pYYYYMMDD``, created before
any row of that day is written (the writer asks for the days of each batch),
and a few days ahead of today so live data never waits for DDL. Retention, when
configured, drops whole days. TimescaleDB: chunks appear by themselves; this
sets the compression and retention policies.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from storage.migrate import Flavour

log = logging.getLogger(__name__)

_LOCK_ID = 0x616973_0002


def partition_name(day: date) -> str:
    return f"positions_p{day:%Y%m%d}"


class PartitionManager:
    """Creates daily partitions on demand and remembers which exist."""

    def __init__(self, flavour: Flavour) -> None:
        self.flavour = flavour
        self._known: set[date] = set()

    async def load(self, conn: psycopg.AsyncConnection) -> None:
        if self.flavour != "native":
            return
        rows = await (
            await conn.execute(
                """SELECT c.relname FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                   JOIN pg_class p ON p.oid = i.inhparent
                   WHERE p.relname = 'positions'"""
            )
        ).fetchall()
        for (name,) in rows:
            if name.startswith("positions_p") and len(name) == 19:
                self._known.add(datetime.strptime(name[11:], "%Y%m%d").date())

    async def ensure(self, conn: psycopg.AsyncConnection, days: set[date]) -> list[date]:
        """Create the partitions of ``days`` that do not exist yet (own transaction)."""
        missing = sorted(days - self._known) if self.flavour == "native" else []
        if not missing:
            return []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            for day in missing:
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                await conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} PARTITION OF positions FOR VALUES FROM ({}) TO ({})"
                    ).format(
                        sql.Identifier(partition_name(day)),
                        sql.Literal(start),
                        sql.Literal(start + timedelta(days=1)),
                    )
                )
        self._known.update(missing)
        log.info(
            "database: created %d daily partition(s) of positions, %s to %s",
            len(missing),
            missing[0],
            missing[-1],
        )
        return missing

    async def maintain(
        self,
        conn: psycopg.AsyncConnection,
        *,
        today: date,
        ahead_days: int,
        retention_days: int | None,
        compress_after_days: int,
    ) -> None:
        """Create partitions ahead of ``today``; apply retention and compression."""
        if self.flavour == "timescaledb":
            await conn.execute(
                "SELECT add_compression_policy('positions', %s::interval, if_not_exists => true)",
                (timedelta(days=compress_after_days),),
            )
            if retention_days is not None:
                await conn.execute(
                    "SELECT add_retention_policy('positions', %s::interval, if_not_exists => true)",
                    (timedelta(days=retention_days),),
                )
            return
        await self.ensure(conn, {today + timedelta(days=i) for i in range(ahead_days + 1)})
        if retention_days is None:
            return
        horizon = today - timedelta(days=retention_days)
        for day in sorted(d for d in self._known if d < horizon):
            await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(partition_name(day))))
            self._known.discard(day)
            log.info(
                "database: dropped partition %s (older than %d days)", partition_name(day), retention_days
            )
