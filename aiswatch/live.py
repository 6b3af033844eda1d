"""``aiswatch run``: the live service.

One asyncio TaskGroup runs every configured source, each pumping its chunks
through the decoding process into the writer, and the HTTP endpoint. The
writer (with the detectors in its transactions, on the wall clock) and the
spool wrap it. When ``stop`` is set (SIGTERM, SIGINT), every source stops at a
read boundary, its decoder is flushed (orphan fragments counted), the writer
drains its queue and commits; what the database cannot take stays in the
spool for the next start. A source that fails is logged, counted and started
again after a backoff; the other sources do not notice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import psycopg

from aiswatch.alerting import new_dispatcher
from aiswatch.api import serve_api
from aiswatch.config import (
    AisstreamSource,
    FileSource,
    MqttSource,
    Settings,
    Source,
    TcpSource,
    UdpSource,
)
from aiswatch.detection import Detection, engine_factory
from aiswatch.http import serve_http
from aiswatch.pump import finish_source, pump_chunks
from aiswatch.service import (
    database_url,
    decoder_process,
    file_chunks,
    new_database,
    new_decoder,
    new_writer,
    open_database,
)
from alerts.dispatcher import Dispatcher
from alerts.settings import secret as _secret
from ingest.errors import ConfigError, StorageError
from ingest.offload import RemoteDecoder
from ingest.pipeline import IngestStats
from ingest.retry import RetryPolicy
from ingest.sources.aisstream import aisstream_chunks, subscription
from ingest.sources.files import follow_chunks
from ingest.sources.live import Chunk, SourceState, pause_before_reconnect
from ingest.sources.mqtt import MqttOptions, mqtt_chunks
from ingest.sources.tcp import tcp_chunks
from ingest.sources.udp import udp_chunks
from storage.areas import keep_indexed
from storage.database import Database
from storage.spool import Spool
from storage.writer import RecordWriter, WriterStopped

log = logging.getLogger(__name__)


@dataclass
class LiveSource:
    """A configured source with its state and counters (lines, and decoded-feed messages)."""

    config: Source
    state: SourceState
    stats: IngestStats
    json_stats: IngestStats
    restarts: int = 0
    #: The latest failures, newest last (bounded: a source can fail for days).
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))


@dataclass
class Service:
    """What a running service exposes to /health and /metrics."""

    sources: list[LiveSource]
    writer: RecordWriter | None = None
    spool: Spool | None = None
    detection: Detection | None = None
    alerts: Dispatcher | None = None
    started_at: float = field(default_factory=time.time)
    #: Why the database could not be opened, while it cannot (lines go to the spool).
    database_error: str | None = None


def chunks_of(source: LiveSource, stop: asyncio.Event) -> AsyncIterator[Chunk]:
    config, state = source.config, source.state
    match config:
        case TcpSource():
            return tcp_chunks(
                config.host, config.port, state, stop,
                read_timeout_s=config.read_timeout_s, connect_timeout_s=config.connect_timeout_s,
            )  # fmt: skip
        case UdpSource():
            return udp_chunks(config.host, config.port, state, stop)
        case MqttSource():
            options = MqttOptions(
                host=config.host, port=config.port, topics=tuple(config.topics), qos=config.qos,
                client_id=config.client_id, protocol=5 if config.protocol == "5" else 4,
                username=config.username,
                password=_secret(config.password_env, f"sources.{config.name}.password_env"),
                tls=config.tls, ca_file=None if config.ca_file is None else str(config.ca_file),
                shared_group=config.shared_group, session_expiry_s=config.session_expiry_s,
                receiver=config.receiver,
            )  # fmt: skip
            return mqtt_chunks(options, state, stop)
        case AisstreamSource():
            key = _secret(config.api_key_env, f"sources.{config.name}.api_key_env") or ""
            message = subscription(key, config.bounding_boxes, config.mmsi, config.message_types)
            return aisstream_chunks(config.url, message, state, stop, read_timeout_s=config.read_timeout_s)
        case FileSource(follow=True):
            return follow_chunks(str(config.path), state, stop)
        case FileSource():
            return _whole_file(str(config.path), state)
    raise AssertionError(config)


async def _whole_file(path: str, state: SourceState) -> AsyncIterator[Chunk]:
    async for chunk in file_chunks(path):
        state.heard(chunk.received)
        yield chunk


async def pump(source: LiveSource, decoder: RemoteDecoder, writer: RecordWriter, stop: asyncio.Event) -> None:
    """Run one source until ``stop``; restart it after a backoff if it fails
    (:data:`SOURCE_RESTART`): one source's failure must not stop the others.
    Everything it read is stored (or spooled) before it restarts or returns.
    The backoff grows while the source fails without reading anything, and
    starts again from nothing once it has read."""

    def failed(exc: BaseException, delay_s: float) -> None:
        source.restarts += 1
        source.errors.append(f"{type(exc).__name__}: {exc}")
        log.debug("%s: details", source.state.name, exc_info=exc)

    async def read() -> bool:
        """Pump until the source ends (False) or fails after reading (True: restart afresh)."""
        progressed = False

        async def chunks() -> AsyncIterator[Chunk]:
            nonlocal progressed
            async for chunk in chunks_of(source, stop):
                progressed = True
                yield chunk

        try:
            await pump_chunks(chunks(), decoder, writer, source.json_stats)
        except Exception as exc:
            if isinstance(exc, OSError) and stop.is_set():  # a socket closed by the stop itself
                return False
            if not progressed or isinstance(exc, SOURCE_RESTART.permanent):
                raise
            failed(exc, 0.0)
            log.warning("%s: failed (%s: %s); restarting", source.state.name, type(exc).__name__, exc)
            return True
        return False

    try:
        while await SOURCE_RESTART.call(
            read, resource=f"{source.state.name}: failed", stop=stop, on_retry=failed
        ):
            await pause_before_reconnect(stop)
    except Exception:
        if not stop.is_set():
            raise
    await finish_source(decoder, writer)  # what waits for the rest of its message is an orphan now
    log.info("%s: stopped", source.state.name)


#: A live source that fails for any reason but its configuration is started again.
SOURCE_RESTART: Final = RetryPolicy(
    transient=(Exception,), permanent=(ConfigError, WriterStopped), base_s=1.0, cap_s=60.0
)


async def _open_or_spool(settings: Settings, stack: AsyncExitStack, service: Service) -> Database:
    """The database, opened; or, when its server does not answer, one not yet
    open, whose writes fail at once, so that batches go to the spool while
    :func:`_reconnect` waits for the server (a crash during an outage must not
    keep the feed and the spool waiting for the database)."""
    try:
        return await stack.enter_async_context(open_database(settings))
    except StorageError as exc:
        url = database_url(settings)
        if url is None or not isinstance(exc.__cause__, psycopg.OperationalError):
            raise  # the embedded server, or a refusal that waiting will not mend
        service.database_error = str(exc)
        log.error("database: %s; running anyway, with batches going to the spool until it answers", exc)
        return new_database(settings, url)


async def _reconnect(
    settings: Settings, stack: AsyncExitStack, service: Service, stop: asyncio.Event
) -> None:
    """Open the database once its server answers, and give it to the writer."""
    writer = service.writer
    assert writer is not None

    def still_away(exc: BaseException, delay_s: float) -> None:
        service.database_error = str(exc)

    policy = RetryPolicy(
        transient=(StorageError, psycopg.OperationalError), base_s=settings.service.spool_retry_s, cap_s=30.0
    )
    try:
        writer.db = await policy.call(
            lambda: stack.enter_async_context(open_database(settings)),
            resource="database: still unreachable",
            stop=stop,
            on_retry=still_away,
        )
    except (StorageError, psycopg.OperationalError):
        return  # stopped first; the spool is replayed at the next start
    service.database_error = None
    log.warning("database: reachable; the spool is replayed")


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_service(
    settings: Settings,
    stop: asyncio.Event,
    *,
    started: Callable[[Service], None] | None = None,
    db: Database | None = None,
) -> Service:
    """Run until ``stop`` is set; return the final state (counts committed)."""
    if not settings.sources:
        raise ConfigError(
            "setting sources: no sources configured ([[sources]] in the TOML file)", setting="sources"
        )
    sources = [
        LiveSource(
            source,
            SourceState(source.name, source.kind),
            IngestStats(f"{source.kind}:{source.name}"),
            IngestStats(f"{source.kind}:{source.name}:json"),
        )
        for source in settings.sources
    ]
    for source in sources:  # missing secrets fail at start, naming the setting
        if isinstance(source.config, MqttSource):
            _secret(source.config.password_env, f"sources.{source.config.name}.password_env")
        if isinstance(source.config, AisstreamSource):
            _secret(source.config.api_key_env, f"sources.{source.config.name}.api_key_env")
    service = Service(sources)
    async with AsyncExitStack() as stack:
        process = await stack.enter_async_context(decoder_process(settings))
        # the database closes after the writer has drained (exit stacks unwind last in, first out)
        databases = await stack.enter_async_context(AsyncExitStack())
        if db is None:
            db = await _open_or_spool(settings, databases, service)
        if settings.detectors.enabled:
            service.detection = Detection(engine_factory(settings), clock=_utcnow)
        service.spool = Spool(
            settings.data_dir / "spool", max_bytes=int(settings.service.spool_max_mb * 2**20)
        )
        service.writer = await stack.enter_async_context(
            new_writer(settings, db, service.detection, service.spool)
        )
        if settings.alerts.enabled:  # on the writer's database: the one reopened after an outage
            writer = service.writer
            service.alerts = await stack.enter_async_context(new_dispatcher(settings, lambda: writer.db))
        decoders = []
        for source in sources:
            decoder = new_decoder(settings, process, source.stats.source)
            decoder.stats = source.stats
            decoders.append(decoder)
        try:
            async with asyncio.TaskGroup() as group:
                for source, decoder in zip(sources, decoders, strict=True):
                    group.create_task(
                        pump(source, decoder, service.writer, stop), name=f"source {source.state.name}"
                    )
                if service.database_error is not None:
                    group.create_task(_reconnect(settings, databases, service, stop), name="database")
                if settings.service.http_port:
                    group.create_task(serve_http(service, settings, stop), name="http")
                if settings.api.serve_with_run:  # the query API and map beside ingest
                    group.create_task(serve_api(settings, db, stop), name="api")
                if service.alerts is not None:
                    group.create_task(service.alerts.run(stop), name="alerts")
                if service.detection is not None:  # a candidate detector leader
                    group.create_task(service.detection.run(db.url, stop), name="detectors")
                if db.flavour == "native":  # complete days indexed for area questions, hourly
                    group.create_task(keep_indexed(db.url, stop), name="areas")
                if started is not None:
                    started(service)
                log.info("aiswatch: running %d sources", len(sources))
        except BaseExceptionGroup as failure:  # a bad setting, the writer stopped: as itself, one line
            for error in failure.exceptions[1:]:
                log.error("aiswatch: also: %s: %s", type(error).__name__, error)
            raise failure.exceptions[0] from None
        log.info("aiswatch: sources stopped; draining the writer")
    return service
