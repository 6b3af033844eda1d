"""Time partitioning of ``positions``: native partitions, or TimescaleDB
policies.

Native: partitions are made before any row of their time is written (the
writer asks for the days of each batch), and a few days ahead of today so live
data never waits for DDL. Recent days (within ``daily_within_days`` of today)
get a partition each, ``positions_pYYYYMMDD``. Older days, which come from
archives, get one partition for their calendar month (``positions_pYYYYMMDD_
YYYYMMDD``, start and end), narrowed where daily partitions of that month
exist already: a decade of history is about 120 partitions, not 3,650. Each
partition costs the server locks and memory in every transaction that touches
it; eight thousand daily ones in one batch exhausted its lock table ("out of
shared memory"). Partitions are created a few at a time, each group in its own
transaction, under an advisory lock, with the list re-read from the catalogue
first (another instance may have made some). Retention, when configured, drops
whole partitions. TimescaleDB: chunks appear by themselves; this sets the
compression and retention policies.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Final

import psycopg
from psycopg import sql

from storage.migrate import Flavour

log = logging.getLogger(__name__)

_LOCK_ID = 0x616973_0002
#: Partitions created in one transaction (each takes locks until the commit).
CREATE_PER_TRANSACTION: Final = 32

Span = tuple[date, date]  # [first day, day after the last)


def partition_name(day: date, end: date | None = None) -> str:
    """``positions_pYYYYMMDD`` for one day, ``positions_pYYYYMMDD_YYYYMMDD`` for a span."""
    if end is None or end == day + timedelta(days=1):
        return f"positions_p{day:%Y%m%d}"
    return f"positions_p{day:%Y%m%d}_{end:%Y%m%d}"


def span_of(name: str) -> Span | None:
    """The span a partition's name says, or None for a name that is not ours."""
    if not name.startswith("positions_p"):
        return None
    digits = name[len("positions_p") :].split("_")
    try:
        days = [datetime.strptime(d, "%Y%m%d").date() for d in digits if len(d) == 8]
    except ValueError:
        return None
    if len(days) != len(digits) or len(days) not in (1, 2):
        return None
    return days[0], days[1] if len(days) == 2 else days[0] + timedelta(days=1)


def _month(day: date) -> Span:
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


class PartitionManager:
    """Creates partitions on demand and remembers which exist."""

    def __init__(
        self,
        flavour: Flavour,
        *,
        daily_within_days: int = 31,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.flavour = flavour
        self.daily_within_days = daily_within_days
        self._today = today
        self._starts: list[date] = []  # sorted; _ends[i] goes with _starts[i]
        self._ends: list[date] = []
        self._stale = False

    @property
    def spans(self) -> list[Span]:
        return list(zip(self._starts, self._ends, strict=True))

    def forget(self) -> None:
        """What we know may be wrong (a partition dropped behind our back):
        the next :meth:`ensure` reads the catalogue again."""
        self._stale = True

    def covers(self, day: date) -> bool:
        i = bisect.bisect_right(self._starts, day) - 1
        return i >= 0 and day < self._ends[i]

    async def load(self, conn: psycopg.AsyncConnection) -> None:
        if self.flavour != "native":
            return
        rows = await (
            await conn.execute(
                """SELECT c.relname FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                   JOIN pg_class p ON p.oid = i.inhparent
                   WHERE p.relname = 'positions'"""
            )
        ).fetchall()
        spans = sorted(span for (name,) in rows if (span := span_of(name)) is not None)
        self._starts = [start for start, _ in spans]
        self._ends = [end for _, end in spans]

    def _add(self, span: Span) -> None:
        i = bisect.bisect_left(self._starts, span[0])
        self._starts.insert(i, span[0])
        self._ends.insert(i, span[1])

    def _span_for(self, day: date) -> Span:
        """The partition to make for ``day``: the day itself if recent, else
        its month, narrowed to the free time around ``day``."""
        if day >= self._today() - timedelta(days=self.daily_within_days):
            return day, day + timedelta(days=1)
        start, end = _month(day)
        i = bisect.bisect_right(self._starts, day)  # the first span after day
        if i > 0:
            start = max(start, self._ends[i - 1])
        if i < len(self._starts):
            end = min(end, self._starts[i])
        return start, end

    async def ensure(self, conn: psycopg.AsyncConnection, days: set[date]) -> list[Span]:
        """Create partitions for the ``days`` that have none (own transactions)."""
        if self.flavour != "native" or (not self._stale and all(self.covers(day) for day in days)):
            return []
        made: list[Span] = []
        while True:
            self._stale = True  # until this transaction commits, what it made may not exist
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                await self.load(conn)  # another instance may have made some meanwhile
                missing = sorted(day for day in days if not self.covers(day))
                for day in missing[:CREATE_PER_TRANSACTION]:
                    if self.covers(day):  # the span made for an earlier day covers it
                        continue
                    span = self._span_for(day)
                    await conn.execute(
                        sql.SQL("CREATE TABLE {} PARTITION OF positions FOR VALUES FROM ({}) TO ({})").format(
                            sql.Identifier(partition_name(*span)),
                            sql.Literal(datetime(span[0].year, span[0].month, span[0].day, tzinfo=UTC)),
                            sql.Literal(datetime(span[1].year, span[1].month, span[1].day, tzinfo=UTC)),
                        )
                    )
                    self._add(span)
                    made.append(span)
            self._stale = False
            if len(missing) <= CREATE_PER_TRANSACTION:
                break
        if made:
            log.info(
                "database: created %d partition(s) of positions, %s to %s", len(made), made[0][0], made[-1][1]
            )
        return made

    async def maintain(
        self,
        conn: psycopg.AsyncConnection,
        *,
        today: date,
        ahead_days: int,
        retention_days: int | None,
        compress_after_days: int,
    ) -> None:
        """Native: create partitions ahead of ``today``; drop those past retention
        (TimescaleDB's policies are set in storage/timescale.py)."""
        if self.flavour != "native":
            return
        await self.ensure(conn, {today + timedelta(days=i) for i in range(ahead_days + 1)})
        if retention_days is None:
            return
        horizon = today - timedelta(days=retention_days)
        for start, end in self.spans:
            if end > horizon:
                break
            name = partition_name(start, end)
            await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
            i = self._starts.index(start)
            del self._starts[i], self._ends[i]
            log.info("database: dropped partition %s (older than %d days)", name, retention_days)
