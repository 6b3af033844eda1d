"""Recorded files: plain or gzip (told by their first bytes, not their name),
or ``-`` for standard input.

Files are read in large chunks in a worker thread, so the event loop stays free
for the writer, and split into lines by :class:`~ingest.lines.LineSplitter`
(LF, CRLF or CR line ends; a line longer than ``max_line_bytes`` is passed on
cut, counted malformed by the decoder, and never held in memory).
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import io
import logging
import os
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, cast

from ingest.errors import SourceError
from ingest.lines import LineSplitter
from ingest.nmea import MAX_LINE_BYTES
from ingest.sources.live import Chunk, SourceState, sleep_unless_stopped

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1 << 20
GZIP_MAGIC: Final = b"\x1f\x8b"


def source_name(path: str) -> str:
    """How a file is named in counters and logs."""
    return "stdin" if path == "-" else f"file:{Path(path).name}"


def _open(path: str) -> io.BufferedIOBase:
    # a file is closed by read_lines; stdin is left open
    if path == "-" and sys.stdin is None:  # started with standard input closed (<&-)
        raise OSError(errno.EBADF, "standard input is closed")
    raw = cast(io.BufferedReader, sys.stdin.buffer) if path == "-" else open(path, "rb")  # noqa: SIM115
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


async def read_lines(
    path: str, *, chunk_bytes: int = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> AsyncIterator[list[bytes]]:
    """Yield the lines of ``path`` in lists, one list per chunk read.

    Raises :class:`SourceError` (with the path and the reason) when the file
    cannot be opened or a compressed stream is corrupt; lines yielded before a
    mid-file error have been read and stay valid.
    """
    name = source_name(path)
    try:
        stream = await asyncio.to_thread(_open, path)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}", source=name) from exc
    splitter = LineSplitter(max_line_bytes=max_line_bytes)
    try:
        while True:
            try:
                # read1: what is there, so a corrupt gzip still yields the lines before the damage
                chunk = await asyncio.to_thread(stream.read1, chunk_bytes)
            except (OSError, EOFError, zlib.error, ValueError) as exc:  # ValueError: a closed stdin
                raise SourceError(f"{path}: cannot read: {exc}", source=name) from exc
            if not chunk:
                break
            lines = splitter.feed(chunk)
            if lines:
                yield lines
        if last := splitter.flush():
            yield last
    finally:
        if sys.stdin is None or stream is not sys.stdin.buffer:
            await asyncio.to_thread(stream.close)


async def follow_chunks(
    path: str, state: SourceState, stop: asyncio.Event, *, poll_s: float = 0.5
) -> AsyncIterator[Chunk]:
    """Tail a growing log (``--follow``): what is there, then what is appended.
    A file that is replaced or truncated (log rotation) is read again from its
    start; a missing file is waited for."""
    handle: io.BufferedReader | None = None
    identity: tuple[int, int] | None = None
    splitter = LineSplitter()
    try:
        while not stop.is_set():
            if handle is None:
                try:
                    handle = await asyncio.to_thread(open, path, "rb")
                except OSError as exc:
                    state.failures["open"] += 1
                    log.warning("%s: %s (waiting for it)", state.name, exc.strerror or exc)
                    await sleep_unless_stopped(max(poll_s, 2.0), stop)
                    continue
                info = os.fstat(handle.fileno())
                identity = (info.st_dev, info.st_ino)
                state.connected, state.connects = True, state.connects + 1
            data = await asyncio.to_thread(handle.read, CHUNK_BYTES)
            if data:
                now = time.time()
                state.heard(now)
                lines = splitter.feed(data)
                if lines:
                    yield Chunk(now, lines)
                continue
            try:
                info = os.stat(path)
                rotated = (info.st_dev, info.st_ino) != identity or info.st_size < handle.tell()
            except OSError:
                rotated = True
            if rotated:
                handle.close()
                handle, splitter = None, LineSplitter()
                state.connected = False
                continue
            await sleep_unless_stopped(poll_s, stop)
    finally:
        state.connected = False
        if handle is not None:
            handle.close()
