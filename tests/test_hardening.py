"""The hardening issue's reproductions, each a test: one line never stops a
stream, stale fragments never join, buffers stay bounded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.lines import LineSplitter, split_message
from ingest.nmea import MAX_LINE_BYTES, Sentence, parse_line
from ingest.pipeline import IngestStats, LineDecoder
from ingest.records import Position
from ingest.sources.live import SourceState
from ingest.sources.tcp import tcp_chunks
from storage.database import Database
from storage.spool import Spool
from storage.writer import RecordWriter

VALID = b"!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*23"


def nul_in_station() -> bytes:
    """The issue's reproduction: a NUL in the tag block's ``s:`` (the XOR checksum does not see it)."""
    tag = b"s:a\x00b,c:1700000000"
    return b"\\" + tag + b"*%02X\\" % reduce(xor, tag, 0) + VALID


def test_a_nul_byte_in_a_tag_block_is_malformed_not_passed_on() -> None:
    decoder = LineDecoder("test")
    decoder.feed([nul_in_station(), VALID], received=1_700_000_100.0)
    positions, _ = decoder.take()
    assert decoder.stats.malformed == {"tag_block": 1}
    assert [p.station for p in positions] == [None]  # the valid line after it is decoded


def test_a_broken_copy_does_not_make_the_valid_copy_a_duplicate() -> None:
    decoder = LineDecoder("test")
    decoder.feed(
        [
            b"!AIVDM,1,1,,A,13aIkM@P00PJ@qPNL=e@0?wJ28JO,5*63",  # 5 fill bits: too short for a type 1
            b"!AIVDM,1,1,,A,13aIkM@P00PJ@qPNL=e@0?wJ28JO,0*66",
        ],
        received=1_700_000_000.0,
    )
    positions, _ = decoder.take()
    assert decoder.stats.malformed == {"length": 1}
    assert decoder.stats.duplicate == 0
    assert len(positions) == 1


def _groups_reversed(lines: list[bytes]) -> tuple[list[bytes], int]:
    """The capture with the fragments of every adjacent multi-part group in reverse order."""
    out: list[bytes] = []
    reversed_groups = 0
    i = 0
    while i < len(lines):
        parsed = parse_line(lines[i])
        if isinstance(parsed, Sentence) and parsed.frag_count > 1 and parsed.frag_num == 1:
            group = lines[i : i + parsed.frag_count]
            keys = [
                (s.frag_num, s.seq_id, s.channel) if isinstance(s := parse_line(line), Sentence) else None
                for line in group
            ]
            if keys == [(n, parsed.seq_id, parsed.channel) for n in range(1, parsed.frag_count + 1)]:
                out += group[::-1]
                reversed_groups += 1
                i += parsed.frag_count
                continue
        out.append(lines[i])
        i += 1
    return out, reversed_groups


def _statics(lines: list[bytes]) -> set[tuple[object, ...]]:
    decoder = LineDecoder("test")
    decoder.feed(lines, received=1_444_000_000.0)
    decoder.close()
    return {(s.mmsi, s.shipname, s.callsign, s.destination) for s in decoder.take()[1]}


def test_stale_fragments_never_join_a_later_message(shared_data: Path) -> None:
    """The AISHub capture with its multi-part groups reversed gives the same
    static reports as in order: no text is corrupted by a stale fragment."""
    lines = (shared_data / "aishub-gpsd/ais-nmea-sample.log").read_bytes().splitlines()
    flipped, groups = _groups_reversed(lines)
    assert groups > 2000
    ours, theirs = _statics(lines), _statics(flipped)
    assert theirs == ours
    names = {(mmsi, name) for mmsi, name, _, _ in ours}
    assert not any(name == "BREMERHAVD" or (dest or "").endswith("BREMERHAVD") for _, name, _, dest in theirs)
    assert len(names) > 1000


def test_a_fragment_far_from_its_group_starts_a_new_one() -> None:
    from ingest.assembly import FragmentAssembler

    def frag(num: int) -> Sentence:
        return Sentence(2, num, b"1", b"A", f"P{num}".encode(), 0, 0, None, None, None)

    assembler = FragmentAssembler(max_gap_lines=4)
    assert assembler.add(frag(1), 0.0, lineno=1) is None
    assert assembler.add(frag(2), 0.0, lineno=500) is None  # not the same message
    assert assembler.take_orphans() == 1
    message = assembler.add(frag(1), 0.0, lineno=501)
    assert message is not None and message.payload == b"P1P2"


def test_line_ends_of_every_kind_and_blank_lines_are_lines() -> None:
    splitter = LineSplitter()
    got = splitter.feed(b"a\r") + splitter.feed(b"\nb\rc\r\n\r\nd") + splitter.flush()
    assert got == [b"a", b"b", b"c", b"", b"d"]
    assert split_message(b"x\n\ny") == [b"x", b"", b"y"]


def test_an_endless_line_is_cut_and_counted_not_buffered() -> None:
    splitter = LineSplitter(max_line_bytes=100)
    out: list[bytes] = []
    for _ in range(1000):
        out += splitter.feed(b"x" * 10_000)
    out += splitter.feed(b"tail\n" + VALID + b"\n")
    assert [len(line) for line in out] == [101, len(VALID)]
    assert splitter.cut_lines == 1
    assert len(splitter._carry) == 0


def test_cr_only_files_are_read_as_lines(tmp_path: Path) -> None:
    from ingest.sources.files import read_lines

    path = tmp_path / "cr.nmea"
    path.write_bytes(b"\r".join([VALID] * 3) + b"\r")

    async def read() -> list[bytes]:
        return [line async for lines in read_lines(str(path)) for line in lines]

    assert asyncio.run(read()) == [VALID] * 3


async def test_a_tcp_peer_that_never_sends_a_newline_is_cut_and_counted() -> None:
    """A real TCP server on loopback streams 5 MB without a newline, then a
    valid line: the client passes on one cut line (counted malformed by the
    decoder) and the valid one, holding no more than a line in memory."""
    sent = 5 * 2**20

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        block = b"A" * 65_536
        for _ in range(sent // len(block)):
            writer.write(block)
            await writer.drain()
        writer.write(b"\n" + VALID + b"\n")
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    state = SourceState("tcp:test", "tcp")
    lines: list[bytes] = []
    async with server:
        async for chunk in tcp_chunks("127.0.0.1", port, state, stop, read_timeout_s=10):
            lines += chunk.lines
            if VALID in lines:
                stop.set()
                break
    assert [len(line) for line in lines] == [MAX_LINE_BYTES + 1, len(VALID)]
    decoder = LineDecoder("tcp:test")
    decoder.feed(lines, received=1_700_000_000.0)
    assert decoder.stats.malformed == {"line_too_long": 1}
    assert len(decoder.take()[0]) == 1


def _position(i: int, station: str | None = None) -> Position:
    ts = datetime(2024, 3, 11, 6, 0, tzinfo=UTC) + timedelta(seconds=i)
    return Position(
        ts, 273_000_000 + i % 50, 1, 42.0, 130.0, 5.0, 90.0, 90, 0, 0.0, False, ts.second, station, i
    )


async def test_a_record_the_database_refuses_is_isolated_and_the_rest_stored(db: Database) -> None:
    """A batch with one row PostgreSQL refuses (a NUL in text, past the parser):
    that row is counted malformed with the reason, every other row is stored,
    and the counts are committed."""
    stats = IngestStats("test:refused")
    stats.lines = 1000
    positions = [_position(i, "a\x00b" if i == 617 else "ok") for i in range(1000)]
    async with RecordWriter(db) as writer:
        await writer.put(stats, positions, [])
    assert stats.stored == 999
    assert stats.malformed == {"refused_by_database": 1}
    assert stats.pending == 0
    (reason, detail), *_ = [(r, d) for r, seen in stats.examples.items() for _, d in seen]
    assert reason == "refused_by_database" and "MMSI 273000017" in detail
    async with db.pool.connection() as conn:
        stored = await (await conn.execute("SELECT count(*) FROM positions")).fetchone()
        counted = await (
            await conn.execute(
                "SELECT outcome, reason, lines FROM source_counters WHERE source = 'test:refused' ORDER BY 1"
            )
        ).fetchall()
    assert stored == (999,)
    assert counted == [("malformed", "refused_by_database", 1), ("stored", "", 999)]


def test_cli_a_decade_of_history_loads_and_impossible_times_are_malformed(
    database_url: str, tmp_path: Path
) -> None:
    """The issue's reproduction: one position a day from 2000 on, 8,000 days
    in one file (daily partitions exhausted the server's lock table); plus a
    time before 2000 and one far ahead, which are not AIS."""
    from tests.test_bad_input import aiswatch

    lines = [
        b"%s,%d" % (VALID, 946_688_400 + i * 86_400)  # a receiver epoch after the checksum
        for i in range(8000)
    ]
    lines.append(b"%s,%d" % (VALID, 915_148_800))  # 1999-01-01
    lines.append(b"%s,%d" % (VALID, 4_102_444_800))  # 2100-01-01
    path = tmp_path / "days.nmea"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = aiswatch("ingest", str(path), env={"AISWATCH_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "positions stored  8,000;" in result.stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (8000,)
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'positions'::regclass"
        ).fetchone()
        counted = conn.execute(
            "SELECT reason, lines FROM source_counters WHERE outcome = 'malformed'"
        ).fetchall()
    assert partitions is not None and partitions[0] < 300  # about one a month, not 8,000
    assert counted == [("timestamp", 2)]


def _batch(n: int) -> list[tuple[str, list[Position], list[Any]]]:
    return [("test", [_position(i) for i in range(n)], [])]


def test_a_damaged_spool_file_is_set_aside_and_the_rest_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=2**24)
    spool.put(_batch(10))
    spool.put(_batch(20))
    first = sorted((tmp_path / "spool").glob("*.batch"))[0]
    first.write_bytes(first.read_bytes()[:50])  # cut short, as by a full disk or a crash
    again = Spool(tmp_path / "spool", max_bytes=2**24)
    batch = again.oldest()
    assert batch is not None and len(batch[0][1]) == 20
    assert again.damaged == 1 and len(again) == 1
    assert [p.name for p in (tmp_path / "spool" / "damaged").iterdir()] == [first.name]


SPOOL_ON_A_FULL_DISK = """
import asyncio, json, resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
from ingest.pipeline import IngestStats
from storage.database import Database
from storage.spool import Spool
from storage.spool import Spool
from storage.writer import RecordWriter
from tests.test_hardening import _position

async def main():
    spool = Spool(Path(sys.argv[1]), max_bytes=2**30)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # the disk is (all but) full
    db = Database("postgresql://aiswatch@127.0.0.1:1/away")  # never opened: the database is away
    stats = IngestStats("test:full")
    async with RecordWriter(db, spool=spool, max_delay_s=0.1, retry_s=0.5) as writer:
        await writer.put(stats, [_position(i) for i in range(1000)], [])
        await writer.put(stats, [_position(i) for i in range(1000, 1003)], [])
    print(json.dumps({"lost": stats.lost, "spooled": len(spool)}))

asyncio.run(main())
"""


def test_a_spool_on_a_full_disk_counts_its_lines_lost_and_goes_on(tmp_path: Path) -> None:
    """A real write error (EFBIG: the file size limit stands in for a full
    disk) while the database is away: the batch's lines are counted lost and
    logged as an error, nothing half-written is left, and the writer goes on."""
    result = subprocess.run(
        [sys.executable, "-c", SPOOL_ON_A_FULL_DISK, str(tmp_path / "spool")],
        capture_output=True, text=True, timeout=120, check=False, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["lost"] >= 1000
    assert outcome["lost"] + 3 * outcome["spooled"] >= 1003  # the small batch fits, or is lost too
    assert "LOST" in result.stderr and "cannot be written" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "spool").glob("*.tmp"))


def _one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    from tests.test_bad_input import assert_one_clean_error

    assert_one_clean_error(result, code, *words)


def test_cli_a_closed_stdin_is_one_line(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    env["AISWATCH_DATABASE_URL"] = database_url
    result = subprocess.run(
        ["bash", "-c", f'exec "{sys.executable}" -m aiswatch ingest - <&-'],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "standard input is closed" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_cli_a_data_dir_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    from tests.test_bad_input import aiswatch

    result = aiswatch("migrate", env={"AISWATCH_DATA_DIR": str(blocker / "aiswatch")})
    _one_line(result, 1, "embedded postgres: cannot use", str(blocker))


def test_cli_a_connect_timeout_that_is_not_a_number_is_one_line(database_url: str) -> None:
    from tests.test_bad_input import aiswatch

    url = psycopg.conninfo.make_conninfo(database_url, connect_timeout="abc")
    result = aiswatch("migrate", env={"AISWATCH_DATABASE_URL": url})
    _one_line(result, 2, "setting database_url", "connect_timeout", "'abc'")


def test_cli_a_bad_environment_variable_is_named_as_the_variable(tmp_path: Path) -> None:
    from tests.test_bad_input import aiswatch

    config = tmp_path / "aiswatch.toml"
    config.write_text("[ingest]\nbatch_rows = 100\n")
    result = aiswatch("migrate", "--config", str(config), env={"AISWATCH_INGEST__BATCH_ROWS": "many"})
    _one_line(result, 2, "ingest.batch_rows", "environment variable AISWATCH_INGEST__BATCH_ROWS")
    assert str(config) not in result.stderr


def _chunk_of(positions: int, start: int, on_stored: Any = None) -> Any:
    from ingest.sources.live import Chunk

    lines = [
        b"%s,%d" % (VALID, 1_700_000_000 + i)  # one position each, a second apart
        for i in range(start, start + positions)
    ]
    return Chunk(1_700_100_000.0, lines, on_stored=on_stored)


async def test_a_reader_that_fails_still_has_what_it_read_stored_and_acknowledged(db: Database) -> None:
    """The pump's reader raises after three chunks: the three are stored and
    acknowledged before the error comes out, none is left decoding."""
    from aiswatch.pump import pump_chunks
    from ingest.offload import DecoderProcess

    acknowledged: list[int] = []

    async def chunks() -> Any:
        for n in range(3):
            yield _chunk_of(100, n * 100, on_stored=lambda n=n: acknowledged.append(n))
        raise ConnectionResetError("the feed went away")

    async with DecoderProcess(workers=0) as process, RecordWriter(db, max_delay_s=0.05) as writer:
        decoder = process.decoder("test:failing", dedup_window_s=0.0)  # one payload, 300 times
        with pytest.raises(ConnectionResetError):
            await pump_chunks(chunks(), decoder, writer)
        assert decoder.in_flight == 0
    assert acknowledged == [0, 1, 2]
    assert decoder.stats.stored == 300 and decoder.stats.pending == 0


async def test_an_empty_payload_is_acknowledged(db: Database) -> None:
    """An MQTT payload with no lines (b"", [] from AIS-catcher) still gets its
    acknowledgement, or it would hold the broker's window for ever."""
    from aiswatch.pump import pump_chunks
    from ingest.offload import DecoderProcess
    from ingest.sources.live import Chunk

    acknowledged: list[str] = []

    async def chunks() -> Any:
        yield Chunk(1_700_100_000.0, [], on_stored=lambda: acknowledged.append("empty"))

    async with DecoderProcess(workers=0) as process, RecordWriter(db, max_delay_s=0.05) as writer:
        await pump_chunks(chunks(), process.decoder("test:empty"), writer)
    assert acknowledged == ["empty"]


async def test_a_spooled_archive_batch_replays_without_going_back_to_the_spool(
    db: Database, tmp_path: Path
) -> None:
    """A spooled batch spanning 100 days is replayed in parts of 32 days once
    the database answers: every part is stored, none spooled again."""
    spool = Spool(tmp_path / "spool", max_bytes=2**24)
    days = [
        _position(i)._replace(ts=datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=i)) for i in range(100)
    ]
    spool.put([("test:archive", days, [])])
    async with RecordWriter(db, spool=spool, max_delay_s=0.05, retry_s=0.1) as writer:
        for _ in range(100):
            if not len(spool):
                break
            await asyncio.sleep(0.05)
    assert len(spool) == 0 and writer.stats.spooled_batches == 0
    async with db.pool.connection() as conn:
        assert await (await conn.execute("SELECT count(*) FROM positions")).fetchone() == (100,)


async def test_a_partition_dropped_behind_our_back_is_made_again_not_blamed_on_the_data(
    db: Database,
) -> None:
    stats = IngestStats("test:dropped")
    day = datetime(2022, 5, 17, tzinfo=UTC)
    stats.lines = 2
    async with RecordWriter(db, max_delay_s=0.05) as writer:
        await writer.put(stats, [_position(1)._replace(ts=day)], [])
    async with db.pool.connection() as conn:
        await conn.execute("DROP TABLE positions_p20220501_20220601")  # an operator's doing
        await conn.commit()
    async with RecordWriter(db, max_delay_s=0.05) as writer:
        await writer.put(stats, [_position(2)._replace(ts=day + timedelta(hours=1))], [])
    assert stats.stored == 2 and stats.malformed == {}
