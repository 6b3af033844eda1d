"""One leader per database and role, elected with a PostgreSQL advisory lock.

Every instance runs :func:`stand_by`; the one whose connection takes the
session-level lock leads, on that connection, until it loses it. PostgreSQL
releases the lock when the session ends: at once when the leader's process
dies (kill -9 closes its socket), and within the keep-alive probes when its
host or network goes (the session asks the server for short TCP keep-alives).
A standby tries again every ``poll_s`` and so takes over within seconds.

Work that must not be done twice runs on the lock's own connection: a leader
that lost that connection has lost both the lock and the means to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

Lead = Callable[[psycopg.AsyncConnection[Any], asyncio.Event], Awaitable[None]]

#: Server-side keep-alives, so that a leader gone with its host frees the lock soon.
_KEEPALIVES = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"


async def try_lock(conn: psycopg.AsyncConnection[Any], key: int) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))).fetchone()
    return bool(row and row[0])


def reason_of(exc: BaseException) -> str:
    """One line for a log: the innermost first error's last line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


async def connect(url: str, application_name: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        connect_timeout=10,
        application_name=application_name,
        options=_KEEPALIVES,
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=3,
    )


async def stand_by(
    url: str,
    *,
    key: int,
    role: str,
    application_name: str,
    lead: Lead,
    stop: asyncio.Event,
    poll_s: float,
    on_change: Callable[[bool], None] = lambda leading: None,
) -> None:
    """Try for the lock; ``lead`` while holding it; until ``stop``. Whatever
    fails while leading (the database away, a bug) is logged and the instance
    stands by again: leadership never stops the service. (Each loop also
    checks ``stop`` itself: psycopg's connect can swallow a cancellation.)"""
    failures = 0
    announced = False
    while not stop.is_set():
        delay = poll_s
        try:
            conn = await connect(url, application_name)
            failures = 0
            async with conn:
                while not stop.is_set() and not await try_lock(conn, key):
                    if not announced:
                        log.info("%s: another instance leads; standing by", role)
                        announced = True
                    await asyncio.sleep(delay)
                if not stop.is_set():
                    on_change(True)
                    log.info("%s: this instance leads", role)
                    await lead(conn, stop)
        except Exception as exc:  # see the docstring
            failures += 1
            delay = min(30.0, delay * 2**failures)
            log.warning("%s: not leading for now (%s); trying again in %.0f s", role, reason_of(exc), delay)
            log.debug("%s: details", role, exc_info=exc)
        finally:
            on_change(False)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
