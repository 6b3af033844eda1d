"""The receive path of an MQTT subscriber: aiomqtt connects, paho parses,
a :class:`Receiver` reads, hands on and acknowledges, in batches. Two of them:

- :class:`FastReceiver`, which reaches into aiomqtt and paho (below): fast,
  but only as long as their internals stay what it was written against;
- :class:`PublicReceiver`: aiomqtt's message iterator, paho's manual
  acknowledgement (``manual_ack_set``, ``ack``), and nothing else of theirs but
  aiomqtt's handle on its paho client (aiomqtt 2.5 has no manual
  acknowledgement of its own: empicano/aiomqtt#345).

:func:`choose_receiver` checks the fast path's assumptions at start (versions
in the tested range, the internals it uses present) and falls back to the
public one with a warning naming what failed; the fast receiver also checks,
at its first connection, that it runs after aiomqtt's own socket reader.

The fast path. With a backlog of one-line messages, per-message overheads
were the whole cost (6,000 messages/s): paho reads each packet with three or
more ``recv`` calls (the command byte, each length byte, the body), aiomqtt's
socket reader takes one packet per event-loop turn and wraps each message in
its own object and queue entry, and each acknowledgement is a ``send``. Here:

- the socket is read 64 KiB at a time (:class:`BufferedSocket`) and paho's
  small reads are served from memory;
- :class:`FastReceiver` replaces aiomqtt's reader: every PUBLISH whole in
  the buffer it parses itself, in one loop over the buffer (paho would read
  each in three or more pieces and build a message object, MQTT 5 properties
  and a debug line for it), anything else paho reads, up to
  ``PACKETS_PER_TURN`` rounds a turn; payloads go, with packet id and QoS,
  into a list the consumer takes whole;
- acknowledgements are one write of concatenated PUBACK packets.

It also does flow control. The MQTT 5 receive maximum bounds what a broker
sends ahead of our acknowledgements, but it is the broker's to honour (an
earlier measurement saw Mosquitto 2.0.11 queue 110,000 unacknowledged messages
with a maximum of 2,000; a later one saw it keep to 10,000). So the reader
also stops reading while ``QUEUE_HIGH`` messages wait to be taken (checked
every turn), and TCP then holds the broker back.

aiomqtt exposes none of this: it goes through its paho client (``_client``,
the ``on_socket_open`` callback, ``_handle_publish``, ``_packet_queue``,
``_in_packet``, ``_sock``, ``_disconnected``), which is why pyproject.toml
bounds both versions. The public path asks for a receive maximum of
``PUBLIC_QUEUE`` (MQTT 5; with 3.1.1 the broker's in-flight limit holds it)
and bounds its queue to that: see :class:`PublicReceiver`. The MQTT tests run
both receivers on a real broker (reconnects, broker restarts, sessions,
shared subscriptions, a backlog beyond the public queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, Literal, Protocol

import aiomqtt
import numpy as np
import paho.mqtt.client
from paho.mqtt.client import PUBACK, MQTTv5
from paho.mqtt.enums import MQTTErrorCode

from ingest.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

ReceiverChoice = Literal["auto", "fast", "public"]

#: The versions the fast path was written and tested against: [lowest, first untested).
TESTED = {"aiomqtt": ((2, 3), (2, 6)), "paho-mqtt": ((2, 1), (2, 3))}

#: Bytes read from the broker's socket at a time.
RECV_BYTES = 1 << 16
#: Packets paho takes from the buffer before other tasks get a turn.
PACKETS_PER_TURN = 200
#: Stop reading while this many messages wait in the client's queue; read again below the lower mark.
QUEUE_HIGH, QUEUE_LOW = 20_000, 5_000
#: The public receiver's queue, at most, and the receive maximum it asks for.
PUBLIC_QUEUE = 20_000
#: The public receiver waits this long for what it took to be acknowledged before it reconnects.
SETTLE_S = 1.0


def _variable_int(data: bytes | bytearray, position: int) -> tuple[int, int] | None:
    """MQTT's variable byte integer at ``position``: (value, position after
    it), or None if ``data`` ends first or it runs past four bytes."""
    value = shift = 0
    for index in range(position, min(position + 4, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    return None


def take_publishes(buffer: bytes, position: int, into: list[Received], mqtt5: bool) -> int:
    """Parse every whole PUBLISH at QoS 0 or 1 in ``buffer`` from
    ``position`` on, adding (payload, packet id, QoS) to ``into``, up to the
    first packet that is not one or not whole; where that one starts. One
    loop, written out (this is every live message): lengths below 128, the
    common case, are one byte."""
    end = len(buffer)
    while position < end:
        first = buffer[position]
        if first >> 4 != 3 or first & 6 == 4:  # not a PUBLISH, or at QoS 2 (never subscribed to)
            break
        length = buffer[position + 1] if position + 1 < end else 0x80
        start = position + 2
        if length >= 0x80:
            remaining = _variable_int(buffer, position + 1)
            if remaining is None:
                break
            length, start = remaining
        packet_end = start + length
        if packet_end > end:
            break
        if length < 2:
            raise ValueError("malformed PUBLISH: no topic")
        at = start + 2 + (buffer[start] << 8 | buffer[start + 1])  # after the topic
        mid = 0
        if first & 6:  # QoS 1: the packet id
            if at + 2 > packet_end:
                raise ValueError("malformed PUBLISH: no packet id")
            mid = buffer[at] << 8 | buffer[at + 1]
            at += 2
        if mqtt5:  # the properties: their length, then that many bytes
            if at >= packet_end:
                raise ValueError("malformed PUBLISH: no properties length")
            properties = buffer[at]
            if properties < 0x80:
                at += 1 + properties
            else:
                found = _variable_int(buffer, at)
                if found is None:
                    raise ValueError("malformed PUBLISH: properties length")
                at = found[1] + found[0]
        if at > packet_end:
            raise ValueError("malformed PUBLISH: longer than its length")
        into.append((buffer[at:packet_end], mid, (first >> 1) & 3))
        position = packet_end
    return position


def _variable_bytes(value: int) -> bytes:
    """``value`` as MQTT's variable byte integer."""
    out = bytearray()
    while True:
        value, byte = value >> 7, value & 0x7F
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class BufferedSocket:
    """The broker's socket, read ``RECV_BYTES`` at a time. ``pending()``
    (which paho asks of TLS sockets too) is what is buffered; everything else
    is the socket's own."""

    __slots__ = ("_buffer", "_position", "_socket")

    def __init__(self, sock: Any) -> None:
        self._socket = sock
        self._buffer = b""
        self._position = 0

    def recv(self, size: int) -> bytes:
        if self._position >= len(self._buffer):
            data: bytes = self._socket.recv(RECV_BYTES)  # BlockingIOError, SSLWantReadError: for paho
            if not data:
                return data  # closed
            self._buffer, self._position = data, 0
        start = self._position
        self._position = min(start + size, len(self._buffer))
        return self._buffer[start : self._position]

    def publish_packets(self, into: list[Received], mqtt5: bool) -> int:
        """Every whole PUBLISH at QoS 0 or 1 from here on in the buffer, taken
        (:func:`take_publishes`), up to the first packet that is not one
        (paho reads that). How many were taken."""
        before = len(into)
        self._position = take_publishes(self._buffer, self._position, into, mqtt5)
        return len(into) - before

    def pending(self) -> int:
        inner = self._socket.pending() if hasattr(self._socket, "pending") else 0
        return len(self._buffer) - self._position + int(inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


#: One received message: payload, packet id, QoS.
Received = tuple[bytes, int, int]


class Receiver(Protocol):
    """Receives for one aiomqtt client: made before the client connects, then
    ``take()`` what arrives and ``acknowledge()`` it once stored."""

    async def take(self, most: int) -> list[Received]:
        """Up to ``most`` messages, oldest first, once there is one; MqttError
        if the connection ends first."""

    def acknowledge(self, batch: list[Received]) -> None:
        """Acknowledge ``batch`` (QoS 1); nothing if disconnected since (the
        broker sends those messages again, and they are found stored)."""

    @property
    def settled(self) -> asyncio.Event:
        """Set when every batch taken is acknowledged."""


class FastPathUnfit(SourceError):
    """An assumption of the fast receiver does not hold; ``source`` names the MQTT source."""


def forced_fast(source: str, reason: str) -> ConfigError:
    """The error when ``receiver = "fast"`` is configured but cannot run."""
    setting = f"sources.{source}.receiver"
    return ConfigError(f"setting {setting}: 'fast', but {reason}", setting=setting)


def _release(package: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version(package).split(".")[:2] if part.isdigit())


def version_problems() -> list[str]:
    """The installed aiomqtt and paho-mqtt outside the fast path's tested range."""
    problems = []
    for package, (lowest, untested) in TESTED.items():
        if not lowest <= _release(package) < untested:
            low, high = (".".join(map(str, v)) for v in (lowest, untested))
            problems.append(f"{package} {version(package)} (tested: >={low},<{high})")
    return problems


def missing_internals(client: aiomqtt.Client) -> list[str]:
    """The aiomqtt and paho internals the fast receiver uses that ``client`` lacks."""
    paho_client = getattr(client, "_client", None)
    if not isinstance(paho_client, paho.mqtt.client.Client):
        return ["aiomqtt.Client._client (its paho client)"]
    missing = [f"aiomqtt.Client.{name}" for name in ("_disconnected",) if not hasattr(client, name)]
    wanted = ("_handle_publish", "_packet_queue", "_in_packet", "_sock", "_last_bytes_received", "loop_read")
    missing += [f"paho Client.{name}" for name in wanted if not hasattr(paho_client, name)]
    if getattr(paho_client, "on_socket_open", None) is None:
        missing.append("paho Client.on_socket_open set by aiomqtt (its socket reader)")
    return missing


def choose_receiver(client: aiomqtt.Client, choice: ReceiverChoice, source: str) -> Literal["fast", "public"]:
    """Which receiver a source uses: ``choice``, or for "auto" the fast one if
    its assumptions hold on ``client`` (one warning naming what does not)."""
    if choice == "public":
        return "public"
    missing, versions = missing_internals(client), version_problems()
    if choice == "fast":
        if missing:
            raise forced_fast(source, f"aiomqtt/paho lack {', '.join(missing)}")
        if versions:
            log.warning("%s: fast MQTT receiver (as configured) on untested %s", source, ", ".join(versions))
        return "fast"
    if missing or versions:
        log.warning(
            "%s: MQTT receiver on public APIs, slower (the fast one's assumptions fail: %s)",
            source,
            ", ".join(missing + versions),
        )
        return "public"
    return "fast"


def new_receiver(
    kind: Literal["fast", "public"], connect: Callable[..., aiomqtt.Client], source: str
) -> tuple[aiomqtt.Client, Receiver]:
    """A client from ``connect`` (``aiomqtt.Client``'s arguments, and
    ``receive_maximum``), and its receiver of ``kind``."""
    if kind == "fast":
        client = connect()
        return client, FastReceiver(client, source)
    queue = _held_back()
    bound = PUBLIC_QUEUE
    client = connect(receive_maximum=bound, queue_type=queue, max_queued_incoming_messages=bound)
    return client, PublicReceiver(client, queue)


class HeldBack(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue for the public receiver (its ``queue_type``):
    bounded. Once a message does not fit, it and every one after it on this
    connection are counted and left unacknowledged, for the broker to send
    again, in order, after a reconnect. (aiomqtt's own bounded queue drops with
    a log line only, and takes later messages again: the fragments of a
    multi-part message would come out of order.)"""

    left = 0

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if self.left or self.full():
            type(self).left += 1
            return
        super().put_nowait(item)


def _held_back() -> type[HeldBack]:
    class PerConnection(HeldBack):  # aiomqtt makes the queue: the class holds the count
        left = 0

    return PerConnection


class PublicReceiver:
    """The receiver on public APIs: aiomqtt's message iterator, paho's manual
    acknowledgement. Flow control: the receive maximum asked for, and, as
    brokers do not all keep to it, a bounded queue: once the queue is empty
    and messages were left out of it, a reconnect has them sent again."""

    def __init__(self, client: aiomqtt.Client, queue: type[HeldBack]) -> None:
        self.paho = client._client  # the one non-public name: aiomqtt has no manual ack (see above)
        self.paho.manual_ack_set(True)  # acknowledge() once stored, not on arrival
        self.messages = client.messages
        self.queue = queue
        #: Batches taken and not yet acknowledged; ``settled`` when there are none.
        self.outstanding = 0
        self._settled = asyncio.Event()
        self._settled.set()

    @property
    def settled(self) -> asyncio.Event:
        return self._settled

    async def take(self, most: int) -> list[Received]:
        if self.queue.left and not len(self.messages):
            # Acknowledge what was taken before reconnecting, or the broker sends it again too.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_S):
                    await self.settled.wait()
            raise aiomqtt.MqttError(
                f"{self.queue.left:,} messages did not fit our queue of {PUBLIC_QUEUE:,}"
                " (the broker sent more ahead of our acknowledgements): reconnecting for them"
            )
        batch = [_received(await anext(self.messages))]
        for _ in range(min(most - 1, len(self.messages))):
            batch.append(_received(await anext(self.messages)))
        self.outstanding += 1
        self._settled.clear()
        return batch

    def acknowledge(self, batch: list[Received]) -> None:
        self.outstanding -= 1
        if not self.outstanding:
            self._settled.set()
        if not self.paho.is_connected():
            return
        for _, mid, qos in batch:
            if qos:
                self.paho.ack(mid, qos)


def _received(message: aiomqtt.Message) -> Received:
    payload = message.payload
    body = payload if isinstance(payload, bytes) else str(payload).encode() if payload is not None else b""
    return body, message.mid, message.qos


class FastReceiver:
    """The fast receiver: aiomqtt's socket reader replaced, PUBLISH parsed
    here, acknowledgements written together (see the module's docstring)."""

    def __init__(self, client: aiomqtt.Client, source: str) -> None:
        self.client = client
        self.source = source
        self.loop = asyncio.get_running_loop()
        #: Whether our socket reader has replaced aiomqtt's yet (checked then: see _resume).
        self.replaced = False
        self.unfit: FastPathUnfit | None = None
        self.paused = False
        #: Flow control starts with the first take(): before, SUBACK may be behind a backlog.
        self.taking = False
        self.socket: BufferedSocket | None = None
        self.received: list[Received] = []
        self._arrived = asyncio.Event()
        self.outstanding = 0
        self._settled = asyncio.Event()
        self._settled.set()
        paho = client._client
        paho.manual_ack_set(True)  # acknowledge() once stored, not on arrival
        opened = paho.on_socket_open
        assert opened is not None, "aiomqtt registers its socket reader there"
        self._aiomqtt_opened = opened
        paho.on_socket_open = self._opened
        self._mqtt5 = paho.protocol == MQTTv5
        self._paho_publish = paho._handle_publish
        paho._handle_publish = self._on_publish  # type: ignore[method-assign]

    def _on_publish(self) -> MQTTErrorCode:
        """paho's PUBLISH handler, for the packets paho reads (those that
        arrive in pieces): QoS 0 and 1 parsed here, QoS 2 (never subscribed
        to) left to paho."""
        paho = self.client._client
        command = paho._in_packet["command"]
        if (command >> 1) & 3 == 2:
            return self._paho_publish()
        self._publish(command, paho._in_packet["packet"])
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _publish(self, command: int, packet: bytes | bytearray) -> None:
        """A PUBLISH at QoS 0 or 1 that paho read, parsed here: paho would
        build a message object, MQTT 5 properties and a debug line for each."""
        if not self.received:
            self._arrived.set()
        whole = bytes([command]) + _variable_bytes(len(packet)) + bytes(packet)  # as it came
        take_publishes(whole, 0, self.received, self._mqtt5)

    def _opened(self, paho: Any, userdata: Any, sock: Any) -> None:
        """paho's callback, from the thread aiomqtt connects in, before CONNECT is sent."""
        self.socket = BufferedSocket(sock)
        paho._sock = self.socket
        self._aiomqtt_opened(paho, userdata, self.socket)  # its reader (replaced next), its keep-alive task
        self.loop.call_soon_threadsafe(self._resume)

    def _resume(self) -> None:
        self.paused = False
        sock = self.socket
        if sock is None or sock.fileno() < 0:
            return
        if not self.replaced:
            self.replaced = True
            # aiomqtt's reader (registered from the thread it connects in, just before this was
            # scheduled) must be there to replace; if aiomqtt registered it later, it would replace ours.
            # (Ours is added regardless, so that the connection completes; take() then says so.)
            if not self.loop.remove_reader(sock.fileno()):
                reason = "aiomqtt's socket reader was not registered before ours"
                self.unfit = FastPathUnfit(reason, source=self.source)
        self.loop.add_reader(sock.fileno(), self._read)  # in place of aiomqtt's
        if sock.pending():  # already buffered: the socket may not become readable for it
            self.loop.call_soon(self._read)

    def _read(self) -> None:
        paho, sock = self.client._client, self.socket
        if self.paused or sock is None:
            return
        if paho.socket() is not self.socket:  # closed, or another connection
            return
        try:
            for _ in range(PACKETS_PER_TURN):
                # The whole PUBLISH packets in the buffer, paho not in the middle of a packet: ours.
                if paho._in_packet["command"] == 0:
                    waiting = len(self.received)
                    if sock.publish_packets(self.received, self._mqtt5):
                        if not waiting:
                            self._arrived.set()
                        if not sock.pending():
                            break
                        continue
                if paho.loop_read() != 0:  # another packet, or one in pieces: paho reads it
                    return
                if not sock.pending():
                    break
        except Exception as exc:  # as aiomqtt's reader: the connection is broken
            if not self.client._disconnected.done():
                self.client._disconnected.set_exception(exc)
            return
        paho._last_bytes_received = time.monotonic()  # paho's keep-alive: the broker is there
        if self.taking and len(self.received) > QUEUE_HIGH:
            self.paused = True  # until take() has taken most
            if sock.fileno() >= 0:
                self.loop.remove_reader(sock.fileno())
        elif sock.pending():
            self.loop.call_soon(self._read)  # more is buffered: after the other tasks' turn

    async def take(self, most: int) -> list[Received]:
        """As :meth:`Receiver.take`; FastPathUnfit if our reader could not replace aiomqtt's."""
        if self.unfit is not None:  # found when connecting, before anything is taken
            raise self.unfit
        self.taking = True
        while not self.received:
            self._arrived.clear()
            disconnected = self.client._disconnected
            if disconnected.done():
                raise aiomqtt.MqttError("disconnected") from disconnected.exception()
            arrived: asyncio.Future[Any] = asyncio.ensure_future(self._arrived.wait())
            try:
                await asyncio.wait({arrived, disconnected}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                arrived.cancel()
        batch = self.received[:most]
        del self.received[:most]
        if self.paused and len(self.received) < QUEUE_LOW:
            self._resume()
        self.outstanding += 1
        self._settled.clear()
        return batch

    @property
    def settled(self) -> asyncio.Event:
        return self._settled

    def acknowledge(self, batch: list[Received]) -> None:
        """As :meth:`Receiver.acknowledge`, in one write."""
        self.outstanding -= 1
        if not self.outstanding:
            self._settled.set()
        paho = self.client._client
        if paho.socket() is not self.socket or not paho.is_connected():
            return
        mids = [mid for _, mid, qos in batch if qos == 1]
        if mids:  # the PUBACK packets, one array of them
            packets = np.empty(len(mids), _PUBACK)
            packets["type"], packets["length"], packets["mid"] = PUBACK, 2, mids
            paho._packet_queue(PUBACK, packets.tobytes(), 0, 0)


#: A PUBACK: type, remaining length 2, packet id (MQTT 5 allows leaving out the "success" reason code).
_PUBACK = np.dtype([("type", "u1"), ("length", "u1"), ("mid", ">u2")])
