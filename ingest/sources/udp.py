"""A UDP listener for NMEA datagrams (AIS-catcher and most receivers forward
this way); a datagram may hold several sentences."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from ingest.lines import split_message
from ingest.sources.live import Chunk, SourceState, until_stopped

log = logging.getLogger(__name__)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[tuple[float, bytes]], state: SourceState) -> None:
        self.queue = queue
        self.state = state

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            self.queue.put_nowait((time.time(), data))
        except asyncio.QueueFull:
            self.state.failures["overflow"] += 1  # counted: a flood beyond what we can take

    def error_received(self, exc: Exception) -> None:
        self.state.failures["socket"] += 1
        log.warning("%s: %s", self.state.name, exc)


async def udp_chunks(
    host: str, port: int, state: SourceState, stop: asyncio.Event, *, queue_datagrams: int = 100_000
) -> AsyncIterator[Chunk]:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(queue_datagrams)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(queue, state), local_addr=(host, port)
    )
    state.connected, state.connects = True, 1
    log.info("%s: listening on udp %s:%d", state.name, host, port)
    try:
        while True:
            done, item = await until_stopped(queue.get(), stop)
            if not done or item is None:
                break
            received, data = item
            datagrams = [data]
            while not queue.empty() and len(datagrams) < 1000:
                datagrams.append(queue.get_nowait()[1])
            state.heard(received)
            lines: list[bytes] = []
            for datagram in datagrams:
                lines += split_message(datagram)
            yield Chunk(received, lines)
        while not queue.empty():  # what arrived before the stop
            received, data = queue.get_nowait()
            yield Chunk(received, split_message(data))
    finally:
        state.connected = False
        transport.close()
