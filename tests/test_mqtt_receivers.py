"""Choosing the MQTT receive path: the fast receiver only where its
assumptions about aiomqtt and paho hold, else, loudly, the one on public APIs;
and the public receiver's own bound. (The MQTT tests in test_live.py run over
both receivers.) On a real Mosquitto."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from aiswatch.config import Settings
from ingest.errors import ConfigError
from ingest.sources import broker_reader
from ingest.sources.broker_reader import choose_receiver
from tests.services import Mosquitto
from tests.test_live import eventually, expected, feed, lines_read, live_settings, running, stored, unresolved

__all__ = ["feed"]  # the fixture, from test_live

UNTESTED = {"aiomqtt": ((0, 1), (0, 2)), "paho-mqtt": ((0, 1), (0, 2))}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_installed_versions_get_the_fast_receiver(caplog: pytest.LogCaptureFixture) -> None:
    client = aiomqtt.Client("127.0.0.1", 1)
    assert choose_receiver(client, "auto", "mq") == "fast"
    assert choose_receiver(client, "public", "mq") == "public"
    assert warnings_of(caplog) == []


async def test_untested_versions_fall_back_with_one_warning_naming_them(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_reader, "TESTED", UNTESTED)
    client = aiomqtt.Client("127.0.0.1", 1)
    assert choose_receiver(client, "auto", "mq") == "public"
    (warning,) = warnings_of(caplog)
    assert warning.startswith("mq: MQTT receiver on public APIs") and "aiomqtt 2." in warning
    assert "(tested: >=0.1,<0.2)" in warning and "paho-mqtt 2." in warning
    caplog.clear()
    assert choose_receiver(client, "fast", "mq") == "fast"  # forced: it can run, untested
    (warning,) = warnings_of(caplog)
    assert "fast MQTT receiver (as configured) on untested aiomqtt" in warning


async def test_a_missing_internal_is_named_and_forcing_fast_then_fails_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = aiomqtt.Client("127.0.0.1", 1)
    del client._disconnected  # as a later aiomqtt might not have it
    assert choose_receiver(client, "auto", "mq") == "public"
    (warning,) = warnings_of(caplog)
    assert "aiomqtt.Client._disconnected" in warning
    with pytest.raises(ConfigError) as caught:
        choose_receiver(client, "fast", "mq")
    assert caught.value.setting == "sources.mq.receiver"
    assert str(caught.value) == (
        "setting sources.mq.receiver: 'fast', but aiomqtt/paho lack aiomqtt.Client._disconnected"
    )


@dataclass(frozen=True)
class Case:
    """A database, a data directory and the tests' Mosquitto, with a topic of the test's own."""

    url: str
    tmp: Path
    mosquitto: Mosquitto
    topic: str = field(default_factory=lambda: f"ais/receivers-{time.monotonic_ns()}")

    def settings(self, receiver: str) -> Settings:
        source = {"kind": "mqtt", "name": "mq", "host": "127.0.0.1", "port": self.mosquitto.port,
                  "topics": [self.topic], "client_id": self.topic.replace("/", "-"),
                  "receiver": receiver}  # fmt: skip
        return live_settings(self.url, self.tmp, [source])

    async def publish(self, lines: list[bytes]) -> None:
        async with aiomqtt.Client("127.0.0.1", self.mosquitto.port) as client:
            for line in lines:
                await client.publish(self.topic, line, qos=1)

    async def run_through(self, receiver: str, lines: list[bytes], *, waiting: int = 0) -> None:
        """aiswatch subscribed, ``lines`` published, and all of them (and
        ``waiting`` more, from the session) read and resolved."""
        async with running(self.settings(receiver)) as service:
            await eventually(lambda: service.sources[0].state.connected, what="subscribed")
            await self.publish(lines)
            done = len(lines) + waiting
            await eventually(lambda: lines_read(service) >= done and unresolved(service) == 0, 60)
            assert sum(s.stats.malformed["orphan_fragment"] for s in service.sources) == 0  # in order


@pytest.fixture
def case(database_url: str, tmp_path: Path, mosquitto: Mosquitto) -> Case:
    return Case(database_url, tmp_path, mosquitto)


async def test_auto_on_untested_versions_receives_everything_on_public_apis(
    case: Case, feed: list[bytes], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(broker_reader, "TESTED", UNTESTED)
    caplog.set_level(logging.INFO, logger="ingest.sources")
    await case.run_through("auto", feed[:1500])
    assert await stored(case.url) == expected(feed[:1500])
    assert any("(public receiver)" in r.getMessage() for r in caplog.records)


async def test_the_public_receiver_bounds_its_queue_and_loses_nothing_beyond_it(
    case: Case, feed: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of several times the queue (lowered here): what does not fit
    is left to the broker, which sends it again, in order, after a reconnect
    (if it keeps to the receive maximum, nothing is left over at all)."""
    monkeypatch.setattr(broker_reader, "PUBLIC_QUEUE", 100)
    first, backlog = feed[:10], feed[10:610]
    await case.run_through("public", first)  # makes the session
    await case.publish(backlog)  # while aiswatch is stopped
    await case.run_through("public", [], waiting=len(backlog))
    assert await stored(case.url) == expected(first + backlog)


async def test_aiomqtt_reading_the_socket_after_us_switches_to_public_apis(
    case: Case, feed: list[bytes], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As an aiomqtt that registered its socket reader later than today would:
    the fast receiver finds no reader to replace when it connects, says so,
    and the source reconnects with the public receiver."""
    registers = aiomqtt.Client._on_socket_open

    def later(self: aiomqtt.Client, client: Any, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.call_later, 0.2, registers, self, client, userdata, sock)

    monkeypatch.setattr(aiomqtt.Client, "_on_socket_open", later)
    caplog.set_level(logging.INFO, logger="ingest.sources")
    await case.run_through("auto", feed[:500])
    assert await stored(case.url) == expected(feed[:500])
    (warning,) = [w for w in warnings_of(caplog) if "socket reader" in w]
    assert warning.startswith("mq: aiomqtt's socket reader was not registered before ours; reconnecting")
    assert any("(public receiver)" in r.getMessage() for r in caplog.records)


def _publish(
    topic: bytes, payload: bytes, *, qos: int, mid: int = 7, properties: bytes | None = None
) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    body += b"" if properties is None else bytes([len(properties)]) + properties
    body += payload
    return bytes([0x30 | qos << 1]) + broker_reader._variable_bytes(len(body)) + body


def test_publish_packets_parse_and_malformed_ones_are_refused() -> None:
    take = broker_reader.take_publishes
    big = b"!" + b"x" * 300  # a remaining length of two bytes
    stream = _publish(b"ais", b"!AIVDM,1", qos=1) + _publish(b"ais/t", big, qos=0) + b"\x40\x02\x00\x07"
    out: list[tuple[bytes, int, int]] = []
    end = take(stream, 0, out, False)
    assert out == [(b"!AIVDM,1", 7, 1), (big, 0, 0)] and stream[end] == 0x40  # a PUBACK: paho's
    out5: list[tuple[bytes, int, int]] = []
    packet5 = _publish(b"ais", b"payload", qos=1, mid=9, properties=b"\x23\x00\x01")
    assert take(packet5 + packet5[:5], 0, out5, True) == len(packet5)  # the second is not whole
    assert out5 == [(b"payload", 9, 1)]
    for broken, mqtt5 in [
        (b"\x30\x00", False),  # no topic at all
        (b"\x32\x03\x00\x01a", False),  # QoS 1 without its packet id
        (b"\x30\x04\x00\x01a\x09", True),  # properties longer than the packet
        (b"\x30\x05\x00\x09abc", False),  # a topic longer than the packet
    ]:
        with pytest.raises(ValueError, match="malformed PUBLISH"):
            take(broken, 0, [], mqtt5)
