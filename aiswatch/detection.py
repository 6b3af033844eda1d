"""Detectors at the database's side: the engine runs inside the writer's
transactions, so positions, the events they cause and the outbox rows for
those events commit together, or not at all.

The engine's state is rebuilt from the database when the service starts and
after any failed transaction (the database is the truth): watched vessels
are found again from the stored identities, their tracks from their stored
history within ``history_days``, the committed events and the watermark from
their tables. A restart therefore writes no event twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from aiswatch.config import Settings
from detectors.engine import DetectorEngine
from detectors.land import InlandMask
from detectors.watchlist import load_watchlist
from detectors.zones import load_zones
from ingest.records import Event, Position, StaticReport
from storage import events as store
from storage.database import Database

log = logging.getLogger(__name__)


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
        )

    return make


class Detection:
    """The writer's hook; see the module docs. ``clock`` is the wall clock
    for a live service, None for a replay (the watermark follows the data)."""

    def __init__(
        self, make_engine: Callable[[], DetectorEngine], *, clock: Callable[[], datetime] | None = None
    ):
        self._make_engine = make_engine
        self.engine = make_engine()
        self.clock = clock
        self._loaded = False
        self._written: list[Event] = []
        #: Event revisions committed by this process.
        self.events_written = 0

    async def in_transaction(
        self, cur: psycopg.AsyncCursor[Any], positions: Sequence[Position], statics: Sequence[StaticReport]
    ) -> None:
        """Feed the batch just written in this transaction; write what changed."""
        if not self._loaded:
            await self._load(cur.connection)
        # The detectors' CPU work runs in a thread, so that the event loop keeps
        # the decoding process fed meanwhile (the engine is only ever used by
        # the writer's task, one batch at a time).
        await asyncio.to_thread(self._observe, positions, statics)
        await self._settle(cur)

    def _observe(self, positions: Sequence[Position], statics: Sequence[StaticReport]) -> None:
        self.engine.observe(positions, statics)
        self.engine.advance(self.clock() if self.clock is not None else None)

    def after_commit(self) -> None:
        self.engine.committed_events(self._written)
        self.events_written += len(self._written)
        self._written = []
        self.engine.dirty_matches.clear()

    def after_failure(self) -> None:
        """The transaction failed: the database is the truth, start again from it."""
        self.engine = self._make_engine()
        self._loaded = False
        self._written = []

    async def finish(self, db: Database) -> None:
        """End of a replay: take every record read, whatever the lateness."""
        async with db.pool.connection() as conn:
            try:
                async with conn.transaction(), conn.cursor() as cur:
                    if not self._loaded:
                        await self._load(conn)
                    self.engine.finish()
                    await self._settle(cur)
            except BaseException:
                self.after_failure()
                raise
        self.after_commit()

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        engine = self.engine
        engine.watermark = await store.load_watermark(conn)
        engine.load_committed(await store.load_events(conn))
        for report in await store.load_identities(conn):
            engine.consider(report)
        engine.restart()
        self._loaded = True
        log.info(
            "detectors: watching %d vessels, %d events known", len(engine.watched), len(engine.committed)
        )

    async def _settle(self, cur: psycopg.AsyncCursor[Any]) -> None:
        engine = self.engine
        stale = engine.needs_history()
        if stale:
            since = next(iter(stale.values()))
            histories = await store.load_histories(cur.connection, list(stale), since)
            for mmsi, (records, truncated) in histories.items():
                engine.rebuild(mmsi, records, truncated_at=truncated)
        events = engine.changes()
        await store.write_events(cur, events)
        await store.write_matches(
            cur,
            [
                (entry, mmsi, m.level, m.reasons)
                for (entry, mmsi), m in engine.matches.items()
                if (entry, mmsi) in engine.dirty_matches
            ],
        )
        await store.save_watermark(cur, engine.watermark)
        self._written = events
