"""Versioned schema migrations.

Migrations are the SQL files in ``storage/migrations``, applied in order of
their number, each in its own transaction, under an advisory lock so that two
processes starting together do not race. A migration may come in two flavours,
``NNNN_name.native.sql`` (plain PostgreSQL, native partitioning) and
``NNNN_name.timescaledb.sql``; the flavour is chosen once, when the schema is
first created, from whether the ``timescaledb`` extension can be created, and
recorded in ``schema_migrations``. With ``storage.timescaledb = "auto"``, a
server without the extension, or with it installed but not preloaded, gets
native partitioning and a warning saying how to preload it; with ``"on"`` it
is a one-line :class:`TimescaleUnavailable`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import partial
from importlib import resources
from typing import Literal

import psycopg
from psycopg import sql

from ingest.errors import StorageError

log = logging.getLogger(__name__)

Flavour = Literal["native", "timescaledb"]
TimescaleChoice = Literal["auto", "on", "off"]

_LOCK_ID = 0x616973_0001  # pg_advisory_lock key for migrations
_NAME = re.compile(r"^(\d{4})_(\w+?)(?:\.(native|timescaledb))?\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: dict[str | None, str]  # flavour (None: both) -> SQL

    def for_flavour(self, flavour: Flavour) -> str:
        text = self.sql.get(None) or self.sql.get(flavour)
        if text is None:
            raise StorageError(f"migration {self.version:04d}_{self.name} has no {flavour} variant")
        return text


@dataclass(frozen=True)
class MigrationReport:
    flavour: Flavour
    applied: list[str]
    current: int


def load_migrations() -> list[Migration]:
    """The migrations shipped with aiswatch, in order."""
    found: dict[int, Migration] = {}
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version, name, flavour = int(match[1]), match[2], match[3]
        migration = found.setdefault(version, Migration(version, name, {}))
        migration.sql[flavour] = entry.read_text(encoding="utf-8")
    return [found[v] for v in sorted(found)]


async def migrate(
    conn: psycopg.AsyncConnection, *, url: str, timescaledb: TimescaleChoice = "auto"
) -> MigrationReport:
    """Bring the schema of the database at ``url`` (``conn`` is on it) up to
    date; return what was done."""
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   flavour text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await (await conn.execute("SELECT version, flavour FROM schema_migrations")).fetchall()
        done = {version for version, _ in rows}
        flavours = {flavour for _, flavour in rows}
        flavour: Flavour
        if flavours:
            flavour = "timescaledb" if "timescaledb" in flavours else "native"
        else:
            flavour = await _choose_flavour(url, timescaledb)
        applied: list[str] = []
        for migration in load_migrations():
            if migration.version in done:
                continue
            label = f"{migration.version:04d}_{migration.name}"
            warned = partial(_server_warning, label)
            conn.add_notice_handler(warned)
            try:
                async with conn.transaction():
                    await conn.execute(sql.SQL(migration.for_flavour(flavour)))
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, flavour) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, flavour),
                    )
            finally:
                conn.remove_notice_handler(warned)
            log.info("database: applied migration %s (%s)", label, flavour)
            applied.append(label)
        current = max([m.version for m in load_migrations()], default=0)
        return MigrationReport(flavour, applied, current)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


def _server_warning(label: str, notice: psycopg.errors.Diagnostic) -> None:
    """The server's warnings about a migration, in our log (psycopg drops notices otherwise)."""
    if notice.severity_nonlocalized == "WARNING":
        log.warning("database: migration %s: the server warns: %s", label, notice.message_primary)


#: How to make a server with the timescaledb package use it (its loader must be preloaded).
PRELOAD_HINT = (
    "set shared_preload_libraries = 'timescaledb' in postgresql.conf, as timescaledb-tune does, "
    "and restart PostgreSQL"
)


class TimescaleUnavailable(StorageError):
    """``storage.timescaledb = "on"``, but the extension cannot be created."""


async def _choose_flavour(url: str, choice: TimescaleChoice) -> Flavour:
    if choice == "off":
        return "native"
    reason = await _create_extension(url)
    if reason is None:
        return "timescaledb"
    hint = f" (to use TimescaleDB, {PRELOAD_HINT})" if "preload" in reason else ""
    if choice == "on":
        raise TimescaleUnavailable(f"storage.timescaledb is 'on' but {reason}{hint}")
    if hint:
        log.warning(
            'database: %s; using native partitioning%s; storage.timescaledb = "off" silences this',
            reason,
            hint,
        )
    else:
        log.info("database: %s; using native partitioning", reason)
    return "native"


async def _create_extension(url: str) -> str | None:
    """Create the timescaledb extension; None if done, else why not (one line).

    On a connection of its own: when the package is installed but its loader
    is not preloaded, CREATE EXTENSION is FATAL and the server closes the
    connection (which holds the migration lock)."""
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10) as conn:
            available = await (
                await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
            ).fetchone()
            if available is None:
                return "this server has no timescaledb extension"
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        text = exc.diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"the timescaledb extension cannot be created: {text}"
    return None


async def schema_flavour(conn: psycopg.AsyncConnection) -> Flavour:
    """The flavour recorded when the schema was created."""
    row = await (
        await conn.execute("SELECT flavour FROM schema_migrations ORDER BY version DESC LIMIT 1")
    ).fetchone()
    if row is None:
        raise StorageError("the database has no aiswatch schema: run 'aiswatch migrate'")
    return "timescaledb" if row[0] == "timescaledb" else "native"
