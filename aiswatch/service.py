"""Wiring: settings to a database, files through the decoder into the writer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import psycopg

from aiswatch.config import Settings
from aiswatch.detection import Detection, engine_factory
from aiswatch.pump import replay_source
from ingest.errors import ConfigError, SourceError
from ingest.offload import DecoderProcess, RemoteDecoder
from ingest.pipeline import IngestStats
from ingest.sources.files import read_lines, source_name
from ingest.sources.live import Chunk
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.spool import Spool
from storage.writer import RecordWriter


def database_url(settings: Settings) -> str | None:
    """The configured URL (checked: a wrong one is a :class:`ConfigError`), or None: embedded."""
    if settings.database_url is None:
        return None
    url = settings.database_url.get_secret_value()
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"setting database_url: not a PostgreSQL URL ({exc})", setting="database_url"
        ) from exc
    timeout = info.get("connect_timeout")
    if timeout is not None and not str(timeout).strip().isdigit():
        raise ConfigError(
            f"setting database_url: connect_timeout must be a whole number of seconds, not {timeout!r}",
            setting="database_url",
        )
    return url


def new_database(settings: Settings, url: str, *, migrate: bool = True) -> Database:
    """A :class:`Database` on ``url`` with the configured options (not yet open)."""
    storage = settings.storage
    return Database(
        url,
        migrate=migrate,
        timescaledb=storage.timescaledb,
        pool_max_size=storage.pool_max_size,
        partitions_ahead_days=storage.partitions_ahead_days,
        retention_days=storage.retention_days,
        compress_after_days=storage.compress_after_days,
    )


@asynccontextmanager
async def open_database(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Database]:
    """The configured database, or an embedded one when no URL is set."""
    async with AsyncExitStack() as stack:
        url = database_url(settings)
        if url is None:
            url = await stack.enter_async_context(EmbeddedPostgres(settings.data_dir / "postgres"))
        yield await stack.enter_async_context(new_database(settings, url, migrate=migrate))


def new_decoder(settings: Settings, process: DecoderProcess, source: str) -> RemoteDecoder:
    return process.decoder(
        source,
        dedup_window_s=settings.ingest.dedup_window_s,
        fragment_timeout_s=settings.ingest.fragment_timeout_s,
    )


def new_writer(
    settings: Settings, db: Database, detection: Detection | None = None, spool: Spool | None = None
) -> RecordWriter:
    """The writer for file ingest, or with a ``spool`` for the live service."""
    return RecordWriter(
        db,
        batch_rows=settings.ingest.batch_rows,
        max_delay_s=settings.ingest.batch_delay_s,
        queue_chunks=settings.ingest.queue_chunks,
        give_up_s=settings.storage.write_give_up_s,
        hook=None if detection is None else detection.hook,
        spool=spool,
        retry_s=settings.service.spool_retry_s,
    )


async def replay_resources(
    stack: AsyncExitStack,
    settings: Settings,
    db: Database,
    process: DecoderProcess | None,
    detection: Detection | None,
) -> tuple[DecoderProcess, RecordWriter]:
    """A replay's decoding process (unless given) and writer, entered on
    ``stack``; its detection leads around the writer (entered first, left
    last: after the writer has drained)."""
    if process is None:
        process = await stack.enter_async_context(decoder_process(settings))
    if detection is not None:
        await stack.enter_async_context(detection.replaying(db.url))
    return process, await stack.enter_async_context(new_writer(settings, db, detection))


def new_detection(settings: Settings) -> Detection | None:
    """The detectors for a replay (each vessel's clock follows its data), or None when disabled."""
    return Detection(engine_factory(settings)) if settings.detectors.enabled else None


async def file_chunks(path: str, *, clock: Callable[[], float] = time.time) -> AsyncIterator[Chunk]:
    """A recorded file as chunks of lines, stamped with the replay's clock."""
    async for lines in read_lines(path):
        yield Chunk(clock(), lines)


async def ingest_file(path: str, decoder: RemoteDecoder, writer: RecordWriter) -> IngestStats:
    """Replay one file into the writer through the one pump. An unreadable
    file is an error in the returned stats, never an exception."""
    return await replay_source(file_chunks(path), decoder, writer, (SourceError,))


def decoder_process(settings: Settings) -> DecoderProcess:
    return DecoderProcess(workers=settings.ingest.decode_workers)


async def ingest_paths(
    settings: Settings,
    paths: Sequence[str],
    db: Database,
    process: DecoderProcess | None = None,
    results: list[IngestStats] | None = None,
    detection: Detection | None = None,
) -> list[IngestStats]:
    """Replay files into ``db``, running ``detection`` on what is stored;
    the stats are final (committed) on return, the events too.

    ``results``, if given, receives each file's stats as it starts, so a caller
    still has the counts (with the unresolved lines) when the database fails.
    """
    results = [] if results is None else results
    async with AsyncExitStack() as stack:
        process, writer = await replay_resources(stack, settings, db, process, detection)
        for path in paths:
            decoder = new_decoder(settings, process, source_name(path))
            results.append(decoder.stats)
            await ingest_file(path, decoder, writer)
    return results
