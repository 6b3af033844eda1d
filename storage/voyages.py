"""Voyages, port to port, from the detectors' events.

A voyage runs from the departure of one port call (``port_call`` event) to
the arrival of the next. Before the first call the vessel comes from where it
was first seen in the range, and after the last one it goes to where it was
last seen (``origin`` or ``destination`` None: at sea). The dark gaps
(``dark_gap`` events) inside a voyage are its dark legs: the time dark is
their overlap with the voyage, and the distance counts a dark leg as the
straight line between its two ends (a lower bound; the sea route is longer).
Fixes flagged implausible are not counted. A dark gap still open on one MMSI
ends where the vessel is heard again under another (ANGARA's change of MMSI).
Times are UTC.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg

_HAVERSINE_NM: Final = (
    "3440.065 * 2 * asin(sqrt(power(sin(radians(lat - lag(lat) OVER w) / 2), 2)"
    " + cos(radians(lat)) * cos(radians(lag(lat) OVER w))"
    " * power(sin(radians(lon - lag(lon) OVER w) / 2), 2)))"
)
_DISTANCE: Final = f"""
SELECT coalesce(sum(d), 0), count(*) FROM (
    SELECT {_HAVERSINE_NM} AS d FROM positions p
    WHERE mmsi = ANY(%(mmsis)s) AND ts >= %(start)s AND ts <= %(end)s AND lat IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM events e WHERE e.kind = 'implausible_position' AND e.mmsi = p.mmsi
             AND e.start_ts = p.ts AND e.state <> 'withdrawn')
    WINDOW w AS (ORDER BY ts)
) legs
"""
_EVENTS: Final = """
SELECT kind, port, start_ts, end_ts, coalesce((details->>'distance_nm')::float8, 0)
FROM events WHERE kind IN ('port_call', 'dark_gap') AND state <> 'withdrawn' AND mmsi = ANY(%(mmsis)s)
  AND coalesce(end_ts, 'infinity') >= %(since)s AND start_ts < %(until)s
ORDER BY start_ts
"""
_NEXT_FIX: Final = """
SELECT min(ts) FROM positions WHERE mmsi = ANY(%(mmsis)s) AND ts > %(start)s AND lat IS NOT NULL
"""
_SPAN: Final = """
SELECT min(ts), max(ts) FROM positions
WHERE mmsi = ANY(%(mmsis)s) AND ts >= %(since)s AND ts < %(until)s AND lat IS NOT NULL
"""


@dataclass(frozen=True)
class DarkLeg:
    start: datetime
    end: datetime | None
    #: Straight line between the last fix before and the first after (nm).
    distance_nm: float

    def hours_within(self, start: datetime, end: datetime) -> float:
        stop = min(end, self.end or end)
        begin = max(start, self.start)
        return max(0.0, (stop - begin).total_seconds() / 3600)


@dataclass(frozen=True)
class PortCall:
    port: str
    arrival: datetime
    departure: datetime | None


@dataclass(frozen=True)
class Voyage:
    origin: str | None
    destination: str | None
    departure: datetime
    arrival: datetime
    #: The arrival is the last fix seen, not a port call (still under way, or the range ends).
    ongoing: bool
    dark_legs: tuple[DarkLeg, ...] = ()
    distance_nm: float = 0.0
    fixes: int = 0
    dark_h: float = field(default=0.0)

    @property
    def duration_h(self) -> float:
        return (self.arrival - self.departure).total_seconds() / 3600


def plan(
    calls: Sequence[PortCall],
    dark: Sequence[DarkLeg],
    first_fix: datetime | None,
    last_fix: datetime | None,
) -> list[Voyage]:
    """Pure: the voyages between ``calls`` (sorted), with the dark legs that
    overlap each, from the first to the last fix."""
    legs: list[tuple[str | None, str | None, datetime, datetime, bool]] = []
    if calls and first_fix is not None and first_fix < calls[0].arrival:
        legs.append((None, calls[0].port, first_fix, calls[0].arrival, False))
    for here, there in itertools.pairwise(calls):
        if here.departure is not None:
            legs.append((here.port, there.port, here.departure, there.arrival, False))
    tail = calls[-1].departure if calls else first_fix
    if tail is not None and last_fix is not None and last_fix > tail:
        legs.append((calls[-1].port if calls else None, None, tail, last_fix, True))
    voyages = []
    for origin, destination, start, end, ongoing in legs:
        inside = tuple(d for d in dark if d.start < end and (d.end is None or d.end > start))
        voyages.append(
            Voyage(
                origin, destination, start, end, ongoing, inside,
                dark_h=round(sum(d.hours_within(start, end) for d in inside), 3),
            )
        )  # fmt: skip
    return voyages


async def find_voyages(
    conn: psycopg.AsyncConnection[Any], mmsis: Sequence[int], since: datetime, until: datetime
) -> list[Voyage]:
    """The voyages of a vessel (all its MMSIs) in the range, with distances."""
    args: dict[str, Any] = {"mmsis": list(mmsis), "since": since, "until": until}
    calls: list[PortCall] = []
    dark: list[DarkLeg] = []
    for kind, port, start, end, distance in await (await conn.execute(_EVENTS, args)).fetchall():
        if kind == "port_call":
            calls.append(PortCall(port, start, end))
        else:
            until_heard = end
            if until_heard is None:  # still open: unless another MMSI of the vessel was heard since
                row = await (await conn.execute(_NEXT_FIX, {**args, "start": start})).fetchone()
                until_heard = None if row is None else row[0]
            dark.append(DarkLeg(start, until_heard, distance))
    first, last = await (await conn.execute(_SPAN, args)).fetchone() or (None, None)
    out = []
    for voyage in plan(calls, dark, first, last):
        args.update(start=voyage.departure, end=voyage.arrival)
        distance, fixes = await (await conn.execute(_DISTANCE, args)).fetchone() or (0.0, 0)
        out.append(
            Voyage(
                voyage.origin, voyage.destination, voyage.departure, voyage.arrival, voyage.ongoing,
                voyage.dark_legs, round(float(distance), 2), int(fixes), voyage.dark_h,
            )
        )  # fmt: skip
    return out
