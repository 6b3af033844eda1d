"""Where alerts go: email (SMTP), chat (apprise), a signed JSON webhook, a
JSON-lines file. Each channel sends one :class:`~alerts.message.Message` and
returns the id the far side gave it; a failure worth retrying raises
:class:`~alerts.errors.ChannelError`, a refusal
:class:`~alerts.errors.ChannelRefused`. Retrying is not theirs to do: one
policy in :mod:`alerts.delivery` retries them all.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from alerts.message import Message
from alerts.settings import AppriseChannel, Channel, EmailChannel, FileChannel, WebhookChannel, secret


def url_secrets(url: str) -> list[str]:
    """An apprise URL and the parts of it that may be tokens (user,
    password, path segments, query values)."""
    parts = urlsplit(url)
    out = [url, parts.password or "", parts.username or ""]
    out += [segment for segment in parts.path.split("/") if len(segment) >= 6]
    out += [value for _, value in parse_qsl(parts.query) if len(value) >= 6]
    if parts.hostname and parts.scheme not in {"json", "jsons", "xml", "xmls", "form", "forms"}:
        out.append(parts.hostname)  # some schemes carry a token where the host goes
    return [s for s in out if s]


class Sender(Protocol):
    name: str

    async def send(self, message: Message) -> str | None: ...


def secrets_of(config: Channel) -> list[str]:
    """The secrets a channel's configuration names (read from the
    environment now), to be redacted from every log line and stored error;
    known before the channel is opened, since opening may log."""
    where = f"alerts.channels.{config.name}"
    match config:
        case EmailChannel():
            return [s for s in [secret(config.password_env, f"{where}.password_env")] if s]
        case WebhookChannel():
            return [s for s in [secret(config.secret_env, f"{where}.secret_env")] if s]
        case AppriseChannel():
            return [s for url in shlex.split(os.environ.get(config.urls_env, "")) for s in url_secrets(url)]
    return []


@asynccontextmanager
async def open_channels(configs: Sequence[Channel]) -> AsyncIterator[dict[str, Sender]]:
    """The configured channels, by name, open for the block (secrets read now:
    a missing one is a ConfigError naming its setting). A channel's client
    library is imported only when such a channel is configured: httpx and
    apprise alone would add a second to every start."""
    from alerts.channels.chat import ChatChannel  # noqa: PLC0415
    from alerts.channels.email import SmtpChannel  # noqa: PLC0415
    from alerts.channels.jsonl import JsonLinesChannel  # noqa: PLC0415
    from alerts.channels.webhook import HttpWebhook  # noqa: PLC0415

    async with AsyncExitStack() as stack:
        out: dict[str, Sender] = {}
        for config in configs:
            match config:
                case FileChannel():
                    out[config.name] = JsonLinesChannel(config)
                case EmailChannel():
                    out[config.name] = SmtpChannel(config)
                case WebhookChannel():
                    out[config.name] = await stack.enter_async_context(HttpWebhook(config))
                case AppriseChannel():
                    out[config.name] = ChatChannel(config)
        yield out
