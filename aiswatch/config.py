"""Configuration: one TOML file plus ``AISWATCH_*`` environment variables.

Precedence, highest first: keyword arguments (the CLI), environment variables
(nested with ``__``: ``AISWATCH_INGEST__DEDUP_WINDOW_S=10``), the TOML file
(``--config FILE`` or ``AISWATCH_CONFIG``), then the defaults below. Secrets
such as the database URL's password are ``SecretStr`` and never logged.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from alerts.settings import AlertSettings
from detectors.rules import DetectorRules
from ingest.errors import ConfigError


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The same payload heard again within this many seconds is a duplicate (0: off).
    dedup_window_s: float = Field(30.0, ge=0)
    #: A multi-part message not complete within this many seconds is an orphan.
    fragment_timeout_s: float = Field(10.0, gt=0)
    #: Rows per database batch, and the longest a row waits for its batch (a live
    #: feed's rows are then committed within about a second: bench/live).
    batch_rows: int = Field(20_000, ge=1)
    batch_delay_s: float = Field(0.5, gt=0)
    #: Chunks of records waiting for the writer before readers are held back.
    queue_chunks: int = Field(8, ge=1)
    #: Decode in a separate process (1), on a core of its own, or in-process (0).
    decode_workers: int = Field(1, ge=0, le=1)


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Use TimescaleDB when the extension is available (auto), always (on), never (off).
    timescaledb: Literal["auto", "on", "off"] = "auto"
    #: Native partitioning: daily partitions created this many days ahead.
    partitions_ahead_days: int = Field(3, ge=0)
    #: Drop positions older than this many days (None: keep everything).
    retention_days: int | None = Field(None, ge=1)
    #: TimescaleDB: compress chunks older than this many days.
    compress_after_days: int = Field(7, ge=1)
    pool_max_size: int = Field(4, ge=1)
    #: A database that takes no writes for this long stops an ingest with an error.
    write_give_up_s: float = Field(60.0, gt=0)


class DetectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Detect: every instance announces what it stores to the detectors' inbox,
    #: and one instance per database (elected) is the detector leader.
    enabled: bool = True
    #: The watchlist (TOML) and port zones (GeoJSON); unset: the files shipped with aiswatch.
    watchlist: Path | None = None
    zones: Path | None = None
    #: A vessel's records wait until they are this much older than its newest one
    #: (so messages out of order by less change nothing)...
    allowed_lateness_s: float = Field(300.0, ge=0)
    #: ...or, live, until they are this old by the clock (so that what another
    #: instance stored of the same moment is in first; a backfill's records also
    #: wait this long here). Latency against resilience to instances' skew.
    hold_s: float = Field(0.5, ge=0)
    #: A rebuilt track starts this many days before its oldest record to detect
    #: (at start: before its newest record).
    history_days: float = Field(30.0, gt=0)
    #: Zone hysteresis: a ship leaves a zone only this far outside it.
    zone_exit_margin_km: float = Field(1.0, ge=0)
    #: Ignore (and count) positions far inland.
    inland_check: bool = True
    #: Thresholds: see detectors/rules.py.
    rules: DetectorRules = DetectorRules()


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: How the source is named in logs, counters and metrics (unique).
    name: str = Field(min_length=1)


class TcpSource(_Source):
    kind: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)
    #: A feed silent this long is taken for dead and reconnected.
    read_timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)


class UdpSource(_Source):
    kind: Literal["udp"]
    host: str = "0.0.0.0"  # noqa: S104 - a receiver listens where it is told
    port: int = Field(ge=1, le=65535)


class MqttSource(_Source):
    kind: Literal["mqtt"]
    host: str
    port: int = Field(1883, ge=1, le=65535)
    topics: list[str] = Field(default_factory=lambda: ["ais/data"], min_length=1)
    qos: Literal[0, 1] = 1
    #: Fixed, so that the broker keeps the session (and QoS 1 messages) across restarts.
    client_id: str = "aiswatch"
    #: "5": the broker sends up to 65,535 messages ahead of our acknowledgements;
    #: with "3.1.1" it is held to its own in-flight limit (Mosquitto's: 20).
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    #: The name of the environment variable holding the password (never the password).
    password_env: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    #: MQTT 5 shared subscription group: instances with the same group split the feed.
    shared_group: str | None = None
    #: How long the broker keeps our session (and queues for it) while we are away.
    #: Unset: a day, or 0 for a shared member, so that one gone stops holding a share
    #: of the feed (see ingest/sources/mqtt.py).
    session_expiry_s: int | None = Field(None, ge=0)
    #: "auto": the fast receive path if aiomqtt and paho are as it expects, else (with a
    #: warning) the one on their public APIs; "fast" or "public" force one.
    receiver: Literal["auto", "fast", "public"] = "auto"

    @model_validator(mode="after")
    def _shared_needs_v5(self) -> MqttSource:
        if self.shared_group and self.protocol != "5":
            raise ValueError("shared_group needs protocol 5 (MQTT 5 shared subscriptions)")
        return self


class AisstreamSource(_Source):
    kind: Literal["aisstream"]
    url: str = "wss://stream.aisstream.io/v0/stream"
    #: The name of the environment variable holding the API key.
    api_key_env: str = "AISSTREAM_API_KEY"
    #: [[[lat, lon], [lat, lon]], ...]: corners of each box.
    bounding_boxes: list[list[list[float]]] = Field(
        default_factory=lambda: [[[-90.0, -180.0], [90.0, 180.0]]]
    )
    mmsi: list[int] = Field(default_factory=list)
    message_types: list[str] = Field(
        default_factory=lambda: ["PositionReport", "StandardClassBPositionReport", "ShipStaticData"]
    )
    read_timeout_s: float = Field(120.0, gt=0)


class FileSource(_Source):
    kind: Literal["file"]
    path: Path
    #: Keep reading what is appended (a growing log), across rotations.
    follow: bool = True


Source = Annotated[
    TcpSource | UdpSource | MqttSource | AisstreamSource | FileSource, Field(discriminator="kind")
]


class ServiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: /health and /metrics (Prometheus); port 0 turns them off.
    http_host: str = "127.0.0.1"
    http_port: int = Field(9108, ge=0, le=65535)
    #: While the database is away, batches wait on disk up to this size; beyond, they are counted lost.
    spool_max_mb: float = Field(1024.0, gt=0)
    #: How often the oldest spooled batch is tried again.
    spool_retry_s: float = Field(2.0, gt=0)
    #: On SIGTERM, the longest the service drains before it gives up.
    shutdown_timeout_s: float = Field(30.0, gt=0)


class ApiSettings(BaseModel):
    """The HTTP query API and its map page (``aiswatch api``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(9110, ge=1, le=65535)
    #: ``aiswatch run`` serves the API too (on ``host``:``port``), beside ingest.
    serve_with_run: bool = False
    #: The longest time range one request may read (days).
    max_range_days: float = Field(400.0, gt=0)
    #: The most items one page holds (events, port calls, vessels in an area).
    max_page_size: int = Field(1000, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AISWATCH_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    #: PostgreSQL URL; unset means an embedded server in ``data_dir``.
    database_url: SecretStr | None = None
    #: Where aiswatch keeps its own files (embedded database, spool).
    data_dir: Path = Path(platformdirs.user_data_dir("aiswatch"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    log_format: Literal["text", "json"] = "text"
    ingest: IngestSettings = IngestSettings()
    storage: StorageSettings = StorageSettings()
    detectors: DetectorSettings = DetectorSettings()
    service: ServiceSettings = ServiceSettings()
    api: ApiSettings = ApiSettings()
    #: Alerts and the daily digest (alerts/settings.py).
    alerts: AlertSettings = AlertSettings()
    #: The live feeds ``aiswatch run`` reads (TOML: ``[[sources]]`` tables with a ``kind``).
    sources: list[Source] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_source_names(self) -> Settings:
        names = [source.name for source in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(f"source names must be unique: {', '.join(sorted(names))}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file.get() or os.environ.get("AISWATCH_CONFIG")
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if toml_file:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)),)
        return sources


#: The TOML file of the load in progress (``--config``), over ``AISWATCH_CONFIG``.
_config_file: ContextVar[str | None] = ContextVar("aiswatch_config_file", default=None)


def _variable_of(loc: tuple[int | str, ...]) -> str | None:
    """The environment variable that set the setting at ``loc`` (or a table
    above it, as JSON), if one did: environment beats the file."""
    names = [str(part) for part in loc if isinstance(part, str)]
    for depth in range(len(names), 0, -1):
        variable = "AISWATCH_" + "__".join(names[:depth]).upper()
        if variable in os.environ:
            return variable
    return None


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings; raise :class:`ConfigError` naming the bad setting."""
    path = str(config) if config is not None else os.environ.get("AISWATCH_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror or exc}", setting="config") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML: {exc}", setting="config") from exc
    token = _config_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        setting = ".".join(str(part) for part in error["loc"]) or "configuration"
        variable = _variable_of(error["loc"])
        if variable is not None:
            where = f" (environment variable {variable})"
        else:
            where = f" (in {path})" if path else ""
        raise ConfigError(f"setting {setting}{where}: {error['msg']}", setting=setting) from exc
    finally:
        _config_file.reset(token)
