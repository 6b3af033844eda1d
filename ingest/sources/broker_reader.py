"""The receive path of an MQTT subscriber: aiomqtt connects, paho parses,
this module reads, hands on and acknowledges, in batches.

With a backlog of one-line messages, per-message overheads were the whole
cost (6,000 messages/s): paho reads each packet with three or more ``recv``
calls (the command byte, each length byte, the body), aiomqtt's socket reader
takes one packet per event-loop turn and wraps each message in its own object
and queue entry, and each acknowledgement is a ``send``. Here:

- the socket is read 64 KiB at a time (:class:`BufferedSocket`) and paho's
  small reads are served from memory;
- :class:`BrokerReader` replaces aiomqtt's reader and takes up to
  ``PACKETS_PER_TURN`` packets per turn: a PUBLISH whole in the buffer it
  parses itself (paho would read it in three or more pieces and build a
  message object, MQTT 5 properties and a debug line for it), anything else
  paho reads; payloads go, with packet id and QoS, into a list the consumer
  takes whole;
- acknowledgements are one write of concatenated PUBACK packets.

It also does flow control. The MQTT 5 receive maximum bounds what a broker
sends ahead of our acknowledgements, but it is the broker's to honour (an
earlier measurement saw Mosquitto 2.0.11 queue 110,000 unacknowledged messages
with a maximum of 2,000; a later one saw it keep to 10,000). So the reader
also stops reading while ``QUEUE_HIGH`` messages wait to be taken (checked
every ``PACKETS_PER_TURN`` packets), and TCP then holds the broker back.

aiomqtt exposes none of this: it goes through its paho client (``_client``,
the ``on_socket_open`` callback, ``_handle_publish``, ``_packet_queue``,
``_disconnected``), which is why pyproject.toml bounds both versions. The MQTT
tests run every path on a real broker (reconnects, broker restarts, shared
subscriptions, kill -9).
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import aiomqtt
from paho.mqtt.client import PUBACK, MQTTv5
from paho.mqtt.enums import MQTTErrorCode

#: Bytes read from the broker's socket at a time.
RECV_BYTES = 1 << 16
#: Packets paho takes from the buffer before other tasks get a turn.
PACKETS_PER_TURN = 200
#: Stop reading while this many messages wait in the client's queue; read again below the lower mark.
QUEUE_HIGH, QUEUE_LOW = 20_000, 5_000


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

    def publish_packet(self) -> tuple[int, bytes] | None:
        """The next packet, taken, if it is a whole PUBLISH at QoS 0 or 1
        in the buffer: (its first byte, its body). None otherwise (paho reads it)."""
        buffer, start = self._buffer, self._position
        end = len(buffer)
        if start >= end or buffer[start] >> 4 != 3 or (buffer[start] >> 1) & 3 == 2:
            return None
        remaining = _variable_int(buffer, start + 1)
        if remaining is None:
            return None
        length, position = remaining
        if position + length > end:
            return None
        self._position = position + length
        return buffer[start], buffer[position : position + length]

    def pending(self) -> int:
        inner = self._socket.pending() if hasattr(self._socket, "pending") else 0
        return len(self._buffer) - self._position + int(inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


#: One received message: payload, packet id, QoS.
Received = tuple[bytes, int, int]


class BrokerReader:
    """Reads for one aiomqtt client; create it before the client connects,
    then ``take()`` what arrives and ``acknowledge()`` it once stored."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.paused = False
        #: Flow control starts with the first take(): before, SUBACK may be behind a backlog.
        self.taking = False
        self.socket: BufferedSocket | None = None
        self.received: list[Received] = []
        self._arrived = asyncio.Event()
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
        """A PUBLISH at QoS 0 or 1, parsed here: paho would build a message
        object, MQTT 5 properties and a debug line for each."""
        qos = (command >> 1) & 3
        position = 2 + int.from_bytes(packet[:2], "big")  # after the topic
        mid = 0
        if qos:
            mid = int.from_bytes(packet[position : position + 2], "big")
            position += 2
        if self._mqtt5:  # skip the properties: their length, then that many bytes
            properties = _variable_int(packet, position)
            if properties is None:
                raise ValueError("malformed PUBLISH: properties length")
            length, position = properties
            position += length
        if not self.received:
            self._arrived.set()
        self.received.append((bytes(packet[position:]), mid, qos))

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
                # A whole PUBLISH in the buffer, paho not in the middle of a packet: ours.
                packet = sock.publish_packet() if paho._in_packet["command"] == 0 else None
                if packet is not None:
                    self._publish(*packet)
                elif paho.loop_read() != 0:
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
        """Up to ``most`` messages, oldest first, once there is one; MqttError
        if the connection ends first."""
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
        return batch

    def acknowledge(self, batch: list[Received]) -> None:
        """Acknowledge ``batch`` (QoS 1) in one write; nothing if disconnected
        since (the broker sends those messages again, and they are found stored)."""
        paho = self.client._client
        if paho.socket() is not self.socket or not paho.is_connected():
            return
        packets = b"".join(_PUBACK.pack(PUBACK, 2, mid) for _, mid, qos in batch if qos == 1)
        if packets:
            paho._packet_queue(PUBACK, packets, 0, 0)


#: A PUBACK: type, remaining length 2, packet id (MQTT 5 allows leaving out the "success" reason code).
_PUBACK = struct.Struct("!BBH")
