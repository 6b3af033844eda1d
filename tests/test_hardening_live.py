"""The hardening issue's live reproductions, on real servers: the decoding
process ends with its parent (kill -9), and the service starts, spools and
says why while PostgreSQL is down."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from tests.services import OwnPostgres, free_port, send_datagrams
from tests.test_bad_input import _children
from tests.test_live import aiswatch_run, expected, get, stored, tagged


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _udp_config(tmp_path: Path, url: str, udp: int, http: int = 0) -> Path:
    config = tmp_path / "aiswatch.toml"
    config.write_text(
        f'database_url = "{url}"\ndata_dir = "{tmp_path}"\n'
        f"[ingest]\nbatch_delay_s = 0.2\n[service]\nhttp_port = {http}\nspool_retry_s = 0.3\n"
        f'[[sources]]\nname = "rx"\nkind = "udp"\nhost = "127.0.0.1"\nport = {udp}\n'
    )
    return config


def test_kill_9_leaves_no_decoding_process_behind(database_url: str, tmp_path: Path) -> None:
    process = aiswatch_run(_udp_config(tmp_path, database_url, free_port()))
    try:
        _wait_for(lambda: len(_children(process.pid)) >= 1, 60, "the decoding process did not start")
        children = _children(process.pid)
    finally:
        process.kill()  # kill -9: no shutdown of the pool, no goodbye
        process.wait()
    # the decoder (and multiprocessing's resource tracker, if any) end by themselves
    _wait_for(lambda: not any(_alive(pid) for pid in children), 15, f"left running: {children}")


def test_run_starts_spools_and_says_why_while_the_database_is_down(
    own_postgres: OwnPostgres, tmp_path: Path, shared_data: Path
) -> None:
    """PostgreSQL is down when the service starts: it starts all the same,
    /health answers 503 saying the database is unreachable, lines go to the
    spool; once the server is up the spool is replayed, and every line is
    stored once."""
    own_postgres.stop()
    udp, http = free_port(), free_port()
    process = aiswatch_run(_udp_config(tmp_path, own_postgres.url, udp, http))
    raw = (shared_data / "aishub-gpsd/ais-nmea-sample.log").read_bytes().splitlines()
    lines = tagged([line for line in raw if line.startswith(b"!")][:2000])
    try:
        status, body = 0, ""

        def health() -> bool:
            nonlocal status, body
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                status, body = get(f"http://127.0.0.1:{http}/health")
            except OSError:
                return False
            return True

        _wait_for(health, 60, "/health never answered")
        assert status == 503
        assert json.loads(body)["database"].startswith("unreachable (spooling): cannot connect")
        send_datagrams(lines, udp)
        _wait_for(lambda: list((tmp_path / "spool").glob("*.batch")), 30, "nothing was spooled")
        own_postgres.start()
        _wait_for(lambda: health() and status == 200, 60, f"the service did not recover: {body}")
        assert asyncio.run(stored(own_postgres.url)) == expected(lines)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "lines read             2,000" in out
