"""The common messages decoded straight from the payload, without pyais. Pure.

Position reports (types 1, 2, 3, 18, 27) are nearly all the traffic, and
static reports (5, 24) most of the rest. For them, building pyais's message
objects (attrs classes, enums for every code, the bit vector) costs more than
the decoding itself: here the armoured payload becomes one integer (the
6-to-8 bit repacking done by ``binascii`` on the base64 alphabet, as pyais
does), and each field is a shift and a mask of it. The values are exactly
pyais's (its scalings, its roundings, the same bits for longer messages),
already in our units, with "not available" codes as ``None``; the
differential tests decode every shared capture and generated payloads both
ways and require identical records. Messages of other types, and lengths
pyais reads differently (a type 5 shorter than 424 bits, a type 24 part B
shorter than 168, part numbers 2 and 3), return ``None``: pyais decodes them.
"""

from __future__ import annotations

import math
from binascii import a2b_base64, b2a_base64
from typing import Final

from ingest.decode import ARMOR, StaticFields, refine_to_second, text, utc
from ingest.records import Position

_B64: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: AIS armour to the base64 character of the same six bits.
_ARMOR_TO_B64: Final = bytes(_B64[ARMOR[c]] for c in range(256))
#: base64 characters to AIS six-bit text (ITU-R M.1371 table 47).
_B64_TO_TEXT: Final = bytes.maketrans(
    _B64, b"@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_ !\"#$%&'()*+,-./0123456789:;<=>?"
)
_PAD: Final = (b"", b"AAA", b"AA", b"A")  # "A" is six zero bits
_NO_RATE: Final = frozenset({127, 129, 128})  # +127, -127, -128 as unsigned bytes
_new = tuple.__new__


def payload_value(payload: bytes, fill_bits: int) -> int:
    """The payload's bits as one integer (``6 * len(payload) - fill_bits`` bits)."""
    rest = len(payload) & 3
    value = int.from_bytes(a2b_base64(payload.translate(_ARMOR_TO_B64) + _PAD[rest]), "big")
    if rest:
        value >>= 6 * (4 - rest)
    return value >> fill_bits


def _text(value: int, width: int) -> str | None:
    """Six-bit text of ``width`` bits (the low bits of ``value``), as :func:`ingest.decode.text` keeps it."""
    pad = -width % 24
    chars = b2a_base64(
        ((value & ((1 << width) - 1)) << pad).to_bytes((width + pad) // 8, "big"), newline=False
    )
    return text(chars[: width // 6].translate(_B64_TO_TEXT).decode("ascii"))


def position_record(
    msg_type: int,
    payload: bytes,
    fill_bits: int,
    bit_count: int,
    time: float | None,
    received: float,
    station: str | None,
    crc: int,
    sentences: int,
) -> Position:
    """The :class:`Position` of a type 1, 2, 3 or 18 (at least 168 bits) or
    27 (at least 96) message, timed by ``time``, else by ``received`` moved
    back to the message's UTC second. One function, written out: this is the
    hot path of every ingest."""
    rest = len(payload) & 3
    value = int.from_bytes(a2b_base64(payload.translate(_ARMOR_TO_B64) + _PAD[rest]), "big")
    if rest:
        value >>= 6 * (4 - rest)
    value >>= fill_bits
    if msg_type == 27:
        v = value >> (bit_count - 96)
        lon_raw, lat_raw = (v >> 34) & 0x3FFFF, (v >> 17) & 0x1FFFF
        lon = ((10_000 * (lon_raw - 0x40000 if lon_raw & 0x20000 else lon_raw) + 3) // 6) / 1e6
        lat = ((10_000 * (lat_raw - 0x20000 if lat_raw & 0x10000 else lat_raw) + 3) // 6) / 1e6
        speed_raw, course_raw = (v >> 11) & 63, (v >> 2) & 511
        speed = None if speed_raw >= 63 else float(speed_raw)
        course = None if course_raw >= 360 else float(course_raw)
        heading = turn = second = None
        status: int | None = (v >> 52) & 15
        accuracy = (v >> 57) & 1
        mmsi = (v >> 58) & 0x3FFFFFFF
    else:
        v = value >> (bit_count - 168)
        if msg_type == 18:
            lon_raw, lat_raw = (v >> 83) & 0xFFFFFFF, (v >> 56) & 0x7FFFFFF
            speed_raw, accuracy, course_raw = (v >> 112) & 1023, (v >> 111) & 1, (v >> 44) & 4095
            heading, second = (v >> 35) & 511, (v >> 29) & 63
            status = turn = None
        else:
            lon_raw, lat_raw = (v >> 79) & 0xFFFFFFF, (v >> 52) & 0x7FFFFFF
            speed_raw, accuracy, course_raw = (v >> 108) & 1023, (v >> 107) & 1, (v >> 40) & 4095
            heading, second = (v >> 31) & 511, (v >> 25) & 63
            status = (v >> 126) & 15
            rate = (v >> 118) & 255
            if not rate:
                turn = 0.0
            elif rate in _NO_RATE:  # -128 (not available), +-127 (turning fast, no rate)
                turn = None
            else:
                rate = rate - 256 if rate > 127 else rate
                turn = math.copysign(round((rate / 4.733) ** 2), rate)  # pyais's scaling
        lon = ((10 * (lon_raw - 0x10000000 if lon_raw & 0x8000000 else lon_raw) + 3) // 6) / 1e6
        lat = ((10 * (lat_raw - 0x8000000 if lat_raw & 0x4000000 else lat_raw) + 3) // 6) / 1e6
        speed = None if speed_raw >= 1023 else speed_raw / 10.0
        course = None if course_raw >= 3600 else course_raw / 10.0
        if heading >= 360:
            heading = None
        if second >= 60:
            second = None
        mmsi = (v >> 130) & 0x3FFFFFFF
    if time is None:
        time = refine_to_second(received, second)
    if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
        where: tuple[float | None, float | None] = (lat, lon)
    else:  # 91, 181: not available
        where = (None, None)
    return _new(
        Position,
        (utc(time), mmsi, msg_type, *where, speed, course, heading, status, turn, accuracy == 1, second,
         station, crc, sentences),
    )  # fmt: skip


def static(msg_type: int, value: int, bit_count: int) -> StaticFields | None:
    """A type 5 (at least 424 bits) or 24 static report, or None for pyais to decode."""
    if msg_type == 5:
        if bit_count < 424:
            return None
        v = value >> (bit_count - 424)
        draught = ((v >> 122) & 255) / 10.0
        return (
            (v >> 386) & 0x3FFFFFFF, -1, (v >> 354) & 0x3FFFFFFF or None, _text(v >> 312, 42),
            _text(v >> 192, 120), (v >> 184) & 255 or None, (v >> 175) & 511 or None,
            (v >> 166) & 511 or None, (v >> 160) & 63 or None, (v >> 154) & 63 or None, draught or None,
            _text(v >> 2, 120), ((v >> 146) & 15, (v >> 141) & 31, (v >> 136) & 31, (v >> 130) & 63),
        )  # fmt: skip
    part = (value >> (bit_count - 40)) & 3
    if part == 0:  # part A: the name
        v = value >> (bit_count - 160)
        mmsi = (v >> 122) & 0x3FFFFFFF
        return mmsi, 0, None, None, _text(v, 120), None, None, None, None, None, None, None, None
    if part != 1 or bit_count < 168:
        return None
    v = value >> (bit_count - 168)
    mmsi = (v >> 130) & 0x3FFFFFFF
    callsign, ship_type = _text(v >> 36, 42), (v >> 120) & 255 or None
    if str(mmsi).startswith("98"):  # auxiliary craft send a mothership MMSI where the dimensions go
        return mmsi, 1, None, callsign, None, ship_type, None, None, None, None, None, None, None
    return (
        mmsi, 1, None, callsign, None, ship_type, (v >> 27) & 511 or None, (v >> 18) & 511 or None,
        (v >> 12) & 63 or None, (v >> 6) & 63 or None, None, None, None,
    )  # fmt: skip
