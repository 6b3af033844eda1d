"""aisstream.io's websocket: the subscription message sent on connect (API
key, bounding boxes, MMSI and message-type filters), its JSON messages mapped
to records (:func:`ingest.jsonfeeds.aisstream_record`), reconnects with
jittered backoff."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import websockets

from ingest.jsonfeeds import FeedError, aisstream_record
from ingest.records import Position
from ingest.retry import FEED
from ingest.sources.live import (
    Chunk,
    SourceState,
    pause_before_reconnect,
    until_stopped,
)

log = logging.getLogger(__name__)


def subscription(
    api_key: str,
    bounding_boxes: Sequence[Sequence[Sequence[float]]],
    mmsis: Sequence[int] = (),
    message_types: Sequence[str] = (),
) -> str:
    message: dict[str, object] = {
        "APIKey": api_key,
        "BoundingBoxes": [[list(p) for p in box] for box in bounding_boxes],
    }
    if mmsis:
        message["FiltersShipMMSI"] = [str(m) for m in mmsis]
    if message_types:
        message["FilterMessageTypes"] = list(message_types)
    return json.dumps(message)


def message_chunk(raw: list[str | bytes], received: float) -> Chunk:
    chunk = Chunk(received, messages=len(raw))
    for text in raw:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                raise FeedError("not a JSON object")
            if "error" in doc:
                raise FeedError(f"server says: {doc['error']}")
            record = aisstream_record(doc)
        except (ValueError, FeedError) as exc:
            chunk.malformed.append(("json", str(exc)[:120]))
            continue
        if record is None:
            chunk.malformed.append(("type_not_stored", str(doc.get("MessageType"))))
        elif isinstance(record, Position):
            chunk.positions.append(record)
        else:
            chunk.statics.append(record)
    return chunk


#: A feed's policy, with the websocket's own errors (handshake, closed) transient too.
_RETRY = replace(FEED, transient=(*FEED.transient, websockets.WebSocketException))


async def aisstream_chunks(
    url: str, subscribe: str, state: SourceState, stop: asyncio.Event, *, read_timeout_s: float = 60.0
) -> AsyncIterator[Chunk]:
    def failed(error: BaseException, delay_s: float) -> None:
        state.failures[type(error).__name__] += 1

    async def subscribed() -> websockets.ClientConnection:
        socket = await websockets.connect(url, open_timeout=10, max_size=2**22)
        try:
            await socket.send(subscribe)  # within aisstream's 3 s
        except BaseException:
            await socket.close()
            raise
        return socket

    while not stop.is_set():
        try:
            connection = await _RETRY.call(
                subscribed, resource=f"{state.name}: {url}", stop=stop, on_retry=failed
            )
        except _RETRY.transient:
            return  # stopped while waiting to connect again
        try:
            async with connection as socket:
                state.connected, state.connects = True, state.connects + 1
                log.info("%s: subscribed at %s", state.name, url)
                while True:
                    done, first = await until_stopped(socket.recv(), stop, timeout_s=read_timeout_s)
                    if not done or first is None:
                        return
                    batch = [first]
                    while len(batch) < 1000:  # what is already here, without waiting
                        try:
                            async with asyncio.timeout(0.001):
                                batch.append(await socket.recv())
                        except TimeoutError:
                            break
                    now = time.time()
                    state.heard(now)
                    yield message_chunk(batch, now)
        except _RETRY.transient as exc:
            state.failures[type(exc).__name__] += 1
            log.warning("%s: %s: %s; reconnecting", state.name, url, exc or type(exc).__name__)
        finally:
            state.connected = False
        await pause_before_reconnect(stop)  # then reconnect, with backoff if it fails
