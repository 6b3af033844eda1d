"""Which vessel is meant, where the watched ones are, who was in an area.

A vessel is named by a watchlist entry (its identified and probable MMSIs:
ANGARA under both of its MMSIs), an MMSI (9 digits), an IMO (7 digits, or
``IMO9161003``: every MMSI that ever reported it) or a name it broadcast
(every MMSI that used it; more than one is ambiguous and says so). Times
are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import psycopg
import shapely
from shapely.geometry.base import BaseGeometry

from ingest.errors import AiswatchError
from storage.areas import cells_of
from storage.database import int_array

#: Match levels of the watchlist that name a watched ship.
WATCHED_LEVELS: Final = ("identified", "probable")


class QueryError(AiswatchError, ValueError):
    """A question that cannot be answered as asked; the text says why."""


class VesselNotFound(QueryError, LookupError):
    """No vessel by that name, MMSI or IMO in the database."""


@dataclass(frozen=True)
class Vessel:
    """A vessel as the user named it: one or more MMSIs."""

    label: str
    mmsis: tuple[int, ...]
    #: How the name was understood: watchlist, mmsi, imo or name.
    matched_by: str


@dataclass(frozen=True)
class LastPosition:
    entry: str
    mmsi: int
    shipname: str | None
    ts: datetime
    lat: float
    lon: float
    speed: float | None
    course: float | None


@dataclass(frozen=True)
class Presence:
    """A vessel's fixes inside an area in a time range."""

    mmsi: int
    shipname: str | None
    imo: int | None
    first: datetime
    last: datetime
    fixes: int


async def _has_cells(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await conn.execute("SELECT to_regprocedure('aiswatch_cell(double precision, double precision)')")
    row = await cur.fetchone()
    return row is not None and row[0] is not None


async def _column(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[Any]:
    return [row[0] for row in await (await conn.execute(query, args)).fetchall()]


async def find_vessel(conn: psycopg.AsyncConnection[Any], name: str) -> Vessel:
    """Resolve ``name``; raise :class:`VesselNotFound` (or an ambiguity
    :class:`QueryError`) with what was tried."""
    text = name.strip()
    if not text:
        raise VesselNotFound("no vessel given")
    mmsis = await _column(
        conn,
        "SELECT DISTINCT mmsi FROM watchlist_matches WHERE upper(entry) = upper(%s) AND level = ANY(%s)"
        " ORDER BY mmsi",
        text, list(WATCHED_LEVELS),
    )  # fmt: skip
    if mmsis:
        entry = await _column(
            conn, "SELECT entry FROM watchlist_matches WHERE upper(entry) = upper(%s)", text
        )
        return Vessel(entry[0], tuple(mmsis), "watchlist")
    imo = re.fullmatch(r"(?i)(?:IMO\s*)?(\d{7})", text)
    if re.fullmatch(r"\d{9}", text):
        return Vessel(f"MMSI {int(text)}", (int(text),), "mmsi")
    if imo:
        mmsis = await _column(
            conn, "SELECT DISTINCT mmsi FROM vessel_static WHERE imo = %s ORDER BY mmsi", int(imo.group(1))
        )
        if mmsis:
            return Vessel(f"IMO {imo.group(1)}", tuple(mmsis), "imo")
        raise VesselNotFound(f"no vessel reported IMO {imo.group(1)}")
    rows = await (
        await conn.execute(
            "SELECT DISTINCT mmsi FROM vessel_static WHERE upper(shipname) = upper(%s) ORDER BY mmsi",
            (text,),
        )
    ).fetchall()
    if len(rows) == 1:
        return Vessel(text.upper(), (rows[0][0],), "name")
    if len(rows) > 1:
        listed = ", ".join(str(mmsi) for (mmsi,) in rows[:10])
        raise QueryError(f"{len(rows)} vessels were called {text!r} (MMSI {listed}): give the MMSI or IMO")
    raise VesselNotFound(f"no watchlist entry, MMSI, IMO or ship name {text!r}")


async def last_positions(conn: psycopg.AsyncConnection[Any]) -> list[LastPosition]:
    """The newest fix of every watched MMSI (identified or probable)."""
    cur = await conn.execute(
        """
        SELECT w.entry, w.mmsi, v.shipname, p.ts, p.lat, p.lon, p.speed, p.course
        FROM (SELECT DISTINCT entry, mmsi FROM watchlist_matches WHERE level = ANY(%s)) w
        LEFT JOIN vessels v USING (mmsi)
        JOIN LATERAL (
            SELECT ts, lat, lon, speed, course FROM positions p
            WHERE p.mmsi = w.mmsi AND p.lat IS NOT NULL ORDER BY ts DESC LIMIT 1
        ) p ON true
        ORDER BY w.entry, p.ts DESC
        """,
        (list(WATCHED_LEVELS),),
    )
    return [LastPosition(*row) for row in await cur.fetchall()]


async def position_at(
    conn: psycopg.AsyncConnection[Any], mmsis: Sequence[int], at: datetime
) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
    """The last fix at or before ``at`` and the first after it: (ts, mmsi,
    lat, lon, speed, course) each, or None."""
    found = []
    for side, order in (("ts <= %s", "DESC"), ("ts > %s", "ASC")):
        cur = await conn.execute(
            f"SELECT ts, mmsi, lat, lon, speed, course FROM positions WHERE mmsi = ANY(%s) AND {side}"
            f" AND lat IS NOT NULL ORDER BY ts {order} LIMIT 1",
            (list(mmsis), at),
        )
        found.append(await cur.fetchone())
    return found[0], found[1]


async def vessels_in(
    conn: psycopg.AsyncConnection[Any],
    area: BaseGeometry,
    since: datetime,
    until: datetime,
    *,
    batch: int = 10_000,
) -> list[Presence]:
    """Vessels with a fix inside ``area`` (degrees, lon/lat) in the range:
    the bounding box in SQL, the exact polygon test here, in batches."""
    west, south, east, north = area.bounds
    shapely.prepare(area)
    found: dict[int, list[Any]] = {}
    cells = cells_of(west, south, east, north)
    if cells is not None and not await _has_cells(conn):  # a schema from before migration 0009
        cells = None
    # the cells the box covers: complete days are indexed by them (storage/areas.py)
    by_cell = "" if cells is None else " AND aiswatch_cell(lat, lon) = ANY(%s::integer[])"
    async with conn.transaction(), conn.cursor(name="aiswatch_in_area") as cur:
        await cur.execute(
            "SELECT mmsi, ts, lon, lat FROM positions WHERE ts >= %s AND ts < %s"
            f" AND lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s{by_cell}",
            (
                since,
                until,
                south,
                north,
                west,
                east,
                *([] if cells is None else [int_array(cells)]),
            ),
        )
        while rows := await cur.fetchmany(batch):
            xy = np.array([(row[2], row[3]) for row in rows], dtype=np.float64)
            inside = shapely.contains_xy(area, xy[:, 0], xy[:, 1])
            for row, hit in zip(rows, inside, strict=True):
                if not hit:
                    continue
                seen = found.get(row[0])
                if seen is None:
                    found[row[0]] = [row[1], row[1], 1]
                else:
                    seen[0], seen[1], seen[2] = min(seen[0], row[1]), max(seen[1], row[1]), seen[2] + 1
    names: dict[int, tuple[str | None, int | None]] = {}
    if found:
        cur2 = await conn.execute(
            "SELECT mmsi, shipname, imo FROM vessels WHERE mmsi = ANY(%s)", (list(found),)
        )
        names = {mmsi: (shipname, imo) for mmsi, shipname, imo in await cur2.fetchall()}
    return sorted(
        (
            Presence(mmsi, *names.get(mmsi, (None, None)), first, last, n)
            for mmsi, (first, last, n) in found.items()
        ),
        key=lambda p: (p.first, p.mmsi),
    )
