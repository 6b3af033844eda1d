"""The ingest summary says when a replay cannot be recognised: lines without
an event time of their own are stamped with the time they were read, so a
replay of them is stored again."""

from __future__ import annotations

from aiswatch.summary import render_stats
from ingest.pipeline import IngestStats


def test_the_summary_names_lines_without_an_event_time() -> None:
    stats = IngestStats("capture.nmea", lines=10, stored=10)
    assert "untimed" not in render_stats(stats)
    vars(stats)["untimed"] = 4  # IngestStats.untimed, once the pipeline counts it
    (line,) = [line for line in render_stats(stats).splitlines() if "untimed" in line]
    assert line.split()[:2] == ["untimed", "4"] and "a replay stores them again" in line
