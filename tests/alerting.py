"""Running the alert dispatcher in tests: events written as the detectors
write them, the dispatcher run until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiswatch.alerting import new_dispatcher
from aiswatch.config import Settings
from alerts.settings import AlertSettings
from ingest.records import Event
from storage.database import Database
from storage.events import write_events, write_matches

T0 = datetime(2024, 3, 11, 6, 2, tzinfo=UTC)


def with_alerts(settings: Settings, **alerts: Any) -> Settings:
    defaults: dict[str, Any] = {
        "group_wait_s": 0, "repeat_interval_s": 0, "poll_s": 0.2, "retry_initial_s": 0.2, "retry_max_s": 1.0,
        "standby_poll_s": 0.2,
    }  # fmt: skip
    return settings.model_copy(update={"alerts": AlertSettings.model_validate(defaults | alerts)})


def port_call(vessel: str = "LADY R", mmsi: int = 273100001, state: str = "open", hours: float = 0) -> Event:
    start = T0 + timedelta(hours=hours)
    return Event(
        kind="port_call", mmsi=mmsi, start=start, state=state,  # type: ignore[arg-type]
        end=None if state == "open" else start + timedelta(hours=30), port="Rajin", lat=42.245, lon=130.30,
        vessel=vessel, imo=9161003,
        details={"arrival_observed": False, "dwell_h": None if state == "open" else 30.0,
                 "draught_arrival": 5.1, "draught_departure": None if state == "open" else 7.4},
    )  # fmt: skip


async def put_events(db: Database, events: Sequence[Event], level: str = "identified") -> None:
    """Write events (and their watchlist matches) as the detectors do: one transaction."""
    async with db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await write_events(cur, events)
        await write_matches(cur, sorted({(e.vessel, e.mmsi, level, ("test",)) for e in events}))


async def rows(db: Database, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    async with db.pool.connection() as conn:
        return list(await (await conn.execute(query, args)).fetchall())


async def run_until(
    settings: Settings, db: Database, done: Callable[[], Awaitable[bool]], *, timeout_s: float = 60
) -> None:
    """Run a dispatcher until ``done()`` holds (or fail after ``timeout_s``)."""
    stop = asyncio.Event()
    async with new_dispatcher(settings, db) as dispatcher:
        task = asyncio.create_task(dispatcher.run(stop))
        deadline = time.monotonic() + timeout_s
        try:
            while not await done():
                if task.done():
                    task.result()
                    raise AssertionError("the dispatcher stopped")
                if time.monotonic() > deadline:
                    raise AssertionError(f"not done within {timeout_s} s")
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await task


def all_sent(db: Database, count: int | None = None) -> Callable[[], Awaitable[bool]]:
    """Nothing left in the outbox, every delivery sent or given up (and ``count`` of them)."""

    async def check() -> bool:
        ((outbox, waiting, total),) = await rows(
            db,
            "SELECT (SELECT count(*) FROM event_outbox WHERE delivered_at IS NULL),"
            " (SELECT count(*) FROM alert_deliveries WHERE sent_at IS NULL AND failed_at IS NULL),"
            " (SELECT count(*) FROM alert_deliveries)",
        )
        return outbox == 0 and waiting == 0 and (count is None or total >= count)

    return check
