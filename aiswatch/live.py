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
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiswatch.alerting import new_dispatcher
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
from aiswatch.service import decoder_process, new_decoder, open_database
from alerts.dispatcher import Dispatcher
from alerts.settings import secret as _secret
from ingest.errors import ConfigError
from ingest.offload import RemoteDecoder
from ingest.pipeline import IngestStats
from ingest.sources.aisstream import aisstream_chunks, subscription
from ingest.sources.files import follow_chunks, read_lines
from ingest.sources.live import Chunk, SourceState, backoff_s, sleep_unless_stopped
from ingest.sources.mqtt import MqttOptions, mqtt_chunks
from ingest.sources.tcp import tcp_chunks
from ingest.sources.udp import udp_chunks
from storage.database import Database
from storage.spool import Spool
from storage.writer import RecordWriter

log = logging.getLogger(__name__)


@dataclass
class LiveSource:
    """A configured source with its state and counters (lines, and decoded-feed messages)."""

    config: Source
    state: SourceState
    stats: IngestStats
    json_stats: IngestStats
    restarts: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Service:
    """What a running service exposes to /health and /metrics."""

    sources: list[LiveSource]
    writer: RecordWriter | None = None
    spool: Spool | None = None
    detection: Detection | None = None
    alerts: Dispatcher | None = None
    started_at: float = field(default_factory=time.time)


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
    async for lines in read_lines(path):
        state.heard()
        yield Chunk(time.time(), lines)


def _account(stats: IngestStats, chunk: Chunk) -> None:
    """A decoded feed's messages: one line each in the accounting."""
    stats.lines += chunk.messages
    stats.accepted += len(chunk.positions) + len(chunk.statics)
    stats.positions += len(chunk.positions)
    stats.static_reports += len(chunk.statics)
    for position in chunk.positions:
        stats.messages_by_type[position.msg_type] += 1
    for static in chunk.statics:
        stats.messages_by_type[static.msg_type] += 1
    for reason, detail in chunk.malformed:
        if reason == "type_not_stored":
            stats.filtered[reason] += 1
        else:
            stats.note_malformed(reason, 1, stats.lines, detail)


#: Chunks decoding while the source reads on (the decoder is another process).
DECODE_AHEAD = 2

#: What the storing task does next, in the order the source read it: store the
#: decoder's next result, or records decoded from JSON; then acknowledge.
_Step = tuple[Chunk | None, Callable[[], None] | None]


async def pump(source: LiveSource, decoder: RemoteDecoder, writer: RecordWriter, stop: asyncio.Event) -> None:
    """Run one source until ``stop``; restart it after a backoff if it fails.

    The source reads on while up to ``DECODE_AHEAD`` chunks decode; a second
    task stores what comes back, in order (so a chunk is acknowledged only
    once it and everything before it are stored)."""
    steps: asyncio.Queue[_Step | None] = asyncio.Queue(maxsize=DECODE_AHEAD)

    async def store() -> None:
        while (step := await steps.get()) is not None:
            records, on_stored = step
            if records is None:
                await writer.put(decoder.stats, *await decoder.next_result(), on_stored=on_stored)
            else:
                _account(source.json_stats, records)
                await writer.put(source.json_stats, records.positions, records.statics, on_stored=on_stored)

    async with asyncio.TaskGroup() as group:
        storing = group.create_task(store())
        try:
            await _read_source(source, decoder, steps, stop)
        finally:
            if not storing.done():  # (if it failed, the group raises its error)
                await steps.put(None)
    decoder.submit([], time.time(), close=True)  # what waits for the rest of its message is an orphan now
    for positions, statics in await decoder.drain():
        await writer.put(decoder.stats, positions, statics)
    log.info("%s: stopped", source.state.name)


async def _read_source(
    source: LiveSource, decoder: RemoteDecoder, steps: asyncio.Queue[_Step | None], stop: asyncio.Event
) -> None:
    name = source.state.name
    attempt = 0
    while True:
        try:
            async for chunk in chunks_of(source, stop):
                if chunk.lines:
                    decoder.submit(chunk.lines, chunk.received)
                    # MQTT acknowledges a chunk once its records are stored (the last step carries it)
                    await steps.put((None, None if chunk.messages else chunk.on_stored))
                if chunk.messages:
                    await steps.put((chunk, chunk.on_stored))
                attempt = 0
            return
        except ConfigError:
            raise
        except Exception as exc:  # one source's failure must not stop the others
            if isinstance(exc, OSError) and stop.is_set():
                return
            source.restarts += 1
            source.errors.append(f"{type(exc).__name__}: {exc}")
            delay = backoff_s(attempt, base_s=1.0)
            attempt += 1
            log.error("%s: failed (%s: %s); restarting in %.1f s", name, type(exc).__name__, exc, delay)
            log.debug("%s: details", name, exc_info=exc)
            await sleep_unless_stopped(delay, stop)
            if stop.is_set():
                return


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
        if db is None:
            db = await stack.enter_async_context(open_database(settings))
        if settings.detectors.enabled:
            service.detection = Detection(engine_factory(settings), clock=_utcnow)
        service.spool = Spool(
            settings.data_dir / "spool", max_bytes=int(settings.service.spool_max_mb * 2**20)
        )
        service.writer = await stack.enter_async_context(
            RecordWriter(
                db,
                batch_rows=settings.ingest.batch_rows,
                max_delay_s=settings.ingest.batch_delay_s,
                queue_chunks=settings.ingest.queue_chunks,
                give_up_s=settings.storage.write_give_up_s,
                hook=service.detection,
                spool=service.spool,
                retry_s=settings.service.spool_retry_s,
            )
        )
        if settings.alerts.enabled:
            service.alerts = await stack.enter_async_context(new_dispatcher(settings, db))
        decoders = []
        for source in sources:
            decoder = new_decoder(settings, process, source.stats.source)
            decoder.stats = source.stats
            decoders.append(decoder)
        async with asyncio.TaskGroup() as group:
            for source, decoder in zip(sources, decoders, strict=True):
                group.create_task(
                    pump(source, decoder, service.writer, stop), name=f"source {source.state.name}"
                )
            if settings.service.http_port:
                group.create_task(serve_http(service, settings, stop), name="http")
            if service.alerts is not None:
                group.create_task(service.alerts.run(stop), name="alerts")
            if started is not None:
                started(service)
            log.info("aiswatch: running %d sources", len(sources))
        log.info("aiswatch: sources stopped; draining the writer")
    return service
