"""The one pump: a source's chunks through the decoding process into the writer.

File ingest and the live service both run :func:`pump_chunks`. The reader
(the caller's async iterator of :class:`~ingest.sources.live.Chunk`) reads on
while up to ``DECODE_AHEAD`` chunks decode in the other process; a second
task stores what comes back, in the order it was read, so a chunk is
acknowledged (MQTT) only once it and everything before it are stored or
spooled. Chunks of already decoded records (aisstream.io, AIS-catcher's JSON)
take the same road, counted in their own stats. :func:`finish_source` ends a
source: what still waits for the rest of its message is an orphan, counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

from ingest.offload import RemoteDecoder
from ingest.pipeline import IngestStats
from ingest.sources.live import Chunk
from storage.writer import RecordWriter

log = logging.getLogger(__name__)

#: Chunks decoding while the source reads on (the decoder is another process).
DECODE_AHEAD: Final = 2
#: Lines sent to the decoder at a time (measured best in bench/ingest).
SLICE_LINES: Final = 5000

#: What the storing task does next, in the order the source read it: store the
#: decoder's next result (None), or records decoded from JSON; then acknowledge.
_Step = tuple[Chunk | None, Callable[[], None] | None]


def account_decoded(stats: IngestStats, chunk: Chunk) -> None:
    """A decoded feed's messages: one line each in the accounting."""
    stats.lines += chunk.messages
    stats.accepted += len(chunk.positions) + len(chunk.statics)
    stats.positions += len(chunk.positions)
    stats.static_reports += len(chunk.statics)
    for position in chunk.positions:
        stats.messages_by_type[position.msg_type] += 1
    for static in chunk.statics:
        stats.messages_by_type[static.msg_type] += 1
    for reason, detail in chunk.malformed:
        if reason == "type_not_stored":
            stats.filtered[reason] += 1
        else:
            stats.note_malformed(reason, 1, stats.lines, detail)


async def pump_chunks(
    chunks: AsyncIterator[Chunk],
    decoder: RemoteDecoder,
    writer: RecordWriter,
    decoded_stats: IngestStats | None = None,
) -> None:
    """Pump ``chunks`` until they end (or raise); everything read is stored
    (or spooled) when this returns, or when it raises the reader's error
    (a cancellation stops at once). ``decoded_stats`` counts chunks of
    decoded records (a JSON feed)."""
    steps: asyncio.Queue[_Step | None] = asyncio.Queue(maxsize=DECODE_AHEAD)
    json_stats = decoded_stats if decoded_stats is not None else IngestStats(f"{decoder.stats.source}:json")

    async def store() -> None:
        while (step := await steps.get()) is not None:
            records, on_stored = step
            if records is None:
                await writer.put(decoder.stats, *await decoder.next_result(), on_stored=on_stored)
            else:
                account_decoded(json_stats, records)
                await writer.put(json_stats, records.positions, records.statics, on_stored=on_stored)

    failure: Exception | None = None
    try:
        async with asyncio.TaskGroup() as group:
            storing = group.create_task(store())
            try:
                async for chunk in chunks:
                    lines = chunk.lines
                    for start in range(0, len(lines), SLICE_LINES):
                        decoder.submit(lines[start : start + SLICE_LINES], chunk.received)
                        last = start + SLICE_LINES >= len(lines)
                        # a chunk is acknowledged once its records are stored (its last step carries it)
                        await steps.put((None, chunk.on_stored if last and not chunk.messages else None))
                    if chunk.messages or not lines:  # decoded records, or nothing: stored, then acknowledged
                        await steps.put((chunk, chunk.on_stored))
            except Exception as exc:  # the reader failed: what it read is stored all the same
                failure = exc
            if not storing.done():  # (if it failed, the group raises its error)
                await steps.put(None)
    except BaseExceptionGroup as group_failure:  # the writer's error, as itself
        raise group_failure.exceptions[0] from None
    if failure is not None:
        raise failure


async def replay_source(
    chunks: AsyncIterator[Chunk],
    decoder: RemoteDecoder,
    writer: RecordWriter,
    unreadable: tuple[type[BaseException], ...],
) -> IngestStats:
    """A recorded source (a file, an archive's member) pumped to its end and
    finished. An error in ``unreadable`` (the file cannot be read on) is kept
    in the stats, never raised: the next file still runs."""
    try:
        await pump_chunks(chunks, decoder, writer)
    except unreadable as exc:
        decoder.stats.errors.append(str(exc))
        log.error("%s: %s", decoder.stats.source, exc)
    except BaseException:
        decoder.cancel()
        raise
    await finish_source(decoder, writer)
    return decoder.stats


async def finish_source(decoder: RemoteDecoder, writer: RecordWriter) -> None:
    """End of a source: its decoder is flushed (orphan fragments counted) and stored."""
    decoder.submit([], time.time(), close=True)
    for positions, statics in await decoder.drain():
        await writer.put(decoder.stats, positions, statics)
