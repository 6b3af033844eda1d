"""Real ``aiswatch alerts run`` processes: killed with SIGKILL between a send
and its record (sent at most twice, nothing lost), and two instances on one
database (one sends; the standby takes over when the leader is killed)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from alerts.dispatcher import LEADER_LOCK
from storage.database import Database
from tests.alert_servers import HttpReceiver, Request
from tests.alerting import port_call, put_events, rows


def config(tmp_path: Path, db: Database, channel: str) -> Path:
    path = tmp_path / "aiswatch.toml"
    path.write_text(
        f"""database_url = "{db.url}"
data_dir = "{tmp_path / "data"}"
log_level = "INFO"

[alerts]
group_wait_s = 0
repeat_interval_s = 0
poll_s = 0.3
standby_poll_s = 0.3
retry_initial_s = 0.2
retry_max_s = 1.0
channels = [{channel}]
""",
        encoding="utf-8",
    )
    return path


class Instances:
    """``aiswatch alerts run`` processes, each logging to a file of its own."""

    def __init__(self, tmp_path: Path, config: Path) -> None:
        self.tmp_path, self.config = tmp_path, config
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
        log = open(self.tmp_path / f"instance-{len(self.procs)}.log", "wb")  # noqa: SIM115 - kept by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiswatch", "alerts", "run", "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[Callable[[Path], Instances]]:
    made: list[Instances] = []

    def make(config: Path) -> Instances:
        made.append(Instances(tmp_path, config))
        return made[-1]

    yield make
    for group in made:
        group.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.2)


async def leader(db: Database, key: int = LEADER_LOCK) -> str | None:
    """The application name of the session holding the advisory lock ``key``."""
    found = await rows(
        db,
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.objid = %s"
        " AND l.classid = %s AND a.datname = current_database()",
        (key & 0xFFFFFFFF, key >> 32),
    )
    return found[0][0] if found else None


async def test_killed_between_send_and_record_the_alert_goes_at_most_twice_and_none_is_lost(
    tmp_path: Path, db: Database, instances: Callable[[Path], Instances]
) -> None:
    procs = instances(config(tmp_path, db, f'{{ kind = "webhook", name = "pager", url = "{"{url}"}" }}'))
    killed: list[str] = []

    def kill_on_first(request: Request) -> None:
        if not killed:  # the message is out; its sender dies before it can record so
            os.kill(procs.procs[0].pid, signal.SIGKILL)
            procs.procs[0].wait()
            killed.append(json.loads(request.body)["vessel"])

    receiver = HttpReceiver(on_request=kill_on_first)
    try:
        procs.config.write_text(procs.config.read_text().replace("{url}", receiver.url + "/hook"))
        await put_events(db, [port_call(f"SHIP {n}", mmsi=273100300 + n) for n in range(3)])
        procs.start()
        await eventually(lambda: _true(bool(killed)))
        assert procs.procs[0].returncode == -signal.SIGKILL
        procs.start()  # the next start finds the claimed, unrecorded delivery and sends it again

        async def all_sent() -> bool:
            ((waiting,),) = await rows(db, "SELECT count(*) FROM alert_deliveries WHERE sent_at IS NULL")
            return waiting == 0

        await eventually(all_sent)
    finally:
        receiver.stop()
    vessels = [json.loads(r.body)["vessel"] for r in receiver.requests]
    assert sorted(set(vessels)) == ["SHIP 0", "SHIP 1", "SHIP 2"]  # none lost
    assert vessels.count(killed[0]) == 2  # the one in flight: twice, at most
    assert all(vessels.count(v) == 1 for v in set(vessels) - {killed[0]})
    ((attempts,),) = await rows(db, "SELECT attempts FROM alert_deliveries WHERE vessel = %s", (killed[0],))
    assert attempts == 2


async def _true(value: bool) -> bool:
    return value


async def test_two_instances_one_sender_and_the_standby_takes_over_after_kill_9(
    tmp_path: Path, db: Database, instances: Callable[[Path], Instances]
) -> None:
    out = tmp_path / "alerts.jsonl"
    procs = instances(config(tmp_path, db, f'{{ kind = "file", name = "pager", path = "{out}" }}'))
    first = procs.start()
    await eventually(lambda: _is(leader(db), f"aiswatch-alerts-{first.pid}"))
    second = procs.start()
    await asyncio.sleep(1.5)  # the standby tries for the lock several times meanwhile
    assert await leader(db) == f"aiswatch-alerts-{first.pid}"

    def lines() -> list[str]:
        return (
            [json.loads(line)["data"]["vessel"] for line in out.read_text().splitlines()]
            if out.exists()
            else []
        )

    await put_events(db, [port_call("SHIP A", mmsi=273100401)])
    await eventually(lambda: _true(lines() == ["SHIP A"]))
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    await eventually(lambda: _is(leader(db), f"aiswatch-alerts-{second.pid}"))
    await put_events(db, [port_call("SHIP B", mmsi=273100402)])
    await eventually(lambda: _true(lines() == ["SHIP A", "SHIP B"]))
    await asyncio.sleep(1.0)
    assert lines() == ["SHIP A", "SHIP B"]  # each once: one sender at a time
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0


async def _is(value: Awaitable[str | None], expected: str) -> bool:
    return await value == expected
