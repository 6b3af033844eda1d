"""A generic JSON webhook, signed so the receiver can check it and refuse
replays: ``X-Aiswatch-Timestamp: <unix seconds>`` and
``X-Aiswatch-Signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>``.
A 429 or 5xx is retried (after its ``Retry-After``), another 4xx is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx

from alerts.errors import ChannelError, ChannelRefused
from alerts.message import Message
from alerts.settings import WebhookChannel, secret

TIMESTAMP_HEADER = "X-Aiswatch-Timestamp"
SIGNATURE_HEADER = "X-Aiswatch-Signature"


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def check_response(response: httpx.Response, channel: str, where: str) -> str:
    """The response's id (``X-Request-Id`` or the status); raise unless 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return response.headers.get("x-request-id") or f"HTTP {status}"
    reason = f"{where}: HTTP {status} {response.reason_phrase}"
    if status in (408, 425, 429) or status >= 500:
        raise ChannelError(
            reason, channel=channel, retry_after_s=retry_after_s(response.headers.get("retry-after"))
        )
    raise ChannelRefused(reason, channel=channel)


class HttpWebhook:
    def __init__(self, config: WebhookChannel) -> None:
        self.name = config.name
        self.url = config.url
        key = secret(config.secret_env, f"alerts.channels.{config.name}.secret_env")
        self.key = None if key is None else key.encode()
        self.client = httpx.AsyncClient(timeout=config.timeout_s)

    async def __aenter__(self) -> HttpWebhook:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.client.aclose()

    async def send(self, message: Message) -> str | None:
        body = json.dumps(
            {"subject": message.subject, "text": message.text, "message_id": message.message_id,
             "in_reply_to": message.in_reply_to, **message.data},
            ensure_ascii=False,
        ).encode()  # fmt: skip
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", TIMESTAMP_HEADER: timestamp}
        if self.key is not None:
            headers[SIGNATURE_HEADER] = signature(self.key, timestamp, body)
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"{self.url}: {type(exc).__name__}: {exc}", channel=self.name) from exc
        return check_response(response, self.name, self.url)
