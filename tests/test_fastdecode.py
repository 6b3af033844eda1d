"""The fast path against pyais, its oracle: every message of every shared
capture, and generated payloads with every field at its edges, every length
the pipeline accepts and every fill-bit count, decode to identical fields."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyais.bit_vector import bit_vector
from pyais.messages import MSG_CLASS, MessageType5, MessageType24PartA, MessageType24PartB

from ingest import fastdecode
from ingest.assembly import FragmentAssembler
from ingest.batch import PositionBatch
from ingest.decode import BIT_LENGTHS, make_position, pyais_position, pyais_static, refine_to_second
from ingest.nmea import Sentence, parse_line

CAPTURES = [
    "aishub-gpsd/ais-nmea-sample.log",
    "gpsd-test/sample.aivdm",
    "gpsd-test/ais-nmea.log",
    "dma-aislib/stream_example.txt",
    "amsa-risky/ais.txt.gz",
    "aisdb/test_data_20211101.nm4",
]
FAST_TYPES = (1, 2, 3, 18, 27, 5, 24)


RECEIVED = 1_700_000_012.7


def both_ways(payload: bytes, fill_bits: int) -> tuple[Any, Any]:
    """(the fast path's record or static fields, or None; pyais's, or the
    exception pyais raised). Positions are timed by the receive clock and
    the message's own second, so that the second's handling is compared too."""
    msg_type = fastdecode.ARMOR[payload[0]]
    bit_count = len(payload) * 6 - fill_bits
    fast: Any
    if msg_type in (5, 24):
        fast = fastdecode.static(msg_type, fastdecode.payload_value(payload, fill_bits), bit_count)
    else:
        (fast,) = fastdecode.positions([payload], [None], [RECEIVED], ["rx"], [7], [1]).records()
    try:
        bits = bit_vector(payload, fill_bits)
        message = MSG_CLASS[msg_type].from_vector(bits)
        if msg_type in (5, 24):
            oracle: Any = pyais_static(message, bits)
        else:
            fields = pyais_position(message)
            oracle = make_position(fields, msg_type, refine_to_second(RECEIVED, fields[9]), "rx", 7, 1)
    except Exception as exc:  # pyais raises on some bits: then the fast path must leave it to pyais
        oracle = exc
    return fast, oracle


def payloads(path: Path) -> list[tuple[bytes, int]]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    assembler = FragmentAssembler()
    out = []
    for n, line in enumerate(data.splitlines()):
        parsed = parse_line(line)
        if not isinstance(parsed, Sentence):
            continue
        if parsed.frag_count > 1:
            whole = assembler.add(parsed, 0.0, n)
            if whole is None:
                continue
            payload, fill = whole.payload, whole.fill_bits
        else:
            payload, fill = parsed.payload, parsed.fill_bits
        msg_type = fastdecode.ARMOR[payload[0]]
        if msg_type in FAST_TYPES:
            low, high = BIT_LENGTHS[msg_type]
            if low <= len(payload) * 6 - fill <= high:
                out.append((payload, fill))
    return out


@pytest.mark.parametrize("capture", CAPTURES)
def test_every_message_of_the_captures_decodes_as_pyais_decodes_it(shared_data: Path, capture: str) -> None:
    messages = payloads(shared_data / capture)
    assert messages
    fast_decoded = 0
    for payload, fill in messages:
        fast, oracle = both_ways(payload, fill)
        if fast is None:
            continue  # left to pyais (a short type 5, say)
        assert not isinstance(oracle, Exception), (payload, oracle)
        assert fast == oracle, payload
        fast_decoded += 1
    assert fast_decoded >= 0.95 * len(messages)


@pytest.mark.parametrize("capture", CAPTURES)
def test_a_capture_decoded_as_one_batch_is_each_decoded_alone(shared_data: Path, capture: str) -> None:
    """The chunk-at-a-time decode mixes types and lengths in one array: each
    row must come out as the message decoded on its own (and as pyais, above)."""
    messages = [(p, f) for p, f in payloads(shared_data / capture) if fastdecode.ARMOR[p[0]] not in (5, 24)]
    assert messages
    n = len(messages)
    times = [None if i % 3 else 1_700_000_000.0 + i / 7 for i in range(n)]  # tagged and untagged mixed
    stations = [None if i % 2 else f"rx{i % 5}" for i in range(n)]
    lines = [1 + i % 2 for i in range(n)]
    batch = fastdecode.positions(
        [p for p, _ in messages], times, [RECEIVED] * n, stations, list(range(n)), lines
    )
    alone = [
        fastdecode.positions([p], [tm], [RECEIVED], [s], [i], [1 + i % 2]).records()[0]
        for i, ((p, _), tm, s) in enumerate(zip(messages, times, stations, strict=True))
    ]
    assert batch.records() == alone
    assert PositionBatch.from_records(alone).records() == alone


def _layout(msg_type: int, part: int) -> list[tuple[str, int]]:
    cls = {5: MessageType5, 24: (MessageType24PartA, MessageType24PartB)[part]}.get(
        msg_type, MSG_CLASS[msg_type]
    )
    return [(field.name, field.metadata["width"]) for field in cls.fields()]  # type: ignore[attr-defined]


#: Values that matter for each width besides random ones: both ends, the
#: middle, and the not-available codes (lat 91, lon 181, speed 1023,
#: course 3600, heading 511, second 60-63, turn -128 and +-127).
_CODES = {28: [181 * 600_000], 27: [91 * 600_000], 18: [181 * 600], 17: [91 * 600], 12: [3600, 3599],
          10: [1023, 1022], 9: [511, 360, 359], 8: [128, 127, 129, 1], 6: [60, 63, 59]}  # fmt: skip


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, int]:
    msg_type = draw(st.sampled_from(FAST_TYPES))
    part = draw(st.integers(0, 3)) if msg_type == 24 else 0
    value = bits = 0
    for name, width in _layout(msg_type, min(part, 1)):
        top = (1 << width) - 1
        if name == "msg_type":
            field = msg_type
        elif name == "partno":
            field = part
        else:
            edges = [0, 1, top, top - 1, top >> 1, *(c & top for c in _CODES.get(width, []))]
            negative = [(1 << width) - c for c in _CODES.get(width, []) if 0 < c < 1 << width]
            field = draw(st.sampled_from(edges + negative) | st.integers(0, top))
        value = (value << width) | field
        bits += width
    low, high = BIT_LENGTHS[msg_type]
    extra = draw(st.integers(low - bits, min(high, bits + 40) - bits))  # shorter (as allowed) or longer
    value = value >> -extra if extra < 0 else (value << extra) | draw(st.integers(0, (1 << extra) - 1))
    bits += extra
    fill = -bits % 6
    value <<= fill
    sixes = [(value >> (6 * i)) & 63 for i in reversed(range((bits + fill) // 6))]
    chars = bytes(six + 48 if six < 40 else six + 56 for six in sixes)  # the AIS armour
    return chars, fill


@settings(max_examples=3000, deadline=None)
@given(messages())
def test_generated_messages_decode_as_pyais_decodes_them(message: tuple[bytes, int]) -> None:
    payload, fill = message
    fast, oracle = both_ways(payload, fill)
    if fast is not None:
        assert not isinstance(oracle, Exception), oracle
        assert fast == oracle
