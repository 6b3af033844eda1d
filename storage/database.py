"""The connection pool and what every connection needs.

``Database`` is an async context manager: it checks the server once with a
plain connection (so a wrong URL gives PostgreSQL's own one-line reason, not a
pool time-out), migrates and maintains the partitions if asked (a reader
passes ``migrate=False`` and changes nothing), opens a psycopg_pool, and closes it on exit.
Every pooled connection gets the two temporary staging tables the writer
COPYs into.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest.errors import StorageError
from storage.migrate import Flavour, MigrationReport, TimescaleChoice, migrate, schema_flavour
from storage.partitions import PartitionManager
from storage.timescale import apply_policies

log = logging.getLogger(__name__)

STAGE_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS positions_stage (
    ts timestamptz, mmsi integer, msg_type smallint, lat double precision,
    lon double precision, speed real, course real, heading smallint, status smallint,
    turn real, accuracy boolean, second smallint, station text, payload_crc bigint,
    sentences smallint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS static_stage (
    ts timestamptz, mmsi integer, msg_type smallint, imo integer, callsign text,
    shipname text, ship_type smallint, to_bow smallint, to_stern smallint,
    to_port smallint, to_starboard smallint, draught real, destination text,
    eta timestamptz, sentences smallint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS events_stage (
    id text, kind text, state text, vessel text, mmsi integer, imo integer, port text,
    zone_key text, start_ts timestamptz, end_ts timestamptz, lat double precision,
    lon double precision, details jsonb
) ON COMMIT DELETE ROWS;
"""


def int_array(values: Iterable[int]) -> str:
    """A PostgreSQL integer array literal: psycopg's array dumper costs tens
    of milliseconds for a batch's thousand vessels, this a fraction of one."""
    return "{" + ",".join(map(str, values)) + "}"


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable database URL>"
    if "password" in info:
        info["password"] = "***"  # noqa: S105 - a mask, not a password
    return psycopg.conninfo.make_conninfo("", **info)


async def _configure(conn: psycopg.AsyncConnection) -> None:
    await conn.set_autocommit(True)
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.execute(STAGE_TABLES)
    await conn.set_autocommit(False)


async def _configure_reads(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


def read_pool(url: str, *, max_size: int = 4) -> AsyncConnectionPool:
    """A pool of autocommit connections for read-only questions (the API):
    each statement is one round trip, with no BEGIN before it and no
    ROLLBACK when the connection goes back. Open it with ``await pool.open()``."""
    return AsyncConnectionPool(
        url, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": True},
        configure=_configure_reads, name="aiswatch-reads",
    )  # fmt: skip


class Database:
    """A pool on one database, its schema flavour and its partitions."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        timescaledb: TimescaleChoice = "auto",
        pool_max_size: int = 4,
        partitions_ahead_days: int = 3,
        retention_days: int | None = None,
        compress_after_days: int = 7,
    ) -> None:
        self.url = url
        self._migrate = migrate
        self._timescaledb: TimescaleChoice = timescaledb
        self._ahead = partitions_ahead_days
        self._retention = retention_days
        self._compress_after = compress_after_days
        self.pool = AsyncConnectionPool(
            url, min_size=1, max_size=pool_max_size, open=False, configure=_configure, name="aiswatch"
        )
        self.flavour: Flavour = "native"
        self.partitions = PartitionManager("native")
        self.migration: MigrationReport | None = None

    async def __aenter__(self) -> Database:
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, connect_timeout=10, autocommit=True)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StorageError(f"cannot connect to {redact(self.url)}: {reason}") from exc
        async with conn:
            if self._migrate:
                self.migration = await migrate(conn, url=self.url, timescaledb=self._timescaledb)
                self.flavour = self.migration.flavour
            else:
                self.flavour = await schema_flavour(conn)
            self.partitions = PartitionManager(self.flavour)
            if self.flavour != "timescaledb":
                await self.partitions.load(conn)
            if not self._migrate:
                pass  # only read: no policies, no partition maintenance
            elif self.flavour == "timescaledb":
                await apply_policies(
                    conn, compress_after_days=self._compress_after, retention_days=self._retention
                )
            else:
                await self.partitions.maintain(
                    conn,
                    today=datetime.now(UTC).date(),
                    ahead_days=self._ahead,
                    retention_days=self._retention,
                    compress_after_days=self._compress_after,
                )
        try:
            await self.pool.open(wait=True, timeout=30)
        except BaseException:
            # Interrupted or timed out: stop the pool's workers, which would
            # otherwise outlive us (a worker whose connect swallowed a
            # cancellation never exits, and asyncio.run waits for it forever).
            await self.pool.close(timeout=5)
            raise
        log.info("database: pool open on %s (%s schema)", redact(self.url), self.flavour)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.pool.close(timeout=10)
        log.info("database: pool closed")
