"""A vessel's track over a time range: read as a stream, cut at gaps,
simplified for long ranges.

The track is a sequence of *segments*. A segment ends where the vessel went
silent (a ``dark_gap`` event of the detectors, or any silence longer than
``gap_h``), so a gap is never drawn as a line across it; consumers get the
gap itself (its two ends) as :class:`Gap`. Fixes flagged by the detectors as
implausible (``implausible_position``) are left out.

Simplification (Douglas-Peucker through shapely, per run) keeps what matters:
the ends of every segment (the ends of gaps), the first and last fix of every
stop (speed under ``STOP_KN``), and the turns that depart from a straight
line by more than the tolerance. Rows come through a server-side cursor and
at most ``MAX_RUN`` fixes are held at a time, so a year of positions never
sits in memory at once.

Times are UTC.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

import numpy as np
import psycopg
import shapely

#: Below this speed (knots) a vessel is stopped.
STOP_KN: Final = 0.5
#: Fixes held at once while simplifying; a longer run is cut (its ends kept).
MAX_RUN: Final = 20_000
METRES_PER_DEGREE: Final = 111_320.0


class Fix(NamedTuple):
    ts: datetime
    mmsi: int
    lat: float
    lon: float
    speed: float | None
    course: float | None
    heading: int | None
    status: int | None
    #: Which segment of the track (0, 1, ...): a new one after each gap.
    segment: int


@dataclass(frozen=True)
class Gap:
    """A silence between two segments: the last fix before, the first after."""

    before: Fix
    after: Fix
    #: The detectors called it dark (a dark_gap event), or it is just long.
    dark: bool

    @property
    def hours(self) -> float:
        return (self.after.ts - self.before.ts).total_seconds() / 3600


@dataclass(frozen=True)
class TrackQuery:
    mmsis: Sequence[int]
    since: datetime
    until: datetime
    #: Douglas-Peucker tolerance in metres; 0 keeps every fix.
    tolerance_m: float = 0.0
    #: A silence longer than this (hours) cuts the track even without a dark_gap event.
    gap_h: float = 3.0


_FIXES: Final = """
SELECT ts, mmsi, lat, lon, speed, course, heading, status FROM positions p
WHERE mmsi = ANY(%(mmsis)s) AND ts >= %(since)s AND ts < %(until)s AND lat IS NOT NULL AND lon IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM events e WHERE e.kind = 'implausible_position' AND e.mmsi = p.mmsi
         AND e.start_ts = p.ts AND e.state <> 'withdrawn')
ORDER BY ts, mmsi
"""
_DARK: Final = """
SELECT start_ts, end_ts FROM events
WHERE kind = 'dark_gap' AND state <> 'withdrawn' AND mmsi = ANY(%(mmsis)s)
  AND coalesce(end_ts, 'infinity') >= %(since)s AND start_ts < %(until)s
ORDER BY start_ts
"""


def auto_tolerance_m(since: datetime, until: datetime) -> float:
    """A tolerance that grows with the range: every fix up to two days, then
    25 m per day (a year: about 9 km, a few thousand points a ship)."""
    days = (until - since).total_seconds() / 86_400
    return 0.0 if days <= 2 else 25.0 * days


async def dark_intervals(
    conn: psycopg.AsyncConnection[Any], query: TrackQuery
) -> list[tuple[datetime, datetime | None]]:
    """The dark gaps of the vessel that touch the range (end None: still dark)."""
    args = {"mmsis": list(query.mmsis), "since": query.since, "until": query.until}
    cur = await conn.execute(_DARK, args)
    return [(start, end) for start, end in await cur.fetchall()]


async def raw_fixes(
    conn: psycopg.AsyncConnection[Any], query: TrackQuery, *, batch: int = 5000
) -> AsyncIterator[tuple[Any, ...]]:
    """The stored fixes in time order, streamed ``batch`` rows at a time in
    one query (libpq's chunked mode: no server-side cursor to declare, fetch
    and close, and no transaction needed; a year never held in memory). The
    connection serves nothing else until the stream ends."""
    args = {"mmsis": list(query.mmsis), "since": query.since, "until": query.until}
    async with conn.cursor() as cur:
        async for row in cur.stream(_FIXES, args, size=batch):
            yield row


class Segmenter:
    """Pure: rows in time order to fixes numbered by segment, and the gaps
    between segments. A gap is where a dark interval starts or ends between
    two fixes, or a silence longer than ``gap_h``."""

    def __init__(self, dark: Sequence[tuple[datetime, datetime | None]], gap_h: float) -> None:
        self._starts = sorted(start for start, _ in dark)
        self._ends = sorted(end for _, end in dark if end is not None)
        self._gap = timedelta(hours=gap_h)
        self._last: Fix | None = None
        self.segment = 0
        self.gaps: list[Gap] = []

    def _dark_between(self, before: datetime, after: datetime) -> bool:
        starts, ends = self._starts, self._ends
        return bisect_left(starts, before) < bisect_left(starts, after) or bisect_right(
            ends, before
        ) < bisect_right(ends, after)

    def add(self, row: Sequence[Any]) -> Fix:
        ts = row[0]
        last = self._last
        segment = self.segment
        if last is not None:
            dark = self._dark_between(last.ts, ts)
            if dark or ts - last.ts > self._gap:
                segment += 1
                fix = Fix(*row, segment)  # type: ignore[call-arg]
                self.gaps.append(Gap(last, fix, dark))
        fix = Fix(*row, segment)  # type: ignore[call-arg]
        self.segment = segment
        self._last = fix
        return fix


def simplify_run(fixes: Sequence[Fix], tolerance_m: float) -> list[Fix]:
    """Douglas-Peucker over one run of fixes (its ends kept); stops keep
    their first and last fix."""
    if tolerance_m <= 0 or len(fixes) <= 2:
        return list(fixes)
    lat0 = math.radians(sum(f.lat for f in fixes) / len(fixes))
    coords = np.array([(f.lon * math.cos(lat0), f.lat, i) for i, f in enumerate(fixes)], dtype=np.float64)
    line = shapely.linestrings(coords)
    kept = shapely.get_coordinates(
        shapely.simplify(line, tolerance_m / METRES_PER_DEGREE, preserve_topology=False), include_z=True
    )
    keep = {int(z) for z in kept[:, 2]} | {0, len(fixes) - 1}
    for i in range(1, len(fixes)):  # the ends of stops
        if _stopped(fixes[i]) != _stopped(fixes[i - 1]):
            keep.update((i - 1, i))
    return [fixes[i] for i in sorted(keep)]


def _stopped(fix: Fix) -> bool:
    return fix.speed is not None and fix.speed < STOP_KN


async def track(conn: psycopg.AsyncConnection[Any], query: TrackQuery) -> AsyncIterator[Fix | Gap]:
    """The track as a stream: fixes, and a :class:`Gap` before the first fix
    of every segment after the first. A run cut at ``MAX_RUN`` repeats its
    joining fix once, so the line stays continuous."""
    segmenter = Segmenter(await dark_intervals(conn, query), query.gap_h)
    run: list[Fix] = []
    reported = 0
    last_out: Fix | None = None

    def flush() -> Iterator[Fix]:
        nonlocal last_out
        for fix in simplify_run(run, query.tolerance_m):
            if fix != last_out:
                last_out = fix
                yield fix

    async for row in raw_fixes(conn, query):
        fix = segmenter.add(row)
        if run and (fix.segment != run[-1].segment or len(run) >= MAX_RUN):
            for out in flush():
                yield out
            run = [run[-1]] if fix.segment == run[-1].segment else []
        while reported < len(segmenter.gaps):
            yield segmenter.gaps[reported]
            reported += 1
        run.append(fix)
    for out in flush():
        yield out
