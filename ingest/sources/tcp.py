"""A TCP client to an NMEA server (AISHub-style feeds, AIS-catcher, rtl_ais).

It reconnects with jittered exponential backoff (:data:`ingest.retry.FEED`), and treats a feed silent for
``read_timeout_s`` as dead (the known failure of feeds that stop sending
without closing). Lines carry no time of their own as a rule: the decoder
stamps them with the time they arrived here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from ingest.lines import LineSplitter
from ingest.retry import FEED
from ingest.sources.live import (
    Chunk,
    SourceState,
    pause_before_reconnect,
    until_stopped,
)

log = logging.getLogger(__name__)


async def tcp_chunks(
    host: str,
    port: int,
    state: SourceState,
    stop: asyncio.Event,
    *,
    read_timeout_s: float = 60.0,
    connect_timeout_s: float = 10.0,
) -> AsyncIterator[Chunk]:
    def failed(error: BaseException, delay_s: float) -> None:
        state.failures["connect"] += 1

    while not stop.is_set():
        try:
            done, pair = await FEED.call(
                lambda: until_stopped(asyncio.open_connection(host, port), stop, timeout_s=connect_timeout_s),
                resource=f"{state.name}: cannot connect to {host}:{port}",
                stop=stop,
                on_retry=failed,
            )
        except (OSError, TimeoutError):
            return  # stopped while waiting to connect again
        if not done or pair is None:
            return
        reader, writer = pair
        state.connected, state.connects = True, state.connects + 1
        log.info("%s: connected to %s:%d", state.name, host, port)
        splitter = LineSplitter()  # a peer that never sends a newline is cut, not buffered
        try:
            while True:
                try:
                    done, data = await until_stopped(reader.read(1 << 16), stop, timeout_s=read_timeout_s)
                except TimeoutError:
                    state.failures["silent"] += 1
                    log.warning(
                        "%s: nothing for %.0f s from %s:%d; reconnecting",
                        state.name,
                        read_timeout_s,
                        host,
                        port,
                    )
                    break
                except OSError as exc:
                    state.failures["read"] += 1
                    log.warning("%s: connection to %s:%d lost (%s)", state.name, host, port, exc)
                    break
                if not done:
                    break  # stopped
                if not data:
                    state.failures["closed"] += 1
                    log.warning("%s: %s:%d closed the connection", state.name, host, port)
                    break
                now = time.time()
                state.heard(now)
                lines = splitter.feed(data)
                if lines:
                    yield Chunk(now, lines)
        finally:  # (no yield here: a cancelled generator must not yield on its way out)
            state.connected = False
            writer.close()
        if last := splitter.flush():
            yield Chunk(time.time(), last)  # a last line without its newline
        await pause_before_reconnect(stop)  # then reconnect, with backoff if it fails
