"""The detectors' inbox (migration 0008): how records stored by any ingest
instance reach the one detector leader.

Writers stay stateless: they do not know which vessels are watched. Each
write transaction adds one row listing every vessel it stored new records of,
with the event time of each one's oldest, and the vessels it heard static
reports from (:class:`InboxHook`). The leader reads, in one REPEATABLE READ
snapshot, the rows it can see (so exactly the transactions committed in that
snapshot, in whatever order they committed), keeps the vessels it watches,
reads their records from ``positions`` and ``vessel_static`` in the same
snapshot, and deletes the rows in the transaction that writes its events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

from detectors.periods import SPLIT_GAP
from ingest.batch import PositionBatch
from ingest.records import Position, StaticReport
from storage.database import int_array
from storage.writer import POSITION_FIELDS

CHANNEL: Final = "aiswatch_inbox"
_TS = attrgetter("ts")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
STATIC_FIELDS: Final = (
    "valid_from, mmsi, msg_type, imo, callsign, shipname, ship_type, to_bow, to_stern, to_port, "
    "to_starboard, draught, destination, eta"
)


def oldest(records: Sequence[Position] | Sequence[StaticReport]) -> dict[int, datetime]:
    """Each vessel's oldest event time in ``records`` (newest first in the
    comprehension, so the oldest is written last: no lookup per record)."""
    newest_first: list[Position | StaticReport] = sorted(records, key=_TS, reverse=True)
    return {r.mmsi: r.ts for r in newest_first}


def _spans(times_us: npt.NDArray[np.int64]) -> tuple[list[int], list[int]]:
    """The starts and ends (microseconds) of the spans ``times_us`` cover, as
    :func:`detectors.periods.spans_of` splits them."""
    ordered = np.sort(times_us)
    if not len(ordered):
        return [], []
    cuts = np.flatnonzero(np.diff(ordered) > SPLIT_GAP // _ONE_US)
    starts = np.concatenate([ordered[:1], ordered[cuts + 1]])
    ends = np.concatenate([ordered[cuts], ordered[-1:]])
    return starts.tolist(), ends.tolist()


def _micros(times: Iterable[datetime]) -> Iterator[int]:
    """Event times as microseconds since the epoch (exact, unlike float seconds)."""
    for ts in times:
        yield (ts - _EPOCH) // _ONE_US


class InboxHook:
    """The writer's hook (:class:`storage.writer.BatchHook`) on every ingest
    instance: one inbox row per transaction that stored something.

    When this process is also the detector leader (``keep`` set), the new
    positions of each committed transaction are kept here by inbox row, up to
    ``max_kept`` positions, so that the leader takes them from memory instead
    of reading them back (:meth:`take_kept`); rows of other instances, and
    any not kept, are read from the database."""

    def __init__(self, max_kept: int = 500_000) -> None:
        self.keep = False
        self.max_kept = max_kept
        self._kept: dict[int, PositionBatch] = {}
        self._kept_count = 0
        self._in_transaction: tuple[int, PositionBatch] | None = None
        #: Rows the leader took before their commit was seen here (read back): not to keep.
        self._taken: deque[int] = deque(maxlen=10_000)

    async def in_transaction(
        self, cur: psycopg.AsyncCursor[Any], positions: PositionBatch, statics: list[StaticReport]
    ) -> None:
        self._in_transaction = None
        if not len(positions) and not statics:
            return
        vessels, first_us = positions.oldest_by_vessel()
        static_first = oldest(statics)
        static_us = np.fromiter(_micros(s.ts for s in statics), np.int64, len(statics))
        starts, ends = _spans(np.concatenate([positions.ts_us, static_us]))
        await cur.execute(
            "INSERT INTO detector_inbox (mmsis, first_ts, statics, static_first_ts, span_starts, span_ends)"
            " VALUES (%s::integer[], aiswatch_micros_to_ts(%s::bigint[]), %s::integer[],"
            " aiswatch_micros_to_ts(%s::bigint[]), aiswatch_micros_to_ts(%s::bigint[]),"
            " aiswatch_micros_to_ts(%s::bigint[])) RETURNING seq",
            (
                int_array(vessels.tolist()), int_array(first_us.tolist()), int_array(static_first),
                int_array(_micros(static_first.values())), int_array(starts), int_array(ends),
            ),
        )  # fmt: skip
        row = await cur.fetchone()
        if self.keep and row is not None:
            self._in_transaction = (row[0], positions)

    def after_commit(self) -> None:
        if self._in_transaction is None or not self.keep:
            return
        seq, positions = self._in_transaction
        self._in_transaction = None
        if seq in self._taken:  # the leader's snapshot had it already, and read it back
            return
        self._kept[seq] = positions
        self._kept_count += len(positions)
        while self._kept_count > self.max_kept and self._kept:  # the oldest are read back instead
            self._kept_count -= len(self._kept.pop(next(iter(self._kept))))

    def after_failure(self) -> None:
        self._in_transaction = None

    def take_kept(self, seqs: Iterable[int]) -> tuple[list[int], list[PositionBatch]]:
        """Of inbox rows ``seqs``, those kept here (and forgotten now), with their positions."""
        found, positions = [], []
        for seq in seqs:
            kept = self._kept.pop(seq, None)
            if kept is not None:
                found.append(seq)
                positions.append(kept)
                self._kept_count -= len(kept)
            elif self.keep:
                self._taken.append(seq)
        return found, positions

    def forget(self) -> None:
        """Not the leader (any more): keep nothing."""
        self.keep = False
        self._kept.clear()
        self._kept_count = 0


@dataclass
class InboxBatch:
    """What a snapshot of the inbox holds."""

    seqs: list[int]
    #: Every vessel heard from in static reports -> event time of the oldest.
    statics_from: dict[int, datetime]
    #: The span of event time each transaction stored.
    spans: list[tuple[datetime, datetime]]


async def take(conn: psycopg.AsyncConnection[Any]) -> InboxBatch:
    """Every row the snapshot sees, with the vessels heard from in static
    reports (any one may become watched) and the data's clock."""
    cur = await conn.execute("SELECT seq, span_starts, span_ends FROM detector_inbox ORDER BY seq")
    rows = await cur.fetchall()
    if not rows:
        return InboxBatch([], {}, [])
    seqs = [seq for seq, _, _ in rows]
    spans = [span for _, starts, ends in rows for span in zip(starts, ends, strict=True)]
    cur = await conn.execute(
        "SELECT u.m, min(u.t) FROM detector_inbox i, unnest(i.statics, i.static_first_ts) u(m, t)"
        " WHERE i.seq = ANY(%s) GROUP BY u.m",
        (seqs,),
    )
    return InboxBatch(seqs, dict(await cur.fetchall()), spans)


async def positions_from(
    conn: psycopg.AsyncConnection[Any], seqs: Sequence[int], watched: Sequence[int]
) -> dict[int, datetime]:
    """Each ``watched`` vessel with new positions in rows ``seqs``, with the
    event time of its oldest."""
    if not seqs or not watched:
        return {}
    cur = await conn.execute(
        "SELECT u.m, min(u.t) FROM detector_inbox i, unnest(i.mmsis, i.first_ts) u(m, t)"
        " WHERE i.seq = ANY(%s) AND u.m = ANY(%s) GROUP BY u.m",
        (list(seqs), list(watched)),
    )
    return dict(await cur.fetchall())


async def read_positions(conn: psycopg.AsyncConnection[Any], after: Mapping[int, datetime]) -> list[Position]:
    """Each vessel's positions newer than its time in ``after``. (One scan
    from the oldest bound, partitions pruned by it, the rest filtered here:
    a join on the bounds makes PostgreSQL walk every partition's index.)"""
    if not after:
        return []
    cur = await conn.execute(
        f"SELECT {POSITION_FIELDS} FROM positions WHERE mmsi = ANY(%s) AND ts > %s ORDER BY mmsi, ts",
        (list(after), min(after.values())),
    )
    positions = [Position(*row) for row in await cur.fetchall()]
    return [p for p in positions if p.ts > after[p.mmsi]]


async def read_statics(
    conn: psycopg.AsyncConnection[Any], since: Mapping[int, datetime]
) -> list[StaticReport]:
    """Each vessel's identity changes from its time in ``since`` on."""
    if not since:
        return []
    cur = await conn.execute(
        f"SELECT {STATIC_FIELDS} FROM unnest(%s::integer[], aiswatch_micros_to_ts(%s::bigint[])) f(m, t)"
        " JOIN vessel_static ON mmsi = f.m AND valid_from >= f.t ORDER BY mmsi, valid_from",
        (int_array(since), int_array(_micros(since.values()))),  # literals: see _array
    )
    return [StaticReport(*row) for row in await cur.fetchall()]


async def consume(conn: psycopg.AsyncConnection[Any], seqs: Sequence[int]) -> None:
    if seqs:
        await conn.execute("DELETE FROM detector_inbox WHERE seq = ANY(%s)", (list(seqs),))


async def load_periods(conn: psycopg.AsyncConnection[Any]) -> list[tuple[datetime, datetime]]:
    cur = await conn.execute("SELECT start_ts, end_ts FROM detector_periods ORDER BY start_ts")
    return [(start, end) for start, end in await cur.fetchall()]


async def save_periods(
    conn: psycopg.AsyncConnection[Any], spans: Sequence[tuple[datetime, datetime]]
) -> None:
    await conn.execute("DELETE FROM detector_periods")
    if spans:
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO detector_periods VALUES (%s, %s)", list(spans))


async def load_stale(conn: psycopg.AsyncConnection[Any]) -> dict[int, datetime]:
    cur = await conn.execute("SELECT mmsi, since FROM detector_stale")
    return dict(await cur.fetchall())


async def save_stale(conn: psycopg.AsyncConnection[Any], stale: Mapping[int, datetime]) -> None:
    await conn.execute("DELETE FROM detector_stale")
    if stale:
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO detector_stale VALUES (%s, %s)", list(stale.items()))
