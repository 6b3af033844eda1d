"""An MQTT subscriber (aiomqtt): raw NMEA payloads and AIS-catcher's JSON.

MQTT 3.1.1 or 5, TLS and username/password, QoS 1, and a persistent session
(a fixed client id, no clean start, a session expiry), so the broker keeps
QoS 1 messages while aiswatch restarts. Topic wildcards work; with
``shared_group``, MQTT 5 shared subscriptions (``$share/GROUP/TOPIC``) split
one feed between several aiswatch instances.

A payload is JSON when it starts with ``{`` or ``[`` (AIS-catcher's JSON_NMEA
and JSON_FULL: see :mod:`ingest.jsonfeeds`), NMEA lines otherwise. Messages
waiting in the client's queue are taken together, so the decoder gets chunks,
not single sentences.

QoS 1 messages are acknowledged when what they carried is stored (committed,
or spooled to disk), not when they arrive: a crash or kill -9 loses nothing
the broker was told we have, and, with at most ``receive_maximum`` messages
unacknowledged (MQTT 5; the broker's in-flight limit with 3.1.1), a broker
with a backlog cannot flood aiswatch's memory. A clean stop disconnects
without unsubscribing, so the broker keeps what is published meanwhile for the
next start. (aiomqtt does not expose paho's manual acknowledgements; they are
switched on through its paho client.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.jsonfeeds import FeedError, aiscatcher_lines, aiscatcher_position
from ingest.sources.live import (
    Chunk,
    SourceState,
    backoff_s,
    sleep_unless_stopped,
    split_lines,
    until_stopped,
)

log = logging.getLogger(__name__)


class _QuietShutdown(logging.Filter):
    """paho reports its loop running once more after aiomqtt disconnects
    ("Client is not connected") as an error: harmless, and not ours to show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Client is not connected" not in record.getMessage()


#: paho's own messages, through logging (it would print its errors to stderr).
paho_log = logging.getLogger(f"{__name__}.paho")
paho_log.addFilter(_QuietShutdown())

#: Messages taken from the client's queue into one chunk, at most.
CHUNK_MESSAGES = 2000
#: Flow control: stop reading the socket when this many messages wait in the
#: client's queue, read again below the lower mark (TCP then holds the broker back).
QUEUE_HIGH, QUEUE_LOW = 20_000, 5_000


class _ReadGate:
    """Pauses reading the broker's socket while the client's queue is long.

    The MQTT 5 receive maximum should bound what a broker sends ahead of our
    acknowledgements, but Mosquitto 2.0 sends a stored backlog regardless
    (measured: 110,000 unacknowledged messages queued with a maximum of
    2,000), and every queued message costs kilobytes. aiomqtt reads the socket
    from the event loop; the gate removes that reader and puts aiomqtt's own
    back (private API, hence the care)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.paused = False

    def __call__(self, queued: int) -> None:
        paho = self.client._client
        sock = paho.socket()
        if sock is None:
            return
        if not self.paused and queued > QUEUE_HIGH:
            self.paused = asyncio.get_running_loop().remove_reader(sock.fileno())
        elif self.paused and queued < QUEUE_LOW:
            self.client._on_socket_open(paho, None, sock)
            self.paused = False


@dataclass(frozen=True, kw_only=True)
class MqttOptions:
    host: str
    port: int = 1883
    topics: tuple[str, ...] = ("ais/data",)
    qos: int = 1
    client_id: str = "aiswatch"
    protocol: int = 5  # 5, or 4 for MQTT 3.1.1
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    shared_group: str | None = None
    session_expiry_s: int = 86_400
    keepalive_s: int = 30
    #: MQTT 5: the most QoS 1 messages the broker may send us unacknowledged.
    receive_maximum: int = 10_000


def subscriptions(options: MqttOptions) -> list[str]:
    if options.shared_group:
        return [f"$share/{options.shared_group}/{topic}" for topic in options.topics]
    return list(options.topics)


def _client(options: MqttOptions) -> aiomqtt.Client:
    tls = ssl.create_default_context(cafile=options.ca_file) if options.tls else None
    if options.protocol == 5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = options.session_expiry_s
        properties.ReceiveMaximum = options.receive_maximum
        client = aiomqtt.Client(
            options.host, options.port, identifier=options.client_id, protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False, properties=properties, username=options.username, password=options.password,
            tls_context=tls, keepalive=options.keepalive_s, logger=paho_log,
        )  # fmt: skip
    else:
        client = aiomqtt.Client(
        options.host, options.port, identifier=options.client_id, protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=False, username=options.username, password=options.password, tls_context=tls,
        keepalive=options.keepalive_s, logger=paho_log,
    )  # fmt: skip
    client._client.manual_ack_set(True)
    return client


def _acker(client: aiomqtt.Client, messages: list[aiomqtt.Message]) -> Callable[[], None]:
    def ack() -> None:
        paho = client._client
        if not paho.is_connected():
            return  # disconnected since: the broker sends these again, and they are found stored
        for message in messages:
            if message.qos > 0:
                paho.ack(message.mid, message.qos)

    return ack


def payload_chunk(payloads: list[bytes], received: float) -> Chunk:
    """MQTT payloads as one chunk: NMEA lines, tag-blocked JSON sentences, or records."""
    chunk = Chunk(received)
    for payload in payloads:
        body = payload.lstrip()
        if not body.startswith((b"{", b"[")):
            chunk.lines += split_lines(b"", payload + b"\n")[0]
            continue
        try:
            doc = json.loads(body)
        except ValueError as exc:
            chunk.messages += 1
            chunk.malformed.append(("json", f"{exc}: {body[:60]!r}"))
            continue
        for item in doc if isinstance(doc, list) else [doc]:
            if isinstance(item, dict) and "nmea" in item:
                try:
                    chunk.lines += aiscatcher_lines(item)
                except FeedError as exc:
                    chunk.messages += 1
                    chunk.malformed.append(("json", str(exc)))
                continue
            chunk.messages += 1
            try:
                if not isinstance(item, dict):
                    raise FeedError("not a JSON object")
                chunk.positions.append(aiscatcher_position(item))
            except FeedError as exc:
                chunk.malformed.append(("json", str(exc)))
    return chunk


async def mqtt_chunks(options: MqttOptions, state: SourceState, stop: asyncio.Event) -> AsyncIterator[Chunk]:
    attempt = 0
    topics = subscriptions(options)
    while not stop.is_set():
        try:
            async with _client(options) as client:
                for topic in topics:
                    await client.subscribe(topic, qos=options.qos)
                state.connected, state.connects = True, state.connects + 1
                attempt = 0
                log.info(
                    "%s: subscribed to %s on %s:%d", state.name, ", ".join(topics), options.host, options.port
                )
                messages = client.messages
                gate = _ReadGate(client)
                while True:
                    gate(len(messages))
                    done, first = await until_stopped(anext(messages), stop)
                    if not done or first is None:
                        break
                    batch = [first] + [
                        await anext(messages) for _ in range(min(len(messages), CHUNK_MESSAGES))
                    ]
                    now = time.time()
                    state.heard(now)
                    chunk = payload_chunk([bytes(m.payload) for m in batch], now)
                    chunk.on_stored = _acker(client, batch)
                    yield chunk
            # A clean stop: disconnected without unsubscribing. What the client received and
            # we did not take is unacknowledged: the broker sends it again at the next start.
            return
        except aiomqtt.MqttError as exc:
            state.failures["mqtt"] += 1
            delay = backoff_s(attempt)
            attempt += 1
            log.warning(
                "%s: broker %s:%d: %s; retry in %.1f s", state.name, options.host, options.port, exc, delay
            )
        finally:
            state.connected = False
        await sleep_unless_stopped(delay if attempt else 0.0, stop)
