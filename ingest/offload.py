"""Decoding on a core of its own: :class:`LineDecoder` in a worker process.

Decoding is CPU-bound pure Python (pyais does most of it), and the asyncio
process also formats COPY rows and talks to PostgreSQL. On a two-core machine
the decoder gets one core, the event loop and the PostgreSQL server share the
other. The decoders live in one long-lived child process, one per source, so
their state (fragments, the duplicate window) stays where the lines go; chunks
of one source are decoded in the order they were sent.

Positions cross the process boundary by column (a
:class:`~ingest.batch.PositionBatch`: a few buffers, where a list of records
cost a second of unpickling per million), static reports as plain tuples
(pickling a NamedTuple costs six times more), rebuilt in the parent without
copying. The parent's
:class:`IngestStats` takes the decoder's counts after every chunk; the counts
that only the writer knows (stored, already stored) stay the parent's.
``DecoderProcess(workers=0)`` decodes in-process instead: same results, no
second core (for debugging, and for places where processes cannot start).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from ingest.batch import PositionBatch
from ingest.csvfeeds import CsvDecoder
from ingest.errors import AiswatchError
from ingest.pipeline import IngestStats, LineDecoder
from ingest.records import StaticReport

_new = tuple.__new__

#: The child's decoders, by source name (lives in the worker process).
_DECODERS: dict[str, LineDecoder | CsvDecoder] = {}

Chunk = tuple[IngestStats, PositionBatch, list[tuple[Any, ...]]]


def _init_worker(log_level: int) -> None:
    """Runs once in the worker. Decoding allocates millions of short-lived,
    acyclic objects; the default collector thresholds spend about a tenth of
    the decoder's time scanning them, so this process collects rarely (the
    parent keeps Python's defaults)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    # Ctrl-C reaches the whole process group; the parent decides how to stop.
    # The parent started this process with SIGINT blocked (see _spawning), so
    # one that came while it was starting is pending: ignore it, then unblock.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with_parent, args=(parent.sentinel,), name="aiswatch-parent-watch", daemon=True
        ).start()


def _exit_with_parent(sentinel: int) -> None:
    """Runs in the worker: end when the parent does, even by kill -9 (which
    leaves no time to shut the pool down). The sentinel is a pipe the parent
    holds open; the kernel closes it when the parent dies. Multiprocessing's
    resource tracker ends in turn, once no process holds its pipe."""
    multiprocessing.connection.wait([sentinel])
    logging.getLogger(__name__).warning("decoder: the parent process has gone; exiting")
    os._exit(0)


def _new_decoder(source: str, options: dict[str, Any]) -> LineDecoder | CsvDecoder:
    """NMEA lines, or with ``csv=True`` a CSV archive (``format``: its layout, None: from the header)."""
    if options.get("csv"):
        return CsvDecoder(source, options.get("format"))
    return LineDecoder(source, **options)


def _decode(source: str, options: dict[str, Any], lines: list[bytes], received: float, close: bool) -> Chunk:
    """Runs in the worker: feed one chunk to the source's decoder."""
    decoder = _DECODERS.get(source)
    if decoder is None:
        decoder = _DECODERS[source] = _new_decoder(source, options)
    decoder.feed(lines, received)
    if close:
        decoder.close()
        del _DECODERS[source]
    positions, statics = decoder.take_batch()
    return decoder.stats, positions, [tuple(s) for s in statics]


def peak_rss_kib() -> int | None:
    """This process's peak resident memory (Linux ``VmHWM``), or None elsewhere.

    Unlike ``ru_maxrss`` it does not count what a parent held before exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while it starts the worker: the child
    inherits the mask, so a Ctrl-C while the child is still importing waits
    (instead of killing it with a traceback) until ``_init_worker`` ignores
    it. The parent gets its own copy of the signal once unblocked."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class DecoderProcessError(AiswatchError):
    """The decoding process died (killed, out of memory)."""


class DecoderProcess:
    """``async with DecoderProcess() as decoders:`` runs the decoders' process."""

    def __init__(self, *, workers: int = 1) -> None:
        if workers not in (0, 1):
            raise ValueError("workers must be 0 (decode in-process) or 1")
        self.workers = workers
        self._executor: Executor | None = None

    async def __aenter__(self) -> DecoderProcess:
        if self.workers:
            # spawn, not fork: the parent runs threads (asyncio's, psycopg's).
            self._executor = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(logging.getLogger().getEffectiveLevel(),),
            )
            # Start the process now (it takes about a second to import), so that
            # it gets ready while the caller does other set-up.
            with _sigint_blocked():
                self._executor.submit(gc.collect)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def worker_peak_rss_kib(self) -> int | None:
        """The decoding process's peak resident memory (None if in-process)."""
        if self._executor is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(self._executor, peak_rss_kib)

    async def worker_cpu_s(self) -> float:
        """The CPU time the decoding process has used (this process's if in-process)."""
        if self._executor is None:
            return time.process_time()
        return await asyncio.get_running_loop().run_in_executor(self._executor, time.process_time)

    def decoder(self, source: str, **options: Any) -> RemoteDecoder:
        """A decoder for ``source`` (options as for :class:`LineDecoder`, or
        ``csv=True`` and ``format`` for :class:`~ingest.csvfeeds.CsvDecoder`)."""
        return RemoteDecoder(self, source, options)

    async def _run(
        self, source: str, options: dict[str, Any], lines: list[bytes], received: float, close: bool
    ) -> Chunk:
        if self._executor is None:
            return _decode(source, options, lines, received, close)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, _decode, source, options, lines, received, close
            )
        except BrokenProcessPool as exc:
            raise DecoderProcessError(f"{source}: the decoding process died ({exc})") from exc


class RemoteDecoder:
    """The parent's handle on one source's decoder.

    ``submit`` sends a chunk and returns at once; ``results`` yields the
    decoded chunks in order. Keeping a couple of chunks in flight lets the
    parent read and write while the child decodes.
    """

    def __init__(self, process: DecoderProcess, source: str, options: dict[str, Any]) -> None:
        self._process = process
        self._options = options
        self.stats = IngestStats(source)
        self._in_flight: list[asyncio.Future[Chunk]] = []

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def submit(self, lines: list[bytes], received: float, *, close: bool = False) -> None:
        coro = self._process._run(self.stats.source, self._options, lines, received, close)
        self._in_flight.append(asyncio.ensure_future(coro))

    async def next_result(self) -> tuple[PositionBatch, list[StaticReport]]:
        """The oldest chunk's records; the stats now count its lines."""
        counts, positions, statics = await self._in_flight.pop(0)
        self.stats.adopt_decoder_counts(counts)
        return positions, [_new(StaticReport, s) for s in statics]

    async def drain(self) -> Iterable[tuple[PositionBatch, list[StaticReport]]]:
        """Every chunk still in flight, in order."""
        return [await self.next_result() for _ in range(len(self._in_flight))]

    def cancel(self) -> None:
        for future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
