"""The detectors at the database's side: one leader per database, however
many instances ingest.

Why this shape. Events must be a function of what is stored, not of which
process stored it or in what order. So ingest stays stateless and scales out:
every write transaction, on any instance, adds a row to the detectors' inbox
(:mod:`storage.inbox`) naming the vessels it stored records of. One instance
is the detector leader, elected with a PostgreSQL advisory lock
(:mod:`storage.leader`); the others stand by and take over within seconds
when it dies or loses its connection. The leader works on the lock's own
connection, one REPEATABLE READ snapshot per cycle: it reads every inbox row
the snapshot shows, the identity changes of the vessels heard from (a static
report stored by any instance may make a vessel watched: that is why the
watched set lives here, not in the writers), then the new positions of the
vessels it watches, feeds the engine, and writes the events, their outbox
rows, the watchlist matches, its clock, and the deletion of the inbox rows it
read, in that one transaction. A crash or a failover therefore writes nothing
twice (event writes are idempotent, the outbox takes each revision once) and
misses nothing (what was not committed is still in the inbox, and everything
is in storage).

What is in memory (tracks, records waiting for their vessel's clock) is
rebuilt from storage when a leader starts: watched vessels from the stored
identities, their tracks from their stored history (from ``history_days``
before the oldest record the inbox still announces or a rebuild its
predecessor had pending, committed in ``detector_stale``; else before the
vessel's newest record), the committed events, the periods and the clock
from their tables. A
vessel that becomes watched late is rebuilt the same way; records older than
what a track took make it stale and it is rebuilt from that period (see
:mod:`detectors.engine`).

A replay (``aiswatch ingest``, ``import``, the demo) leads for its own
records when no service leads: it takes the lock before writing, detects
what the inbox announces as the writer commits it and, once everything is
stored, finishes (every record is taken, whatever the lateness). When a
service leads, it detects them instead and the replay says so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from aiswatch.config import Settings
from detectors.engine import DetectorEngine
from detectors.land import InlandMask
from detectors.watchlist import load_watchlist
from detectors.zones import load_zones
from ingest.errors import StorageError
from ingest.records import Event, Position
from storage import events as store
from storage import inbox
from storage.database import STAGE_TABLES
from storage.inbox import InboxHook
from storage.leader import connect, reason_of, stand_by, try_lock

log = logging.getLogger(__name__)

#: The clock is written at most this often (it is a hint for a restart; events carry their times).
_SAVE_EVERY = timedelta(seconds=10)
#: pg_advisory_lock key of the detector leader (migrations use ..._0001, alerts ..._0005).
DETECTOR_LOCK = 0x616973_0008


def utcnow() -> datetime:
    return datetime.now(UTC)


def engine_factory(settings: Settings) -> Callable[[], DetectorEngine]:
    """Load the watchlist, zones and land mask once (errors name the file);
    return a maker of fresh engines on them."""
    config = settings.detectors
    watchlist = load_watchlist(config.watchlist) if config.watchlist else load_watchlist()
    zones = (
        load_zones(config.zones, exit_margin_km=config.zone_exit_margin_km)
        if config.zones
        else load_zones(exit_margin_km=config.zone_exit_margin_km)
    )
    land = InlandMask() if config.inland_check else None
    rules = config.rules

    def make() -> DetectorEngine:
        return DetectorEngine(
            watchlist,
            zones,
            rules,
            land=land,
            allowed_lateness_s=config.allowed_lateness_s,
            history_days=config.history_days,
            hold_s=config.hold_s,
        )

    return make


class Detection:
    """The detectors of one instance: the writers' hook (``hook``) and a
    candidate leader. ``clock`` is the wall clock for a live service, None
    for a replay (each vessel's clock follows its data)."""

    def __init__(
        self,
        make_engine: Callable[[], DetectorEngine],
        *,
        clock: Callable[[], datetime] | None = None,
        poll_s: float = 0.5,
        standby_poll_s: float = 1.0,
    ) -> None:
        self._make_engine = make_engine
        self.engine = make_engine()
        self.clock = clock
        self.poll_s = poll_s
        self.standby_poll_s = standby_poll_s
        self.hook = InboxHook()
        self.leader = False
        #: A replay found another instance leading: it detects these records.
        self.deferred = False
        #: Event revisions committed by this process; inbox rows it consumed.
        self.events_written = 0
        self.inbox_rows = 0
        self.application_name = f"aiswatch-detectors-{os.getpid()}"
        self._saved_watermark: datetime | None = None
        self._saving_watermark: datetime | None = None
        #: The engine holds the database's state (False after a failed cycle: start again).
        self._started = False
        #: Pending rebuilds as last committed (a failover resumes them), and as being written.
        self._saved_stale: dict[int, datetime] | None = None
        self._saving_stale: dict[int, datetime] | None = None

    # -- a live service -----------------------------------------------------

    async def run(self, url: str, stop: asyncio.Event) -> None:
        """Stand by, lead when elected, until ``stop``."""
        await stand_by(
            url, key=DETECTOR_LOCK, role="detectors", application_name=self.application_name,
            lead=self._lead, stop=stop, poll_s=self.standby_poll_s, on_change=self._leading,
        )  # fmt: skip

    def _leading(self, leading: bool) -> None:
        self.leader = leading
        if leading:
            self.hook.keep = True
        else:
            self.hook.forget()

    async def _lead(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        await conn.execute(f"LISTEN {inbox.CHANNEL}")
        await self._start(conn)
        # woken by each commit, and often enough to release what the hold keeps
        wake_s = min(self.poll_s, max(0.05, self.engine.hold_s / 2))
        while not stop.is_set():
            await self.cycle(conn)
            async for _ in conn.notifies(timeout=wake_s, stop_after=1):
                pass

    # -- a replay -------------------------------------------------------------

    @asynccontextmanager
    async def replaying(self, url: str) -> AsyncIterator[None]:
        """Around a replay's writing: lead, if no other instance does, and
        detect what the inbox announces as it is committed (so a long
        backfill is detected as it goes, a few vessels' records at a time);
        on leaving, detect the rest and finish (every record is taken,
        whatever the lateness). When another instance leads, it detects the
        replay's records instead (``deferred``)."""
        async with await connect(url, self.application_name) as conn:
            if not await try_lock(conn, DETECTOR_LOCK):
                self.deferred = True
                log.info("detectors: another aiswatch instance leads; it detects these records")
                yield
                return
            self._leading(True)
            try:
                await conn.execute(f"LISTEN {inbox.CHANNEL}")
                await self._start(conn)
                stop = asyncio.Event()
                follower = asyncio.create_task(self._follow(conn, stop), name="detectors")
                try:
                    yield
                finally:
                    stop.set()
                    await follower
                try:
                    await self.cycle(conn, finish=True)
                except psycopg.Error as exc:
                    raise StorageError(f"detectors: {reason_of(exc)}") from exc
            finally:
                self._leading(False)

    async def _follow(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        """Detect as the replay's writer commits; a failure here is logged and
        left to the replay's end, which tries once more (the inbox keeps all)."""
        try:
            while not stop.is_set():
                async for _ in conn.notifies(timeout=self.poll_s, stop_after=1):
                    pass
                if not stop.is_set():
                    await self.cycle(conn)
        except psycopg.Error as exc:
            log.warning("detectors: %s; the rest is detected at the end", reason_of(exc))

    # -- cycles ------------------------------------------------------------------

    async def _start(self, conn: psycopg.AsyncConnection[Any], *, finish: bool = False) -> None:
        """A new leader: everything from storage, in one snapshot, and every
        inbox row that snapshot shows consumed."""
        self.engine = engine = self._make_engine()
        self._started = False
        self._saved_watermark = self._saving_watermark = None
        self._saved_stale = self._saving_stale = None
        await conn.execute(STAGE_TABLES)
        try:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                engine.watermark = await store.load_watermark(conn)
                for start, end in await inbox.load_periods(conn):
                    engine.saw(start, end)
                engine.load_committed(await store.load_events(conn))
                for report in await store.load_identities(conn):
                    engine.consider(report)
                batch = await inbox.take(conn)
                for start, end in batch.spans:
                    engine.saw(start, end)
                since = await inbox.load_stale(conn)  # rebuilds a predecessor had pending
                for mmsi, first in (
                    await inbox.positions_from(conn, batch.seqs, list(engine.watched))
                ).items():
                    since[mmsi] = min(first, since.get(mmsi, first))
                engine.restart(since)
                self.hook.take_kept(batch.seqs)  # their vessels are rebuilt from storage
                written = await self._settle(conn, batch.seqs, finish=finish)
        except BaseException:
            self.engine = self._make_engine()  # the database is the truth: start again from it
            raise
        self._started = True
        self._committed(*written)
        log.info(
            "detectors: watching %d vessels, %d events known", len(engine.watched), len(engine.committed)
        )

    async def cycle(self, conn: psycopg.AsyncConnection[Any], *, finish: bool = False) -> None:
        """One snapshot: what the inbox announces, detected and consumed
        (``finish``: and everything taken, at a replay's end)."""
        if not self._started:  # a cycle failed: the engine starts again from the database
            await self._start(conn, finish=finish)
            return
        engine = self.engine
        try:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                batch = await inbox.take(conn)
                for start, end in batch.spans:
                    engine.saw(start, end)
                statics = await inbox.read_statics(conn, batch.statics_from)
                engine.observe([], statics)  # may watch more vessels: their positions are read next
                watched = engine.watched
                kept_seqs, kept = self.hook.take_kept(batch.seqs)
                # this process wrote them: no reading back (but as the database holds them)
                ids = np.fromiter(watched, np.int64, len(watched))
                mine = [p for b in kept for p in b.select(np.isin(b.mmsi, ids)).as_stored().records()]
                firsts = inbox.oldest(mine)
                kept_set = set(kept_seqs)
                remote = [seq for seq in batch.seqs if seq not in kept_set]
                from_db = await inbox.positions_from(conn, remote, list(watched))
                for mmsi, first in from_db.items():
                    if mmsi not in firsts or first < firsts[mmsi]:
                        firsts[mmsi] = first
                after, bounds = {}, {}
                now_s = time.monotonic()
                for mmsi, first in firsts.items():
                    bound = engine.noticed(mmsi, first, now_s=now_s)
                    if bound is not None:
                        bounds[mmsi] = bound
                        if mmsi in from_db:
                            after[mmsi] = bound
                positions = [p for p in mine if p.mmsi in bounds and p.ts > bounds[p.mmsi]]
                positions += await inbox.read_positions(conn, after)  # a repeat of one of ours is dropped
                # the CPU work runs in a thread, so the event loop keeps the
                # decoding process fed meanwhile (the engine is only this task's)
                await asyncio.to_thread(self._observe, positions, now_s)
                written = await self._settle(conn, batch.seqs, now_s=None if finish else now_s, finish=finish)
        except BaseException:
            self.engine = self._make_engine()
            self._started = False
            raise
        self._committed(*written)

    def _observe(self, positions: list[Position], now_s: float) -> None:
        self.engine.observe(positions, [], now_s=now_s)
        if self.clock is not None:
            self.engine.advance(self.clock(), now_s=now_s)
        else:
            self.engine.advance()

    async def _settle(
        self,
        conn: psycopg.AsyncConnection[Any],
        seqs: list[int],
        *,
        now_s: float | None = None,
        finish: bool = False,
    ) -> tuple[list[Event], int]:
        """Rebuild what is due, write what changed, consume ``seqs``."""
        engine = self.engine
        due = engine.needs_history(now_s=now_s)
        if due:
            histories = await store.load_histories(conn, due, engine.history)
            for mmsi, (records, truncated) in histories.items():
                engine.rebuild(mmsi, records, truncated_at=truncated)
                if truncated is not None:
                    log.info(
                        "detectors: MMSI %d rebuilt from %s on (detectors.history_days);"
                        " its older records are not examined again",
                        mmsi, f"{truncated:%Y-%m-%d %H:%M}Z",
                    )  # fmt: skip
        if finish:
            engine.finish()
        elif now_s is None and self.clock is not None:
            engine.advance(self.clock())
        events = engine.changes()
        async with conn.cursor() as cur:
            await store.write_events(cur, events)
            await store.write_matches(
                cur,
                [
                    (entry, mmsi, m.level, m.reasons)
                    for (entry, mmsi), m in engine.matches.items()
                    if (entry, mmsi) in engine.dirty_matches
                ],
            )
            saved = self._saved_watermark
            if engine.watermark is not None and (saved is None or engine.watermark - saved >= _SAVE_EVERY):
                await store.save_watermark(cur, engine.watermark)
                self._saving_watermark = engine.watermark
        await inbox.consume(conn, seqs)
        if engine.periods.changed:
            await inbox.save_periods(conn, engine.periods.spans)
        pending = engine.pending_rebuilds()
        if pending != self._saved_stale:
            await inbox.save_stale(conn, pending)
            self._saving_stale = pending
        return events, len(seqs)

    def _committed(self, events: list[Event], rows: int) -> None:
        self._saved_watermark = self._saving_watermark or self._saved_watermark
        if self._saving_stale is not None:
            self._saved_stale, self._saving_stale = self._saving_stale, None
        self.engine.periods.saved()
        self.engine.committed_events(events)
        self.engine.dirty_matches.clear()
        self.events_written += len(events)
        self.inbox_rows += rows
