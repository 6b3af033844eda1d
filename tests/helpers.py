"""Building test input with pyais's encoder: real sentences, chosen content."""

from __future__ import annotations

from functools import reduce
from operator import xor
from typing import Any

from pyais import encode_dict


def checksum(body: str) -> str:
    return f"{reduce(xor, body.encode(), 0):02X}"


def sentence(body: str) -> bytes:
    """``!`` + body + ``*hh`` with the right checksum (body without '!')."""
    return f"!{body}*{checksum(body)}".encode()


def tag_block(**fields: Any) -> bytes:
    """A valid NMEA 4.0 tag block, e.g. tag_block(s="rx1", c=1700000000)."""
    body = ",".join(f"{k}:{v}" for k, v in fields.items())
    return f"\\{body}*{checksum(body)}\\".encode()


def encode(data: dict[str, Any], *, channel: str = "A", talker: str = "AI", seq_id: int = 0) -> list[bytes]:
    """The NMEA sentences of one message, as pyais encodes it."""
    return [s.encode() for s in encode_dict(data, talker_id=talker, radio_channel=channel, seq_id=seq_id)]


def position(mmsi: int = 273456780, **fields: Any) -> bytes:
    """One type 1 sentence."""
    data = {
        "type": 1,
        "mmsi": mmsi,
        "lat": 42.75,
        "lon": 133.05,
        "speed": 9.5,
        "course": 123.4,
        "heading": 120,
        "second": 30,
        "status": 0,
    }
    data.update(fields)
    (line,) = encode(data)
    return line


def _sixbit(char: int) -> int:
    value = char - 48
    return value - 8 if value > 40 else value


def with_bits(lines: list[bytes], offset: int, width: int, value: int) -> list[bytes]:
    """The same message with bits [offset, offset+width) set to ``value``
    (for content pyais's encoder will not write, such as reserved codes)."""
    fields = [line[1 : line.index(b"*")].split(b",") for line in lines]
    payload = b"".join(f[5] for f in fields)
    bits = "".join(f"{_sixbit(c):06b}" for c in payload)
    bits = bits[:offset] + f"{value:0{width}b}" + bits[offset + width :]
    armored = "".join(
        chr(v + 48 if v < 40 else v + 56) for v in (int(bits[i : i + 6], 2) for i in range(0, len(bits), 6))
    )
    out, start = [], 0
    for f in fields:
        part = armored[start : start + len(f[5])]
        start += len(f[5])
        f[5] = part.encode()
        out.append(sentence(b",".join(f).decode()))
    return out
