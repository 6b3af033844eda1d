"""Benchmark: ``aiswatch run`` fed through Mosquitto.

Measured in one run, on one machine (a broker of the benchmark's own on a free
port, PostgreSQL on 127.0.0.1:5432, fresh databases):

1. File ingest: the backbone's 851,820-line replay (ingest_bench.py) through
   ``aiswatch ingest``'s path: messages/s.
2. Live, as fast as the broker delivers: ``aiswatch run`` subscribes (QoS 1,
   persistent session) and stops; the same replay is published, one MQTT
   message per line at QoS 1, and waits at the broker for the session (a
   Python publisher is slower than aiswatch, so it is not timed); then
   ``aiswatch run`` starts again and takes the backlog: sustained end-to-end
   messages/s from its first line read to its last line resolved (from
   ``/metrics``), and its ratio to (1) (goal: at least 0.8).
3. Latency at 5,000 messages/s: for 30 s, lines are published at that pace,
   each tag-blocked with its publish time in milliseconds; the database is
   polled every 50 ms for new rows, and a row's latency is the poll time that
   first saw it minus its publish time (so up to 50 ms too high). p50 and p99
   (goal: p99 under 1 s). The service runs with the default
   ``ingest.batch_delay_s`` (0.5 s: a row waits at most that long for its batch).
4. Peak RSS (VmHWM) of the service process and of its decoding process.

Usage: ``bench/live [--copies N] [--no-latency]`` (``BENCH_MQTT_PROTOCOL=3.1.1`` to
measure MQTT 3.1.1 instead of 5); results go to stdout and (full runs)
bench/results/live.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.services: the broker the tests start too
from ingest_bench import LOCAL_URL, REPO, SAMPLE, ingest_in_child, machine, tagged_copies

from storage.admin import create_database, drop_database
from tests.services import Mosquitto, free_port

TOPIC = "ais/bench"
PUBLISHER = str(Path(__file__).with_name("mqtt_publish.py"))
PROTOCOL = os.environ.get("BENCH_MQTT_PROTOCOL", "5")


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def vmhwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


class Service:
    """``aiswatch run`` in a child process, subscribed to the broker."""

    def __init__(
        self,
        url: str,
        broker: Mosquitto,
        tmp: Path,
        client_id: str | None = None,
        *,
        wait_connected: bool = True,
    ) -> None:
        self.http = free_port()
        client_id = client_id or f"aiswatch-bench-{uuid.uuid4().hex[:6]}"
        config = tmp / f"live-{uuid.uuid4().hex[:6]}.toml"
        config.write_text(
            f'database_url = "{url}"\ndata_dir = "{tmp}"\n[detectors]\nenabled = true\n'
            f"[service]\nhttp_port = {self.http}\n"
            f'[[sources]]\nname = "bench"\nkind = "mqtt"\nhost = "127.0.0.1"\nport = {broker.port}\n'
            f'topics = ["{TOPIC}"]\nclient_id = "{client_id}"\nprotocol = "{PROTOCOL}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
        self.log = config.with_suffix(".log")
        with open(self.log, "w") as log:  # a pipe nobody reads would block the service's logging
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aiswatch", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL, stderr=log, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                connected = metric(self.http, "aiswatch_source_connected")  # /metrics answers: started
                if connected >= 1 or not wait_connected:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(
                    f"aiswatch run did not start: {self.process.stderr.read() if self.process.stderr else ''}"
                )
            time.sleep(0.2)

    def resolved(self) -> tuple[float, float]:
        """(lines read, lines of them not yet resolved)."""
        return (
            metric(self.http, 'aiswatch_lines_total{outcome="read"'),
            metric(self.http, 'aiswatch_lines_total{outcome="pending"'),
        )

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of the service process and of its decoding process."""
        return cpu_s(self.process.pid), sum(cpu_s(k) for k in children(self.process.pid))

    def rss(self) -> tuple[float, float]:
        kids = children(self.process.pid)
        return vmhwm_mib(self.process.pid), max((vmhwm_mib(k) for k in kids), default=0.0)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def flat_out(url: str, broker: Mosquitto, tmp: Path, replay: Path, lines: int) -> dict[str, Any]:
    """The replay waits at the broker for aiswatch's persistent session (so the
    publisher's own speed does not count), then ``aiswatch run`` takes it as
    fast as the broker delivers: from its first line read to its last one
    resolved."""
    client_id = f"aiswatch-bench-{uuid.uuid4().hex[:6]}"
    Service(url, broker, tmp, client_id).stop()  # subscribes: the session now exists
    published = subprocess.run(
        [sys.executable, PUBLISHER, "127.0.0.1", str(broker.port), TOPIC, str(replay)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    count, publish_s = published.stdout.split()
    service = Service(url, broker, tmp, client_id, wait_connected=False)
    try:
        while service.resolved()[0] == 0:
            time.sleep(0.01)
        began = time.perf_counter()
        assert broker.process is not None
        cpu_began = (*service.cpu(), cpu_s(broker.process.pid))
        while True:  # every line read and resolved (an orphan fragment waits for the stop)
            read, pending = service.resolved()
            if read >= lines and pending <= 1:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
        cpu = [
            end - start
            for start, end in zip(cpu_began, (*service.cpu(), cpu_s(broker.process.pid)), strict=True)
        ]
        rss, decoder_rss = service.rss()
        messages = metric(service.http, "aiswatch_messages_total")
    finally:
        service.stop()
    return {
        "elapsed_s": round(elapsed, 2),
        "published": int(count),
        "publisher_messages_per_s": round(int(count) / float(publish_s)),
        "messages": int(messages),
        "messages_per_s": round(messages / elapsed),
        "peak_rss_mib": round(rss, 1),
        "decoder_peak_rss_mib": round(decoder_rss, 1),
        # CPU per message (µs): where the two cores go
        "cpu_us_per_message": {
            name: round(seconds / messages * 1e6, 1)
            for name, seconds in zip(("service", "decoder", "mosquitto"), cpu, strict=True)
        },
    }


def paced_latency(url: str, broker: Mosquitto, tmp: Path, rate: int, seconds: float) -> dict[str, Any]:
    service = Service(url, broker, tmp)
    publisher = subprocess.Popen(
        [sys.executable, PUBLISHER, "127.0.0.1", str(broker.port), TOPIC, str(SAMPLE),
         "--rate", str(rate), "--seconds", str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    latencies: list[float] = []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            seen = datetime.fromtimestamp(time.time() - 1, UTC)
            while publisher.poll() is None:
                seen = poll(conn, seen, latencies)
                time.sleep(0.05)
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline:
                seen = poll(conn, seen, latencies)
                time.sleep(0.05)
        assert publisher.stdout is not None
        _, publisher_lag_s = publisher.stdout.read().split()
    finally:
        publisher.kill()
        service.stop()
    latencies.sort()
    return {
        "rate_messages_per_s": rate,
        "seconds": seconds,
        "rows_timed": len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 3),
        "latency_max_s": round(latencies[-1], 3),
        "publisher_lag_s": float(publisher_lag_s),
    }


def poll(conn: psycopg.Connection[Any], seen: datetime, latencies: list[float]) -> datetime:
    rows = conn.execute("SELECT ts FROM positions WHERE ts > %s", (seen,)).fetchall()
    now = datetime.now(UTC)
    for (ts,) in rows:
        latencies.append((now - ts).total_seconds())
        seen = max(seen, ts)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-latency", action="store_true", help="skip the paced latency run")
    args = parser.parse_args()
    with psycopg.connect(LOCAL_URL) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    with tempfile.TemporaryDirectory(prefix="aiswatch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(tmp / "broker")
        try:
            replay = tmp / f"x{args.copies}.nmea"
            lines = tagged_copies(args.copies)
            replay.write_bytes(b"\n".join(lines) + b"\n")
            file_run = ingest_in_child(replay, LOCAL_URL)
            file_cpu_s = file_run["cpu_s"]  # both processes, while ingesting (as live is measured)
            results: dict[str, dict[str, Any]] = {"latency": {}}
            runs = [("flat_out", lambda url: flat_out(url, broker, tmp, replay, len(lines)))]
            if not args.no_latency:
                runs.append(("latency", lambda url: paced_latency(url, broker, tmp, args.rate, args.seconds)))
            for name, run in runs:
                db = f"aiswatch_bench_{uuid.uuid4().hex[:8]}"
                url = create_database(LOCAL_URL, db)
                try:
                    results[name] = run(url)
                finally:
                    drop_database(LOCAL_URL, db)
        finally:
            broker.stop()
    flat = results["flat_out"]
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "postgresql": server,
        "lines": len(lines),
        "file_ingest_messages_per_s": round(file_run["messages_per_s"]),
        # aiswatch's own CPU per message (both processes, while ingesting) in file ingest
        "file_ingest_cpu_us_per_message": round(file_cpu_s / file_run["messages"] * 1e6, 1),
        "live_messages_per_s": flat["messages_per_s"],
        "cpu_ratio_live_to_file": round(
            (flat["cpu_us_per_message"]["service"] + flat["cpu_us_per_message"]["decoder"])
            / (file_cpu_s / file_run["messages"] * 1e6),
            3,
        ),
        "ratio_live_to_file": round(flat["messages_per_s"] / file_run["messages_per_s"], 3),
        "live": flat,
        "latency": results["latency"],
    }
    print(json.dumps(result, indent=2))
    if not args.no_latency:  # a partial run does not replace the recorded results
        (REPO / "bench" / "results" / "live.json").write_text(json.dumps(result, indent=2) + "\n")
    p99 = results["latency"].get("latency_p99_s")
    print(f"\nlive/file: {result['ratio_live_to_file']} (goal >= 0.8); p99 {p99} s (goal < 1)")
    print(f"aiswatch's CPU per message live/file: {result['cpu_ratio_live_to_file']} (goal <= 1.25)")


if __name__ == "__main__":
    main()
