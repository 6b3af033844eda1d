"""Sending what was queued, at least once, with one retry policy for every
channel (tenacity): jittered exponential backoff, or the channel's
``Retry-After``; a refusal, or a failure lasting past ``give_up_h`` from when
the delivery was queued, dead-letters it (logged as an error, kept in the
table, counted in /metrics, listed by ``aiswatch alerts log --failed``).

Each attempt is recorded before it is made (``attempts``) and its success
after (``sent_at``): a process killed in between sends that message once more
on the next start, never loses it, and never sends a recorded one again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay
from tenacity.wait import wait_base, wait_exponential_jitter

from alerts import store
from alerts.channels import Sender
from alerts.errors import ChannelError, ChannelRefused
from alerts.settings import redact

log = logging.getLogger(__name__)


class ChannelWait(wait_base):
    """The channel's ``Retry-After`` when it gave one, else jittered exponential backoff."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = None if outcome is None else outcome.exception()
        if isinstance(exc, ChannelError) and exc.retry_after_s is not None:
            return exc.retry_after_s
        return float(self.backoff(retry_state))


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ChannelError) and not isinstance(exc, ChannelRefused)


def retry_policy(*, remaining_s: float, initial_s: float, max_s: float) -> AsyncRetrying:
    """The one retry policy: transient channel errors, until ``remaining_s``."""
    return AsyncRetrying(
        retry=retry_if_exception(_transient),
        wait=ChannelWait(initial_s, max_s),
        stop=stop_before_delay(max(0.0, remaining_s)),
        reraise=True,
    )


class RedactingFilter(logging.Filter):
    """Masks secrets in every log record that passes a handler."""

    def __init__(self, pattern: re.Pattern[str] | None) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is not None:
            message = record.getMessage()
            masked = redact(message, self.pattern)
            if masked != message:
                record.msg, record.args = masked, ()
        return True


class ChannelWorker:
    """Sends one channel's deliveries, oldest first, one at a time."""

    def __init__(
        self,
        sender: Sender,
        pool: Callable[[], AsyncConnectionPool],
        *,
        give_up_h: float,
        retry_initial_s: float,
        retry_max_s: float,
        poll_s: float,
        secrets: re.Pattern[str] | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sender = sender
        self._pool = pool
        self.give_up = timedelta(hours=give_up_h)
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.poll_s = poll_s
        self.secrets = secrets
        self.clock = clock
        self.wake = asyncio.Event()
        self.sent = 0
        self.dead_lettered = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` (checked on every turn, besides cancellation, which
        the pool's connection wait can swallow)."""
        name = self.sender.name
        while not stop.is_set():
            async with self._pool().connection() as conn:
                delivery = await store.next_delivery(conn, name)
            if delivery is None:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_s)
                continue
            await self.deliver(delivery)

    async def deliver(self, delivery: store.Delivery) -> bool:
        """Send with retries; True when sent, False when dead-lettered."""
        name = self.sender.name
        remaining_s = (delivery.created_at + self.give_up - self.clock()).total_seconds()
        try:
            async for attempt in retry_policy(
                remaining_s=remaining_s, initial_s=self.retry_initial_s, max_s=self.retry_max_s
            ):
                with attempt:
                    await self._attempt(delivery)
        except ChannelError as exc:
            error = redact(str(exc), self.secrets)
            async with self._pool().connection() as conn:
                await store.record_error(conn, delivery.id, error, give_up=True)
            self.dead_lettered += 1
            why = "refused" if isinstance(exc, ChannelRefused) else f"still failing after {self.give_up}"
            log.error("alerts %s: gave up on %s (%s), dead-lettered: %s", name, delivery.id, why, error)
            return False
        self.sent += 1
        return True

    async def _attempt(self, delivery: store.Delivery) -> None:
        name = self.sender.name
        async with self._pool().connection() as conn:
            await store.record_attempt(conn, delivery.id)
        try:
            channel_id = await self.sender.send(delivery.message)
        except ChannelError as exc:
            error = redact(str(exc), self.secrets)
            log.warning("alerts %s: %s not delivered: %s", name, delivery.id, error)
            async with self._pool().connection() as conn:
                await store.record_error(conn, delivery.id, error, give_up=False)
            raise
        async with self._pool().connection() as conn:
            await store.record_sent(conn, delivery.id, channel_id)
        log.info("alerts %s: sent %s (%s)", name, delivery.id, redact(delivery.subject, self.secrets))
