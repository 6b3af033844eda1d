"""The records every part of aiswatch passes around.

Frozen and typed, with UTC-aware timestamps. They are ``NamedTuple``s rather
than dataclasses on purpose: a position is built once per AIS message on the
hot path, and a tuple in the database's column order goes straight into a
binary COPY without another copy. Field names follow pyais and gpsd; units are
in the docstrings. This module imports nothing of ours, so storage, detectors
and alerts can all depend on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

#: Message types whose positions are stored (static and voyage data come from 5, 19 and 24).
POSITION_TYPES = frozenset({1, 2, 3, 18, 19, 27})


class Position(NamedTuple):
    """One position report (AIS message types 1, 2, 3, 18, 19, 27).

    ``ts`` is the event time (tag block, ``$PGHP`` or receiver epoch; else the
    time the line was read, moved back to the message's UTC second). ``lat`` and
    ``lon`` are degrees WGS 84, ``speed`` knots over ground, ``course`` degrees
    over ground, ``heading`` true degrees, ``turn`` degrees per minute as pyais
    scales it. "Not available" codes (lat 91, lon 181, speed 102.3, course 360,
    heading 511) are ``None``: they are missing values, never positions.
    ``payload_crc`` is the CRC-32 of the assembled payload; with ``mmsi`` and
    ``ts`` it identifies the message, so a replay stores nothing twice.
    """

    ts: datetime
    mmsi: int
    msg_type: int
    lat: float | None
    lon: float | None
    speed: float | None
    course: float | None
    heading: int | None
    status: int | None
    turn: float | None
    accuracy: bool | None
    second: int | None
    station: str | None
    payload_crc: int
    #: How many NMEA sentences carried the message (for line accounting; not stored).
    sentences: int = 1


class StaticReport(NamedTuple):
    """Static and voyage data (types 5, 19, and 24 parts A and B joined).

    ``None`` means "not in this report" (or sent as not available), never
    "cleared". ``ship_type`` is kept as received, reserved codes included.
    Dimensions are metres from the position reference point; ``draught`` is
    metres; ``eta`` is the next occurrence of the reported month, day and time
    after ``ts``.
    """

    ts: datetime
    mmsi: int
    msg_type: int
    imo: int | None
    callsign: str | None
    shipname: str | None
    ship_type: int | None
    to_bow: int | None
    to_stern: int | None
    to_port: int | None
    to_starboard: int | None
    draught: float | None
    destination: str | None
    eta: datetime | None
    #: How many NMEA sentences carried the message (for line accounting; not stored).
    sentences: int = 1
