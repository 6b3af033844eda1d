"""The CSV reader's two roads give the same records and the same ledger: the
rows read a column at a time (:mod:`ingest.csvcolumns`) and every row read one
at a time, on the three real samples and on rows spoiled cell by cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.csvfeeds import CsvDecoder
from ingest.records import Position, StaticReport
from tests.test_csv_import import SAMPLES

RECEIVED = 1_900_000_000.0


def decode(lines: list[bytes], *, by_columns: bool, chunk: int = 5000) -> tuple[object, ...]:
    decoder = CsvDecoder("test", by_columns=by_columns)
    positions: list[Position] = []
    statics: list[StaticReport] = []
    for start in range(0, len(lines), chunk):
        decoder.feed(lines[start : start + chunk], RECEIVED)
        p, s = decoder.take()
        positions += p
        statics += s
    stats = decoder.stats
    ledger = (
        stats.lines, stats.accepted, stats.duplicate, dict(stats.filtered), dict(stats.malformed),
        stats.examples, dict(stats.messages_by_type), stats.positions, stats.static_reports,
    )  # fmt: skip
    return positions, statics, ledger


@pytest.mark.parametrize("sample", sorted(SAMPLES.values()))
def test_the_real_samples_read_alike_both_ways(shared_data: Path, sample: str) -> None:
    lines = (shared_data / "csv" / sample).read_bytes().splitlines()
    by_columns = decode(lines, by_columns=True)
    assert by_columns == decode(lines, by_columns=False)
    assert len(by_columns[0]) > 900  # type: ignore[arg-type]


#: Cells that test each reading: not available in its spellings, numbers
#: written oddly, codes at and past "not available", words, infinities,
#: values too large for their column, quotes.
ODD_CELLS = ["", " ", "Unknown", "nan", "NaN", "null", "inf", "-inf", "1e999", "north", " 12.5 ", "12.5",
             "511", "511.0", "91", "91.0", "-91", "181", "102.3", "360", "99999", "-99999", "0", "-0.0",
             "1_000", "\"5,5\"", "3.7", "17/09/2022 13:03:21", "yesterday", "Class A", "Class B",
             "Base Station", "Moored", "1", "18", "219000001", "2023-01-11T00:00:00", "9307839",
             "43.1\x00", "\x0012.5", "70000"]  # fmt: skip


@st.composite
def spoiled(draw: st.DrawFn, sample: str, base: list[bytes]) -> list[bytes]:
    header, rows = base[0], base[1:]
    delimiter = b";" if b";" in header else b","
    picked = draw(st.lists(st.sampled_from(rows), min_size=1, max_size=30))
    out = [header]
    for row in picked:
        cells = row.split(delimiter)
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(cells) - 1))
            cells[at] = draw(st.sampled_from(ODD_CELLS)).encode()
        if draw(st.integers(0, 20)) == 0:
            cells = cells[:-1]  # a row short of a cell
        out.append(delimiter.join(cells))
        if draw(st.integers(0, 10)) == 0:
            out.append(out[-1])  # a row repeated
    return out


@pytest.fixture(scope="module")
def sample_lines(shared_data: Path) -> dict[str, list[bytes]]:
    return {
        name: (shared_data / "csv" / file).read_bytes().splitlines()[:400] for name, file in SAMPLES.items()
    }


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_spoiled_rows_read_alike_both_ways(sample_lines: dict[str, list[bytes]], sample: str) -> None:
    @settings(max_examples=150, deadline=None)
    @given(spoiled(sample, sample_lines[sample]), st.integers(1, 12))
    def check(lines: list[bytes], chunk: int) -> None:
        assert decode(lines, by_columns=True, chunk=chunk) == decode(lines, by_columns=False, chunk=chunk)

    check()


def test_a_refused_row_repeated_is_refused_again_not_a_duplicate() -> None:
    """Both readers: a row read to its end is remembered; one refused half-way
    (a status beyond smallint) is not, so its repeat is refused too."""
    header = b";mmsi;imo_nr;length;date_time_utc;lon;lat;sog;cog;true_heading;nav_status;message_nr"
    row = b"0;257706000;9436161;48;2022-09-01 20:27:05;5.3068;60.3937;3.0;104.9;112;70000;1"
    for by_columns in (True, False):
        positions, _, ledger = decode([header, row, row], by_columns=by_columns)
        assert positions == []
        assert ledger[2] == 0 and ledger[4] == {"number": 2}
