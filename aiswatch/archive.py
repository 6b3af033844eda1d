"""CSV archives (MarineCadastre, DMA aisdk, Kystverket) into the database.

The reading is here; the parsing is :mod:`ingest.csvfeeds` (pure), run in the
decoding process as NMEA decoding is, through the same pump. A file is
plain, gzip (both read by :func:`ingest.sources.files.read_lines`) or zip,
whose ``.csv`` members are imported one after the other, each its own source
(``file:aisdk.zip/aisdk.csv``). Records go into the same writer as a replayed
NMEA file, with the detectors on what is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from typing import IO, Final

from aiswatch.config import Settings
from aiswatch.detection import Detection
from aiswatch.pump import replay_source
from aiswatch.service import replay_resources
from ingest.csvfeeds import CsvFormat
from ingest.errors import SourceError
from ingest.lines import LineSplitter
from ingest.offload import DecoderProcess, RemoteDecoder
from ingest.pipeline import IngestStats
from ingest.sources.files import CHUNK_BYTES, read_lines, source_name
from ingest.sources.live import Chunk
from storage.database import Database
from storage.writer import RecordWriter

log = logging.getLogger(__name__)

#: A member that cannot be read on: an error in its stats, and the next file still runs.
_UNREADABLE: Final = (SourceError, zipfile.BadZipFile, EOFError, OSError)

ZIP_MAGIC: Final = b"PK\x03\x04"
#: A CSV row longer than this is cut and counted malformed (real rows are a few hundred bytes).
MAX_ROW_BYTES: Final = 64 * 1024


def _is_zip(path: str) -> bool:
    if path == "-":
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == ZIP_MAGIC
    except OSError:
        return False  # read_lines reports it, with the reason


async def _zip_member_lines(
    archive: zipfile.ZipFile, member: str, *, chunk_bytes: int = CHUNK_BYTES
) -> AsyncIterator[list[bytes]]:
    stream: IO[bytes] = await asyncio.to_thread(archive.open, member)
    splitter = LineSplitter(max_line_bytes=MAX_ROW_BYTES)
    try:
        while chunk := await asyncio.to_thread(stream.read, chunk_bytes):
            lines = splitter.feed(chunk)
            if lines:
                yield lines
        rest = splitter.flush()
        if rest:
            yield rest
    finally:
        stream.close()


async def _members(path: str) -> AsyncIterator[tuple[str, AsyncIterator[list[bytes]]]]:
    """(source name, lines) of each CSV inside ``path``."""
    if not await asyncio.to_thread(_is_zip, path):
        yield source_name(path), read_lines(path, max_line_bytes=MAX_ROW_BYTES)
        return
    try:
        archive = await asyncio.to_thread(zipfile.ZipFile, path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{path}: not a readable zip archive ({exc})", source=source_name(path)) from exc
    with archive:
        members = [m for m in archive.namelist() if m.lower().endswith((".csv", ".txt"))]
        if not members:
            raise SourceError(f"{path}: no .csv file in the zip archive", source=source_name(path))
        for member in members:
            yield f"{source_name(path)}/{member}", _zip_member_lines(archive, member)


async def import_lines(
    decoder: RemoteDecoder,
    chunks: AsyncIterator[list[bytes]],
    writer: RecordWriter,
    *,
    clock: Callable[[], float] = time.time,
) -> IngestStats:
    """One CSV's lines through ``decoder`` (parsing in the decoding process,
    through the one pump NMEA files take) into ``writer``. An unreadable file
    is an error in the stats, never an exception: the next file still runs."""

    async def stamped() -> AsyncIterator[Chunk]:
        async for lines in chunks:
            yield Chunk(clock(), lines)

    return await replay_source(
        stamped(), decoder, writer, (SourceError, zipfile.BadZipFile, EOFError, OSError)
    )


async def import_paths(
    settings: Settings,
    paths: Sequence[str],
    db: Database,
    fmt: CsvFormat | None = None,
    results: list[IngestStats] | None = None,
    detection: Detection | None = None,
    process: DecoderProcess | None = None,
) -> list[IngestStats]:
    """Import CSV archives into ``db``; the stats are final (committed) on
    return. ``results``, if given, receives each file's stats as it starts."""
    results = [] if results is None else results
    async with AsyncExitStack() as stack:
        process, writer = await replay_resources(stack, settings, db, process, detection)
        for path in paths:
            try:
                async for name, chunks in _members(path):
                    decoder = process.decoder(name, csv=True, format=fmt)
                    results.append(decoder.stats)
                    await import_lines(decoder, chunks, writer)
            except SourceError as exc:
                stats = IngestStats(source_name(path), errors=[str(exc)])
                results.append(stats)
                log.error("%s: %s", stats.source, exc)
    return results
