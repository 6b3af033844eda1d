"""Several ``aiswatch run`` processes on one Mosquitto shared subscription and
one PostgreSQL (issue 11): the synthetic scenario (aiswatch/scenario.py,
real port geometry) published once gives exactly the events of a single
instance; the detector leader killed with SIGKILL mid-stream is replaced by
the standby, and nothing is lost or written twice; a member removed from a
group of three leaves the whole feed to the other two at once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from aiswatch.detection import DETECTOR_LOCK
from storage.database import Database
from tests.alerting import rows
from tests.services import Mosquitto, free_port
from tests.test_alerts_processes import leader
from tests.test_backfill import pure_events
from tests.test_detection_db import live, stored_events
from tests.test_live import eventually, expected, messages_of, stored

#: What a test waits for at most (the processes are real; the machine is shared).
PATIENCE_S = 90.0


class Instances:
    """``aiswatch run`` processes sharing one MQTT group, each logging to its file."""

    def __init__(self, tmp_path: Path, url: str, broker: Mosquitto, topic: str) -> None:
        self.tmp_path, self.url, self.broker, self.topic = tmp_path, url, broker, topic
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.http_ports: dict[int, int] = {}

    def config(self, n: int, extra: str = "") -> Path:
        path = self.tmp_path / f"instance-{n}.toml"
        self.http_ports[n] = port = self.http_ports.get(n) or free_port()
        path.write_text(
            f"""database_url = "{self.url}"
data_dir = "{self.tmp_path / f"data-{n}"}"
log_level = "INFO"
[ingest]
batch_delay_s = 0.2
[service]
http_port = {port}
[alerts]
enabled = false
[[sources]]
kind = "mqtt"
name = "mq"
host = "127.0.0.1"
port = {self.broker.port}
topics = ["{self.topic}"]
client_id = "aiswatch-{n}-{self.topic.rsplit("/", 1)[-1]}"
shared_group = "aiswatch"
{extra}
""",
            encoding="utf-8",
        )
        return path

    def start(self, n: int, extra: str = "") -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
        log = open(self.tmp_path / f"instance-{n}.log", "ab")  # noqa: SIM115 - kept by the child
        self.procs[n] = subprocess.Popen(
            [sys.executable, "-m", "aiswatch", "run", "--config", str(self.config(n, extra))],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        return self.procs[n]

    def share(self, n: int) -> float:
        """The MQTT messages instance ``n`` was given: its share of the feed, from its /metrics."""
        url = f"http://127.0.0.1:{self.http_ports[n]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        found = re.search(r'aiswatch_lines_total\{outcome="read",reason="",source="mqtt:mq"\} (\S+)', text)
        assert found is not None, text[:2000]
        return float(found.group(1))

    def log(self, n: int) -> str:
        return (self.tmp_path / f"instance-{n}.log").read_text(errors="replace")

    def stop(self, n: int, *, kill: bool = False) -> int:
        proc = self.procs[n]
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        return proc.wait(timeout=60)

    def stop_all(self) -> None:
        for n, proc in self.procs.items():
            if proc.poll() is None:
                self.stop(n)


@pytest.fixture
def make_instances(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Any]:
    made: list[Instances] = []

    def make(url: str, name: str) -> Instances:
        topic = f"ais/{name}-{time.monotonic_ns()}"
        made.append(Instances(tmp_path / name, url, mosquitto, topic))
        made[-1].tmp_path.mkdir()
        return made[-1]

    yield make
    for instances in made:
        instances.stop_all()


async def subscribed(group: Instances, db: Database, members: int) -> None:
    """Wait until ``members`` sessions of the group are subscribed (their logs say so)."""

    def ready() -> bool:
        return sum("subscribed to $share/aiswatch/" in group.log(n) for n in group.procs) >= members

    await eventually(ready, PATIENCE_S, what="the instances subscribed")


async def publish(group: Instances, messages: Sequence[bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", group.broker.port) as client:
        for message in messages:
            await client.publish(group.topic, message, qos=1)


async def settled(db: Database, want: set[Any]) -> None:
    """Every expected position stored, and the detectors' inbox consumed."""

    async def done() -> bool:
        (waiting,) = (await rows(db, "SELECT count(*) FROM detector_inbox"))[0]
        return waiting == 0 and await stored(db.url) >= want

    await eventually(done, PATIENCE_S, what="stored and detected")


async def events_once_quiet(db: Database) -> dict[str, Any]:
    """The events, once two looks a few seconds apart agree (records wait for the hold)."""
    before = None
    while True:
        now = live(await stored_events(db))
        if now == before:
            return now
        before = now
        await asyncio.sleep(3.0)


def scenario_messages(tmp_path: Path) -> tuple[list[bytes], set[Any]]:
    pure_events(tmp_path)  # writes the scenario
    lines = (tmp_path / "scenario.nmea").read_bytes().splitlines()
    return messages_of(lines), expected(lines)


async def baseline(make_instances: Any, url: str, tmp_path: Path) -> dict[str, Any]:
    """The events of one instance fed the scenario."""
    messages, want = scenario_messages(tmp_path)
    one = make_instances(url, "single")
    one.start(1)
    async with Database(url, timescaledb="off") as db:
        await subscribed(one, db, 1)
        await publish(one, messages)
        await settled(db, want)
        events = await events_once_quiet(db)
    assert one.stop(1) == 0
    return events


async def test_two_instances_give_the_events_of_one_and_survive_the_leader_killed(
    make_instances: Any, database_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    single = await baseline(make_instances, empty_database_url, tmp_path)
    assert len(single) > 20
    messages, want = scenario_messages(tmp_path)
    two = make_instances(database_url, "pair")
    keep = "session_expiry_s = 600"  # the killed member's share waits for its restart
    first, second = two.start(1, keep), two.start(2, keep)
    names = {f"aiswatch-detectors-{p.pid}": n for n, p in ((1, first), (2, second))}
    async with Database(database_url, timescaledb="off") as db:
        await subscribed(two, db, 2)
        await eventually(lambda: _leader_is(db, names), PATIENCE_S, what="a detector leader")
        chief = names[str(await leader(db, DETECTOR_LOCK))]
        half = len(messages) // 2
        await publish(two, messages[:half])
        await eventually(lambda: _committed_events(db), PATIENCE_S, what="events written by the first leader")
        two.stop(chief, kill=True)  # kill -9, mid-stream
        other = 2 if chief == 1 else 1
        standby = f"aiswatch-detectors-{two.procs[other].pid}"
        await eventually(lambda: _leader_named(db, standby), 30, what="the standby took over")
        await publish(two, messages[half:])
        two.start(chief, keep)  # back: its session (and the share kept for it) resumes
        await settled(db, want)
        events = await events_once_quiet(db)
        repeated = await rows(
            db,
            "SELECT count(*) FROM (SELECT event_id, payload - 'revision' AS body,"
            " lag(payload - 'revision') OVER (PARTITION BY event_id ORDER BY revision) AS before"
            " FROM event_outbox) o WHERE body = before",
        )
    assert events == single
    assert repeated == [(0,)]  # no revision repeats the one before: nothing written twice
    for n in two.procs:
        assert two.stop(n) == 0, two.log(n)[-2000:]


async def test_a_member_removed_from_a_group_of_three_leaves_the_feed_to_the_other_two(
    make_instances: Any, database_url: str, tmp_path: Path
) -> None:
    """Shared members' sessions end with their connection (the default), so
    the broker stops giving the gone member a share at once."""
    messages, want = scenario_messages(tmp_path)
    group = make_instances(database_url, "three")
    for n in (1, 2, 3):
        group.start(n)
    async with Database(database_url, timescaledb="off") as db:
        await subscribed(group, db, 3)
        third = len(messages) // 3
        await publish(group, messages[:third])
        assert group.stop(3) == 0  # removed (a clean stop: it leaves the group first)
        assert "left the shared group" in group.log(3)
        await publish(group, messages[third:])
        # nothing waits at the broker for the member that is gone (with a session kept
        # for it, a third of what follows would, until it came back)
        await settled(db, want)
        shares = [await asyncio.to_thread(group.share, n) for n in (1, 2)]
    assert all(share > 0.2 * len(messages) for share in shares), shares


async def _leader_is(db: Database, names: dict[str, int]) -> bool:
    return await leader(db, DETECTOR_LOCK) in names


async def _leader_named(db: Database, name: str) -> bool:
    return await leader(db, DETECTOR_LOCK) == name


async def _committed_events(db: Database) -> bool:
    (count,) = (await rows(db, "SELECT count(*) FROM events"))[0]
    return bool(count)
