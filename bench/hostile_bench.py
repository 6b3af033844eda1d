"""Benchmark (a soak, really): a million hostile lines, through a file and a TCP feed.

The hardening issue's "done means": real AISHub lines, tag-blocked, with a
fifth of them spoiled (NUL bytes in tag blocks, times before 2000 and far
ahead, flipped, cut and inserted bytes, reversed multi-part groups, blank
lines, endless lines of up to 64 KB and one of 5 MB; see tests/hostile.py),
ingested by ``aiswatch ingest`` from a file and by the live service from a
TCP server on loopback, each into a fresh database. Checked: every line read
is counted (nothing unresolved), every position of a clean line is stored,
no crash; reported: the counts, the time and the peak RSS of the ingest.

Usage: ``bench/hostile [--lines N] [--database-url URL]``; results go to
stdout and bench/results/hostile.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the hostile feed is the tests' own generator

from storage.admin import create_database, drop_database  # noqa: E402
from tests.hostile import hostile_feed, must_store  # noqa: E402
from tests.test_live import eventually, lines_read, live_settings, running, stored, unresolved  # noqa: E402

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SAMPLE = REPO.parent / "shared" / "data" / "aishub-gpsd" / "ais-nmea-sample.log"


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def through_file(path: Path, url: str, expected: set[object]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    env["AISWATCH_DATABASE_URL"] = url
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiswatch", "ingest", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    # VmHWM of the ingest and of its decoding process, read while they run
    # (ru_maxrss of a child would count this benchmark's own memory at the fork)
    peaks: dict[int, int] = {}
    while process.poll() is None:
        for pid in [process.pid, *_children(process.pid)]:
            peaks[pid] = max(peaks.get(pid, 0), _vm_hwm_kib(pid))
        time.sleep(0.2)
    out, err = process.communicate()
    elapsed = time.perf_counter() - began
    read = re.search(r"lines read +([0-9,]+)", out)
    rows = asyncio.run(stored(url))
    return {
        "exit_code": process.returncode,
        "traceback": "Traceback" in err,
        "lines_read": int(read[1].replace(",", "")) if read else None,
        "unresolved": "NOT RESOLVED" in out,
        "clean_positions_missing": len(expected - rows),
        "seconds": round(elapsed, 1),
        "peak_rss_mib": round(peaks.get(process.pid, 0) / 1024, 1),
        "decoder_peak_rss_mib": round(
            max((v for k, v in peaks.items() if k != process.pid), default=0) / 1024, 1
        ),
        "summary": out.strip().splitlines()[-20:],
    }


async def through_tcp(data: list[bytes], url: str, tmp: Path, expected: set[object]) -> dict[str, object]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for block in data:
            writer.write(block)
            if writer.transport.get_write_buffer_size() > 2**20:
                await writer.drain()
        await writer.drain()
        await asyncio.sleep(3600)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    total = len(data)
    began = time.perf_counter()
    source = {"kind": "tcp", "name": "hostile", "host": "127.0.0.1", "port": port}
    async with server, running(live_settings(url, tmp, [source])) as service:
        await eventually(lambda: lines_read(service) >= total, 1800, "the feed was not read in 30 min")
    elapsed = time.perf_counter() - began
    (state,) = service.sources
    return {
        "lines_read": lines_read(service),
        "unresolved": unresolved(service),
        "restarts": state.restarts,
        "malformed": dict(state.stats.malformed),
        "clean_positions_missing": len(expected - await stored(url)),
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=LOCAL_URL)
    args = parser.parse_args()
    raw = SAMPLE.read_bytes().splitlines()
    feed = hostile_feed(raw, args.lines)
    expected: set[object] = set(must_store(feed))
    data = list(feed.data())
    results: dict[str, object] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "lines": len(feed.lines),
        "spoiled": feed.spoiled,
        "bytes": sum(map(len, data)),
        "clean_positions": len(expected),
    }
    with tempfile.TemporaryDirectory(prefix="aiswatch-hostile-") as tmp:
        path = Path(tmp) / "hostile.nmea"
        with path.open("wb") as fh:
            fh.writelines(data)
        for name, run in (
            ("file", lambda url: through_file(path, url, expected)),
            ("tcp", lambda url: asyncio.run(through_tcp(data, url, Path(tmp), expected))),
        ):
            database = f"aiswatch_hostile_{uuid.uuid4().hex[:8]}"
            url = create_database(args.database_url, database)
            try:
                results[name] = run(url)
            finally:
                drop_database(args.database_url, database)
            print(name, json.dumps(results[name], indent=1), flush=True)
    out = REPO / "bench" / "results" / "hostile.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
