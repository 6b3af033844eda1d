"""NMEA 0183 / 4.0 line parsing for AIS: pure functions, no I/O.

One line in, one of three things out:

* a :class:`Sentence` (an ``!xxVDM`` or ``!xxVDO`` fragment whose checksum,
  fields and payload characters are valid), with the event time carried by its
  tag block or by a receiver epoch after the checksum (AMSA, USCG);
* a :class:`GatehouseTime` (a ``$PGHP`` line timing the sentence after it);
* a :class:`Skip` saying why the line carries no AIS: ``filtered`` (blank,
  comment, another NMEA sentence) or ``malformed`` with a reason.

pyais does not enforce checksums and maps bad payload characters to zero; this
layer rejects both before pyais sees the payload.
"""

from __future__ import annotations

import calendar
import re
from functools import reduce
from operator import xor
from typing import Final, NamedTuple

FILTERED: Final = "filtered"
MALFORMED: Final = "malformed"

#: Longest line we accept. A sentence is at most 82 characters; tag blocks and
#: receiver suffixes add some. Longer input is garbage or a runaway stream.
MAX_LINE_BYTES: Final = 1024

#: Event times before this are not AIS (AIS went live in the 2000s).
MIN_EPOCH_S: Final = 946_684_800.0  # 2000-01-01T00:00:00Z
#: A ``c`` value above this is in milliseconds (seconds would be after 5138 AD).
MS_THRESHOLD: Final = 100_000_000_000

#: The common line: an optional tag block, then a well-formed AIS sentence, an
#: optional receiver suffix after the checksum, surrounding white space.
_WHOLE: Final = re.compile(
    rb"\s*(?:\\([^\\]*)\\)?!((?:..)VD[MO],([1-9]),([1-9]),([0-9]?),([^,*]?),([0-W`-w]+),([0-5]))"
    rb"\*([0-9A-Fa-f]{2})(,[ -~]*)?\s*"
)
#: What may follow the checksum: receiver fields ('*hh,1327664830'), white space.
_TRAILER: Final = re.compile(rb"(,[ -~]*)?\s*")
_DIGIT: Final = {str(i).encode(): i for i in range(10)}
_new = tuple.__new__
_HEX: Final = {f"{i:02X}".encode(): i for i in range(256)} | {f"{i:02x}".encode(): i for i in range(256)}


def _hex(digits: bytes) -> int | None:
    """Two hex digits, any case, or None."""
    value = _HEX.get(digits)
    if value is None and len(digits) == 2 and all(c in b"0123456789abcdefABCDEF" for c in digits):
        value = int(digits, 16)
    return value


class Sentence(NamedTuple):
    """One valid AIS fragment."""

    frag_count: int
    frag_num: int
    seq_id: bytes
    channel: bytes
    payload: bytes
    fill_bits: int
    checksum: int
    #: Event time in UNIX seconds from the tag block ``c`` or a receiver epoch.
    time: float | None
    #: Tag block ``s`` (the receiving station), if any.
    station: str | None
    #: Tag block ``g`` group id: fragments of one message share it.
    group: bytes | None


class GatehouseTime(NamedTuple):
    """A ``$PGHP`` line: the receive time of the sentence after it.

    Its last field looks like that sentence's checksum but, in the DMA feed,
    is often ``00`` or another value, so it is not used to match.
    """

    time: float


class Skip(NamedTuple):
    """A line that yields no AIS sentence, and why."""

    outcome: str  # FILTERED or MALFORMED
    reason: str
    detail: str = ""


BLANK: Final = Skip(FILTERED, "blank")
COMMENT: Final = Skip(FILTERED, "comment")


def xor_checksum(data: bytes) -> int:
    """NMEA checksum: the XOR of every byte of ``data``.

    Folds the bytes as one integer (shifts of 64, 32 ... 1 bytes): about twice
    as fast as a byte loop, and this runs for every line.
    """
    if len(data) > 128:
        return reduce(xor, data, 0)
    value = int.from_bytes(data, "little")
    value ^= value >> 512
    value ^= value >> 256
    value ^= value >> 128
    value ^= value >> 64
    value ^= value >> 32
    value ^= value >> 16
    value ^= value >> 8
    return value & 0xFF


def parse_line(line: bytes) -> Sentence | GatehouseTime | Skip:
    """Parse one line (without its line ending). The common case, a
    well-formed sentence, is one regular expression and the checks below
    (written out here: this runs for every line); anything else takes the
    long way, which says what is wrong."""
    match = _WHOLE.fullmatch(line) if len(line) <= MAX_LINE_BYTES and line.isascii() else None
    if match is None:
        return _parse_slowly(line)
    tag, body, count, num, seq_id, channel, payload, fill, checksum, trailer = match.groups()
    time: float | None = None
    station: str | None = None
    group: bytes | None = None
    if tag is not None:
        parsed = _TAG_CACHE.get(tag) or _tag_block(tag)  # the cache's lookup written out: every line
        if isinstance(parsed, Skip):
            return parsed
        time, station, group = parsed
    expected = _HEX.get(checksum)
    if expected is None:  # mixed case ('aC'): still hex, the regex saw to that
        expected = int(checksum, 16)
    if xor_checksum(body) != expected:
        return Skip(MALFORMED, "checksum")
    frag_count = _DIGIT[count]
    frag_num = _DIGIT[num]
    if frag_num > frag_count:
        return Skip(MALFORMED, "fragment_number", f"{frag_num} of {frag_count}")
    if trailer and time is None:
        last = trailer.rsplit(b",", 1)[-1]
        if last.isdigit():
            time = _epoch(int(last))
            if time is None:
                return Skip(MALFORMED, "timestamp", last.decode())
    return _new(
        Sentence,
        (frag_count, frag_num, seq_id, channel, payload, _DIGIT[fill], expected, time, station, group),
    )


def _parse_slowly(line: bytes) -> Sentence | GatehouseTime | Skip:
    """Every line the fast regex does not take: other sentences, $PGHP, and
    each way a line can be broken, with its reason."""
    line = line.strip()
    if not line:
        return BLANK
    first = line[0]
    if first == 0x23:  # '#'
        return COMMENT
    if len(line) > MAX_LINE_BYTES:
        return Skip(MALFORMED, "line_too_long", f"{len(line)} bytes")
    if not line.isascii():
        return Skip(MALFORMED, "not_ascii")

    if first == 0x5C:  # '\' : NMEA 4.0 tag block
        end = line.find(b"\\", 1)
        if end < 0:
            return Skip(MALFORMED, "tag_block", "no closing backslash")
        tag = _tag_block(line[1:end])
        if isinstance(tag, Skip):
            return tag
        line = line[end + 1 :]
        if not line:
            return Skip(MALFORMED, "truncated", "tag block without a sentence")
        first = line[0]

    if first == 0x21:  # '!': not the common well-formed case, so say what is wrong
        return _diagnose(line)
    if first == 0x24:  # '$'
        if line.startswith(b"$PGHP,"):
            return _parse_gatehouse(line)
        return Skip(FILTERED, "other_sentence", line[:6].decode())
    return Skip(MALFORMED, "unrecognised", line[:12].decode(errors="replace"))


def _diagnose(line: bytes) -> Skip:
    """Why a line starting with '!' is not a well-formed AIS sentence."""
    star = line.find(b"*")
    if star < 0 or len(line) < star + 3:
        return Skip(MALFORMED, "truncated", "no checksum")
    expected = _hex(line[star + 1 : star + 3])
    if expected is None:
        return Skip(MALFORMED, "checksum", "checksum is not hex")
    if xor_checksum(line[1:star]) != expected:
        return Skip(MALFORMED, "checksum")
    trailer = line[star + 3 :]
    if trailer and _TRAILER.fullmatch(trailer) is None:
        return Skip(MALFORMED, "trailer", "unexpected bytes after the checksum")
    fields = line[1:star].split(b",")
    if len(fields) != 7:
        return Skip(MALFORMED, "fields", f"{len(fields)} fields, expected 7")
    head, count, num, seq_id, channel, payload, fill = fields
    if len(head) != 5 or head[2:] not in (b"VDM", b"VDO"):
        return Skip(FILTERED, "other_sentence", head.decode())
    if not (count.isdigit() and num.isdigit() and 1 <= int(num) <= int(count) <= 9):
        return Skip(MALFORMED, "fragment_number", f"{num.decode()} of {count.decode()}")
    if len(seq_id) > 1 or (seq_id and not seq_id.isdigit()):
        return Skip(MALFORMED, "fields", f"sequence id {seq_id.decode()}")
    if len(channel) > 1:
        return Skip(MALFORMED, "fields", f"channel {channel.decode()}")
    if not (fill.isdigit() and int(fill) <= 5):
        return Skip(MALFORMED, "fill_bits", fill.decode())
    if not payload:
        return Skip(MALFORMED, "payload", "empty payload")
    return Skip(MALFORMED, "payload", "characters outside the AIS alphabet")


def _epoch(value: float) -> float | None:
    """Seconds from a UNIX time in seconds or milliseconds, or None if absurd."""
    if value > MS_THRESHOLD:
        value /= 1000.0
    return value if value >= MIN_EPOCH_S else None


_TAG_CACHE: dict[bytes, tuple[float | None, str | None, bytes | None] | Skip] = {}


def _tag_block(tag: bytes) -> tuple[float | None, str | None, bytes | None] | Skip:
    """A parsed tag block, memoised: a receiver stamps every sentence of one
    second with the same block, so most lookups hit."""
    parsed = _TAG_CACHE.get(tag)
    if parsed is None:
        if len(_TAG_CACHE) >= 512:
            _TAG_CACHE.clear()
        parsed = _TAG_CACHE[tag] = _parse_tag_block(tag)
    return parsed


#: A tag block is printable ASCII: its checksum does not see a NUL byte (XOR
#: with zero), and a control character in a station name must never reach
#: the database, which refuses a NUL in text.
_PRINTABLE: Final = re.compile(rb"[ -~]*")


def _parse_tag_block(tag: bytes) -> tuple[float | None, str | None, bytes | None] | Skip:
    if _PRINTABLE.fullmatch(tag) is None:
        return Skip(MALFORMED, "tag_block", "control character in the tag block")
    star = tag.rfind(b"*")
    if star < 0:
        return Skip(MALFORMED, "tag_block", "no checksum")
    expected = _hex(tag[star + 1 :])
    if expected is None or xor_checksum(tag[:star]) != expected:
        return Skip(MALFORMED, "tag_block", "bad checksum")
    time: float | None = None
    station: str | None = None
    group: bytes | None = None
    for item in tag[:star].split(b","):
        key, sep, value = item.partition(b":")
        if not sep:
            return Skip(MALFORMED, "tag_block", f"field without ':' ({item.decode()})")
        if key == b"c":
            try:
                time = _epoch(float(value))
            except ValueError:
                time = None
            if time is None:
                return Skip(MALFORMED, "timestamp", value.decode())
        elif key == b"s":
            station = value.decode()
        elif key == b"g":
            parts = value.split(b"-")
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                return Skip(MALFORMED, "tag_block", f"bad group {value.decode()}")
            group = parts[2]
    return time, station, group


def _parse_gatehouse(line: bytes) -> GatehouseTime | Skip:
    """``$PGHP,1,yyyy,mm,dd,HH,MM,SS,mss,country,region,station,online,cs*hh``."""
    star = line.rfind(b"*")
    expected = _hex(line[star + 1 : star + 3]) if star > 0 else None
    if expected is None or xor_checksum(line[1:star]) != expected:
        return Skip(MALFORMED, "checksum", "$PGHP")
    fields = line[1:star].split(b",")
    if len(fields) < 9 or fields[1] != b"1":
        return Skip(FILTERED, "other_sentence", "$PGHP")
    try:
        y, mo, d, h, mi, s, ms = (int(f) for f in fields[2:9])
        time = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + ms / 1000.0
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
            raise ValueError
    except ValueError:
        return Skip(MALFORMED, "timestamp", "$PGHP date")
    if time < MIN_EPOCH_S:
        return Skip(MALFORMED, "timestamp", "$PGHP date")
    return GatehouseTime(float(time))
