"""Wiring: settings to a database, files through the decoder into the writer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from aiswatch.config import Settings
from ingest.errors import SourceError
from ingest.pipeline import IngestStats, LineDecoder
from ingest.sources.files import read_lines, source_name
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.writer import RecordWriter

log = logging.getLogger(__name__)

#: Lines decoded between two hand-overs to the writer (keeps the loop lively).
SLICE_LINES = 500


@asynccontextmanager
async def open_database(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Database]:
    """The configured database, or an embedded one when no URL is set."""
    async with AsyncExitStack() as stack:
        if settings.database_url is not None:
            url = settings.database_url.get_secret_value()
        else:
            url = await stack.enter_async_context(EmbeddedPostgres(settings.data_dir / "postgres"))
        storage = settings.storage
        db = await stack.enter_async_context(
            Database(
                url,
                migrate=migrate,
                timescaledb=storage.timescaledb,
                pool_max_size=storage.pool_max_size,
                partitions_ahead_days=storage.partitions_ahead_days,
                retention_days=storage.retention_days,
                compress_after_days=storage.compress_after_days,
            )
        )
        yield db


def new_decoder(settings: Settings, source: str) -> LineDecoder:
    return LineDecoder(
        source,
        dedup_window_s=settings.ingest.dedup_window_s,
        fragment_timeout_s=settings.ingest.fragment_timeout_s,
    )


def new_writer(settings: Settings, db: Database) -> RecordWriter:
    return RecordWriter(
        db,
        batch_rows=settings.ingest.batch_rows,
        max_delay_s=settings.ingest.batch_delay_s,
        queue_chunks=settings.ingest.queue_chunks,
    )


async def ingest_file(
    path: str, decoder: LineDecoder, writer: RecordWriter, *, clock: Callable[[], float] = time.time
) -> IngestStats:
    """Replay one file into the writer. An unreadable file is an error in the
    returned stats, never an exception: the next file still runs."""
    try:
        async for lines in read_lines(path):
            for start in range(0, len(lines), SLICE_LINES):
                decoder.feed(lines[start : start + SLICE_LINES], clock())
                await writer.put(decoder.stats, *decoder.take())
                await asyncio.sleep(0)  # let the writer run between slices
    except SourceError as exc:
        decoder.stats.errors.append(str(exc))
        log.error("%s: %s", decoder.stats.source, exc)
    decoder.close()
    await writer.put(decoder.stats, *decoder.take())
    return decoder.stats


async def ingest_paths(settings: Settings, paths: Sequence[str], db: Database) -> list[IngestStats]:
    """Replay files into ``db``; the stats are final (committed) on return."""
    results = []
    async with new_writer(settings, db) as writer:
        for path in paths:
            results.append(await ingest_file(path, new_decoder(settings, source_name(path)), writer))
    return results
