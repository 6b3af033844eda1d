"""``/health`` and ``/metrics`` (Prometheus) of the live service.

The metrics are read from the service's own counters at scrape time (a
collector, not a second set of counters kept in step).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aiswatch.alerting import alert_metrics
from aiswatch.config import Settings
from ingest.pipeline import IngestStats

if TYPE_CHECKING:
    from aiswatch.live import Service

log = logging.getLogger(__name__)


class ServiceCollector(Collector):
    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        lines = CounterMetricFamily(
            "aiswatch_lines",
            "Lines (or decoded-feed messages) read, by outcome",
            labels=["source", "outcome", "reason"],
        )
        messages = CounterMetricFamily(
            "aiswatch_messages", "AIS messages decoded, by type", labels=["source", "type"]
        )
        stored = CounterMetricFamily("aiswatch_positions_stored", "Positions committed", labels=["source"])
        connected = GaugeMetricFamily(
            "aiswatch_source_connected", "1 when the source is connected", labels=["source", "kind"]
        )
        last = GaugeMetricFamily(
            "aiswatch_source_last_message_timestamp_seconds",
            "When the source last sent something",
            labels=["source"],
        )
        connects = CounterMetricFamily("aiswatch_source_connects", "Connections made", labels=["source"])
        failures = CounterMetricFamily(
            "aiswatch_source_failures", "Connections lost or refused, by reason", labels=["source", "reason"]
        )
        for source in service.sources:
            name = source.state.name
            for stats in (source.stats, source.json_stats):  # the lines, and a decoded feed's messages
                if stats is source.json_stats and not stats.lines:
                    continue
                self._lines(lines, stats.source, stats)
                for msg_type, n in stats.messages_by_type.items():
                    messages.add_metric([stats.source, str(msg_type)], n)
            stored.add_metric([name], source.stats.positions_stored + source.json_stats.positions_stored)
            connected.add_metric([name, source.state.kind], 1.0 if source.state.connected else 0.0)
            if source.state.last_message_at is not None:
                last.add_metric([name], source.state.last_message_at)
            connects.add_metric([name], source.state.connects)
            for reason, n in source.state.failures.items():
                failures.add_metric([name, reason], n)
        yield from (lines, messages, stored, connected, last, connects, failures)
        writer = service.writer
        if writer is not None:
            yield GaugeMetricFamily(
                "aiswatch_queue_depth", "Chunks waiting for the writer", value=writer._queue.qsize()
            )
            yield CounterMetricFamily("aiswatch_db_batches", "Batches committed", value=writer.stats.batches)
            yield GaugeMetricFamily(
                "aiswatch_db_write_seconds",
                "Duration of the last committed batch",
                value=writer.stats.last_flush_s,
            )
            yield CounterMetricFamily(
                "aiswatch_db_write_seconds", "Time spent committing batches", value=writer.stats.total_flush_s
            )
            yield CounterMetricFamily(
                "aiswatch_lines_lost",
                "Lines lost: database away and spool full",
                value=writer.stats.lost_lines,
            )
        if service.spool is not None:
            yield GaugeMetricFamily(
                "aiswatch_spool_bytes", "Bytes waiting in the spool", value=service.spool.bytes
            )
            yield GaugeMetricFamily(
                "aiswatch_spool_batches", "Batches waiting in the spool", value=len(service.spool)
            )
        if service.detection is not None:
            detection = service.detection
            yield CounterMetricFamily(
                "aiswatch_event_revisions", "Event revisions committed", value=detection.events_written
            )
            yield GaugeMetricFamily(
                "aiswatch_detector_leader",
                "1 when this instance is the detector leader",
                value=float(detection.leader),
            )
            yield CounterMetricFamily(
                "aiswatch_detector_inbox_rows",
                "Inbox rows (write transactions of any instance) detected by this instance",
                value=detection.inbox_rows,
            )
        if service.alerts is not None:
            yield from alert_metrics(service.alerts)

    @staticmethod
    def _lines(family: CounterMetricFamily, name: str, stats: IngestStats) -> None:
        family.add_metric([name, "read", ""], stats.lines)
        family.add_metric([name, "stored", ""], stats.stored)
        family.add_metric([name, "already_stored", ""], stats.already_stored)
        family.add_metric([name, "duplicate", ""], stats.duplicate)
        family.add_metric([name, "lost", ""], stats.lost)
        family.add_metric([name, "pending", ""], stats.pending)
        for reason, n in stats.filtered.items():
            family.add_metric([name, "filtered", reason], n)
        for reason, n in stats.malformed.items():
            family.add_metric([name, "malformed", reason], n)


def health(service: Service) -> tuple[int, dict[str, Any]]:
    """200 and "ok" when the database takes writes and every source is
    connected; 503 and "degraded" (with what) otherwise."""
    now = time.time()
    spool = service.spool
    writer = service.writer
    if writer is not None and writer.failure is not None:
        database = f"writer stopped: {writer.failure}"  # nothing is being stored: never "ok"
    elif service.database_error is not None:
        database = f"unreachable (spooling): {service.database_error}"
    else:
        database = "up" if spool is None or not len(spool) else "away (spooling)"
    sources = {
        s.state.name: {
            "kind": s.state.kind,
            "connected": s.state.connected,
            "last_message_age_s": None
            if s.state.last_message_at is None
            else round(now - s.state.last_message_at, 1),
            "lines": s.stats.lines + s.json_stats.lines,
        }
        for s in service.sources
    }
    ok = database == "up" and all(s["connected"] for s in sources.values())
    body = {
        "status": "ok" if ok else "degraded",
        "database": database,
        "spool_bytes": 0 if spool is None else spool.bytes,
        "sources": sources,
        "uptime_s": round(now - service.started_at, 1),
    }
    return (200 if ok else 503), body


def make_app(service: Service) -> FastAPI:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    app = FastAPI(title="aiswatch", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def get_health(response: Response) -> dict[str, Any]:
        response.status_code, body = health(service)
        return body

    @app.get("/metrics")
    def get_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the service owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(service: Service, settings: Settings, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        make_app(service), host=settings.service.http_host, port=settings.service.http_port,
        log_level="warning", lifespan="off", access_log=False,
    )  # fmt: skip
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
