"""Property tests: mutated real lines never break the reader, and the
accounting always adds up."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.pipeline import LineDecoder

CLOCK = 1_700_000_000.0


@pytest.fixture(scope="module")
def real_lines(shared_data: Path) -> list[bytes]:
    """Real lines of every shape: plain, tag blocks, $PGHP, multi-part, trailing epochs."""
    lines: list[bytes] = []
    for name, count in (
        ("aishub-gpsd/ais-nmea-sample.log", 300),
        ("aisdb/test_data_20211101.nm4", 200),
        ("dma-aislib/stream_example.txt", 200),
    ):
        lines += (Path(shared_data) / name).read_bytes().splitlines()[:count]
    return lines


def mutate(line: bytes, data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["keep", "truncate", "flip", "insert", "delete", "garbage"]))
    if not line or kind == "keep":
        return line
    at = data.draw(st.integers(0, len(line) - 1))
    if kind == "truncate":
        return line[:at]
    if kind == "flip":
        return line[:at] + bytes([data.draw(st.integers(0, 255))]) + line[at + 1 :]
    if kind == "insert":
        return line[:at] + data.draw(st.binary(min_size=1, max_size=8)) + line[at:]
    if kind == "delete":
        return line[:at] + line[at + 1 :]
    return data.draw(st.binary(max_size=120))


def accounted(decoder: LineDecoder) -> bool:
    s = decoder.stats
    return s.lines == s.accepted + s.duplicate + sum(s.filtered.values()) + sum(s.malformed.values())


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_mutated_real_lines_are_counted_never_raised(real_lines: list[bytes], data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(real_lines) - 40))
    lines = [mutate(line, data) for line in real_lines[start : start + 40]]
    if data.draw(st.booleans()):
        lines = data.draw(st.permutations(lines))
    decoder = LineDecoder("mutated")
    decoder.feed(lines, CLOCK)
    decoder.close()
    positions, statics = decoder.take()
    assert accounted(decoder)
    assert decoder.stats.positions == len(positions)
    for p in positions:
        assert p.lat is None or -90 <= p.lat <= 90
        assert p.lon is None or -180 <= p.lon <= 180
        assert p.speed is None or 0 <= p.speed < 102.25
        assert p.course is None or 0 <= p.course < 360
        assert p.ts.tzinfo is not None
    for s in statics:
        assert s.shipname is None or "@" not in s.shipname


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_how_a_stream_is_chunked_changes_nothing(real_lines: list[bytes], data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(real_lines)), max_size=8)))
    whole = LineDecoder("whole")
    whole.feed(real_lines, CLOCK)
    whole.close()
    chunked = LineDecoder("chunked")
    for a, b in zip([0, *cuts], [*cuts, len(real_lines)], strict=True):
        chunked.feed(real_lines[a:b], CLOCK)
    chunked.close()
    assert whole.take() == chunked.take()
    assert whole.stats.malformed == chunked.stats.malformed
    assert accounted(chunked)


@given(
    st.lists(
        st.binary(max_size=40)
        | st.sampled_from([b"!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C", b"", b"\r\n", b"a\rb"]),
        max_size=20,
    ),
    st.integers(1, 50),
)
def test_many_messages_split_as_each_alone(messages: list[bytes], max_line_bytes: int) -> None:
    from ingest.lines import split_message, split_messages

    assert split_messages(messages, max_line_bytes=max_line_bytes) == [
        line for message in messages for line in split_message(message, max_line_bytes=max_line_bytes)
    ]


@given(st.binary(max_size=60), st.integers(1, 50))
def test_one_message_splits_as_the_splitter_does(data: bytes, max_line_bytes: int) -> None:
    from ingest.lines import LineSplitter, split_message

    splitter = LineSplitter(max_line_bytes=max_line_bytes)
    assert split_message(data, max_line_bytes=max_line_bytes) == splitter.feed(data) + splitter.flush()
