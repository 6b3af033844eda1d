"""Sending the digest every day (APScheduler 3.x, an asyncio scheduler and a
cron trigger at ``digest.at`` in ``digest.timezone``), run by the alert
sender only.

Each day's digest is recorded in ``digest_runs`` in the transaction that
queues its deliveries: a day is queued once (never twice, whichever instance
leads), and delivered at least once like any alert. At start the leader
queues the days missed while nobody was sending (up to ``catch_up_days``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from psycopg_pool import AsyncConnectionPool

from alerts import store
from alerts.digest import Digest, collect, due_days
from alerts.message import Message
from alerts.settings import DigestSettings

log = logging.getLogger(__name__)

Render = Callable[[Digest, str], Message]


def write_digest(out_dir: Path, digest: Digest, render: Render) -> Path:
    """The digest as files (HTML, its PNG beside it, and plain text); return the HTML's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"digest-{digest.day:%Y-%m-%d}"
    message = render(digest, f"{stem}.png")
    if "map" in message.images:
        (out_dir / f"{stem}.png").write_bytes(message.images["map"])
    (out_dir / f"{stem}.txt").write_text(message.text, encoding="utf-8")
    html = out_dir / f"{stem}.html"
    html.write_text(message.html, encoding="utf-8")
    return html


async def queue_digest(
    pool: AsyncConnectionPool, day: date, settings: DigestSettings, render: Render
) -> bool:
    """Collect, render and queue ``day``'s digest for the digest channels
    (and write it to ``out_dir``); False when that day was queued before."""
    async with pool.connection() as conn:
        digest = await collect(conn, day, settings.timezone)
        message = await asyncio.to_thread(render, digest, "cid:map")
        async with conn.transaction(), conn.cursor() as cur:
            if not await store.record_digest(cur, day, settings.channels, message.chat):
                return False
            await store.queue(
                cur,
                [
                    store.NewDelivery(id=f"digest-{day:%Y-%m-%d}-{channel}", channel=channel, kind="digest",
                                      vessel="", message=message)
                    for channel in settings.channels
                ],
            )  # fmt: skip
    if settings.out_dir is not None:
        path = await asyncio.to_thread(write_digest, settings.out_dir, digest, render)
        log.info("digest %s: written to %s", day, path)
    log.info("digest %s: queued for %s", day, ", ".join(settings.channels) or "no channel")
    return True


class DigestJob:
    """The leader's daily digest (an :class:`alerts.dispatcher.LeaderJob`)."""

    def __init__(
        self,
        settings: DigestSettings,
        render: Render,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.render = render
        self.clock = clock

    async def catch_up(self, pool: AsyncConnectionPool, wake: Callable[[Sequence[str]], None]) -> list[date]:
        """Queue every due day not yet sent; return them."""
        s = self.settings
        now = self.clock()
        async with pool.connection() as conn:
            done = await store.digest_days(conn, now.date() - timedelta(days=s.catch_up_days + 3))
            row = await (await conn.execute("SELECT min(day) FROM digest_runs")).fetchone()
        since = None if row is None else row[0]
        queued = []
        for day in due_days(now, s.at, s.timezone, done, catch_up_days=s.catch_up_days, since=since):
            if await queue_digest(pool, day, s, self.render):
                queued.append(day)
        if queued:
            wake(s.channels)
        return queued

    async def run(
        self, pool: AsyncConnectionPool, wake: Callable[[Sequence[str]], None], stop: asyncio.Event
    ) -> None:
        s = self.settings
        await self.catch_up(pool, wake)
        scheduler = AsyncIOScheduler(timezone=s.timezone)
        daily = CronTrigger(hour=s.at.hour, minute=s.at.minute, second=s.at.second, timezone=s.timezone)
        scheduler.add_job(
            self.catch_up, daily, args=(pool, wake), id="digest", misfire_grace_time=3600, coalesce=True,
            max_instances=1,
        )  # fmt: skip
        scheduler.start()
        log.info("digest: daily at %s (%s)", s.at.strftime("%H:%M"), s.timezone)
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
