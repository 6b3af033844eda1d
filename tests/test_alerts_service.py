"""The dispatcher inside ``aiswatch run``: events written while the service
runs are delivered, and /metrics counts them."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from storage.database import Database
from tests.alerting import port_call, put_events
from tests.detecting import scenario_lines
from tests.test_live import eventually, free_port, get, live_settings, running


async def test_the_live_service_delivers_alerts_and_counts_them_in_metrics(
    database_url: str, tmp_path: Path
) -> None:
    scenario_lines(tmp_path)
    out, http = tmp_path / "pager.jsonl", free_port()
    feed = {"kind": "file", "name": "feed", "path": str(tmp_path / "scenario.nmea"), "follow": False}
    settings = live_settings(database_url, tmp_path, [feed], http_port=http)
    alerts = {
        "group_wait_s": 0,
        "repeat_interval_s": 0,
        "poll_s": 0.3,
        "channels": [{"kind": "file", "name": "pager", "path": str(out)}],
    }
    settings = settings.model_copy(update={"alerts": type(settings.alerts).model_validate(alerts)})
    async with running(settings) as service, Database(database_url, timescaledb="off") as db:
        assert service.alerts is not None
        await put_events(db, [port_call(f"SHIP {n}", mmsi=273100500 + n) for n in range(3)])

        def subjects() -> list[str]:
            lines = out.read_text().splitlines() if out.exists() else []
            return sorted(json.loads(line)["subject"] for line in lines)

        # the scenario's own ships page too (the feed is detected live, however old its data)
        await eventually(lambda: sum(s.startswith("[aiswatch] SHIP") for s in subjects()) == 3, timeout_s=60)

        async def scraped() -> bool:
            _, metrics = await asyncio.to_thread(get, f"http://127.0.0.1:{http}/metrics")
            sent = re.search(r'aiswatch_alerts_sent_total\{channel="pager"\} (\d+)', metrics)
            settled = (
                'aiswatch_alerts_pending{channel="pager"} 0.0' in metrics
                and "aiswatch_alerts_oldest_undelivered_age_seconds 0.0" in metrics
            )
            return bool(
                sent
                and int(sent.group(1)) == len(subjects())
                and settled
                and "aiswatch_alerts_sender 1.0" in metrics
            )

        await eventually(scraped, timeout_s=30)
        _, metrics = await asyncio.to_thread(get, f"http://127.0.0.1:{http}/metrics")
    assert 'aiswatch_alerts_pending{channel="pager"} 0.0' in metrics
    assert 'aiswatch_alerts_failed_total{channel="pager"} 0.0' in metrics
    assert "aiswatch_alerts_oldest_undelivered_age_seconds 0.0" in metrics
    ships = [s.split(" arrived")[0] for s in subjects() if s.startswith("[aiswatch] SHIP")]
    assert ships == [f"[aiswatch] SHIP {n}" for n in range(3)]
    assert any(s.startswith("[aiswatch] LADY R") for s in subjects())
