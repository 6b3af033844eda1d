"""Positions by column: records in and out unchanged, and the binary COPY that
PostgreSQL reads back as the records (its ``real`` columns rounding as
``real`` does). Generated records cover every field missing or at its edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.batch import PositionBatch, micros
from ingest.records import Position
from storage.database import STAGE_TABLES
from storage.inbox import _spans
from storage.writer import POSITION_FIELDS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


positions = st.builds(
    Position,
    ts=st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    mmsi=st.integers(0, (1 << 30) - 1),
    msg_type=st.sampled_from([1, 2, 3, 18, 19, 27]),
    lat=_maybe(st.floats(-90, 90)),
    lon=_maybe(st.floats(-180, 180)),
    speed=_maybe(st.floats(0, 102.2)),
    course=_maybe(st.floats(0, 359.9)),
    heading=_maybe(st.integers(0, 359)),
    status=_maybe(st.integers(0, 15)),
    turn=_maybe(st.sampled_from([0.0, -0.0, 708.0, -708.0, 3.0])),
    accuracy=_maybe(st.booleans()),
    second=_maybe(st.integers(0, 59)),
    station=_maybe(st.sampled_from(["rx1", "Ærø", "a-much-longer-station-name", ""])),
    payload_crc=st.integers(0, (1 << 32) - 1),
    sentences=st.integers(1, 9),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(positions, max_size=40))
def test_records_survive_the_columns(records: list[Position]) -> None:
    batch = PositionBatch.from_records(records)
    assert batch.records() == records
    assert len(batch) == len(records)
    assert batch.lines() == sum(p.sentences for p in records)
    half = np.arange(len(records)) % 2 == 0
    assert PositionBatch.concat([batch.select(half), batch.select(~half)]).records() == (
        records[::2] + records[1::2]
    )


def _real(value: float | None) -> float | None:
    """A ``real`` as PostgreSQL sends it: the shortest text of its single-precision value."""
    return None if value is None else float(str(np.float32(value)))


def test_copy_data_is_what_postgresql_reads_back(database_url: str) -> None:
    base = datetime(2024, 3, 1, 12, tzinfo=UTC)
    rows = [
        Position(base, 273_000_001, 1, 42.8, 132.9, 12.3, 271.4, 270, 0, -0.0, True, 59, "rx1", 1, 1),
        Position(base, 273_000_002, 1, 1.0, 2.0, 1 / 3, 0.1 + 0.2, 1, 1, -1 / 7, True, 1, "rx1", 3, 1),
        Position(base, 273_000_001, 1, None, None, None, None, None, None, None, None, None, None, 2, 2),
        Position(base + timedelta(microseconds=1), 2**30 - 1, 27, -90.0, 180.0, 0.0, 0.0, 0, 15, 708.0,
                 False, 0, "Ærø", 2**32 - 1, 3),
        Position(datetime(2000, 1, 1, tzinfo=UTC), 0, 18, 0.0, -180.0, 102.2, 359.9, 359, None, None, True,
                 None, "", 0, 1),
    ]  # fmt: skip
    rows += [
        r._replace(payload_crc=100 + i, station=f"s{i % 3}" if i % 2 else None) for i, r in enumerate(rows)
    ]
    batch = PositionBatch.from_records(rows)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(STAGE_TABLES)
        conn.execute("CREATE TEMP TABLE copied (LIKE positions_stage)")
        with conn.cursor() as cur:
            with cur.copy("COPY copied FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(batch.copy_data(with_sentences=True))
            back = cur.execute(
                f"SELECT {POSITION_FIELDS}, sentences FROM copied ORDER BY payload_crc"
            ).fetchall()
            conn.execute("TRUNCATE copied")
            with cur.copy(f"COPY copied ({POSITION_FIELDS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(PositionBatch.empty().copy_data())
            assert cur.execute("SELECT count(*) FROM copied").fetchone() == (0,)
    expected = sorted(
        (p._replace(speed=_real(p.speed), course=_real(p.course), turn=_real(p.turn)) for p in rows),
        key=lambda p: p.payload_crc,
    )
    assert [Position(*row) for row in back] == expected
    assert [Position(*row) for row in back] == sorted(
        batch.as_stored().records(), key=lambda p: p.payload_crc
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(946_684_800.0, 4_102_444_800.0), min_size=1, max_size=50))
def test_microseconds_round_as_datetime_does(times: list[float]) -> None:
    expected = [(datetime.fromtimestamp(t, UTC) - EPOCH) // timedelta(microseconds=1) for t in times]
    assert micros(np.array(times)).tolist() == expected


@given(st.lists(st.integers(0, 40 * 86_400_000_000), max_size=30))
def test_spans_split_as_the_detectors_split_them(times_us: list[int]) -> None:
    from detectors.periods import spans_of

    as_times = [EPOCH + timedelta(microseconds=t) for t in times_us]
    starts, ends = _spans(np.array(times_us, np.int64))
    spans = [
        (EPOCH + timedelta(microseconds=s), EPOCH + timedelta(microseconds=e))
        for s, e in zip(starts, ends, strict=True)
    ]
    assert spans == spans_of(as_times)


def test_oldest_by_vessel() -> None:
    base = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [Position(base + timedelta(seconds=s), m, 1, None, None, None, None, None, None, None, None, None,
                     None, s) for m, s in [(5, 30), (3, 10), (5, 20), (3, 40), (9, 0)]]  # fmt: skip
    vessels, first = PositionBatch.from_records(rows).oldest_by_vessel()
    assert vessels.tolist() == [3, 5, 9]
    assert [EPOCH + timedelta(microseconds=t) for t in first.tolist()] == [
        base + timedelta(seconds=10),
        base + timedelta(seconds=20),
        base,
    ]


def test_every_short_decimal_comes_back_from_a_real_as_itself() -> None:
    """What as_stored relies on: each number of at most three decimals below
    1000 in magnitude, as a double, goes through single precision and its
    shortest text unchanged (all 1,999,999 of them)."""
    values = np.arange(-999_999, 1_000_000) / 1000
    assert (values.astype(np.float32).astype(str).astype(np.float64) == values).all()
    others = np.array([1 / 3, 0.1 + 0.2, 1234.5678, -1e-9, 999.9999])
    batch = PositionBatch.from_records(
        [Position(EPOCH, 1, 1, None, None, v, v, None, None, v, None, None, None, 0) for v in others]
    ).as_stored()
    assert batch.speed.tolist() == [float(str(np.float32(v))) for v in others]
