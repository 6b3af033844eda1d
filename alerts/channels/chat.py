"""Chat through apprise URLs (Slack, Microsoft Teams, Telegram, Matrix,
Discord, ntfy, JSON and the rest apprise speaks). One ``Apprise`` object per
channel, so each delivery's outcome is this channel's alone. apprise's own
retries are off (its default); :mod:`alerts.delivery` retries. apprise does
not report a ``Retry-After``, so chat retries follow the backoff alone."""

from __future__ import annotations

import shlex

import apprise

from alerts.errors import ChannelError
from alerts.message import Message
from alerts.settings import AppriseChannel, secret
from ingest.errors import ConfigError


class ChatChannel:
    def __init__(self, config: AppriseChannel) -> None:
        self.name = config.name
        setting = f"alerts.channels.{config.name}.urls_env"
        urls = shlex.split(secret(config.urls_env, setting) or "")
        if not urls:
            raise ConfigError(f"setting {setting}: {config.urls_env} holds no apprise URL", setting=setting)
        self.apprise = apprise.Apprise()
        for number, url in enumerate(urls, 1):
            if not self.apprise.add(url):
                raise ConfigError(
                    f"setting {setting}: URL {number} in {config.urls_env} is not one apprise knows",
                    setting=setting,
                )

    async def send(self, message: Message) -> str | None:
        result = await self.apprise.async_notify(body=message.chat, title=message.subject)
        if not result:
            raise ChannelError(
                f"apprise: not delivered ({getattr(result, 'status', result)!s})", channel=self.name
            )
        return f"apprise: {len(self.apprise)} service(s)"
