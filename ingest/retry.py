"""One retry policy per kind of resource, on tenacity (APScheduler's way).

A :class:`RetryPolicy` declares which errors of its resource are transient
and how to wait between attempts: "full jitter" exponential backoff (a random
wait between 0 and ``min(cap_s, base_s * 2**attempt)``), so that many clients
that lost one server do not all come back at once. :meth:`RetryPolicy.call`
runs one operation (open a connection, write a batch) until it succeeds, the
next attempt would start after ``give_up_s``, or the caller's ``stop`` event is set; each
failed attempt is logged with the resource named and handed to ``on_retry``
(for counters). Every call starts counting afresh, so a feed that was
connected for a while reconnects quickly after it drops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_before_delay,
    stop_never,
    wait_random_exponential,
)
from tenacity.stop import stop_base

T = TypeVar("T")
log = logging.getLogger(__name__)


class _StopWhenSet(stop_base):
    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.event.is_set()


@dataclass(frozen=True)
class RetryPolicy:
    """How one kind of resource is retried."""

    #: The errors that mean "try again later"...
    transient: tuple[type[BaseException], ...]
    #: ... except these (subclasses of them that no retry will mend).
    permanent: tuple[type[BaseException], ...] = ()
    base_s: float = 0.5
    cap_s: float = 60.0
    #: Stop retrying after this long (None: never).
    give_up_s: float | None = None

    def giving_up_after(self, give_up_s: float | None) -> RetryPolicy:
        return replace(self, give_up_s=give_up_s)

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        resource: str,
        stop: asyncio.Event | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> T:
        """``await operation()`` until it succeeds. Raises its last error once
        the policy gives up, or once ``stop`` is set (the wait is cut short)."""

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            delay_s = state.next_action.sleep if state.next_action is not None else 0.0
            assert error is not None
            if on_retry is not None:
                on_retry(error, delay_s)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log.warning("%s: %s; retry %d in %.1f s", resource, reason, state.attempt_number, delay_s)

        async def sleep(delay_s: float) -> None:
            if stop is None:
                await asyncio.sleep(delay_s)
                return
            waiter = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({waiter}, timeout=delay_s)
            finally:
                waiter.cancel()

        ends = stop_never if self.give_up_s is None else stop_before_delay(self.give_up_s)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(self.transient) & retry_if_not_exception_type(self.permanent),
            wait=wait_random_exponential(multiplier=self.base_s, max=self.cap_s),
            stop=ends if stop is None else ends | _StopWhenSet(stop),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

        async def run() -> T:  # a coroutine function: tenacity calls plain ones without awaiting
            return await operation()

        result: T = await retrying(run)
        return result


#: Feeds (TCP servers, websockets, brokers): connection-level errors; never give up.
FEED = RetryPolicy(transient=(OSError, TimeoutError), base_s=0.5, cap_s=60.0)
