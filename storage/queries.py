"""Read queries used by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class VesselSummary:
    mmsi: int
    shipname: str | None
    imo: int | None
    callsign: str | None
    ship_type: int | None
    positions: int
    first_seen: datetime
    last_seen: datetime
    lat: float | None
    lon: float | None


async def busiest_vessels(conn: psycopg.AsyncConnection, *, limit: int = 10) -> list[VesselSummary]:
    """The vessels with the most stored positions, with identity and last fix;
    vessels whose identity is known come first."""
    cur = await conn.execute(
        """
        WITH counts AS (
            SELECT p.mmsi, count(*) AS n, min(p.ts) AS first_seen, max(p.ts) AS last_seen
            FROM positions p LEFT JOIN vessels v USING (mmsi)
            GROUP BY p.mmsi, v.shipname
            ORDER BY v.shipname IS NULL, n DESC, p.mmsi LIMIT %s
        )
        SELECT c.mmsi, v.shipname, v.imo, v.callsign, v.ship_type, c.n, c.first_seen, c.last_seen,
               last.lat, last.lon
        FROM counts c
        LEFT JOIN vessels v USING (mmsi)
        LEFT JOIN LATERAL (
            SELECT lat, lon FROM positions p
            WHERE p.mmsi = c.mmsi AND p.lat IS NOT NULL ORDER BY p.ts DESC LIMIT 1
        ) last ON true
        ORDER BY v.shipname IS NULL, c.n DESC, c.mmsi
        """,
        (limit,),
    )
    return [VesselSummary(*row) for row in await cur.fetchall()]


async def table_counts(conn: psycopg.AsyncConnection) -> dict[str, int]:
    """Row counts of the main tables."""
    counts = {}
    for table in ("positions", "vessels", "vessel_static"):
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        row = await (await conn.execute(query)).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts
