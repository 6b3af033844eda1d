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

import websockets

from ingest.jsonfeeds import FeedError, aisstream_record
from ingest.records import Position
from ingest.sources.live import Chunk, SourceState, backoff_s, sleep_unless_stopped, until_stopped

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


async def aisstream_chunks(
    url: str, subscribe: str, state: SourceState, stop: asyncio.Event, *, read_timeout_s: float = 60.0
) -> AsyncIterator[Chunk]:
    attempt = 0
    while not stop.is_set():
        try:
            async with websockets.connect(url, open_timeout=10, max_size=2**22) as socket:
                await socket.send(subscribe)  # within aisstream's 3 s
                state.connected, state.connects = True, state.connects + 1
                attempt = 0
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
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            state.failures[type(exc).__name__] += 1
            delay = backoff_s(attempt)
            attempt += 1
            log.warning(
                "%s: %s: %s; reconnecting in %.1f s", state.name, url, exc or type(exc).__name__, delay
            )
            await sleep_unless_stopped(delay, stop)
        finally:
            state.connected = False
