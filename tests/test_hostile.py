"""Hostile input, end to end on real servers (the hardening issue's "done
means", at a tenth of its million lines; bench/hostile runs the million):
every line counted, every position of a clean line stored, no crash, through
a file and through a TCP feed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.hostile import HostileFeed, hostile_feed, must_store
from tests.test_bad_input import aiswatch
from tests.test_live import eventually, lines_read, live_settings, running, stored, unresolved

LINES = 100_000


@pytest.fixture(scope="module")
def feed(shared_data: Path) -> HostileFeed:
    raw = (shared_data / "aishub-gpsd/ais-nmea-sample.log").read_bytes().splitlines()
    return hostile_feed(raw, LINES)


def test_a_hostile_file_is_counted_line_by_line_and_every_clean_position_stored(
    database_url: str, tmp_path: Path, feed: HostileFeed
) -> None:
    path = tmp_path / "hostile.nmea"
    with path.open("wb") as fh:
        fh.writelines(feed.data())
    result = aiswatch("ingest", str(path), env={"AISWATCH_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    read = re.search(r"file:hostile.nmea\n  lines read +([0-9,]+)", result.stdout)
    assert read is not None and int(read[1].replace(",", "")) == len(feed.lines), result.stdout
    assert "NOT RESOLVED" not in result.stdout
    rows = asyncio.run(stored(database_url))
    assert must_store(feed) <= rows


async def test_a_hostile_tcp_feed_is_counted_line_by_line_and_every_clean_position_stored(
    database_url: str, tmp_path: Path, feed: HostileFeed
) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for block in feed.data():
            writer.write(block)
            if writer.transport.get_write_buffer_size() > 2**20:
                await writer.drain()
        await writer.drain()
        await asyncio.sleep(3600)  # stay connected: the service decides when to stop

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = {"kind": "tcp", "name": "hostile", "host": "127.0.0.1", "port": port}
    async with server, running(live_settings(database_url, tmp_path, [source])) as service:
        await eventually(
            lambda: lines_read(service) >= len(feed.lines), 120, lambda: f"{lines_read(service)}"
        )
    assert lines_read(service) == len(feed.lines)
    assert unresolved(service) == 0
    (state,) = service.sources
    assert state.restarts == 0
    assert state.stats.malformed["line_too_long"] >= 1
    assert must_store(feed) <= await stored(database_url)
