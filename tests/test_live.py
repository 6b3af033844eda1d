"""``aiswatch run`` against real servers and real failures: TCP, UDP, MQTT
(Mosquitto) and websocket feeds on loopback, a PostgreSQL stopped under load,
a broker restarted, a feed cut, two instances sharing one subscription, and
SIGTERM. After each, the rows in the database match the lines sent, exactly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest
import websockets
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from aiswatch.config import Settings
from aiswatch.live import Service, run_service
from ingest.pipeline import LineDecoder
from ingest.sources import broker_reader
from storage.database import Database
from storage.writer import as_batch
from tests.services import Mosquitto, OwnPostgres, free_port, send_datagrams
from tests.test_bad_input import aiswatch

Key = tuple[int, datetime, int]


def tagged(lines: Sequence[bytes], base: int = 1_700_000_000, per_s: int = 400) -> list[bytes]:
    """Real AISHub lines with tag-block times (``per_s`` lines a second), so
    that what is stored does not depend on when a line happens to arrive."""
    out = []
    for i, line in enumerate(lines):
        body = f"c:{base + i // per_s}"
        out.append(f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\".encode() + line)
    return out


@pytest.fixture(scope="module")
def feed(shared_data: Path) -> list[bytes]:
    raw = (shared_data / "aishub-gpsd/ais-nmea-sample.log").read_bytes().splitlines()
    return tagged([line for line in raw if line.startswith(b"!")][:12_000])


def expected(lines: Sequence[bytes]) -> set[Key]:
    """What the ingest logic makes of ``lines`` (one source, in order): the rows that must be stored."""
    decoder = LineDecoder("expected", dedup_window_s=30)
    decoder.feed(lines, time.time())
    decoder.close()
    positions, _ = decoder.take()
    return {(p.mmsi, p.ts, p.payload_crc) for p in positions}


async def stored(url: str) -> set[Key]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT mmsi, ts, payload_crc FROM positions")
        return {(m, ts, crc) for m, ts, crc in await cur.fetchall()}


async def eventually(
    condition: Callable[[], Any], timeout_s: float = 30.0, what: str | Callable[[], str] = ""
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what() if callable(what) else what}")
        await asyncio.sleep(0.1)


def live_settings(url: str, tmp: Path, sources: list[dict[str, Any]], **service: Any) -> Settings:
    return Settings(
        database_url=url,  # type: ignore[arg-type]
        data_dir=tmp,
        sources=sources,  # type: ignore[arg-type]
        service={"http_port": 0, "spool_retry_s": 0.3, **service},  # type: ignore[arg-type]
        ingest={"batch_delay_s": 0.2},  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Service]:
    stop = asyncio.Event()
    started: asyncio.Future[Service] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_service(settings, stop, started=started.set_result))
    done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield started.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@pytest.fixture(params=["fast", "public"])
def receiver(request: pytest.FixtureRequest) -> str:
    """The MQTT tests run over both receive paths (see ingest/sources/broker_reader.py)."""
    return str(request.param)


def lines_read(service: Service) -> int:
    return sum(s.stats.lines + s.json_stats.lines for s in service.sources)


def unresolved(service: Service) -> int:
    return sum(s.stats.pending + s.json_stats.pending for s in service.sources)


# -- sources ----------------------------------------------------------------------------------


async def test_a_tcp_feed_cut_mid_stream_reconnects_and_every_line_is_stored_once(
    database_url: str, tmp_path: Path, feed: list[bytes]
) -> None:
    half = len(feed) // 2
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        part = feed[:half] if connections == 1 else feed[half:]
        writer.write(b"\r\n".join(part) + b"\r\n")
        await writer.drain()
        if connections == 1:
            writer.close()  # the feed is cut
            return
        await reader.read()  # until aiswatch hangs up

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = live_settings(
        database_url, tmp_path, [{"kind": "tcp", "name": "aishub", "host": "127.0.0.1", "port": port}]
    )
    async with server, running(settings) as service:
        await eventually(lambda: lines_read(service) >= len(feed), what="all lines read")
        await eventually(lambda: unresolved(service) == 0, what="all lines resolved")
        state = service.sources[0].state
        assert state.connects >= 2 and state.failures["closed"] >= 1
    assert await stored(database_url) == expected(feed)


async def test_a_silent_tcp_feed_is_noticed_and_reconnected(database_url: str, tmp_path: Path) -> None:
    accepted = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.read()  # say nothing until aiswatch hangs up

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = {"kind": "tcp", "name": "quiet", "host": "127.0.0.1", "port": port, "read_timeout_s": 0.3}
    async with server, running(live_settings(database_url, tmp_path, [source])) as service:
        await eventually(lambda: accepted >= 2, what="a reconnect after silence")
        assert service.sources[0].state.failures["silent"] >= 1


async def test_udp_datagrams_of_several_sentences(
    database_url: str, tmp_path: Path, feed: list[bytes]
) -> None:
    port = free_port()
    lines = feed[:3000]
    settings = live_settings(
        database_url, tmp_path, [{"kind": "udp", "name": "rx", "host": "127.0.0.1", "port": port}]
    )
    async with running(settings) as service:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port)
        )
        for start in range(0, len(lines), 5):
            transport.sendto(b"\n".join(lines[start : start + 5]))
            if start % 100 == 0:  # a receiver's pace, not a flood: a busy machine's socket buffer is small
                await asyncio.sleep(0.005)
        transport.close()
        await eventually(lambda: lines_read(service) >= len(lines) and unresolved(service) == 0)
    assert await stored(database_url) == expected(lines)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_mqtt_raw_nmea_and_ais_catcher_json_end_to_end(
    database_url: str, tmp_path: Path, feed: list[bytes], mosquitto: Mosquitto, protocol: str, receiver: str
) -> None:
    """Both protocol versions; with MQTT 5 every message also carries
    properties, which aiswatch's PUBLISH parser skips. (Fewer messages with
    3.1.1: Mosquitto then lets only 20 wait for our acknowledgement, which
    comes once stored.)"""
    v5 = protocol == "5"
    raw, wrapped = (feed[:2000], feed[2000:3000]) if v5 else (feed[:200], feed[200:300])
    topic = f"aiswatch-test-{os.getpid()}-{time.monotonic_ns()}"
    source = {
        "kind": "mqtt",
        "name": "catcher",
        "host": "127.0.0.1",
        "port": mosquitto.port,
        "topics": [f"{topic}/#"],
        "client_id": f"aiswatch-{time.monotonic_ns()}",
        "protocol": protocol,
        "receiver": receiver,
    }
    properties = None
    if v5:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [("station", "rx1"), ("antenna", "a" * 300)]
        properties.ContentType = "text/plain"
        properties.MessageExpiryInterval = 3600
    version = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    async with running(live_settings(database_url, tmp_path, [source])) as service:
        await eventually(lambda: service.sources[0].state.connected, what="subscribed")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=version) as client:
            for line in raw:
                await client.publish(f"{topic}/nmea", line, qos=1, properties=properties)
            for line in wrapped:  # AIS-catcher JSON_NMEA: the sentence, its time and station
                tag_end = line.index(b"\\", 1)
                when = int(line[3 : line.index(b"*")].decode())
                doc = {
                    "class": "AIS",
                    "device": "AIS-catcher",
                    "rxuxtime": when,
                    "station_id": "rx1",
                    "nmea": [line[tag_end + 1 :].decode()],
                }
                await client.publish(f"{topic}/json", json.dumps(doc), qos=1)
            full = {
                "class": "AIS",
                "rxuxtime": 1_700_000_500,
                "mmsi": 273100001,
                "type": 1,
                "lat": 42.24,
                "lon": 130.3,
                "speed": 0.1,
                "course": 360,
                "heading": 511,
                "status": 5,
            }
            await client.publish(f"{topic}/json", json.dumps(full), qos=1)  # JSON_FULL without sentences
            await client.publish(f"{topic}/json", b"{not json", qos=1)
        await eventually(
            lambda: lines_read(service) >= len(raw) + len(wrapped) + 2 and unresolved(service) == 0
        )
        json_stats = service.sources[0].json_stats
        assert (json_stats.lines, json_stats.positions, sum(json_stats.malformed.values())) == (2, 1, 1)
    rows = await stored(database_url)
    assert expected(raw) and expected(raw) <= rows  # the raw NMEA payloads' positions, every one
    assert rows - expected(raw) - {k for k in rows if k[0] == 273100001} == expected(wrapped) - expected(raw)
    (full_row,) = [k for k in rows if k[0] == 273100001]
    assert full_row[1] == datetime.fromtimestamp(1_700_000_500, UTC)


async def test_aisstream_websocket_subscription_and_messages(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loopback server speaking aisstream.io's protocol, from messages made of
    the SYNTHETIC scenario (aisstream's field names, invented content)."""
    from aiswatch.scenario import voyages

    ship = voyages()[0]  # LADY R's script
    messages = []
    for ts, data in ship.messages[:300]:
        meta = {
            "MMSI": data["mmsi"],
            "ShipName": ship.name,
            "time_utc": ts.strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC"),
        }
        if data["type"] == 5:
            body = {
                "UserID": data["mmsi"],
                "MessageID": 5,
                "ImoNumber": data["imo"],
                "CallSign": data["callsign"],
                "Name": data["shipname"],
                "Type": data["ship_type"],
                "MaximumStaticDraught": data["draught"],
                "Destination": data["destination"],
                "Dimension": {"A": 90, "B": 40, "C": 10, "D": 10},
            }
            messages.append(
                {"MessageType": "ShipStaticData", "MetaData": meta, "Message": {"ShipStaticData": body}}
            )
        else:
            body = {
                "UserID": data["mmsi"],
                "MessageID": 1,
                "Latitude": data["lat"],
                "Longitude": data["lon"],
                "Sog": data["speed"],
                "Cog": data["course"],
                "TrueHeading": data["heading"],
                "NavigationalStatus": data["status"],
                "Timestamp": data["second"],
            }
            messages.append(
                {"MessageType": "PositionReport", "MetaData": meta, "Message": {"PositionReport": body}}
            )
    received: list[dict[str, Any]] = []

    async def aisstream(socket: Any) -> None:
        received.append(json.loads(await asyncio.wait_for(socket.recv(), 3)))  # the subscription, within 3 s
        for message in messages:
            await socket.send(json.dumps(message))
        await socket.send(json.dumps({"MessageType": "UnknownMessage", "MetaData": meta, "Message": {}}))
        await socket.wait_closed()

    monkeypatch.setenv("TEST_AISSTREAM_KEY", "k-123")
    async with websockets.serve(aisstream, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        source = {
            "kind": "aisstream",
            "name": "stream",
            "url": f"ws://127.0.0.1:{port}",
            "api_key_env": "TEST_AISSTREAM_KEY",
            "bounding_boxes": [[[41.0, 129.0], [44.0, 134.0]]],
            "mmsi": [273100001],
        }
        async with running(live_settings(database_url, tmp_path, [source])) as service:
            await eventually(
                lambda: service.sources[0].json_stats.lines >= len(messages) + 1 and unresolved(service) == 0
            )
            stats = service.sources[0].json_stats
    assert received == [
        {
            "APIKey": "k-123",
            "BoundingBoxes": [[[41.0, 129.0], [44.0, 134.0]]],
            "FiltersShipMMSI": ["273100001"],
            "FilterMessageTypes": ["PositionReport", "StandardClassBPositionReport", "ShipStaticData"],
        }
    ]
    positions = [m for m in messages if m["MessageType"] == "PositionReport"]
    assert len(await stored(database_url)) == len(positions) == stats.positions_stored
    assert stats.filtered["type_not_stored"] == 1
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (
            await conn.execute("SELECT shipname, imo FROM vessels WHERE mmsi = 273100001")
        ).fetchone()
    assert row == ("LADY R", 9161003)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


async def test_a_followed_file_is_read_as_it_grows_and_across_a_rotation(
    database_url: str, tmp_path: Path, feed: list[bytes]
) -> None:
    log = tmp_path / "feed.log"
    first, second, third = feed[:1000], feed[1000:2000], feed[2000:3000]
    log.write_bytes(b"\n".join(first) + b"\n")
    settings = live_settings(database_url, tmp_path, [{"kind": "file", "name": "log", "path": str(log)}])
    async with running(settings) as service:
        await eventually(lambda: lines_read(service) >= len(first))
        await asyncio.to_thread(append, log, b"\n".join(second) + b"\n")
        await eventually(lambda: lines_read(service) >= len(first) + len(second))
        log.rename(tmp_path / "feed.log.1")  # rotated
        log.write_bytes(b"\n".join(third) + b"\n")
        await eventually(lambda: lines_read(service) >= len(feed[:3000]) and unresolved(service) == 0)
    assert await stored(database_url) == expected(feed[:3000])


# -- failures -------------------------------------------------------------------------------


async def migrate(url: str) -> None:
    async with Database(url, timescaledb="off"):
        pass


async def test_the_database_stopped_under_load_loses_nothing(
    own_postgres: OwnPostgres, tmp_path: Path, feed: list[bytes]
) -> None:
    await migrate(own_postgres.url)
    port = free_port()
    settings = live_settings(
        own_postgres.url, tmp_path, [{"kind": "udp", "name": "rx", "host": "127.0.0.1", "port": port}]
    )
    async with running(settings) as service:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port)
        )
        for k, start in enumerate(range(0, len(feed), 10)):
            transport.sendto(b"\n".join(feed[start : start + 10]))
            await asyncio.sleep(0.002)
            if k == 200:
                await asyncio.to_thread(own_postgres.stop)  # PostgreSQL goes away under load...
            if k == 700:
                assert (
                    service.spool is not None and len(service.spool) > 0
                )  # ...the service spools and reads on
                await asyncio.to_thread(own_postgres.start)  # ...and comes back
        transport.close()
        await eventually(lambda: lines_read(service) >= len(feed) and unresolved(service) == 0, 60)
        assert service.writer is not None and service.writer.stats.spooled_batches > 0
        assert service.writer.stats.replayed_batches == service.writer.stats.spooled_batches
        assert service.spool is not None and len(service.spool) == 0
    assert await stored(own_postgres.url) == expected(feed)


async def test_a_broker_restart_loses_no_qos1_message(
    database_url: str, tmp_path: Path, feed: list[bytes], receiver: str
) -> None:
    broker = Mosquitto(tmp_path / "broker")
    try:
        topic, before, after = "ais/restart", feed[:1500], feed[1500:3000]
        source = {
            "kind": "mqtt",
            "name": "mq",
            "host": "127.0.0.1",
            "port": broker.port,
            "topics": [topic],
            "client_id": "aiswatch-restart-test",
            "receiver": receiver,
        }
        async with running(live_settings(database_url, tmp_path, [source])) as service:
            await eventually(lambda: service.sources[0].state.connected, what="subscribed")
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                for line in before:
                    await client.publish(topic, line, qos=1)
            await eventually(lambda: lines_read(service) >= len(before))
            await asyncio.to_thread(broker.restart)  # aiswatch loses its connection; its session survives
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="publisher") as client:
                for line in after:  # published while aiswatch is (most likely) still reconnecting
                    await client.publish(topic, line, qos=1)
            await eventually(
                lambda: lines_read(service) >= len(before) + len(after) and unresolved(service) == 0,
                what=lambda: (
                    f"{lines_read(service)} read, {unresolved(service)} left, {service.sources[0].state}"
                ),
            )
            assert service.sources[0].state.connects >= 2
    finally:
        broker.stop()
    assert await stored(database_url) == expected(before + after)


async def test_messages_published_while_aiswatch_is_stopped_wait_in_its_session(
    database_url: str,
    tmp_path: Path,
    feed: list[bytes],
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    receiver: str,
) -> None:
    """The backlog is larger than the fast reader's flow-control mark
    (lowered here), so reading pauses and resumes, and the subscription's
    SUBACK, behind the backlog, is still read."""
    monkeypatch.setattr(broker_reader, "QUEUE_HIGH", 100)
    monkeypatch.setattr(broker_reader, "QUEUE_LOW", 20)
    topic = f"ais/session-{time.monotonic_ns()}"
    first, meanwhile = feed[:1000], feed[1000:2500]
    source = {"kind": "mqtt", "name": "mq", "host": "127.0.0.1", "port": mosquitto.port, "topics": [topic],
              "client_id": f"aiswatch-session-{time.monotonic_ns()}", "receiver": receiver}  # fmt: skip
    settings = live_settings(database_url, tmp_path, [source])
    async with running(settings) as service, aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        await eventually(lambda: service.sources[0].state.connected, what="subscribed")
        for line in first:
            await client.publish(topic, line, qos=1)
        await eventually(lambda: lines_read(service) >= len(first))
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:  # aiswatch is stopped (a restart)
        for line in meanwhile:
            await client.publish(topic, line, qos=1)
    async with running(settings) as service:
        await eventually(lambda: lines_read(service) >= len(meanwhile) and unresolved(service) == 0)
    assert await stored(database_url) == expected(first + meanwhile)


def messages_of(lines: Sequence[bytes]) -> list[bytes]:
    """Lines grouped by AIS message (the fragments of a multi-part message
    together), as a receiver publishes them: one MQTT message each."""
    out: list[bytes] = []
    group: list[bytes] = []
    for line in lines:
        fields = line[line.index(b"!") :].split(b",")
        group.append(line)
        if fields[1] == fields[2]:  # the last fragment
            out.append(b"\n".join(group))
            group = []
    return out + ([b"\n".join(group)] if group else [])


async def test_two_instances_split_one_shared_subscription(
    database_url: str, tmp_path: Path, feed: list[bytes], mosquitto: Mosquitto, receiver: str
) -> None:
    """MQTT 5 shared subscription: each message goes to one instance. (Publish
    a multi-part message as one MQTT message, as AIS-catcher does: fragments
    split between instances could not be joined.)"""
    topic = f"ais/shared-{time.monotonic_ns()}"
    lines = feed[:4000]
    messages = messages_of(lines)

    def source(n: int) -> dict[str, Any]:
        return {
            "kind": "mqtt",
            "name": "mq",
            "host": "127.0.0.1",
            "port": mosquitto.port,
            "topics": [topic],
            "client_id": f"aiswatch-shared-{n}-{time.monotonic_ns()}",
            "shared_group": "aiswatch",
            "receiver": receiver,
        }

    one = live_settings(database_url, tmp_path / "one", [source(1)])
    two = live_settings(database_url, tmp_path / "two", [source(2)])
    async with running(one) as first, running(two) as second:
        await eventually(
            lambda: first.sources[0].state.connected and second.sources[0].state.connected,
            what="both subscribed",
        )
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for message in messages:
                await client.publish(topic, message, qos=1)
        await eventually(
            lambda: (
                lines_read(first) + lines_read(second) >= len(lines)
                and not unresolved(first)
                and not unresolved(second)
            ),
            what=lambda: (
                f"{lines_read(first)} + {lines_read(second)} read, {unresolved(first)} {unresolved(second)}"
            ),
        )

        # Then a marker (malformed JSON) until each instance has had one: each gets its share in
        # order, so by then it has had all it ever will of the feed (nothing doubled comes later).
        def markers() -> tuple[int, int]:
            return (
                first.sources[0].json_stats.malformed["json"],
                second.sources[0].json_stats.malformed["json"],
            )

        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            sent = 0
            while not all(markers()):
                await client.publish(topic, b"{marker", qos=1)
                sent += 1
                await eventually(lambda: sum(markers()) == sent, what="the marker")  # noqa: B023
        a, b = first.sources[0].stats.lines, second.sources[0].stats.lines
        orphans = sum(s.stats.malformed["orphan_fragment"] for s in (*first.sources, *second.sources))
    assert a + b == len(lines) and a > 0.3 * len(lines) and b > 0.3 * len(lines)  # split, nothing doubled
    assert orphans == 0
    # every message stored; a repeat heard by two receivers may land in both instances' share
    # (each de-duplicates its own), so the rows are at least those of one instance
    assert await stored(database_url) >= expected(lines)


# -- the command ------------------------------------------------------------------------------


def aiswatch_run(config: Path, **env: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    full.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "aiswatch", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full,
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_run_serves_health_and_metrics_and_drains_on_sigterm(
    database_url: str, tmp_path: Path, feed: list[bytes]
) -> None:
    udp, http = free_port(), free_port()
    config = tmp_path / "aiswatch.toml"
    config.write_text(
        f'database_url = "{database_url}"\ndata_dir = "{tmp_path}"\n[service]\nhttp_port = {http}\n'
        f'[[sources]]\nname = "rx"\nkind = "udp"\nhost = "127.0.0.1"\nport = {udp}\n'
    )
    process = aiswatch_run(config)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{http}/health")
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, (
                    process.stderr.read() if process.stderr else ""
                )
                time.sleep(0.2)
        assert status == 200 and json.loads(body)["sources"]["rx"]["connected"] is True

        lines = feed[:2000]
        send_datagrams(lines, udp, per_datagram=4, pace_s=0.0005)
        read_all = 'aiswatch_lines_total{outcome="read",reason="",source="udp:rx"} 2000.0'
        deadline = time.monotonic() + 30
        while read_all not in (metrics := get(f"http://127.0.0.1:{http}/metrics")[1]):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.1)
        assert (
            "aiswatch_spool_bytes 0.0" in metrics
            and 'aiswatch_source_connected{kind="udp",source="rx"} 1.0' in metrics
        )
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert time.monotonic() - began < 15
    assert "Traceback" not in err and "lines read             2,000" in out
    assert asyncio.run(stored(database_url)) == expected(lines)


def test_kill_9_while_spooling_then_restart_replays_the_spool(
    own_postgres: OwnPostgres, tmp_path: Path, feed: list[bytes]
) -> None:
    """The database stops, lines arrive and are spooled, the service is killed
    (-9): at the next start the spool is replayed, and every position that was
    committed or spooled is in the database, once."""
    import pickle

    asyncio.run(migrate(own_postgres.url))
    udp, http = free_port(), free_port()
    config = tmp_path / "aiswatch.toml"
    config.write_text(
        f'database_url = "{own_postgres.url}"\ndata_dir = "{tmp_path}"\n'
        f"[ingest]\nbatch_delay_s = 0.2\n[service]\nhttp_port = {http}\nspool_retry_s = 0.3\n"
        f'[[sources]]\nname = "rx"\nkind = "udp"\nhost = "127.0.0.1"\nport = {udp}\n'
    )
    process = aiswatch_run(config)
    lines = feed[:3000]

    def spooled() -> set[Key]:
        keys: set[Key] = set()
        for path in sorted((tmp_path / "spool").glob("*.batch")):
            for _, positions, _ in pickle.loads(path.read_bytes()):
                keys |= {(p.mmsi, p.ts, p.payload_crc) for p in as_batch(positions).records()}
        return keys

    def healthy() -> bool:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return get(f"http://127.0.0.1:{http}/health")[0] == 200
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 60
        while not healthy():  # started, with the database up
            assert time.monotonic() < deadline
            time.sleep(0.1)
        own_postgres.stop()
        send_datagrams(lines, udp, pace_s=0.0005)
        deadline = time.monotonic() + 60
        while spooled() != expected(lines):  # every batch failed to connect and went to the spool
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        process.kill()  # kill -9: no drain, no goodbye
        process.wait()
    assert spooled() == expected(lines)
    own_postgres.start()

    async def restart() -> None:
        source = {"kind": "udp", "name": "rx", "host": "127.0.0.1", "port": udp}
        async with running(live_settings(own_postgres.url, tmp_path, [source])) as service:
            await eventually(lambda: service.spool is not None and len(service.spool) == 0, 30)

    asyncio.run(restart())
    assert asyncio.run(stored(own_postgres.url)) == expected(lines)  # all of it had been spooled


def test_run_without_sources_or_with_a_missing_secret_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "aiswatch.toml"
    config.write_text('database_url = "postgresql://nobody@127.0.0.1:1/x"\n')
    result = aiswatch("run", "--config", str(config))
    assert result.returncode == 2 and "setting sources: no sources configured" in result.stderr
    assert "Traceback" not in result.stderr
    config.write_text(
        'database_url = "postgresql://nobody@127.0.0.1:1/x"\n[[sources]]\nname = "s"\nkind = "aisstream"\n'
        'api_key_env = "NO_SUCH_KEY_VAR"\n'
    )
    result = aiswatch("run", "--config", str(config))
    assert (
        result.returncode == 2
        and "sources.s.api_key_env" in result.stderr
        and "NO_SUCH_KEY_VAR" in result.stderr
    )
