"""Benchmark: recorded AIS into PostgreSQL, against pyais's bare decode.

Replays gpsd's AISHub sample (85,187 lines) ten times over as distinct data:
copy k gets NMEA 4.0 tag blocks whose times are the capture's three minutes
shifted by k days, so neither the duplicate window nor the database sees two
copies as the same message. Measured in one run, on one machine:

* pyais's bare decode rate: ``pyais.stream.IterMessages`` over the same tagged
  lines, ``decode()`` on every message, no checksums, nothing stored;
* aiswatch end to end: lines read from the file to rows committed in
  PostgreSQL (``aiswatch ingest``'s path), messages per second;
* their ratio (goal: at least 0.7);
* peak RSS of the ingest process at 1x and 10x (goal: 10x at most 1.3x of 1x).
  Each runs in a fresh child process; the PostgreSQL server's memory is its own
  and not counted;
* beside them, in the same run: gpsd's C decoder (``gpsdecode``, Debian's
  ``gpsd-clients``, installed here when missing and possible) on the same
  lines without their tag blocks, JSON out to nowhere; and the database's own
  limit, a plain binary ``COPY`` of the same rows (decoded beforehand, not
  timed) into ``positions`` of a fresh database, 20,000 rows a transaction as
  the writer batches them.

Usage: ``bench/ingest [--copies N] [--database-url URL]``. Without a URL it
uses the server on 127.0.0.1:5432 if one answers (in a fresh database), else an
embedded one. Results go to stdout and to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from functools import reduce
from operator import xor
from pathlib import Path

import psycopg
from pyais.stream import IterMessages

from aiswatch.config import Settings
from aiswatch.service import decoder_process, ingest_paths, open_database
from ingest.offload import peak_rss_kib
from ingest.pipeline import LineDecoder
from storage.admin import create_database, drop_database
from storage.writer import POSITION_FIELDS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = (
    Path(os.environ.get("AISWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "aishub-gpsd/ais-nmea-sample.log"
)
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BASE_EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z
CAPTURE_SPAN_S = 180.0  # the AISHub sample is about three minutes of feed


def tagged_copies(copies: int, *, first: int = 0) -> list[bytes]:
    """The sample ``copies`` times (from copy ``first`` on), each copy a day
    later, every line tag-blocked."""
    lines = [line for line in SAMPLE.read_bytes().splitlines() if line and not line.startswith(b"#")]
    step = CAPTURE_SPAN_S / len(lines)
    out = []
    for k in range(first, first + copies):
        for i, line in enumerate(lines):
            body = f"c:{BASE_EPOCH + k * 86400 + int(i * step)}"
            out.append(f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\".encode() + line)
    return out


def pyais_bare_rate(lines: list[bytes]) -> tuple[float, int]:
    began = time.perf_counter()
    decoded = 0
    for message in IterMessages(lines):
        try:
            message.decode()
            decoded += 1
        except Exception:  # bare decode: errors are skipped, as a user of pyais would
            continue
    return decoded / (time.perf_counter() - began), decoded


def child(path: str, url: str) -> None:
    """Ingest ``path`` into ``url`` and print the figures as JSON."""
    settings = Settings(database_url=url)  # type: ignore[arg-type]

    async def run() -> dict[str, float]:
        async with decoder_process(settings) as process, open_database(settings) as db:
            cpu_began = time.process_time() + await process.worker_cpu_s()
            began = time.perf_counter()
            (stats,) = await ingest_paths(settings, [path], db, process)
            elapsed = time.perf_counter() - began
            cpu_s = time.process_time() + await process.worker_cpu_s() - cpu_began
            decoder_kib = await process.worker_peak_rss_kib() or 0
        messages = sum(stats.messages_by_type.values())
        return {
            "elapsed_s": elapsed,
            # aiswatch's own CPU, both processes, while it ingested (start-up not counted)
            "cpu_s": cpu_s,
            "lines": stats.lines,
            "messages": messages,
            "positions_stored": stats.positions_stored,
            "pending": stats.pending,
            "messages_per_s": messages / elapsed,
            "lines_per_s": stats.lines / elapsed,
            # VmHWM, not ru_maxrss: the latter counts the benchmark's own memory at fork time
            "peak_rss_mib": (peak_rss_kib() or 0) / 1024,
            "decoder_peak_rss_mib": decoder_kib / 1024,
        }

    print(json.dumps(asyncio.run(run())))


def ingest_in_child(path: Path, admin_url: str) -> dict[str, float]:
    name = f"aiswatch_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    try:
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(path), url], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            sys.exit(f"the ingest of {path.name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        drop_database(admin_url, name)


def gpsdecode_rate(lines: list[bytes]) -> float | None:
    """gpsd's decoder on ``lines`` without their tag blocks (it reads none):
    messages per second, or None where gpsdecode cannot be had."""
    if shutil.which("gpsdecode") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "gpsd-clients"], capture_output=True, check=False)
    if shutil.which("gpsdecode") is None:
        return None
    bare = b"\n".join(line[line.index(b"\\", 1) + 1 :] if line.startswith(b"\\") else line for line in lines)
    began = time.perf_counter()
    done = subprocess.run(["gpsdecode"], input=bare + b"\n", capture_output=True, check=False)
    elapsed = time.perf_counter() - began
    decoded = done.stdout.count(b"\n")
    return decoded / elapsed


def copy_rate(path: Path, admin_url: str) -> float:
    """Rows per second of a plain binary COPY of the rows aiswatch stores from
    ``path``, into ``positions`` of a fresh database (the database's limit)."""
    decoder = LineDecoder("copy-limit")
    batches = []
    lines = path.read_bytes().splitlines()
    for start in range(0, len(lines), 20_000):
        decoder.feed(lines[start : start + 20_000], time.time())
        batches.append(decoder.take_batch()[0])
    name = f"aiswatch_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    data = [batch.copy_data() for batch in batches]
    rows = sum(len(batch) for batch in batches)

    async def run() -> float:
        async with open_database(Settings(database_url=url)) as db, db.pool.connection() as conn:  # type: ignore[arg-type]
            # the partitions made before timing (the writer makes them once)
            await db.partitions.ensure(conn, {day for batch in batches for day in batch.days()})
            await conn.commit()
            began = time.perf_counter()
            for chunk in data:
                async with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY positions ({POSITION_FIELDS}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    await copy.write(chunk)
                await conn.commit()
            return rows / (time.perf_counter() - began)

    try:
        return asyncio.run(run())
    finally:
        drop_database(admin_url, name)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median ratio is reported")
    parser.add_argument("--database-url", default=os.environ.get("AISWATCH_BENCH_DATABASE_URL"))
    parser.add_argument("--child", nargs=2, metavar=("FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    admin_url = args.database_url or LOCAL_URL
    with psycopg.connect(admin_url) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]

    with tempfile.TemporaryDirectory(prefix="aiswatch-bench-") as tmp:
        one, many = Path(tmp) / "x1.nmea", Path(tmp) / f"x{args.copies}.nmea"
        one.write_bytes(b"\n".join(tagged_copies(1)) + b"\n")
        many.write_bytes(b"\n".join(tagged_copies(args.copies)) + b"\n")

        # pyais on the same lines just before and just after aiswatch, so that
        # a change of load on this shared machine shows in both; the whole
        # sequence is repeated and the median ratio reported.
        sample = tagged_copies(args.copies)
        at_1x = ingest_in_child(one, admin_url)
        runs = []
        for _ in range(args.repeat):
            bare_before, decoded = pyais_bare_rate(sample)
            at_nx = ingest_in_child(many, admin_url)
            bare_after, _ = pyais_bare_rate(sample)
            bare = (bare_before + bare_after) / 2
            runs.append((at_nx["messages_per_s"] / bare, bare, bare_before, bare_after, at_nx))
        gpsd = gpsdecode_rate(sample)
        copy_rows_per_s = copy_rate(many, admin_url)
        del sample
    runs.sort(key=lambda run: run[0])
    ratio, bare, bare_before, bare_after, at_nx = runs[len(runs) // 2]
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "postgresql": server,
        "copies": args.copies,
        "lines": at_nx["lines"],
        "pyais_bare_messages_per_s": round(bare),
        "pyais_bare_before_after": [round(bare_before), round(bare_after)],
        "pyais_bare_decoded": decoded,
        "aiswatch_messages_per_s": round(at_nx["messages_per_s"]),
        "aiswatch_lines_per_s": round(at_nx["lines_per_s"]),
        "ratio_to_pyais": round(ratio, 3),
        "ratios_of_all_runs": [round(run[0], 3) for run in runs],
        "gpsdecode_messages_per_s": None if gpsd is None else round(gpsd),
        "gpsdecode_to_pyais": None if gpsd is None else round(gpsd / bare, 3),
        "binary_copy_rows_per_s": round(copy_rows_per_s),
        "aiswatch_positions_per_s": round(at_nx["positions_stored"] / at_nx["elapsed_s"]),
        "ratio_to_binary_copy": round(at_nx["positions_stored"] / at_nx["elapsed_s"] / copy_rows_per_s, 3),
        "positions_stored": at_nx["positions_stored"],
        "unresolved_lines": at_nx["pending"],
        "peak_rss_mib_1x": round(at_1x["peak_rss_mib"], 1),
        f"peak_rss_mib_{args.copies}x": round(at_nx["peak_rss_mib"], 1),
        "rss_ratio": round(at_nx["peak_rss_mib"] / at_1x["peak_rss_mib"], 3),
        "decoder_peak_rss_mib_1x": round(at_1x["decoder_peak_rss_mib"], 1),
        f"decoder_peak_rss_mib_{args.copies}x": round(at_nx["decoder_peak_rss_mib"], 1),
        "decoder_rss_ratio": round(at_nx["decoder_peak_rss_mib"] / at_1x["decoder_peak_rss_mib"], 3),
    }
    out = REPO / "bench" / "results" / "ingest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ours, bare_rate = result["aiswatch_messages_per_s"], result["pyais_bare_messages_per_s"]
    print(f"\nend to end {ours:,} msg/s vs pyais bare {bare_rate:,} msg/s: ratio {result['ratio_to_pyais']}")
    gpsd_rate, copy_limit = result["gpsdecode_messages_per_s"], result["binary_copy_rows_per_s"]
    print(
        f"gpsdecode {gpsd_rate} msg/s; binary COPY {copy_limit:,} rows/s, aiswatch at",
        result["ratio_to_binary_copy"],
    )
    print(
        f"goal: ratio >= 1.5; RSS {args.copies}x/1x = {result['rss_ratio']} (service),"
        f" {result['decoder_rss_ratio']} (decoder), goal <= 1.3"
    )


if __name__ == "__main__":
    main()
