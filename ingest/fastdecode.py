"""The common messages decoded straight from the payload, without pyais. Pure.

Position reports (types 1, 2, 3, 18, 27) are nearly all the traffic, and
static reports (5, 24) most of the rest. For them, building pyais's message
objects (attrs classes, enums for every code, the bit vector) costs more than
the decoding itself. Positions are decoded a chunk at a time
(:func:`positions`, into a :class:`~ingest.batch.PositionBatch`): the
armoured characters of every message become three 64-bit words per row, and
each field is a shift and a mask of them, for all rows at once. A static
report's payload becomes one integer (the 6-to-8 bit repacking done by
``binascii`` on the base64 alphabet, as pyais does), each field a shift and a
mask of it. The values are exactly pyais's
(its scalings, its roundings, the same bits for longer messages), already in
our units, with "not available" codes as ``None``; the differential tests
decode every shared capture and generated payloads both ways and require
identical records. Messages of other types, and lengths pyais reads
differently (a type 5 shorter than 424 bits, a type 24 part B shorter than
168, part numbers 2 and 3), are left to pyais.
"""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64
from collections.abc import Sequence
from typing import Final

import numpy as np

from ingest.batch import MISSING, Floats, Ints, PositionBatch, micros
from ingest.decode import ARMOR, StaticFields, refine_to_second, text

_B64: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: AIS armour to the base64 character of the same six bits.
_ARMOR_TO_B64: Final = bytes(_B64[ARMOR[c]] for c in range(256))
#: base64 characters to AIS six-bit text (ITU-R M.1371 table 47).
_B64_TO_TEXT: Final = bytes.maketrans(
    _B64, b"@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_ !\"#$%&'()*+,-./0123456789:;<=>?"
)
_PAD: Final = (b"", b"AAA", b"AA", b"A")  # "A" is six zero bits


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


_ARMOR_TABLE: Final = np.array(ARMOR, np.int64)
#: A position report's first 168 bits as three words of 60, 60 and 48 bits (10, 10 and 8 characters).
_WORD_BITS: Final = 60
#: Where each field of a position report lies (first bit, width), by layout.
_LAYOUT_1: Final = {
    "mmsi": (8, 30),
    "status": (38, 4),
    "rate": (42, 8),
    "speed": (50, 10),
    "accuracy": (60, 1),
    "lon": (61, 28),
    "lat": (89, 27),
    "course": (116, 12),
    "heading": (128, 9),
    "second": (137, 6),
}
_LAYOUT_18: Final = {
    "mmsi": (8, 30),
    "speed": (46, 10),
    "accuracy": (56, 1),
    "lon": (57, 28),
    "lat": (85, 27),
    "course": (112, 12),
    "heading": (124, 9),
    "second": (133, 6),
}
_LAYOUT_27: Final = {
    "mmsi": (8, 30), "accuracy": (38, 1), "status": (40, 4), "lon": (44, 18), "lat": (62, 17),
    "speed": (79, 6), "course": (85, 9),
}  # fmt: skip


def _words(payloads: list[bytes]) -> list[Ints]:
    """The first 168 bits of each payload as three words (a type 27's 96 bits
    and more followed by zeros): character k of every payload at once, its
    six bits shifted into its word."""
    n = len(payloads)
    lengths = np.fromiter(map(len, payloads), np.int64, n)
    starts = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    joined = np.frombuffer(b"".join(payloads) + b"0" * 28, np.uint8)  # "0" is six zero bits
    short = lengths < 28
    words = [np.zeros(n, np.int64) for _ in range(3)]
    for k in range(28):
        six = _ARMOR_TABLE[joined[starts + k]]
        if short.any():
            six[lengths <= k] = 0
        word = words[k // 10]
        word <<= 6
        word |= six
    words[2] <<= 12  # its 48 bits at the top of 60, as in the others
    return words


def _fields(words: list[Ints], layout: dict[str, tuple[int, int]]) -> dict[str, Ints]:
    """Each field of ``layout`` (first bit, width) as unsigned integers, one per row."""
    fields = {}
    for name, (start, width) in layout.items():
        end = start + width
        first, last = start // _WORD_BITS, (end - 1) // _WORD_BITS
        if first == last:
            value = (words[first] >> (_WORD_BITS * (first + 1) - end)) & ((1 << width) - 1)
        else:  # across two words
            low = end - _WORD_BITS * last
            high = (words[first] & ((1 << (width - low)) - 1)) << low
            value = high | (words[last] >> (_WORD_BITS - low))
        fields[name] = value
    return fields


def _signed(raw: Ints, width: int) -> Ints:
    return np.where(raw >= 1 << (width - 1), raw - (1 << width), raw)


def _degrees(raw: Ints, width: int, scale: int) -> Floats:
    """Longitude or latitude in degrees from 1/10000 minute (``scale`` 10) or
    1/10 minute (``scale`` 10000), rounded to the micro-degree as pyais does."""
    return ((scale * _signed(raw, width) + 3) // 6) / 1e6


def _where_below(values: Ints, limit: int) -> Ints:
    return np.where(values < limit, values, MISSING)


def positions(
    payloads: list[bytes],
    times: Sequence[float | None],
    received: Sequence[float],
    stations: list[str | None],
    crcs: Sequence[int],
    sentences: Sequence[int],
) -> PositionBatch:
    """The :class:`PositionBatch` of type 1, 2, 3 and 18 messages (at least
    168 bits) and 27 (at least 96), one row each: timed by ``times``, or when
    that is None by ``received`` moved back to the message's UTC second. The
    fields are read from the first 168 (type 27: 96) bits, all rows at once
    (:func:`_words`, :func:`_fields`)."""
    n = len(payloads)
    words = _words(payloads)
    msg_type = (words[0] >> 54).astype(np.int32)
    is_18, is_27 = msg_type == 18, msg_type == 27
    is_1 = ~(is_18 | is_27)
    mmsi = np.empty(n, np.int64)
    lat, lon, speed, course, turn = (np.full(n, np.nan) for _ in range(5))
    heading, status, second = (np.full(n, MISSING, np.int64) for _ in range(3))
    accuracy = np.full(n, -1, np.int64)
    for rows, layout in ((is_1, _LAYOUT_1), (is_18, _LAYOUT_18), (is_27, _LAYOUT_27)):
        if not rows.any():
            continue
        f = _fields([word[rows] for word in words], layout)
        mmsi[rows], accuracy[rows] = f["mmsi"], f["accuracy"]
        if layout is _LAYOUT_27:
            lon[rows], lat[rows] = _degrees(f["lon"], 18, 10_000), _degrees(f["lat"], 17, 10_000)
            speed[rows] = np.where(f["speed"] >= 63, np.nan, f["speed"])
            course[rows] = np.where(f["course"] >= 360, np.nan, f["course"])
            status[rows] = f["status"]
            continue
        lon[rows], lat[rows] = _degrees(f["lon"], 28, 10), _degrees(f["lat"], 27, 10)
        speed[rows] = np.where(f["speed"] >= 1023, np.nan, f["speed"] / 10.0)
        course[rows] = np.where(f["course"] >= 3600, np.nan, f["course"] / 10.0)
        heading[rows], second[rows] = _where_below(f["heading"], 360), _where_below(f["second"], 60)
        if layout is _LAYOUT_1:
            status[rows] = f["status"]
            rate = _signed(f["rate"], 8)
            scaled = np.copysign(np.rint((rate / 4.733) ** 2), rate)  # pyais's scaling
            turn[rows] = np.where(rate == 0, 0.0, np.where(np.abs(rate) >= 127, np.nan, scaled))
    unplaced = ~((np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))  # 91, 181: not available
    lat[unplaced] = lon[unplaced] = np.nan
    when = np.array(times, np.float64)  # None is NaN
    untimed = np.flatnonzero(np.isnan(when))
    if len(untimed):
        seconds = second.tolist()
        when[untimed] = [
            refine_to_second(received[i], None if seconds[i] < 0 else seconds[i]) for i in untimed.tolist()
        ]
    return PositionBatch(
        micros(when), mmsi, msg_type, lat, lon, speed, course, heading.astype(np.int32),
        status.astype(np.int32), turn, accuracy.astype(np.int8), second.astype(np.int32), stations,
        np.array(crcs, np.int64), np.array(sentences, np.int32),
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
