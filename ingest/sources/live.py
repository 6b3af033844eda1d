"""What every live source shares: its state (for /metrics and /health), the
chunk it yields, reconnect backoff, and stopping at a read boundary.

A live source is an async generator of :class:`Chunk`: raw lines for the
decoder (NMEA, with the receive time), and records for feeds that arrive
decoded (aisstream.io, AIS-catcher's JSON without sentences). It stops when
its ``stop`` event is set, between two reads, so nothing it has read is
dropped on the way out.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ingest.records import Position, StaticReport

T = TypeVar("T")


@dataclass
class Chunk:
    received: float
    lines: list[bytes] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    statics: list[StaticReport] = field(default_factory=list)
    #: Messages of a decoded feed that could not be used: (reason, detail).
    malformed: list[tuple[str, str]] = field(default_factory=list)
    #: How many decoded-feed messages this chunk carries (records and malformed).
    messages: int = 0
    #: Called once what the chunk carried is stored (or spooled): a source that can
    #: acknowledge (MQTT QoS 1) does so then, not on receipt.
    on_stored: Callable[[], None] | None = None


@dataclass
class SourceState:
    """A source's connection state, for logs, /health and /metrics."""

    name: str
    kind: str
    connected: bool = False
    connects: int = 0
    last_message_at: float | None = None
    #: Why it lost its connection (or failed to make one), by reason.
    failures: Counter[str] = field(default_factory=Counter)

    def heard(self, when: float | None = None) -> None:
        self.last_message_at = time.time() if when is None else when


async def pause_before_reconnect(stop: asyncio.Event) -> None:
    """A short random pause (up to half a second) after a session ends, so
    that clients that lost one server do not all come back at once; the
    growing waits of repeated failures are the retry policy's
    (:mod:`ingest.retry`)."""
    await sleep_unless_stopped(random.uniform(0, 0.5), stop)  # noqa: S311 - jitter, not crypto


async def until_stopped(
    awaitable: Awaitable[T], stop: asyncio.Event, *, timeout_s: float | None = None
) -> tuple[bool, T | None]:
    """Await ``awaitable`` unless ``stop`` is set first, or ``timeout_s``
    passes (TimeoutError); then cancel it. Returns (completed, result).

    (Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation.)"""
    task = asyncio.ensure_future(awaitable)
    if stop.is_set():
        task.cancel()
        return False, None
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    if not stop.is_set():
        raise TimeoutError
    return False, None


async def sleep_unless_stopped(delay_s: float, stop: asyncio.Event) -> None:
    await until_stopped(asyncio.sleep(delay_s), stop)
