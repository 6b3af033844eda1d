"""The ``[alerts]`` configuration: channels, rules, folding, the digest.

Secrets (the SMTP password, apprise URLs, which embed tokens, webhook keys)
are never written here: a setting names the environment variable that holds
them (``password_env``, ``urls_env``, ``secret_env``).
"""

from __future__ import annotations

import os
import re
import string
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ingest.errors import ConfigError
from ingest.records import EVENT_KINDS


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: How rules, logs and metrics name the channel (unique).
    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")


class FileChannel(_Channel):
    """JSON lines appended to a file (the demo; feeding one's own tools)."""

    kind: Literal["file"]
    path: Path


class EmailChannel(_Channel):
    kind: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    #: starttls (port 587), tls (implicit, port 465) or none (a relay on loopback).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    #: The environment variable holding the password.
    password_env: str | None = None
    sender: str
    recipients: list[str] = Field(min_length=1)
    #: A CA bundle to verify the server with (unset: the system's).
    ca_file: Path | None = None
    timeout_s: float = Field(30.0, gt=0)


class WebhookChannel(_Channel):
    """A JSON POST; with ``secret_env``, signed: ``X-Aiswatch-Signature:
    sha256=HMAC(key, timestamp + "." + body)`` beside ``X-Aiswatch-Timestamp``."""

    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = None
    timeout_s: float = Field(10.0, gt=0)


class AppriseChannel(_Channel):
    """Chat through apprise (Slack, Teams, Telegram, Matrix, Discord, ntfy...)."""

    kind: Literal["apprise"]
    #: The environment variable holding the apprise URL(s), space-separated (they embed tokens).
    urls_env: str


Channel = Annotated[FileChannel | EmailChannel | WebhookChannel | AppriseChannel, Field(discriminator="kind")]

MatchLevel = Literal["identified", "probable"]


class Rule(BaseModel):
    """Route events that match every condition given (an empty list matches
    anything) to ``channels``. Every matching rule adds its channels."""

    model_config = ConfigDict(extra="forbid")

    name: str
    channels: list[str] = Field(min_length=1)
    kinds: list[str] = Field(default_factory=list)
    states: list[Literal["open", "closed", "withdrawn"]] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    #: Watchlist entries (their names).
    vessels: list[str] = Field(default_factory=list)
    levels: list[MatchLevel] = Field(default_factory=list)
    #: Only events within this distance of a watched port (where they happened).
    near_port_nm: float | None = Field(None, gt=0)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - set(EVENT_KINDS))
        if unknown:
            raise ValueError(f"unknown event kinds {unknown} (known: {', '.join(EVENT_KINDS)})")
        return kinds


#: The shipped routing: page on an identified ship's call at a watched port
#: and on a dark gap near one; probable (name-only) matches to review; the
#: rest goes to the digest only. They name the channels ``pager`` and
#: ``review``; a missing channel just receives nothing.
DEFAULT_RULES = (
    Rule(
        name="watched-port-call", channels=["pager"], levels=["identified"],
        kinds=["port_call", "zone_entry", "appeared_in_port"],
    ),
    Rule(
        name="dark-near-port", channels=["pager"], levels=["identified"], kinds=["dark_gap"],
        near_port_nm=100,
    ),
    Rule(name="probable-to-review", channels=["review"], levels=["probable"]),
)  # fmt: skip


class DigestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Channels that receive the daily digest (email: HTML with the map; chat: a summary).
    channels: list[str] = Field(default_factory=list)
    #: When it is sent (local time in ``timezone``); it covers the previous day there.
    at: time = time(7, 0)
    timezone: str = "UTC"
    #: A copy of each digest (HTML and PNG) is written here too (unset: none).
    out_dir: Path | None = None
    #: After a downtime, missed days up to this many back are sent on return.
    catch_up_days: int = Field(3, ge=0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name


_TRACK_FIELDS = {"mmsi", "vessel", "imo", "since", "until"}


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Run the dispatcher (and the digest) inside ``aiswatch run``.
    enabled: bool = True
    channels: list[Channel] = Field(default_factory=list)
    #: Unset: :data:`DEFAULT_RULES`.
    rules: list[Rule] | None = None
    #: A group (channel, vessel, kind) waits this long for more before its first message...
    group_wait_s: float = Field(0.0, ge=0)
    #: ...and sends at most one message per this long (the cool-down); what comes meanwhile is folded.
    repeat_interval_s: float = Field(900.0, ge=0)
    #: A delivery still failing this long after it was queued is dead-lettered.
    give_up_h: float = Field(24.0, gt=0)
    #: Deliveries sent or given up, and outbox rows handled, are kept this long
    #: (``aiswatch alerts log`` reads them), then deleted by the sender.
    keep_days: float = Field(90.0, gt=0)
    #: Retries: jittered exponential backoff between these bounds (or the channel's Retry-After).
    retry_initial_s: float = Field(2.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    #: The outbox is read at least this often (besides LISTEN/NOTIFY).
    poll_s: float = Field(2.0, gt=0)
    #: A standby tries to become the sender this often.
    standby_poll_s: float = Field(1.0, gt=0)
    #: Link to a vessel's track: fields {mmsi}, {vessel}, {imo}, {since}, {until} (empty: no link).
    track_url: str = ""
    #: The domain part of the Message-IDs of alert emails.
    message_id_domain: str = Field("aiswatch.invalid", pattern=r"^[\w.-]+$")
    #: Events listed in one folded message before "and N more".
    max_listed: int = Field(10, ge=1)
    digest: DigestSettings = DigestSettings()

    @field_validator("track_url")
    @classmethod
    def _track_fields(cls, url: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
        unknown = names - _TRACK_FIELDS
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)} (known: {', '.join(sorted(_TRACK_FIELDS))})")
        return url

    @model_validator(mode="after")
    def _names(self) -> AlertSettings:
        names = [c.name for c in self.channels]
        if len(names) != len(set(names)):
            raise ValueError(f"channel names must be unique: {', '.join(sorted(names))}")
        for rule in self.rules or []:
            unknown = set(rule.channels) - set(names)
            if unknown:
                raise ValueError(f"rule {rule.name!r} names unknown channels {sorted(unknown)}")
        unknown = set(self.digest.channels) - set(names)
        if unknown:
            raise ValueError(f"digest.channels names unknown channels {sorted(unknown)}")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        return self

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        return DEFAULT_RULES if self.rules is None else tuple(self.rules)


def secret(env: str | None, setting: str) -> str | None:
    """The value of the environment variable ``env`` (None when ``env`` is);
    a missing variable is a :class:`ConfigError` naming the setting."""
    if env is None:
        return None
    value = os.environ.get(env)
    if value is None:
        raise ConfigError(f"setting {setting}: the environment variable {env} is not set", setting=setting)
    return value


def redactor(secrets: list[str]) -> re.Pattern[str] | None:
    """A pattern matching any of ``secrets`` (for :func:`redact`)."""
    kept = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    return re.compile("|".join(re.escape(s) for s in kept)) if kept else None


def redact(text: str, pattern: re.Pattern[str] | None) -> str:
    return text if pattern is None else pattern.sub("***", text)
