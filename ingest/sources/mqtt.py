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
the broker was told we have; a broker with a backlog is held back by flow
control (see :mod:`ingest.sources.broker_reader`, which also makes receiving
fast, and falls back to public APIs when it cannot). A clean stop disconnects
without unsubscribing, so the broker keeps what is published meanwhile for the
next start.

Shared subscriptions. A broker goes on giving a member whose session it keeps
its share of the feed, even while that member is gone (Mosquitto queues it),
so the group's live members never see that share until the member returns or
its session expires, when the share is dropped. Shared members therefore
default to a session that ends with the connection (``session_expiry_s`` 0):
a member that stops or dies stops holding a share at once, and the others
take the whole feed. A clean stop of such a member leaves the group first:
it unsubscribes, takes what the broker had already sent it, and disconnects
once that is stored and acknowledged, so nothing is lost. A member killed
outright loses, with its session, what the broker had sent it and it had
not acknowledged (MQTT 5 does not give those to other members); a deployment
that restarts members at once and prefers a delay to that loss sets a session
expiry longer than a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Final

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.jsonfeeds import FeedError, aiscatcher_lines, aiscatcher_record
from ingest.lines import split_message, split_messages
from ingest.records import Position
from ingest.retry import FEED
from ingest.sources.broker_reader import (
    FastPathUnfit,
    Receiver,
    ReceiverChoice,
    choose_receiver,
    forced_fast,
    new_receiver,
)
from ingest.sources.live import (
    Chunk,
    SourceState,
    pause_before_reconnect,
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
    #: None: a day, or 0 for a shared member (see the module docs).
    session_expiry_s: int | None = None
    keepalive_s: int = 30
    #: MQTT 5: the most QoS 1 messages the broker may send us unacknowledged.
    receive_maximum: int = 65_535
    #: "fast" (aiomqtt and paho internals), "public" (their public APIs), or "auto": fast if it can.
    receiver: ReceiverChoice = "auto"


def subscriptions(options: MqttOptions) -> list[str]:
    if options.shared_group:
        return [f"$share/{options.shared_group}/{topic}" for topic in options.topics]
    return list(options.topics)


#: A session kept by the broker this long, unless configured (not for shared members).
DEFAULT_SESSION_EXPIRY_S: Final = 86_400
#: Leaving a shared group: how long to wait for messages the broker had sent, and for their storing.
LEAVE_QUIET_S: Final = 0.5
LEAVE_STORED_S: Final = 60.0


def session_expiry_s(options: MqttOptions) -> int:
    if options.session_expiry_s is not None:
        return options.session_expiry_s
    return 0 if options.shared_group else DEFAULT_SESSION_EXPIRY_S


def _client(options: MqttOptions, *, receive_maximum: int | None = None, **extra: Any) -> aiomqtt.Client:
    tls = ssl.create_default_context(cafile=options.ca_file) if options.tls else None
    if options.protocol == 5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = session_expiry_s(options)
        properties.ReceiveMaximum = receive_maximum or options.receive_maximum
        client = aiomqtt.Client(
            options.host, options.port, identifier=options.client_id, protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False, properties=properties, username=options.username, password=options.password,
            tls_context=tls, keepalive=options.keepalive_s, logger=paho_log, **extra,
        )  # fmt: skip
    else:
        client = aiomqtt.Client(
        options.host, options.port, identifier=options.client_id, protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=False, username=options.username, password=options.password, tls_context=tls,
        keepalive=options.keepalive_s, logger=paho_log, **extra,
    )  # fmt: skip
    return client


async def _leave(
    client: aiomqtt.Client, receiver: Receiver, topics: list[str], state: SourceState
) -> AsyncIterator[Chunk]:
    """Leave a shared group whose session ends with the connection: stop the
    broker sending, take what it had sent, and return once that is stored
    and acknowledged (the caller then disconnects)."""
    await client.unsubscribe(topics)
    taken = 0
    while True:
        try:
            async with asyncio.timeout(LEAVE_QUIET_S):
                batch = await receiver.take(CHUNK_MESSAGES)
        except TimeoutError:
            break
        taken += len(batch)
        chunk = payload_chunk([payload for payload, _, _ in batch], time.time())
        chunk.on_stored = partial(receiver.acknowledge, batch)
        yield chunk
    try:
        async with asyncio.timeout(LEAVE_STORED_S):
            await receiver.settled.wait()
    except TimeoutError:
        log.warning("%s: leaving the shared group before all it took was stored", state.name)
    log.info("%s: left the shared group (%d messages taken while leaving)", state.name, taken)


#: First bytes of a payload that is NMEA for certain ("!AIVDM", a tag block "\\"), not JSON.
_NMEA_STARTS: Final = frozenset({b"!", b"\\", b"$"})


def payload_chunk(payloads: list[bytes], received: float) -> Chunk:
    """MQTT payloads as one chunk: NMEA lines, tag-blocked JSON sentences, or records."""
    chunk = Chunk(received)
    if all(payload[:1] in _NMEA_STARTS for payload in payloads):  # NMEA only, the common feed
        chunk.lines = split_messages(payloads)  # bounded lines; blank ones counted
        return chunk
    for payload in payloads:
        body = payload.lstrip()
        if not body.startswith((b"{", b"[")):
            chunk.lines += split_message(payload)
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
                record = aiscatcher_record(item)
            except FeedError as exc:
                chunk.malformed.append(("json", str(exc)))
                continue
            if isinstance(record, Position):
                chunk.positions.append(record)
            else:
                chunk.statics.append(record)
    return chunk


#: The broker's errors, retried as a feed's (:data:`ingest.retry.FEED`) are.
_RETRY = replace(FEED, transient=(aiomqtt.MqttError,))


async def mqtt_chunks(options: MqttOptions, state: SourceState, stop: asyncio.Event) -> AsyncIterator[Chunk]:
    topics = subscriptions(options)
    kind = choose_receiver(_client(options), options.receiver, state.name)

    def failed(error: BaseException, delay_s: float) -> None:
        state.failures["mqtt"] += 1

    async def subscribed(stack: AsyncExitStack) -> tuple[aiomqtt.Client, Receiver]:
        client, receiver = new_receiver(kind, partial(_client, options), state.name)
        async with AsyncExitStack() as attempt:
            await attempt.enter_async_context(client)
            for topic in topics:
                await client.subscribe(topic, qos=options.qos)
            stack.push_async_exit(attempt.pop_all())  # connected: closed when the session ends
        return client, receiver

    while not stop.is_set():
        try:
            async with AsyncExitStack() as session:
                try:
                    client, receiver = await _RETRY.call(
                        lambda: subscribed(session),
                        resource=f"{state.name}: broker {options.host}:{options.port}",
                        stop=stop,
                        on_retry=failed,
                    )
                except _RETRY.transient:
                    return  # stopped while waiting to connect again
                state.connected, state.connects = True, state.connects + 1
                log.info(
                    "%s: subscribed to %s on %s:%d (%s receiver)",
                    state.name, ", ".join(topics), options.host, options.port, kind,
                )  # fmt: skip
                while True:
                    done, batch = await until_stopped(receiver.take(CHUNK_MESSAGES), stop)
                    if not done or batch is None:
                        break
                    now = time.time()
                    state.heard(now)
                    chunk = payload_chunk([payload for payload, _, _ in batch], now)
                    chunk.on_stored = partial(receiver.acknowledge, batch)
                    yield chunk
                if options.shared_group and session_expiry_s(options) == 0:
                    async for chunk in _leave(client, receiver, topics, state):
                        yield chunk
            # A clean stop: disconnected without unsubscribing. What the client received and
            # we did not take is unacknowledged: the broker sends it again at the next start.
            return
        except FastPathUnfit as exc:
            if options.receiver == "fast":
                raise forced_fast(state.name, str(exc)) from exc
            log.warning("%s: %s; reconnecting with the MQTT receiver on public APIs, slower", state.name, exc)
            kind = "public"  # nothing was taken: the broker sends it all again
        except aiomqtt.MqttError as exc:
            state.failures["mqtt"] += 1
            log.warning("%s: broker %s:%d: %s; reconnecting", state.name, options.host, options.port, exc)
        finally:
            state.connected = False
        await pause_before_reconnect(stop)  # then reconnect, with backoff if it fails
