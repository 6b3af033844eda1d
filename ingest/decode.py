"""Payloads to records: pyais's messages to fields, fields to records. Pure, no I/O.

The common types are decoded without pyais (:mod:`ingest.fastdecode`), to the
same fields; pyais decodes the rest, and is the oracle in the tests.

What this adds to pyais, each measured against gpsd on the shared captures:

* length checks, as gpsd 3.22 makes them (pyais decodes short messages with
  missing fields): a message shorter than its type's length is malformed; a
  longer one is decoded from its first bits (types 1-3 of 204 bits are common
  from some transponders, with valid positions). Types 1-3 and 18 need 168
  bits, 19 needs 312, 27 is 96 to 168, 5 needs 420 (many transmitters send 420
  or 422 instead of 424), 24 needs 160;
* "not available" codes become ``None`` (lat 91, lon 181, speed 102.3 kn,
  course 360, heading 511, type 27's speed 63 and course 511);
* text fields are cut at the first ``@`` (pyais keeps the padding);
* ship type is read from the bits, reserved codes kept (pyais maps them to 0).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ingest.records import Position, StaticReport

#: A position's fields: mmsi, lat, lon, speed, course, heading, status, turn, accuracy, second.
PositionFields = tuple[
    int, float | None, float | None, float | None, float | None, int | None, int | None, float | None, bool,
    int | None,
]  # fmt: skip
#: A static report's fields: mmsi, part (type 24: 0 or 1, else -1), imo, callsign, shipname,
#: ship type, to bow, to stern, to port, to starboard, draught, destination, ETA as
#: (month, day, hour, minute) or None.
StaticFields = tuple[
    int, int, int | None, str | None, str | None, int | None, int | None, int | None, int | None, int | None,
    float | None, str | None, tuple[int, int, int, int] | None,
]  # fmt: skip

#: Six-bit value of each payload character (the AIS armoring).
ARMOR: Final = tuple((c - 48 - 8 if c - 48 > 40 else c - 48) if 48 <= c <= 119 else 0 for c in range(256))

#: (least, most) payload bits for each stored message type.
BIT_LENGTHS: Final[dict[int, tuple[int, int]]] = {
    1: (168, 1008),
    2: (168, 1008),
    3: (168, 1008),
    18: (168, 1008),
    19: (312, 1008),
    27: (96, 168),
    5: (420, 1008),
    24: (160, 1008),
}

#: Bit offsets of the 8-bit ship type, read raw to keep reserved codes.
_SHIP_TYPE_OFFSET: Final = {5: 232, 19: 263, 24: 40}


def text(value: str | None) -> str | None:
    """An AIS text field as stored, from every source: cut at the first ``@``
    (the padding, and what follows it is not text), spaces trimmed; None if
    nothing is left (``"LADY R@@@@"`` -> ``"LADY R"``, ``"@@@@"`` -> None).

    Trailing spaces are padding too. Leading ones (gpsd keeps them, and some
    transmitters send them) are trimmed as well: a feed that trimmed them
    upstream must not read as a changed call sign or destination.
    """
    if value is None:
        return None
    cut = value.find("@")
    if cut >= 0:
        value = value[:cut]
    value = value.strip()
    return value or None


_UTC: dict[float, datetime] = {}
_new = tuple.__new__


def utc(ts: float) -> datetime:
    """``datetime.fromtimestamp(ts, UTC)``, memoised: on a live feed or a replay
    many messages share a second, and this runs for every record."""
    when = _UTC.get(ts)
    if when is None:
        if len(_UTC) >= 4096:
            _UTC.clear()
        when = _UTC[ts] = datetime.fromtimestamp(ts, UTC)
    return when


def pyais_position(msg: Any) -> PositionFields:
    """The fields of a pyais type 1, 2, 3, 18, 19 or 27 message, in our units."""
    msg_type = msg.msg_type
    lat = msg.lat
    lon = msg.lon
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        # 91/181 are "not available"; anything else out of range is no position.
        lat = lon = None
    speed = msg.speed
    course = msg.course
    if msg_type == 27:
        speed = None if speed >= 63 else float(speed)
        course = None if course >= 360 else float(course)
        heading = turn = second = None
        status: int | None = int(msg.status)
    else:
        if speed >= 102.25:
            speed = None
        if course >= 360.0:
            course = None
        heading = msg.heading
        if heading >= 360:
            heading = None
        second = msg.second
        if second >= 60:
            second = None
        if msg_type <= 3:
            status = int(msg.status)
            turn = msg.turn
            # pyais gives TurnRate members for -128 (not available) and +-127
            # (turning fast, no rate): neither is a rate.
            if type(turn) is not float:
                turn = None
        else:
            status = turn = None
    return msg.mmsi, lat, lon, speed, course, heading, status, turn, bool(msg.accuracy), second


def pyais_static(msg: Any, bits: Any) -> StaticFields:
    """The fields of a pyais type 5, 19 or 24 message, in our units.

    Type 24 part A carries only the name and part B only the rest; joining the
    two is the caller's job (see :class:`ingest.pipeline.LineDecoder`).
    """
    msg_type = msg.msg_type
    part = msg.partno if msg_type == 24 else -1
    ship_type = None
    if part != 0:
        ship_type = bits.get(_SHIP_TYPE_OFFSET[msg_type], 8) or None  # raw: pyais maps reserved codes to 0
    imo = callsign = destination = draught = eta = shipname = None
    dims: tuple[int | None, ...] = (None, None, None, None)
    if msg_type == 5:
        imo = msg.imo or None
        callsign = text(msg.callsign)
        shipname = text(msg.shipname)
        destination = text(msg.destination)
        draught = msg.draught or None
        eta = (msg.month, msg.day, msg.hour, msg.minute)
        dims = (msg.to_bow, msg.to_stern, msg.to_port, msg.to_starboard)
    elif msg_type == 19:
        shipname = text(msg.shipname)
        dims = (msg.to_bow, msg.to_stern, msg.to_port, msg.to_starboard)
    elif part == 0:
        shipname = text(msg.shipname)
    else:
        callsign = text(msg.callsign)
        if not str(msg.mmsi).startswith("98"):  # auxiliary craft send a mothership MMSI
            dims = (msg.to_bow, msg.to_stern, msg.to_port, msg.to_starboard)
    to_bow, to_stern, to_port, to_starboard = (d or None for d in dims)
    return (
        msg.mmsi, part, imo, callsign, shipname, ship_type, to_bow, to_stern, to_port, to_starboard,
        draught, destination, eta,
    )  # fmt: skip


def make_position(
    fields: PositionFields, msg_type: int, ts: float, station: str | None, crc: int, sentences: int
) -> Position:
    """A :class:`Position`, built directly (``tuple.__new__`` is several
    times cheaper than the NamedTuple constructor, and this is the hot path)."""
    mmsi, lat, lon, speed, course, heading, status, turn, accuracy, second = fields
    return _new(
        Position,
        (utc(ts), mmsi, msg_type, lat, lon, speed, course, heading, status, turn, accuracy, second,
         station, crc, sentences),
    )  # fmt: skip


def make_static(fields: StaticFields, msg_type: int, ts: float, sentences: int) -> StaticReport:
    when = utc(ts)
    mmsi, _, imo, callsign, shipname, ship_type, to_bow, to_stern, to_port, to_starboard = fields[:10]
    draught, destination, eta = fields[10:]
    return StaticReport(
        when, mmsi, msg_type, imo, callsign, shipname, ship_type, to_bow, to_stern, to_port, to_starboard,
        draught, destination, None if eta is None else eta_from(when, *eta), sentences,
    )  # fmt: skip


def eta_from(when: datetime, month: int, day: int, hour: int, minute: int) -> datetime | None:
    """The occurrence of an AIS ETA (no year) nearest to ``when``, or None.

    Month 0, day 0, hour 24 or minute 60 mean "not available"; an ETA is taken
    to lie within six months either side of the report.
    """
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        return None
    for year in (when.year, when.year + 1, when.year - 1):
        try:
            eta = datetime(year, month, day, hour, minute, tzinfo=UTC)
        except ValueError:
            return None
        if abs(eta - when) <= timedelta(days=183):
            return eta
    return None


def refine_to_second(received: float, second: int | None) -> float:
    """The latest whole second at or before ``received`` whose seconds field is
    ``second`` (the AIS UTC second), assuming less than a minute of delay."""
    whole = math.floor(received)
    if second is None:
        return float(whole)
    return float(whole - (whole - second) % 60)
