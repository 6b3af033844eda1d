"""Batched writes: records in through a bounded queue, binary COPY out.

``RecordWriter`` is an async context manager running one task. Producers
``await put(...)`` a chunk of records with the counters of their source; a full
queue makes them wait (backpressure), so memory stays flat whatever the input
size. The task gathers chunks until ``batch_rows`` rows or ``max_delay_s``
seconds, then, in one transaction per batch:

1. COPYs each source's positions straight into ``positions`` (binary format)
   inside a savepoint; if a row is already there (a replay), the savepoint is
   rolled back and the batch goes through a temporary stage and
   ``INSERT ... ON CONFLICT DO NOTHING`` instead, so a replayed message is
   found, counted as already stored, and not written twice, while the common
   case pays for one COPY only,
3. COPYs static reports into their stage and merges them into the vessel
   identity history (``aiswatch_apply_static``),
4. adds the source's new line counts to ``source_counters``,
5. hands the positions new to the database, and the static reports, to the
   ``hook`` (the detectors' inbox, :mod:`storage.inbox`), which announces
   them in the same transaction.

Counts reach the source's :class:`~ingest.pipeline.IngestStats` only after the
commit, so "stored" means committed. A database that goes away is retried with
backoff (each attempt logged) for ``give_up_s``; then the writer fails with a
:class:`StorageError` and the lines it held stay counted as unresolved.

With a :class:`~storage.spool.Spool` (the live service), a batch the database
refuses goes to the spool at once and the writer carries on taking batches,
which follow it there, in order, while the database is away; every
``retry_s`` the oldest spooled batch is tried again, and once the spool is
empty batches go straight to the database again. A batch the full spool
cannot take is lost: counted (``lost``) and logged as an error, never silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import Any, Final, Literal, Protocol

import numpy as np
import psycopg

from ingest.batch import PositionBatch
from ingest.errors import StorageError
from ingest.pipeline import IngestStats
from ingest.records import Position, StaticReport
from ingest.retry import RetryPolicy
from storage.database import Database, redact
from storage.spool import Spool, SpooledBatch, SpoolFull

log = logging.getLogger(__name__)

POSITION_COLUMNS: Final = [
    "timestamptz", "int4", "int2", "float8", "float8", "float4", "float4",
    "int2", "int2", "float4", "bool", "int2", "text", "int8", "int2",
]  # fmt: skip
STATIC_COLUMNS: Final = [
    "timestamptz", "int4", "int2", "int4", "text", "text", "int2", "int2",
    "int2", "int2", "int2", "float4", "text", "timestamptz", "int2",
]  # fmt: skip
POSITION_FIELDS: Final = (
    "ts, mmsi, msg_type, lat, lon, speed, course, heading, status, turn, accuracy, second, "
    "station, payload_crc"
)
# Only when some rows conflicted: which ones were new?
_INSERT_POSITIONS: Final = (
    f"INSERT INTO positions ({POSITION_FIELDS}) SELECT {POSITION_FIELDS} FROM positions_stage"
    " ON CONFLICT DO NOTHING RETURNING mmsi, ts, payload_crc"
)
_ADD_COUNTERS: Final = """
INSERT INTO source_counters (source, outcome, reason, lines) VALUES (%s, %s, %s, %s)
ON CONFLICT (source, outcome, reason)
DO UPDATE SET lines = source_counters.lines + EXCLUDED.lines, updated_at = now()
"""
#: The longest wait for a pooled connection in one attempt.
CONNECTION_TIMEOUT_S: Final = 10.0


#: Errors that say "this data", not "the database is away": the batch is
#: split until the records at fault are found. Everything else that the
#: database raises (connection, shutdown, resources) means "away": retried
#: or spooled, never counted against the data.
REFUSED_FOR_CONTENT: Final = (
    psycopg.errors.DataError,  # class 22: a NUL in text, a value out of range
    psycopg.errors.IntegrityError,  # class 23: a constraint (replays are handled before)
    psycopg.errors.ProgramLimitExceeded,  # class 54: a row or index entry too large
)

OnFailure = Literal["retry", "spool", "raise"]
#: One source's outcome of a write: lines stored, already stored, the counters
#: now persisted, identity changes, positions stored.
_Result = tuple[int, int, Counter[tuple[str, str]], int, int]
#: The database, away: retried with backoff (up to 8 s between attempts) until the writer gives up.
DATABASE: Final = RetryPolicy(
    transient=(psycopg.OperationalError,), permanent=REFUSED_FOR_CONTENT, base_s=0.25, cap_s=8.0
)


class WriterStopped(StorageError):
    """The writer stopped on an error: nothing more is stored. Not a
    source's failure, so restarting the source mends nothing."""


class _Refused(Exception):
    """The database refused a batch for its content."""

    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _reason(exc: BaseException) -> str:
    """The first line of an error's message (its type if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_reason(exc)}"


def _describe(record: Position | StaticReport, error: psycopg.Error) -> str:
    """What the database refused, and which record: the line's number is not
    known here, its MMSI, time and type are."""
    return (
        f"{_first_line(error)} (MMSI {record.mmsi}, {record.ts:%Y-%m-%d %H:%M:%S}Z, type {record.msg_type})"
    )


def _records(batch: list[_Pending]) -> list[tuple[IngestStats, Position | StaticReport]]:
    records: list[tuple[IngestStats, Position | StaticReport]] = []
    for item in batch:
        records += [(item.stats, p) for p in item.positions.records()]
        records += [(item.stats, s) for s in item.statics]
    return records


#: Distinct days of positions written in one transaction, at most.
DAYS_PER_TRANSACTION: Final = 32


def _by_days(batch: list[_Pending]) -> list[list[_Pending]]:
    """``batch`` in parts of at most ``DAYS_PER_TRANSACTION`` days of
    positions each (the static reports go with the first part)."""
    days = np.unique(np.concatenate([np.empty(0, np.int64), *(i.positions.day_numbers() for i in batch)]))
    if len(days) <= DAYS_PER_TRANSACTION:
        return [batch]
    parts: list[dict[str, _Pending]] = [{} for _ in range((len(days) - 1) // DAYS_PER_TRANSACTION + 1)]
    for item in batch:
        parts[0].setdefault(item.stats.source, _Pending(item.stats))  # its counts, even with no records
        group = np.searchsorted(days, item.positions.day_numbers()) // DAYS_PER_TRANSACTION
        for k in np.unique(group).tolist():
            part = parts[k].setdefault(item.stats.source, _Pending(item.stats))
            part.parts.append(item.positions.select(group == k))
        if item.statics:
            parts[0].setdefault(item.stats.source, _Pending(item.stats)).statics.extend(item.statics)
    return [list(part.values()) for part in parts if part]


def _halves(batch: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
    """``batch`` split in two by record count, each source's order kept."""
    records = _records(batch)
    cut = len(records) // 2
    halves: tuple[list[_Pending], list[_Pending]] = ([], [])
    for n, (half, part) in enumerate(zip(halves, (records[:cut], records[cut:]), strict=True)):
        # the first half carries every source, so that counts without records are written too
        by_source: dict[str, tuple[IngestStats, list[StaticReport]]] = {}
        if n == 0:
            by_source = {item.stats.source: (item.stats, []) for item in batch}
        positions: dict[str, list[Position]] = {}
        for stats, record in part:
            item = by_source.setdefault(stats.source, (stats, []))
            if isinstance(record, Position):
                positions.setdefault(stats.source, []).append(record)
            else:
                item[1].append(record)
        half.extend(
            _Pending(stats, [PositionBatch.from_records(positions.get(source, []))], statics)
            for source, (stats, statics) in by_source.items()
        )
    return halves


class BatchHook(Protocol):
    """Runs inside each batch's transaction, after its rows are written."""

    async def in_transaction(
        self, cur: psycopg.AsyncCursor[Any], positions: PositionBatch, statics: list[StaticReport]
    ) -> None: ...

    def after_commit(self) -> None: ...

    def after_failure(self) -> None: ...


@dataclass
class _Pending:
    stats: IngestStats
    #: The positions, in parts as they were put (joined when first read).
    parts: list[PositionBatch] = field(default_factory=list)
    statics: list[StaticReport] = field(default_factory=list)
    #: Called once these records are committed or spooled (MQTT acknowledgements).
    on_stored: list[Callable[[], None]] = field(default_factory=list)

    @property
    def positions(self) -> PositionBatch:
        if len(self.parts) != 1:
            self.parts = [PositionBatch.concat(self.parts)]
        return self.parts[0]


def as_batch(positions: PositionBatch | Sequence[Position]) -> PositionBatch:
    """Positions by column, as the writer takes them (records are converted)."""
    return positions if isinstance(positions, PositionBatch) else PositionBatch.from_records(positions)


@dataclass
class WriterStats:
    """What the writer did, for logs and metrics."""

    batches: int = 0
    rows: int = 0
    retries: int = 0
    spooled_batches: int = 0
    replayed_batches: int = 0
    lost_lines: int = 0
    last_flush_s: float = 0.0
    total_flush_s: float = 0.0


def _stored(batch: list[_Pending]) -> None:
    for item in batch:
        for callback in item.on_stored:
            callback()
        item.on_stored.clear()


def counter_snapshot(stats: IngestStats) -> Counter[tuple[str, str]]:
    """A source's line counts by (outcome, reason), as ``source_counters`` keeps them."""
    snapshot: Counter[tuple[str, str]] = Counter(
        {
            ("stored", ""): stats.stored,
            ("already_stored", ""): stats.already_stored,
            ("duplicate", ""): stats.duplicate,
            ("lost", "spool_full"): stats.lost,
        }
    )
    snapshot.update({("filtered", r): n for r, n in stats.filtered.items()})
    snapshot.update({("malformed", r): n for r, n in stats.malformed.items()})
    return snapshot


class RecordWriter:
    """Writes records to the database in batches; see the module docs."""

    def __init__(
        self,
        db: Database,
        *,
        batch_rows: int = 20_000,
        max_delay_s: float = 0.5,
        queue_chunks: int = 8,
        give_up_s: float = 60.0,
        hook: BatchHook | None = None,
        spool: Spool | None = None,
        retry_s: float = 2.0,
    ) -> None:
        if batch_rows < 1 or max_delay_s <= 0 or queue_chunks < 1 or give_up_s <= 0:
            raise ValueError("batch_rows, max_delay_s, queue_chunks and give_up_s must be positive")
        #: A batch the database has not taken for this long fails the writer.
        self.give_up_s = give_up_s
        self.db = db
        self.hook = hook
        self.spool = spool
        self.retry_s = retry_s
        #: Each source's stats by name, for the batches replayed from the spool.
        self._sources: dict[str, IngestStats] = {}
        self._last_spool_warning = 0.0
        self.batch_rows = batch_rows
        self.max_delay_s = max_delay_s
        self.stats = WriterStats()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(queue_chunks)
        self._task: asyncio.Task[None] | None = None
        #: What each source's stats have put in source_counters (by id; the stats kept alive with it).
        self._persisted: dict[int, tuple[IngestStats, Counter[tuple[str, str]]]] = {}

    async def __aenter__(self) -> RecordWriter:
        self._task = asyncio.create_task(self._run(), name="aiswatch-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        if self._task.done():
            await self._task  # re-raise the writer's failure
            return
        if exc_type is not None and not issubclass(exc_type, Exception):
            self._task.cancel()  # cancelled or interrupted: do not wait on the database
        else:
            await self._enqueue(None)  # drain: everything queued is written first
        try:
            await self._task
        except asyncio.CancelledError:
            if exc_type is None:
                raise
        stats = self.stats
        log.info(
            "database: wrote %d rows in %d batches (%.2f s in flushes, %d retries)",
            stats.rows,
            stats.batches,
            stats.total_flush_s,
            stats.retries,
        )

    async def put(
        self,
        stats: IngestStats,
        positions: PositionBatch | Sequence[Position],
        statics: list[StaticReport],
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        """Queue one source's records (and counters) for writing; wait while
        the queue is full; raise the writer's error if it has failed.
        ``on_stored`` is called once they are committed (or spooled)."""
        await self._enqueue(_Pending(stats, [as_batch(positions)], statics, [on_stored] if on_stored else []))

    @property
    def failure(self) -> BaseException | None:
        """What stopped the writer's task, if it stopped with an error."""
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return None
        return task.exception()

    async def _enqueue(self, item: _Pending | None) -> None:
        """Queue ``item``, or raise the writer's error if it stops first."""
        assert self._task is not None, "use the writer as an async context manager"
        if not self._task.done():
            queued = asyncio.ensure_future(self._queue.put(item))
            await asyncio.wait({queued, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if queued.done():
                return
            queued.cancel()  # the writer stopped while we waited for room
        failure = self.failure
        if failure is not None:
            raise WriterStopped(str(failure)) from failure  # surface its error to the producer
        await self._task  # cancelled: raises that
        raise WriterStopped("the writer has stopped")

    async def _run(self) -> None:
        try:
            await self._take_batches()
        except Exception as exc:
            # never quietly: the producers get this error at their next put, /health reports it
            log.error("database: the writer stopped: %s: %s", type(exc).__name__, exc)
            raise

    async def _take_batches(self) -> None:
        pending: dict[str, _Pending] = {}
        rows = 0
        started = 0.0
        closing = False
        next_replay = 0.0
        spool = self.spool
        while not closing:
            deadlines = [started + self.max_delay_s] if pending else []
            if spool is not None and len(spool):
                deadlines.append(next_replay)
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            item: _Pending | bool | None
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can
                # swallow a cancellation that comes as an item arrives (and the
                # interrupted ingest then waits on this task for ever).
                async with asyncio.timeout(timeout):
                    item = await self._queue.get()
            except TimeoutError:
                item = False  # a batch's age is up, or the spool is due for a retry
            if item is None:
                closing = True
            elif isinstance(item, _Pending):
                self._sources[item.stats.source] = item.stats
                if not pending:
                    started = time.monotonic()
                batch = pending.setdefault(item.stats.source, _Pending(item.stats))
                batch.parts.extend(item.parts)
                batch.statics.extend(item.statics)
                batch.on_stored.extend(item.on_stored)
                rows += len(item.positions) + len(item.statics)
            now = time.monotonic()
            if spool is not None and len(spool) and now >= next_replay:
                await self._replay()
                next_replay = time.monotonic() + self.retry_s
            if pending and (closing or rows >= self.batch_rows or now - started >= self.max_delay_s):
                await self._flush(list(pending.values()))
                pending.clear()
                rows = 0
        if spool is not None and len(spool):
            log.error(
                "database: stopping with %d batches (%d bytes) in the spool %s;"
                " they are replayed at the next start",
                len(spool), spool.bytes, spool.directory,
            )  # fmt: skip

    def _stats_for(self, source: str) -> IngestStats:
        if source not in self._sources:
            self._sources[source] = IngestStats(source)
        return self._sources[source]

    async def _replay(self) -> None:
        """Write spooled batches, oldest first, while the database takes them."""
        assert self.spool is not None
        while (spooled := await asyncio.to_thread(self.spool.oldest)) is not None:
            batch = [
                _Pending(self._stats_for(source), [as_batch(positions)], statics)
                for source, positions, statics in spooled
            ]
            try:
                await self._commit(batch, on_failure="raise")
            except psycopg.OperationalError as exc:
                now = time.monotonic()
                if now - self._last_spool_warning > 30:
                    self._last_spool_warning = now
                    log.warning(
                        "database: still away (%s); %d batches (%d bytes) wait in the spool",
                        _reason(exc),
                        len(self.spool), self.spool.bytes,
                    )  # fmt: skip
                return
            await asyncio.to_thread(self.spool.pop)
            self.stats.replayed_batches += 1
            if not len(self.spool):
                log.warning("database: back; the spool is replayed and empty")

    async def _to_spool(self, batch: list[_Pending], reason: str) -> None:
        assert self.spool is not None
        spooled: SpooledBatch = [(i.stats.source, i.positions, i.statics) for i in batch]
        try:
            await asyncio.to_thread(self.spool.put, spooled)  # pickling and fsync: off the event loop
        except SpoolFull as full:
            self._lose(batch, f"{reason}, and {full}")
            return
        _stored(batch)  # on disk, fsynced
        if not self.stats.spooled_batches or len(self.spool) == 1:
            log.warning(
                "database: %s; batches go to the spool %s until it is back", reason, self.spool.directory
            )
        self.stats.spooled_batches += 1

    def _lose(self, batch: list[_Pending], reason: str) -> None:
        """Neither the database nor the spool can keep ``batch``: count its lines lost, loudly."""
        lines = 0
        for item in batch:
            lost = item.positions.lines() + sum(s.sentences for s in item.statics)
            item.stats.lost += lost
            lines += lost
        self.stats.lost_lines += lines
        _stored(batch)  # lost and counted: a redelivery would be lost again
        log.error(
            "database: %s: %d lines LOST (%d lost so far)", reason, lines, self.stats.lost_lines
        )  # fmt: skip

    async def _flush(self, batch: list[_Pending]) -> None:
        if self.spool is None:
            await self._commit(batch, on_failure="retry")
        elif len(self.spool):
            await self._to_spool(batch, "away")  # behind older spooled batches: order is kept
        else:
            await self._commit(batch, on_failure="spool")

    async def _commit(self, batch: list[_Pending], *, on_failure: OnFailure) -> None:
        """Write ``batch``. When the database is away: retry with backoff for
        ``give_up_s`` and raise :class:`StorageError`, spool the batch, or
        raise the database's error, as ``on_failure`` says. When it refuses
        the batch for its content, isolate the records it refuses (see
        :meth:`_isolate`) and write the rest. A batch of an archive that spans
        many days is written in parts of at most ``DAYS_PER_TRANSACTION``
        days each: every partition or chunk a transaction touches holds locks
        until its commit, and a decade in one batch exhausted the server's
        lock table ("out of shared memory"), natively and on TimescaleDB."""
        parts = _by_days(batch)
        for i, part in enumerate(parts):
            try:
                spooled = await self._commit_part(part, on_failure=on_failure)
            except _Refused as refused:
                spooled = await self._isolate(part, refused.error, on_failure=on_failure)
            if spooled:
                for rest in parts[i + 1 :]:  # the database went away: the rest follow, in order
                    await self._to_spool(rest, "away")
                break
        _stored(batch)

    async def _isolate(self, batch: list[_Pending], error: psycopg.Error, *, on_failure: OnFailure) -> bool:
        """Split a batch the database refused for its content in halves, each
        in its own transaction, until the records it refuses are found: those
        are counted malformed (``refused_by_database``, with the error and
        the record) and every other record is stored. A record refused alone
        is at fault; the data around it is not. True if the database went
        away meanwhile and the rest went to the spool. (Replaying a spooled
        batch, a database lost half-way raises instead and the whole batch is
        replayed later: its committed halves are then counted again, as
        already stored.)"""
        log.warning(
            "database: a batch was refused for its content (%s); isolating the records", _first_line(error)
        )
        work = list(_halves(batch))
        refused_sources: dict[str, IngestStats] = {}
        while work:
            part = work.pop(0)
            try:
                if await self._commit_part(part, on_failure=on_failure):
                    for rest in work:
                        await self._to_spool(rest, "away")
                    return True
            except _Refused as refused:
                records = _records(part)
                if len(records) > 1:
                    work[:0] = _halves(part)
                    continue
                stats, record = records[0]
                stats.note_refused("refused_by_database", record.sentences, _describe(record, refused.error))
                refused_sources[stats.source] = stats
        # the refused lines' counts reach source_counters like every other count
        return await self._commit_part(
            [_Pending(stats) for stats in refused_sources.values()], on_failure=on_failure
        )

    async def _commit_part(self, batch: list[_Pending], *, on_failure: OnFailure) -> bool:
        """One transaction for ``batch``: True if it went to the spool instead
        (the database away), False if committed; raises :class:`_Refused`
        when the database refuses it for its content."""
        began = time.perf_counter()

        async def attempt() -> list[_Result]:
            try:
                try:
                    results = await self._write(batch)
                except psycopg.errors.CheckViolation as exc:
                    if "no partition of relation" not in str(exc):
                        raise
                    # a partition we knew of is gone (dropped, or its creation rolled back): not the data
                    log.warning("database: %s; reading the partitions again", _reason(exc))
                    self.db.partitions.forget()
                    results = await self._write(batch)
            except BaseException:
                if self.hook is not None:
                    self.hook.after_failure()  # the database is the truth: start again from it
                raise
            if self.hook is not None:
                self.hook.after_commit()
            return results

        def retrying(error: BaseException, delay_s: float) -> None:
            self.stats.retries += 1

        try:
            if on_failure == "retry":
                policy = DATABASE.giving_up_after(self.give_up_s)
                results = await policy.call(attempt, resource="database: write failed", on_retry=retrying)
            else:
                results = await attempt()
        except REFUSED_FOR_CONTENT as exc:
            raise _Refused(exc) from exc
        except psycopg.OperationalError as exc:  # pool time-outs are OperationalErrors too
            if on_failure == "spool":
                await self._to_spool(batch, f"write failed ({_reason(exc)})")
                return True
            if on_failure == "raise":
                raise
            waited_s = time.perf_counter() - began
            where = redact(self.db.url)
            raise StorageError(
                f"the database at {where} did not take writes for {waited_s:.0f} s ({_reason(exc)})"
            ) from exc
        for item, (stored, already, snapshot, changes, stored_positions) in zip(batch, results, strict=True):
            item.stats.stored += stored
            item.stats.already_stored += already
            item.stats.identity_changes += changes
            item.stats.positions_stored += stored_positions
            self._persisted[id(item.stats)] = (item.stats, snapshot)
        _stored(batch)
        self.stats.batches += 1
        self.stats.rows += sum(len(i.positions) + len(i.statics) for i in batch)
        self.stats.last_flush_s = time.perf_counter() - began
        self.stats.total_flush_s += self.stats.last_flush_s
        return False

    async def _write(self, batch: list[_Pending]) -> list[_Result]:
        days: set[date] = set()
        for item in batch:
            days.update(item.positions.days())
        results = []
        # with a spool, a database that does not answer soon is away: the batch goes to disk
        timeout = min(CONNECTION_TIMEOUT_S, self.give_up_s)
        if self.spool is not None:
            timeout = min(timeout, self.retry_s + 1.0)
        async with self.db.pool.connection(timeout=timeout) as conn:
            await self.db.partitions.ensure(conn, days)
            async with conn.transaction(), conn.cursor() as cur:
                new_positions: list[PositionBatch] = []
                for item in batch:
                    result, new = await self._write_source(cur, item)
                    results.append(result)
                    new_positions.append(new)
                if self.hook is not None:
                    statics = [s for item in batch for s in item.statics]
                    await self.hook.in_transaction(cur, PositionBatch.concat(new_positions), statics)
        return results

    async def _copy_new_positions(self, cur: psycopg.AsyncCursor[Any], positions: PositionBatch) -> bool:
        """COPY straight into ``positions``; False (and nothing written) if
        any of them is stored already."""
        try:
            async with (
                cur.connection.transaction(),  # a savepoint
                cur.copy(f"COPY positions ({POSITION_FIELDS}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                await copy.write(positions.copy_data())
        except psycopg.errors.UniqueViolation:
            return False
        return True

    async def _merge_positions(
        self, cur: psycopg.AsyncCursor[Any], positions: PositionBatch
    ) -> tuple[PositionBatch, int]:
        """Insert what is new; return the new rows, and the lines they came in
        (a message repeated within the batch is one row, but all its lines)."""
        async with cur.copy("COPY positions_stage FROM STDIN (FORMAT BINARY)") as copy:
            await copy.write(positions.copy_data(with_sentences=True))
        await cur.execute(_INSERT_POSITIONS)
        inserted = {(mmsi, ts, crc) for mmsi, ts, crc in await cur.fetchall()}
        await cur.execute("TRUNCATE positions_stage")
        new: dict[tuple[int, Any, int], int] = {}
        lines = 0
        for i, p in enumerate(positions.records()):
            key = (p.mmsi, p.ts, p.payload_crc)
            if key in inserted:
                new.setdefault(key, i)
                lines += p.sentences
        return positions.select(np.array(list(new.values()), np.int64)), lines

    async def _write_source(
        self, cur: psycopg.AsyncCursor[Any], item: _Pending
    ) -> tuple[_Result, PositionBatch]:
        stored = already = changes = 0
        new = PositionBatch.empty()
        if len(item.positions):
            lines = item.positions.lines()
            if await self._copy_new_positions(cur, item.positions):
                new, stored_lines = item.positions, lines
            else:
                new, stored_lines = await self._merge_positions(cur, item.positions)
            stored += stored_lines
            already += lines - stored_lines
        if item.statics:
            async with cur.copy("COPY static_stage FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(STATIC_COLUMNS)
                for report in item.statics:
                    await copy.write_row(report)
            await cur.execute("SELECT changes, already_lines FROM aiswatch_apply_static()")
            changes, already_static = await cur.fetchone() or (0, 0)
            already += already_static
            stored += sum(s.sentences for s in item.statics) - already_static
            await cur.execute("TRUNCATE static_stage")
        snapshot = counter_snapshot(item.stats)
        snapshot[("stored", "")] += stored
        snapshot[("already_stored", "")] += already
        # by stats object, not by name: a spool replay's counts and the live
        # source's (same name) are each added once
        persisted = self._persisted.get(id(item.stats))
        delta = snapshot - (persisted[1] if persisted is not None else Counter())
        if delta:
            await cur.executemany(
                _ADD_COUNTERS,
                [(item.stats.source, outcome, reason, n) for (outcome, reason), n in delta.items()],
            )
        return (stored, already, snapshot, changes, len(new)), new
