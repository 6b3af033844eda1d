"""The whole decoder on the real captures, checked against gpsd's decode."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import IngestStats, LineDecoder
from ingest.records import Position

NOW = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
POSITION_TYPES = (1, 2, 3, 18, 19, 27)
#: The AIS talkers gpsd 3.22's packet lexer knows; it drops the others.
GPSD_TALKERS = {b"AI", b"AB", b"AD", b"AN", b"AR", b"AS", b"AT", b"AX", b"BS", b"SA"}

CAPTURES = {
    # file: (gpsdecode output, first and last event time, or None if untimed)
    "aishub-gpsd/ais-nmea-sample.log": ("ais-nmea-sample.log", None),
    "dma-aislib/stream_example.txt": ("stream_example.txt", ("2010-06-11T11:46:10", "2010-06-11T11:46:40")),
    # AMSA: a receiver epoch on 851 lines; $PGHP on satellite (AIS_S) lines, two hours late
    "amsa-risky/ais.txt.gz": ("amsa-ais.txt", ("2012-01-27T09:55:00", "2012-01-27T11:54:00")),
    "aisdb/test_data_20211101.nm4": (
        "test_data_20211101.nm4",
        ("2021-11-01T01:58:00", "2021-11-01T02:00:00"),
    ),
}


def read(path: Path) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.read().splitlines()


def run(lines: list[bytes], **options: Any) -> tuple[list[Position], IngestStats]:
    decoder = LineDecoder("capture", **options)
    decoder.feed(lines, NOW)
    decoder.close()
    positions, _ = decoder.take()
    return positions, decoder.stats


def gpsd_positions(shared_data: Path, name: str) -> list[dict[str, Any]]:
    path = shared_data / "gpsdecode-3.22-output" / f"{name}.gpsdecode-j.json.gz"
    with gzip.open(path, "rt") as fh:
        return [m for m in map(json.loads, fh) if m.get("type") in POSITION_TYPES]


def gpsd_key(m: dict[str, Any]) -> tuple[Any, ...]:
    """gpsd's fields in our units: NaN and out-of-range codes become None."""
    lat, lon, speed, course = m.get("lat"), m.get("lon"), m.get("speed"), m.get("course")
    if lat is not None and (abs(lat) > 90 or abs(lon) > 180):
        lat = lon = None
    speed = None if speed == "nan" else 102.2 if speed == "fast" else speed
    limit = 63 if m["type"] == 27 else 102.25
    speed = None if speed is None or speed >= limit else speed
    course = None if course is None or course >= 360 else course
    places = 1 if m["type"] == 27 else 4  # gpsd 3.22 prints type 27 positions to 0.1 degree
    return (
        m["mmsi"], m["type"],
        None if lat is None else round(lat, places), None if lon is None else round(lon, places),
        None if speed is None else round(speed, 1), None if course is None else round(course, 1),
    )  # fmt: skip


def our_key(p: Position) -> tuple[Any, ...]:
    places = 1 if p.msg_type == 27 else 4
    return (
        p.mmsi, p.msg_type,
        None if p.lat is None else round(p.lat, places), None if p.lon is None else round(p.lon, places),
        None if p.speed is None else round(p.speed, 1), None if p.course is None else round(p.course, 1),
    )  # fmt: skip


@pytest.mark.parametrize("capture", sorted(CAPTURES))
def test_every_line_is_accounted_for(shared_data: Path, capture: str) -> None:
    lines = read(shared_data / capture)
    positions, stats = run(lines)
    assert stats.lines == len(lines)
    outcomes = stats.accepted + stats.duplicate + sum(stats.filtered.values()) + sum(stats.malformed.values())
    assert outcomes == stats.lines
    assert stats.positions == len(positions) > 0


@pytest.mark.parametrize("capture", [c for c, (_, span) in CAPTURES.items() if span])
def test_captures_keep_their_own_timestamps(shared_data: Path, capture: str) -> None:
    """Positions carry the capture's times (tag block, $PGHP, receiver epoch);
    only AMSA has untimed lines too, which take the replay's clock."""
    positions, _ = run(read(shared_data / capture))
    first, last = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in CAPTURES[capture][1])  # type: ignore[index]
    timed = [p.ts for p in positions if p.ts.timestamp() < NOW - 120]
    assert first <= min(timed) and max(timed) <= last
    untimed = len(positions) - len(timed)
    assert len(timed) >= 700 if capture.startswith("amsa") else untimed == 0


def test_aishub_sample_agrees_with_gpsd_message_for_message(shared_data: Path) -> None:
    """Every position we decode, gpsd decodes identically and in the same order.

    gpsd decodes 11 more, all explained: 6 sentences repeat the payload of the
    sentence before them with fill bits 5 (163 bits, short for a type 1; we
    count them malformed), and 5 are multi-part messages longer than AIS's
    1008-bit maximum whose leading type 1 repeats a single sentence of the same
    capture. Each of the 11 is therefore a position we also stored.
    """
    lines = read(shared_data / "aishub-gpsd/ais-nmea-sample.log")
    ours, stats = run(lines, dedup_window_s=0)
    theirs = gpsd_positions(shared_data, "ais-nmea-sample.log")
    our_keys = [our_key(p) for p in ours]
    their_keys = [gpsd_key(m) for m in theirs]

    # Walk both in order: every mismatch must be one of gpsd's extra messages.
    extra: list[tuple[Any, ...]] = []
    j = 0
    for key in their_keys:
        if j < len(our_keys) and our_keys[j] == key:
            j += 1
        else:
            extra.append(key)
    assert j == len(our_keys), "we decoded a position gpsd did not"
    assert len(extra) == 11
    assert all(key in set(our_keys) for key in extra)
    short = sum(1 for line in lines if re.fullmatch(rb"!AIVDM,1,1,,.,1[^,]{27},5\*..", line))
    assert short == 6
    assert stats.malformed["length"] >= len(extra)


@pytest.mark.parametrize(
    ("capture", "unexplained"),
    [("dma-aislib/stream_example.txt", 0), ("amsa-risky/ais.txt.gz", 2), ("aisdb/test_data_20211101.nm4", 0)],
)
def test_other_captures_decode_everything_gpsd_does(
    shared_data: Path, capture: str, unexplained: int
) -> None:
    """We decode every position gpsd decodes. Our extra positions come from
    talkers gpsd 3.22 does not accept ('!SSVDM', '!BYVDM', '!=IVDM' with valid
    checksums), except two AMSA positions gpsd did not output for reasons we
    could not find in its output."""
    lines = read(shared_data / capture)
    ours, _ = run(lines, dedup_window_s=0)
    mine = Counter(map(our_key, ours))
    theirs = Counter(map(gpsd_key, gpsd_positions(shared_data, CAPTURES[capture][0])))
    assert not theirs - mine
    odd = [line for line in lines if (m := re.search(rb"!(..)VD[MO]", line)) and m[1] not in GPSD_TALKERS]
    odd_positions, _ = run(odd, dedup_window_s=0)
    assert sum(((mine - theirs) - Counter(map(our_key, odd_positions))).values()) == unexplained
