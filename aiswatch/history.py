"""The history questions, asked the same way by the CLI and the HTTP API:
a vessel's track, its voyages, who was in an area, where the watched ships
are. Each takes a connection and parsed arguments (times UTC)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from storage.tracks import Fix, Gap, TrackQuery, auto_tolerance_m, track
from storage.vessels import Vessel, find_vessel

#: Without --since, a track or voyage list starts here (the whole history).
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def window(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    return since or EPOCH, until or now


async def span(
    conn: psycopg.AsyncConnection[Any], mmsis: tuple[int, ...], since: datetime, until: datetime
) -> tuple[datetime, datetime] | None:
    """The first and last stored fix of the vessel in the range."""
    row = await (
        await conn.execute(
            "SELECT min(ts), max(ts) FROM positions WHERE mmsi = ANY(%s) AND ts >= %s AND ts < %s",
            (list(mmsis), since, until),
        )
    ).fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


async def track_query(
    conn: psycopg.AsyncConnection[Any],
    name: str,
    since: datetime,
    until: datetime,
    *,
    tolerance_m: float | None = None,
    gap_h: float = 3.0,
) -> tuple[Vessel, TrackQuery]:
    """The vessel and what to read of it; ``tolerance_m`` None simplifies by
    the length of the stored range (:func:`~storage.tracks.auto_tolerance_m`)."""
    vessel = await find_vessel(conn, name)
    if tolerance_m is None:
        stored = await span(conn, vessel.mmsis, since, until)
        tolerance_m = 0.0 if stored is None else auto_tolerance_m(*stored)
    return vessel, TrackQuery(vessel.mmsis, since, until, tolerance_m=tolerance_m, gap_h=gap_h)


def track_title(vessel: Vessel, query: TrackQuery) -> str:
    first = "the start" if query.since == EPOCH else f"{query.since:%Y-%m-%d %H:%M}Z"
    simplified = f", simplified to {query.tolerance_m:.0f} m" if query.tolerance_m else ""
    return f"Track of {vessel.label} from {first} to {query.until:%Y-%m-%d %H:%M}Z{simplified}"


async def counted(items: AsyncIterator[Fix | Gap], seen: list[int]) -> AsyncIterator[Fix | Gap]:
    """Pass ``items`` on, counting the fixes into ``seen[0]``."""
    async for item in items:
        if isinstance(item, Fix):
            seen[0] += 1
        yield item


__all__ = ["counted", "span", "track", "track_query", "track_title", "window"]
