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

from alerts.channels.chat import ChatChannel, url_secrets
from alerts.channels.email import SmtpChannel
from alerts.channels.jsonl import JsonLinesChannel
from alerts.channels.webhook import HttpWebhook
from alerts.message import Message
from alerts.settings import AppriseChannel, Channel, EmailChannel, FileChannel, WebhookChannel, secret


class Sender(Protocol):
    name: str

    async def send(self, message: Message) -> str | None: ...


def secrets_of(config: Channel) -> list[str]:
    """The secrets a channel's configuration names (read from the
    environment now), to be redacted from every log line and stored error;
    known before the channel is opened, since opening may log."""
    match config:
        case EmailChannel():
            return [s for s in [secret(config.password_env, "password_env")] if s]
        case WebhookChannel():
            return [s for s in [secret(config.secret_env, "secret_env")] if s]
        case AppriseChannel():
            return [s for url in shlex.split(os.environ.get(config.urls_env, "")) for s in url_secrets(url)]
    return []


@asynccontextmanager
async def open_channels(configs: Sequence[Channel]) -> AsyncIterator[dict[str, Sender]]:
    """The configured channels, by name, open for the block (secrets read now:
    a missing one is a ConfigError naming its setting)."""
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
