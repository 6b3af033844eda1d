"""The ingest summary says when a replay cannot be recognised: lines without
an event time of their own are stamped with the time they were read, so a
replay of them is stored again."""

from __future__ import annotations

from pathlib import Path

from aiswatch.summary import render_stats
from ingest.pipeline import IngestStats


def test_the_summary_names_lines_without_an_event_time() -> None:
    stats = IngestStats("capture.nmea", lines=10, stored=10)
    assert "untimed" not in render_stats(stats)
    stats.untimed = 4
    (line,) = [line for line in render_stats(stats).splitlines() if "untimed" in line]
    assert line.split()[:2] == ["untimed", "4"] and "a replay stores them again" in line


def test_the_decoder_counts_the_lines_without_an_event_time(shared_data: Path) -> None:
    from ingest.pipeline import LineDecoder

    untimed = (shared_data / "aishub-gpsd/ais-nmea-sample.log").read_bytes().splitlines()[:2000]
    timed = (shared_data / "aisdb/test_data_20211101.nm4").read_bytes().splitlines()
    for lines, expected in ((untimed, "all"), (timed, "none")):
        decoder = LineDecoder("test")
        decoder.feed(lines, 1_700_000_000.0)
        decoder.close()
        stats = decoder.stats
        assert stats.accepted > 0
        assert stats.untimed == (stats.accepted if expected == "all" else 0)
