"""The records every part of aiswatch passes around.

Frozen and typed, with UTC-aware timestamps. They are ``NamedTuple``s rather
than dataclasses on purpose: a position is built once per AIS message on the
hot path, and a tuple in the database's column order goes straight into a
binary COPY without another copy. Field names follow pyais and gpsd; units are
in the docstrings. This module imports nothing of ours, so storage, detectors
and alerts can all depend on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

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


#: What an event says about its fact: still going on, over, or found not to have happened.
EventState = Literal["open", "closed", "withdrawn"]

#: The kinds of event the detectors report, named plainly.
EVENT_KINDS = (
    "port_call",
    "zone_entry",
    "zone_exit",
    "appeared_in_port",
    "dark_gap",
    "identity_change",
    "draught_change",
    "implausible_position",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """A fact about a vessel, with identity.

    ``id`` is derived from (``mmsi``, ``kind``, ``start``, ``key``), where
    ``key`` tells apart events of one kind that start together (two zones of
    one port). The detectors revise an event by producing it again with the
    same identity; storage keeps a revision number and writes nothing when
    nothing changed. ``vessel`` is the watchlist entry's name. ``lat`` and
    ``lon`` are where it happened (degrees), ``details`` the kind's own facts
    (JSON-ready, units in the names).
    """

    kind: str
    mmsi: int
    start: datetime
    state: EventState = "closed"
    end: datetime | None = None
    port: str | None = None
    lat: float | None = None
    lon: float | None = None
    key: str = ""
    vessel: str = ""
    imo: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        ident = f"{self.mmsi}|{self.kind}|{self.start.isoformat()}|{self.key}"
        object.__setattr__(self, "id", hashlib.blake2b(ident.encode(), digest_size=12).hexdigest())

    def named(self, vessel: str, imo: int | None) -> Event:
        """This event under a watchlist entry's name and IMO. Its identity
        does not change, so it is copied, not made again (``replace`` would
        hash it anew: the detectors name every revision they report)."""
        named = object.__new__(Event)
        for name in Event.__slots__:
            object.__setattr__(named, name, getattr(self, name))
        object.__setattr__(named, "vessel", vessel)
        object.__setattr__(named, "imo", imo)
        return named
