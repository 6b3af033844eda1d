"""The dispatcher: from the outbox to the channels, one sender at a time.

Several aiswatch instances may run against one database; the one holding a
session-level advisory lock, on a connection of its own, is the sender (and
runs the digest). The others stand by, trying for the lock every
``standby_poll_s``: when the leader dies (kill -9) or loses its connection,
PostgreSQL releases the lock and a standby takes over within seconds, and
sends what the leader had queued or claimed but not recorded.

The leader LISTENs on its lock connection (the 0005 trigger NOTIFYs on every
outbox insert, at commit) and also polls every ``poll_s``, so a missed
notification delays nothing by more than that. A lost lock connection is a
lost leadership: everything the leader runs is cancelled and it stands by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from alerts import store
from alerts.channels import Sender, open_channels, secrets_of
from alerts.delivery import ChannelWorker, RedactingFilter
from alerts.folding import plan
from alerts.message import AlertWriter
from alerts.routing import Router, VesselFacts
from alerts.settings import AlertSettings, redactor
from storage.leader import reason_of, stand_by

log = logging.getLogger(__name__)

#: pg_advisory_lock key of the sender (migrations use ..._0001).
LEADER_LOCK = 0x616973_0005
#: The sender deletes delivery history older than ``alerts.keep_days`` this often.
PRUNE_EVERY_S = 3600.0
#: Outbox rows folded per round (a larger backlog takes several rounds).
PLAN_BATCH = 5000


def utcnow() -> datetime:
    return datetime.now(UTC)


class LeaderJob(Protocol):
    """Something only the leader runs (the digest): until cancelled."""

    async def run(
        self, pool: AsyncConnectionPool, wake: Callable[[Sequence[str]], None], stop: asyncio.Event
    ) -> None: ...


@dataclass
class AlertStats:
    """What /metrics shows, refreshed from the database every few seconds."""

    leader: bool = False
    counts: dict[str, store.ChannelCounts] = field(default_factory=dict)
    oldest_unhandled: datetime | None = None
    refreshed_at: datetime | None = None


class Dispatcher:
    """An async context manager (the channels open on entry: a missing
    secret fails at start); :meth:`run` runs until ``stop``."""

    def __init__(
        self,
        settings: AlertSettings,
        url: str,
        pool: Callable[[], AsyncConnectionPool],
        *,
        writer: AlertWriter,
        router: Router,
        entries: Mapping[str, VesselFacts] | None = None,
        jobs: Sequence[LeaderJob] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.url = url
        self._pool = pool
        self.writer = writer
        self.router = replace(router, channels=frozenset(c.name for c in settings.channels))
        self.entries = entries or {}
        self.jobs = jobs
        self.clock = clock
        self.stats = AlertStats()
        #: The sender lock's connection shows this in pg_stat_activity.
        self.application_name = f"aiswatch-alerts-{os.getpid()}"
        self.senders: dict[str, Sender] = {}
        self.workers: dict[str, ChannelWorker] = {}
        self._stack = AsyncExitStack()
        self._filter: RedactingFilter | None = None

    async def __aenter__(self) -> Dispatcher:
        secrets = redactor([s for config in self.settings.channels for s in secrets_of(config)])
        self._filter = RedactingFilter(secrets)
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._filter)
        self.senders = await self._stack.enter_async_context(open_channels(self.settings.channels))
        s = self.settings
        self.workers = {
            name: ChannelWorker(
                sender, self._pool, give_up_h=s.give_up_h, retry_initial_s=s.retry_initial_s,
                retry_max_s=s.retry_max_s, poll_s=s.poll_s, secrets=secrets, clock=self.clock,
            )
            for name, sender in self.senders.items()
        }  # fmt: skip
        return self

    @property
    def pool(self) -> AsyncConnectionPool:
        """The pool of the database now in use (the service reopens it after an outage)."""
        return self._pool()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handler in logging.getLogger().handlers:
            if self._filter is not None:
                handler.removeFilter(self._filter)
        await self._stack.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, lead when elected, until ``stop``. (Each loop also checks
        ``stop`` itself: psycopg's connect can swallow a cancellation.)"""
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._stand_by(stop), name="alerts leader"),
                group.create_task(self._refresh_stats(stop), name="alerts stats"),
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()

    def wake(self, channels: Sequence[str]) -> None:
        for name in channels:
            if name in self.workers:
                self.workers[name].wake.set()

    # -- leadership --------------------------------------------------------

    async def _stand_by(self, stop: asyncio.Event) -> None:
        await stand_by(
            self.url, key=LEADER_LOCK, role="alerts", application_name=self.application_name,
            lead=self._lead, stop=stop, poll_s=self.settings.standby_poll_s, on_change=self._leading,
        )  # fmt: skip

    def _leading(self, leading: bool) -> None:
        self.stats.leader = leading

    async def _lead(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        log.info("alerts: sending on %d channels", len(self.workers))
        await conn.execute(f"LISTEN {store.OUTBOX_CHANNEL}")
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(w.run(stop), name=f"alerts channel {n}") for n, w in self.workers.items()
            ]
            tasks += [
                group.create_task(job.run(self.pool, self.wake, stop), name="alerts job") for job in self.jobs
            ]
            try:
                await self._plan_forever(conn, stop)
            finally:
                for task in tasks:
                    task.cancel()

    async def _plan_forever(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        poll_s = self.settings.poll_s
        pruned_at = -PRUNE_EVERY_S
        while not stop.is_set():
            if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                pruned_at = time.monotonic()
                await self.prune()
            next_due = await self.plan_once()
            timeout = poll_s
            if next_due is not None:
                timeout = min(poll_s, max(0.0, (next_due - self.clock()).total_seconds()))
            if timeout > 0:
                async for _ in conn.notifies(timeout=timeout, stop_after=1):
                    pass

    async def prune(self) -> None:
        """Keep ``alerts.keep_days`` of delivery history (the sender does it,
        hourly). A failure is logged and tried at the next hour: it never
        keeps alerts from being sent."""
        try:
            async with self.pool.connection() as conn:
                deliveries, outbox = await store.prune(conn, self.settings.keep_days)
        except psycopg.Error as exc:
            log.warning(
                "alerts: could not delete old delivery history (%s); trying again later", reason_of(exc)
            )
            return
        if deliveries or outbox:
            log.info(
                "alerts: deleted %d deliveries and %d outbox rows older than %g days",
                deliveries, outbox, self.settings.keep_days,
            )  # fmt: skip

    # -- planning ----------------------------------------------------------

    async def plan_once(self) -> datetime | None:
        """Fold what the outbox holds into deliveries; return when to look again."""
        s = self.settings
        now = self.clock()
        async with self.pool.connection() as conn:
            notices = await store.load_pending(conn, PLAN_BATCH)
            if not notices:
                return None
            levels = await store.load_match_levels(conn)
            announced = await store.load_announced(conn, sorted({n.event_id for n in notices}))
            facts = {
                key: replace(
                    self.entries.get(key[0], VesselFacts(key[0], key[1])),
                    mmsi=key[1], level=level, reasons=tuple(reasons),
                )
                for key, (level, reasons) in levels.items()
            }  # fmt: skip
            announced_on: dict[str, frozenset[str]] = {}
            for channel, event_id in announced:
                announced_on[event_id] = announced_on.get(event_id, frozenset()) | {channel}
            routed = self.router.route_all(notices, facts, announced_on)
            keys = {(ch, n.event.vessel, n.event.kind) for n, channels in routed for ch in channels}
            last_sent = await store.load_last_sent(conn, keys)
            result = plan(
                routed, announced, last_sent, now,
                group_wait_s=s.group_wait_s, repeat_interval_s=s.repeat_interval_s,
            )  # fmt: skip
            deliveries = [
                store.NewDelivery(
                    id=m.id, channel=m.channel, kind=m.kind, vessel=m.vessel,
                    message=self.writer.render(m, facts.get((m.vessel, m.lead.event.mmsi))),
                    thread=None if m.thread is None else m.thread.first_delivery, folded=m.folded,
                    events=tuple((n.event_id, n.revision) for n in m.notices),
                )
                for m in result.messages
            ]  # fmt: skip
            async with conn.transaction(), conn.cursor() as cur:
                await store.save_plan(cur, deliveries, result.consumed, result.deferred)
        if deliveries:
            log.info(
                "alerts: %d outbox rows folded into %d messages",
                sum(d.folded for d in deliveries),
                len(deliveries),
            )
            self.wake([d.channel for d in deliveries])
        if len(notices) == PLAN_BATCH and result.consumed:
            return now  # more waits: look again at once
        return result.next_due

    async def _refresh_stats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self.pool.connection() as conn:
                    self.stats.counts = await store.delivery_counts(conn)
                    self.stats.oldest_unhandled = await store.oldest_unhandled(conn)
                self.stats.refreshed_at = self.clock()
            except psycopg.Error as exc:
                log.warning("alerts: cannot read the delivery counts (%s)", reason_of(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(self.settings.poll_s, 2.0))

    def oldest_undelivered_age_s(self) -> float:
        """Age of the oldest alert not yet delivered (queued or still in the outbox)."""
        times = [c.oldest_pending for c in self.stats.counts.values() if c.oldest_pending is not None]
        if self.stats.oldest_unhandled is not None:
            times.append(self.stats.oldest_unhandled)
        return 0.0 if not times else max(0.0, (self.clock() - min(times)).total_seconds())
