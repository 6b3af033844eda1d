"""Benchmark: what the detectors cost, and how soon an event is committed.

1. Overhead. The backbone's replay (gpsd's AISHub sample ten times over,
   850,000 lines, see ingest_bench.py) is ingested into a fresh database
   with the detectors off and with them on, watching 1,000 MMSIs picked at
   random (fixed seed) among those present in the traffic; the two runs
   alternate, three pairs, in child processes; the median of the ratios
   on/off is reported (goal: at most 1.10), with the same ratio of the CPU
   time of the service process alone (decoding runs in a process of its own,
   so the wall-clock ratio hides what the detectors cost when they overlap it).
2. Latency, line read to event committed. The sample is fed as a live feed
   would be, at a steady 5,000 lines/s for 60 s, each line tag-blocked with the
   wall-clock time (milliseconds) at which it was handed to the decoder; the
   detectors run on the wall clock; for every event revision committed, the
   latency is the commit time minus the read time of the newest line of that
   vessel in the batch that caused it. p50 and p99 are reported. So that
   events happen within a minute of a real feed, this run adds two busy ports of
   the sample's traffic (Rotterdam, Antwerp; boxes drawn from the map) to the
   shipped zones: ships first seen there, and ships crossing their edges.

Usage: ``bench/detectors [--repeat N] [--database-url URL]``; results go to
stdout and to bench/results/detectors.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import LOCAL_URL, REPO, SAMPLE, machine, tagged_copies

from aiswatch.config import Settings
from aiswatch.detection import Detection, engine_factory
from aiswatch.service import (
    decoder_process,
    ingest_paths,
    new_database,
    new_decoder,
    new_writer,
    open_database,
)
from detectors.zones import DEFAULT_ZONES
from ingest.pipeline import LineDecoder
from ingest.records import Event
from storage.admin import create_database, drop_database

WATCHED = 1000
SEED = 2024


def present_mmsis() -> list[int]:
    decoder = LineDecoder("bench", dedup_window_s=0)
    decoder.feed(SAMPLE.read_bytes().splitlines(), time.time())
    decoder.close()
    positions, _ = decoder.take()
    return sorted({p.mmsi for p in positions})


def write_watchlist(path: Path, mmsis: Sequence[int]) -> None:
    entries = [
        f'[[entry]]\nname = "BENCH {m}"\n'
        f'identifiers = [{{ kind = "mmsi", value = "{m}", source = "bench" }}]\n'
        for m in mmsis
    ]
    path.write_text("\n".join(entries))


def box(west: float, east: float, south: float, north: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


BUSY_PORTS = [  # (port, zone, west, east, south, north), drawn from the map
    ("Rotterdam", "berth", 4.0, 4.5, 51.87, 51.93),
    ("Rotterdam", "approach", 3.6, 4.55, 51.8, 52.05),
    ("Antwerp", "berth", 4.25, 4.42, 51.23, 51.32),
    ("Antwerp", "approach", 4.2, 4.45, 51.2, 51.35),
]


def write_busy_zones(path: Path) -> None:
    doc = json.loads(DEFAULT_ZONES.read_text())
    doc["features"] += [
        {"type": "Feature", "properties": {"port": port, "zone": zone}, "geometry": box(*bounds)}
        for port, zone, *bounds in BUSY_PORTS
    ]
    path.write_text(json.dumps(doc))


def settings_for(url: str, watchlist: Path, detectors: bool, zones: Path | None = None) -> Settings:
    return Settings(
        database_url=url,  # type: ignore[arg-type]
        detectors={"enabled": detectors, "watchlist": watchlist, "zones": zones},  # type: ignore[arg-type]
    )


def child(path: str, url: str, watchlist: str, mode: str) -> None:
    settings = settings_for(url, Path(watchlist), mode == "on")

    async def run() -> dict[str, Any]:
        detection = Detection(engine_factory(settings)) if mode == "on" else None
        async with decoder_process(settings) as process, open_database(settings) as db:
            began = time.perf_counter()
            cpu_began = time.process_time()
            (stats,) = await ingest_paths(settings, [path], db, process, detection=detection)
            elapsed = time.perf_counter() - began
            cpu = time.process_time() - cpu_began
        return {
            "elapsed_s": elapsed,
            "service_cpu_s": cpu,
            "lines": stats.lines,
            "positions_stored": stats.positions_stored,
            "pending": stats.pending,
            "watched": len(detection.engine.watched) if detection else 0,
            "event_revisions": detection.events_written if detection else 0,
        }

    print(json.dumps(asyncio.run(run())))


def run_child(path: Path, admin_url: str, watchlist: Path, mode: str) -> dict[str, Any]:
    name = f"aiswatch_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    try:
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(path), url, str(watchlist), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        drop_database(admin_url, name)


class TimedDetection(Detection):
    """Records, for each committed event revision, line read -> committed: the
    read time is the tag-block time of the newest record of that vessel the
    leader had taken or held when it committed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latencies_s: list[float] = []

    def _committed(self, events: list[Event], rows: int) -> None:
        committed = datetime.now(UTC)
        for event in events:
            w = self.engine.watched.get(event.mmsi)
            if w is not None and w.newest is not None:
                self.latencies_s.append((committed - w.newest).total_seconds())
        super()._committed(events, rows)


def retag(line: bytes, epoch_ms: int) -> bytes:
    body = f"c:{epoch_ms}"
    return f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\".encode() + line


async def paced_latency(
    url: str, watchlist: Path, zones: Path, rate: int, seconds: float, instances: int
) -> dict[str, Any]:
    """``instances`` writers (each with its own pool and decoder stream, as
    separate ingest instances are) take turns at the paced feed; one detector
    leader detects what they commit."""
    settings = settings_for(url, watchlist, True, zones)
    lines = [line for line in SAMPLE.read_bytes().splitlines() if line and not line.startswith(b"#")]
    total = int(rate * seconds)
    lines = (lines * (total // len(lines) + 1))[:total]
    detection = TimedDetection(engine_factory(settings), clock=lambda: datetime.now(UTC), poll_s=0.5)
    chunk = rate // 20  # a chunk every 50 ms
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        process = await stack.enter_async_context(decoder_process(settings))
        db = await stack.enter_async_context(open_database(settings))
        dbs = [db] + [
            await stack.enter_async_context(new_database(settings, db.url, migrate=False))
            for _ in range(instances - 1)
        ]
        leading = asyncio.create_task(detection.run(db.url, stop))
        while not detection.leader:  # noqa: ASYNC110 - set by the leader task
            await asyncio.sleep(0.1)
        decoders = [new_decoder(settings, process, f"paced-{n}") for n in range(instances)]
        async with AsyncExitStack() as writing:  # the writers drain on leaving it
            writers = [await writing.enter_async_context(new_writer(settings, d, detection)) for d in dbs]
            began = time.perf_counter()
            for k, start in enumerate(range(0, total, chunk)):
                await asyncio.sleep(max(0.0, began + start / rate - time.perf_counter()))
                now_ms = int(time.time() * 1000)
                decoder, writer = decoders[k % instances], writers[k % instances]
                decoder.submit([retag(line, now_ms) for line in lines[start : start + chunk]], time.time())
                await writer.put(decoder.stats, *await decoder.next_result())
            for decoder, writer in zip(decoders, writers, strict=True):
                decoder.submit([], time.time(), close=True)
                for positions, statics in await decoder.drain():
                    await writer.put(decoder.stats, positions, statics)
            sent_s = time.perf_counter() - began
        await asyncio.sleep(5.0)  # what waits for the hold is taken
        stop.set()
        await leading
    latencies = sorted(detection.latencies_s)
    kinds = Counter(e.kind for e in detection.engine.committed.values())
    return {
        "instances": instances,
        "rate_lines_per_s": rate,
        "lines": total,
        "sending_s": round(sent_s, 2),
        "event_revisions_timed": len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 3) if latencies else None,
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "events_by_kind": dict(kinds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="pairs of runs; the median ratio is reported")
    parser.add_argument("--rate", type=int, default=5000, help="lines/s of the paced (live-like) latency run")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--instances", type=int, default=2, help="writers sharing the paced feed")
    parser.add_argument("--no-latency", action="store_true", help="only the overhead (a backfill)")
    parser.add_argument("--out", default="detectors", help="bench/results/OUT.json")
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--child", nargs=4, metavar=("FILE", "URL", "WATCHLIST", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    admin_url = args.database_url or LOCAL_URL
    with psycopg.connect(admin_url) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    mmsis = present_mmsis()
    chosen = random.Random(SEED).sample(mmsis, WATCHED)
    with tempfile.TemporaryDirectory(prefix="aiswatch-bench-") as tmp:
        watchlist = Path(tmp) / "watchlist.toml"
        write_watchlist(watchlist, chosen)
        replay = Path(tmp) / f"x{args.copies}.nmea"
        with replay.open("wb") as f:  # a copy at a time: a backfill's file is large
            for copy in range(args.copies):
                f.write(b"\n".join(tagged_copies(1, first=copy)) + b"\n")
        pairs = []
        for k in range(args.repeat):
            order = ("off", "on") if k % 2 == 0 else ("on", "off")  # alternate, so drift hits both
            results = {mode: run_child(replay, admin_url, watchlist, mode) for mode in order}
            pairs.append((results["on"]["elapsed_s"] / results["off"]["elapsed_s"], results))
            off, on = results["off"]["elapsed_s"], results["on"]["elapsed_s"]
            print(f"pair {k + 1}: off {off:.2f} s, on {on:.2f} s")
        latency = None
        if not args.no_latency:
            name = f"aiswatch_bench_{uuid.uuid4().hex[:8]}"
            url = create_database(admin_url, name)
            try:
                zones = Path(tmp) / "busy-ports.geojson"
                write_busy_zones(zones)
                latency = asyncio.run(
                    paced_latency(url, watchlist, zones, args.rate, args.seconds, args.instances)
                )
            finally:
                drop_database(admin_url, name)
    cpu_ratios = sorted(r["on"]["service_cpu_s"] / r["off"]["service_cpu_s"] for _, r in pairs)
    pairs.sort(key=lambda pair: pair[0])
    ratio, median_pair = pairs[len(pairs) // 2]
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "postgresql": server,
        "lines": median_pair["on"]["lines"],
        "positions_stored": median_pair["on"]["positions_stored"],
        "mmsis_in_traffic": len(mmsis),
        "watched": median_pair["on"]["watched"],
        "event_revisions": median_pair["on"]["event_revisions"],
        "ingest_s_detectors_off": round(median_pair["off"]["elapsed_s"], 2),
        "ingest_s_detectors_on": round(median_pair["on"]["elapsed_s"], 2),
        "ratio_on_off": round(ratio, 3),
        "ratios_of_all_pairs": [round(pair[0], 3) for pair in pairs],
        # CPU of the service process alone (decoding runs in its own process): what the detectors cost
        "service_cpu_ratio_on_off": round(cpu_ratios[len(cpu_ratios) // 2], 3),
        "service_cpu_ratios_of_all_pairs": [round(r, 3) for r in cpu_ratios],
        "unresolved_lines": median_pair["on"]["pending"],
        "latency": latency,
    }
    out = REPO / "bench" / "results" / f"{args.out}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\ndetectors on/off: {result['ratio_on_off']} (goal <= 1.10)")


if __name__ == "__main__":
    main()
