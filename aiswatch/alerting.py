"""Wiring the alerts: the dispatcher (and the digest) from the settings, on
the service's database, with the words of :func:`aiswatch.views.describe`,
the watchlist's identifiers and the watched ports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from aiswatch.config import Settings
from aiswatch.views import describe
from alerts.dispatcher import Dispatcher, LeaderJob
from alerts.message import AlertWriter
from alerts.routing import Router, VesselFacts, WatchedPort
from detectors.watchlist import load_watchlist
from detectors.zones import DEFAULT_ZONES, load_zones
from storage.database import Database


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


def new_dispatcher(settings: Settings, db: Database, jobs: Sequence[LeaderJob] = ()) -> Dispatcher:
    return Dispatcher(
        settings.alerts, db.url, db.pool, writer=alert_writer(settings),
        router=Router(settings.alerts.active_rules, watched_ports(settings)),
        entries=watchlist_facts(settings), jobs=jobs,
    )  # fmt: skip


async def run_alerts(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """The service's alerts task: the dispatcher (already entered) until ``stop``."""
    await dispatcher.run(stop)
