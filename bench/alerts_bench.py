"""Benchmark: alerts from a live feed to an SMTP server, and a backlog's drain.

Measured in one run, on one machine (PostgreSQL on 127.0.0.1:5432, fresh
databases; an aiosmtpd server of the benchmark's own on loopback, plain SMTP):

1. Latency at 5,000 messages/s: ``run_service`` (the service of ``aiswatch
   run``, in this process) reads a UDP feed paced at 5,000 messages/s for
   ``--seconds``: background traffic (invented MMSIs) and ``--ships`` watched
   ships (listed by MMSI in a watchlist of the benchmark's own), each
   reporting every second and crossing into Rajin's approach zone at its own
   moment. Every line carries its send time in its tag block. A ship's
   latency is the time its zone-entry email reached the SMTP server minus
   the send time of its first fix inside the zone; split at the commit of
   the outbox row (the database's clock, the same machine's). p50 and p99
   (goal: p99 under 1 s).
2. Backlog: with the SMTP server down, 10,000 outbox rows are written (20
   ships, zone entries and port calls) while the dispatcher runs; then the
   server comes up: seconds until every row is delivered, and how many
   messages the server received (goal: folded by the cool-down, not one each).

Usage: ``bench/alerts [--seconds N] [--ships N]``; results go to stdout and
bench/results/alerts.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from pyais import encode_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiswatch.alerting import new_dispatcher  # noqa: E402
from aiswatch.config import Settings  # noqa: E402
from aiswatch.live import Service, run_service  # noqa: E402
from ingest.records import Event  # noqa: E402
from storage.admin import create_database, drop_database  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.events import write_events, write_matches  # noqa: E402

ADMIN = os.environ.get("AISWATCH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Rajin's approach zone's southern edge (ports.geojson) and a point on it.
EDGE_LAT, LON = 42.17, 130.33
RATE = 5000


def _checksum(body: str) -> str:
    return f"{reduce(xor, body.encode(), 0):02X}"


def line(ts: float, mmsi: int, lat: float, lon: float, speed: float = 10.0) -> bytes:
    (sentence,) = encode_dict(
        {"type": 1, "mmsi": mmsi, "lat": lat, "lon": lon, "speed": speed, "course": 0.0, "heading": 0,
         "second": int(ts) % 60, "status": 0, "accuracy": 1},
        talker_id="AI", radio_channel="A",
    )  # fmt: skip
    tag = f"s:bench,c:{int(ts)}"
    return f"\\{tag}*{_checksum(tag)}\\{sentence}".encode()


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        text = envelope.content.decode("utf-8", "replace")
        subject = next((h[9:] for h in text.splitlines() if h.startswith("Subject: ")), "")
        self.received.append((time.time(), subject))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def watchlist(path: Path, mmsis: list[int]) -> Path:
    entries = [
        f'[[entry]]\nname = "WATCHED {m}"\nidentifiers = [{{ kind = "mmsi", value = "{m}", source = "bench",'
        ' confidence = "high" }]\n'
        for m in mmsis
    ]
    path.write_text("\n".join(entries))
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50": round(statistics.median(values), 3), "p99": round(percentile(values, 0.99), 3)}


def email(port: int) -> dict[str, Any]:
    """Plain SMTP on loopback (the server is the benchmark's own)."""
    return {"kind": "email", "name": "pager", "host": "127.0.0.1", "port": port, "security": "none",
            "sender": "bench@example.org", "recipients": ["oncall@example.org"]}  # fmt: skip


async def latency(url: str, tmp: Path, seconds: float, ships: int) -> dict[str, Any]:
    udp, smtp_port = free_port(), free_port()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    mmsis = [273900000 + n for n in range(ships)]
    settings = Settings.model_validate({
        "database_url": url, "data_dir": tmp, "service": {"http_port": 0},
        "sources": [{"kind": "udp", "name": "feed", "host": "127.0.0.1", "port": udp}],
        "detectors": {"watchlist": str(watchlist(tmp / "watchlist.toml", mmsis)), "inland_check": False},
        "alerts": {"poll_s": 0.5, "channels": [email(smtp_port)]},
    })  # fmt: skip
    stop = asyncio.Event()
    started: asyncio.Future[Service] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_service(settings, stop, started=started.set_result))
    await started
    await asyncio.sleep(2.0)
    # each ship sails north at 10 kn (1 s reports) and crosses the zone's edge at its own second
    step = 10 / 3600 / 60  # degrees of latitude per second at 10 kn
    began = time.time() + 1
    cross_at = {m: began + 5 + (seconds - 15) * n / max(1, ships - 1) for n, m in enumerate(mmsis)}
    first_inside: dict[int, float] = {}
    sent = background = 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while (now := time.time()) < began + seconds:
        lines: list[bytes] = []
        for m in mmsis:  # one report a second each
            if int(now * 10) % 10 == m % 10 and (now - began) >= 0:
                lat = EDGE_LAT + (now - cross_at[m]) * step
                lines.append(line(now, m, lat, LON))
                if lat > EDGE_LAT + 0.00002 and m not in first_inside:  # 2 m in: past the AIS rounding
                    first_inside[m] = now
        due = int((now - began + 1) * RATE) - sent
        for _ in range(max(0, due - len(lines))):
            background += 1
            lines.append(line(now, 200000000 + background % 50000, 55.0 + (background % 997) / 1000, 11.0))
        for start in range(0, len(lines), 4):
            sock.sendto(b"\n".join(lines[start : start + 4]), ("127.0.0.1", udp))
        sent += len(lines)
        await asyncio.sleep(0.01)
    await asyncio.sleep(5)
    stop.set()
    await task
    smtp.stop()
    async with Database(url, timescaledb="off") as db, db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT e.mmsi, extract(epoch FROM min(o.created_at)) FROM events e JOIN event_outbox o"
            " ON o.event_id = e.id WHERE e.kind = 'zone_entry' AND e.zone_key LIKE '%%approach%%'"
            " GROUP BY e.mmsi"
        )
        committed = {m: float(at) for m, at in await cur.fetchall()}
    latencies, to_commit, commit_to_smtp = [], [], []
    for m in mmsis:
        got = [at for at, subject in inbox.received if f"WATCHED {m} entered Rajin (approach" in subject]
        if got and m in first_inside:
            latencies.append(got[0] - first_inside[m])
            if m in committed:
                to_commit.append(committed[m] - first_inside[m])
                commit_to_smtp.append(got[0] - committed[m])
    rate = sent / seconds
    return {
        "messages_per_s": round(rate), "ships": ships, "alerts_received": len(latencies),
        "latency_from_first_fix_inside_s": spread(latencies),
        "of_which_fix_to_event_committed_s": spread(to_commit),
        "of_which_event_committed_to_smtp_s": spread(commit_to_smtp),
    }  # fmt: skip


async def backlog(url: str, tmp: Path, rows: int = 10_000) -> dict[str, Any]:
    smtp_port = free_port()
    inbox = Inbox()
    settings = Settings.model_validate({
        "database_url": url, "data_dir": tmp,
        "alerts": {"poll_s": 0.5, "repeat_interval_s": 10, "retry_initial_s": 0.5, "retry_max_s": 2,
                   "channels": [email(smtp_port)]},
    })  # fmt: skip
    t0 = datetime(2024, 3, 11, tzinfo=UTC)
    events = [
        Event(kind=kind, mmsi=273800000 + n % 20, start=t0 + timedelta(minutes=n), vessel=f"SHIP {n % 20}",
              port="Rajin", lat=42.24, lon=130.3, key=str(n), state="closed")
        for n in range(rows // 2) for kind in ("zone_entry", "port_call")
    ]  # fmt: skip
    async with Database(url, timescaledb="off") as db, new_dispatcher(settings, db) as dispatcher:
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        for start in range(0, len(events), 1000):  # the detectors write while the SMTP server is down
            async with db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await write_events(cur, events[start : start + 1000])
                await write_matches(
                    cur, [(f"SHIP {n}", 273800000 + n, "identified", ("bench",)) for n in range(20)]
                )
        await asyncio.sleep(3)
        smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        up = time.perf_counter()
        smtp.start()
        while True:
            async with db.pool.connection() as conn:
                (left,) = await (await conn.execute(
                    "SELECT (SELECT count(*) FROM event_outbox WHERE delivered_at IS NULL)"
                    " + (SELECT count(*) FROM alert_deliveries WHERE sent_at IS NULL AND failed_at IS NULL)"
                )).fetchone() or (0,)  # fmt: skip
            if left == 0:
                break
            await asyncio.sleep(0.1)
        drained = time.perf_counter() - up
        stop.set()
        await task
    smtp.stop()
    return {"outbox_rows": len(events), "drain_s": round(drained, 2), "messages_sent": len(inbox.received),
            "note": "repeat_interval_s = 10 here: the rows folded meanwhile go out when it ends"}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--ships", type=int, default=30)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "when": datetime.now(UTC).isoformat()}
    for name, run in (
        ("latency", lambda u, t: latency(u, t, args.seconds, args.ships)),
        ("backlog", backlog),
    ):
        db_name = f"aiswatch_bench_{uuid.uuid4().hex[:8]}"
        url = create_database(ADMIN, db_name)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                async with Database(url, timescaledb="off"):
                    pass
                results[name] = await run(url, Path(tmp))
                print(name, json.dumps(results[name]), flush=True)
        finally:
            drop_database(ADMIN, db_name)
    out = ROOT / "bench" / "results" / "alerts.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
