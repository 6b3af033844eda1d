"""Wiring the alerts: the dispatcher (and the digest) from the settings, on
the service's database, with the words of :func:`aiswatch.views.describe`,
the watchlist's identifiers and the watched ports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aiswatch.config import Settings
from aiswatch.views import describe
from alerts import store
from alerts.digest import Digest, render_digest
from alerts.digest_map import draw_map
from alerts.dispatcher import Dispatcher, LeaderJob
from alerts.message import AlertWriter, Message
from alerts.routing import Router, VesselFacts, WatchedPort
from alerts.schedule import DigestJob, Render
from alerts.store import ChannelCounts
from detectors.watchlist import load_watchlist
from detectors.zones import DEFAULT_ZONES, load_zones
from storage.database import Database

log = logging.getLogger(__name__)


def zones_path(settings: Settings) -> Path:
    return settings.detectors.zones or DEFAULT_ZONES


def coastline_path() -> Path | None:
    """The coastline shipped with aiswatch (Natural Earth), when present."""
    path = Path(str(resources.files("aiswatch").joinpath("data", "coastline.geojson")))
    return path if path.is_file() else None


def alert_writer(settings: Settings) -> AlertWriter:
    a = settings.alerts
    return AlertWriter(describe, track_url=a.track_url, domain=a.message_id_domain, max_listed=a.max_listed)


def watched_ports(settings: Settings) -> list[WatchedPort]:
    zones = load_zones(zones_path(settings))
    return [WatchedPort(p.name, p.lat, p.lon) for p in zones.ports]


def watchlist_facts(settings: Settings) -> dict[str, VesselFacts]:
    path = settings.detectors.watchlist
    watchlist = load_watchlist(path) if path else load_watchlist()
    return {
        e.name: VesselFacts(
            e.name, 0, identifiers=tuple((i.kind, i.value, i.source, i.confidence) for i in e.identifiers),
            notes=e.notes,
        )
        for e in watchlist.entries
    }  # fmt: skip


def alert_metrics(dispatcher: Dispatcher) -> Iterator[Metric]:
    """/metrics: deliveries sent, failed (dead-lettered) and pending per
    channel, and the age of the oldest undelivered alert."""
    stats = dispatcher.stats
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
        "sent": CounterMetricFamily("aiswatch_alerts_sent", "Alert deliveries sent", labels=["channel"]),
        "failed": CounterMetricFamily(
            "aiswatch_alerts_failed", "Alert deliveries given up (dead letters)", labels=["channel"]
        ),
        "pending": GaugeMetricFamily(
            "aiswatch_alerts_pending", "Alert deliveries waiting", labels=["channel"]
        ),
    }
    for channel in sorted(set(dispatcher.senders) | set(stats.counts)):
        counts = stats.counts.get(channel, ChannelCounts())
        for name, family in families.items():
            family.add_metric([channel], getattr(counts, name))
    yield from families.values()
    yield GaugeMetricFamily(
        "aiswatch_alerts_oldest_undelivered_age_seconds",
        "Age of the oldest alert not yet delivered (queued, or still in the outbox)",
        value=dispatcher.oldest_undelivered_age_s(),
    )
    yield GaugeMetricFamily(
        "aiswatch_alerts_sender", "1 when this instance is the alert sender", value=float(stats.leader)
    )


def digest_renderer(settings: Settings) -> Render:
    """Digest to message: the map drawn over the port zones and, when
    aiswatch ships one, the coastline."""
    zones, coastline = zones_path(settings), coastline_path()

    def render(digest: Digest, image_src: str) -> Message:
        png = draw_map(digest, zones, coastline)
        return render_digest(digest, describe, png=png, image_src=image_src)

    return render


def digest_jobs(settings: Settings) -> list[LeaderJob]:
    """The daily digest, when it has channels or a folder to go to."""
    digest = settings.alerts.digest
    if not digest.channels and digest.out_dir is None:
        return []
    return [DigestJob(digest, digest_renderer(settings))]


def new_dispatcher(
    settings: Settings, db: Database | Callable[[], Database], *, with_digest: bool = True
) -> Dispatcher:
    """The dispatcher on ``db``, or on the database that ``db()`` returns at
    each use (the live service's writer reopens it after an outage)."""
    current = db if callable(db) else lambda: db
    return Dispatcher(
        settings.alerts, current().url, lambda: current().pool, writer=alert_writer(settings),
        router=Router(settings.alerts.active_rules, watched_ports(settings)),
        entries=watchlist_facts(settings), jobs=digest_jobs(settings) if with_digest else (),
    )  # fmt: skip


async def deliver_now(
    settings: Settings, db: Database, *, timeout_s: float = 120
) -> list[tuple[str, str, str]]:
    """Run the dispatcher until the outbox is folded and every delivery is
    sent or given up (the demo, ``aiswatch digest --send``); return
    (channel, subject, text) of what was sent meanwhile."""
    began = datetime.now(UTC)
    stop = asyncio.Event()
    async with new_dispatcher(settings, db, with_digest=False) as dispatcher:
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            async with asyncio.timeout(timeout_s):
                while not task.done():
                    async with db.pool.connection() as conn:
                        if await store.settled(conn):
                            break
                    await asyncio.sleep(0.2)
        except TimeoutError:
            log.warning("alerts: not everything was delivered within %.0f s; the rest waits", timeout_s)
        finally:
            stop.set()
            await task
    async with db.pool.connection() as conn:
        return await store.sent_since(conn, began)
