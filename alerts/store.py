"""The alerts' SQL: the outbox read, plans and deliveries written, digests
recorded (tables in storage/migrations/0005_alerts.sql)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.folding import Announced, GroupKey
from alerts.message import Message
from alerts.routing import Notice, event_of

#: The channel the dispatcher LISTENs on (the 0005 trigger NOTIFYs it).
OUTBOX_CHANNEL = "aiswatch_outbox"

Conn = psycopg.AsyncConnection[Any]


async def load_pending(conn: Conn, limit: int) -> list[Notice]:
    """Outbox rows not yet handled, oldest first."""
    cur = await conn.execute(
        "SELECT seq, event_id, revision, payload, created_at FROM event_outbox"
        " WHERE delivered_at IS NULL AND (alert_due_at IS NULL OR alert_due_at <= now())"
        " ORDER BY seq LIMIT %s",
        (limit,),
    )
    return [
        Notice(seq, eid, rev, event_of(payload), at) for seq, eid, rev, payload, at in await cur.fetchall()
    ]


async def load_announced(conn: Conn, event_ids: Sequence[str]) -> dict[tuple[str, str], Announced]:
    cur = await conn.execute(
        "SELECT a.channel, a.event_id, a.first_delivery, d.subject, a.last_revision"
        " FROM alert_events a JOIN alert_deliveries d ON d.id = a.first_delivery"
        " WHERE a.event_id = ANY(%s)",
        (list(event_ids),),
    )
    return {
        (ch, eid): Announced(first, subject, rev) for ch, eid, first, subject, rev in await cur.fetchall()
    }


async def load_last_sent(conn: Conn, keys: Iterable[GroupKey]) -> dict[GroupKey, datetime]:
    keys = list(keys)
    if not keys:
        return {}
    cur = await conn.execute(
        "SELECT channel, vessel, kind, max(created_at) FROM alert_deliveries"
        " WHERE (channel, vessel, kind) IN (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))"
        " GROUP BY channel, vessel, kind",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
    )
    return {(ch, v, k): at for ch, v, k, at in await cur.fetchall()}


async def load_match_levels(conn: Conn) -> dict[tuple[str, int], tuple[str, list[str]]]:
    cur = await conn.execute("SELECT entry, mmsi, level, reasons FROM watchlist_matches")
    return {(entry, mmsi): (level, reasons) for entry, mmsi, level, reasons in await cur.fetchall()}


@dataclass(frozen=True)
class NewDelivery:
    id: str
    channel: str
    kind: str
    vessel: str
    message: Message
    thread: str | None = None
    folded: int = 1
    #: (event id, revision) announced by it.
    events: tuple[tuple[str, int], ...] = ()


_INSERT_DELIVERY = """
INSERT INTO alert_deliveries (id, channel, kind, vessel, subject, thread, folded, message)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING
"""


async def save_plan(
    cur: psycopg.AsyncCursor[Any],
    deliveries: Sequence[NewDelivery],
    consumed: Sequence[int],
    deferred: Mapping[int, datetime] | None = None,
) -> None:
    """Queue ``deliveries``, note what they announce, and mark ``consumed``
    outbox rows handled: in the caller's transaction, so all or nothing."""
    if deliveries:
        await cur.executemany(
            _INSERT_DELIVERY,
            [(d.id, d.channel, d.kind, d.vessel, d.message.subject, d.thread, d.folded,
              Jsonb(d.message.to_json())) for d in deliveries],
        )  # fmt: skip
        await cur.executemany(
            """INSERT INTO alert_events (channel, event_id, first_delivery, last_revision)
               VALUES (%s, %s, %s, %s) ON CONFLICT (channel, event_id) DO UPDATE
               SET last_revision = greatest(alert_events.last_revision, EXCLUDED.last_revision)""",
            [(d.channel, eid, d.id, rev) for d in deliveries for eid, rev in d.events],
        )
    if consumed:
        await cur.execute(
            "UPDATE event_outbox SET delivered_at = now() WHERE seq = ANY(%s) AND delivered_at IS NULL",
            (list(consumed),),
        )
    if deferred:
        await cur.execute(
            "UPDATE event_outbox o SET alert_due_at = d.due FROM unnest(%s::bigint[], %s::timestamptz[])"
            " AS d(seq, due) WHERE o.seq = d.seq",
            (list(deferred), list(deferred.values())),
        )


async def queue(cur: psycopg.AsyncCursor[Any], deliveries: Sequence[NewDelivery]) -> None:
    await save_plan(cur, deliveries, ())


@dataclass(frozen=True)
class Delivery:
    id: str
    channel: str
    kind: str
    subject: str
    message: Message
    created_at: datetime
    attempts: int


async def next_delivery(conn: Conn, channel: str) -> Delivery | None:
    """The oldest delivery waiting on ``channel`` (claimed or not: only the
    leader sends, and one it claimed but never recorded is tried again)."""
    cur = await conn.execute(
        "SELECT id, channel, kind, subject, message, created_at, attempts FROM alert_deliveries"
        " WHERE channel = %s AND sent_at IS NULL AND failed_at IS NULL ORDER BY created_at, id LIMIT 1",
        (channel,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Delivery(row[0], row[1], row[2], row[3], Message.from_json(row[4]), row[5], row[6])


async def record_attempt(conn: Conn, delivery_id: str) -> None:
    await conn.execute(
        "UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt_at = now() WHERE id = %s",
        (delivery_id,),
    )


async def record_sent(conn: Conn, delivery_id: str, channel_message_id: str | None) -> None:
    await conn.execute(
        "UPDATE alert_deliveries SET sent_at = now(), channel_message_id = %s WHERE id = %s",
        (channel_message_id, delivery_id),
    )


async def record_error(conn: Conn, delivery_id: str, error: str, *, give_up: bool) -> None:
    await conn.execute(
        "UPDATE alert_deliveries SET last_error = %s,"
        " failed_at = CASE WHEN %s THEN now() ELSE failed_at END WHERE id = %s",
        (error[:2000], give_up, delivery_id),
    )


@dataclass
class ChannelCounts:
    sent: int = 0
    failed: int = 0
    pending: int = 0
    #: When the oldest undelivered delivery was queued (None: none waits).
    oldest_pending: datetime | None = None


async def delivery_counts(conn: Conn) -> dict[str, ChannelCounts]:
    cur = await conn.execute(
        "SELECT channel, count(sent_at), count(failed_at),"
        " count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL),"
        " min(created_at) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL)"
        " FROM alert_deliveries GROUP BY channel"
    )
    return {ch: ChannelCounts(s, f, p, o) for ch, s, f, p, o in await cur.fetchall()}


async def oldest_unhandled(conn: Conn) -> datetime | None:
    """When the oldest outbox row not yet folded into alerts was written."""
    row = await (
        await conn.execute("SELECT min(created_at) FROM event_outbox WHERE delivered_at IS NULL")
    ).fetchone()
    return None if row is None else row[0]


_LIST = (
    "SELECT created_at, channel, kind, subject, attempts, sent_at, failed_at, last_error, channel_message_id"
    " FROM alert_deliveries"
)


async def recent(conn: Conn, *, limit: int, failed_only: bool) -> list[tuple[Any, ...]]:
    where = " WHERE failed_at IS NOT NULL" if failed_only else ""
    cur = await conn.execute(f"{_LIST}{where} ORDER BY created_at DESC, id LIMIT %s", (limit,))
    return list(await cur.fetchall())


async def waiting(conn: Conn) -> tuple[list[tuple[Any, ...]], int]:
    """Deliveries not yet sent nor given up, and the outbox rows not yet folded."""
    cur = await conn.execute(f"{_LIST} WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY created_at, id")
    rows = list(await cur.fetchall())
    row = await (
        await conn.execute("SELECT count(*) FROM event_outbox WHERE delivered_at IS NULL")
    ).fetchone()
    return rows, 0 if row is None else row[0]


async def digest_days(conn: Conn, since: date) -> set[date]:
    cur = await conn.execute("SELECT day FROM digest_runs WHERE day >= %s", (since,))
    return {day for (day,) in await cur.fetchall()}


async def record_digest(
    cur: psycopg.AsyncCursor[Any], day: date, channels: Sequence[str], summary: str
) -> bool:
    """Record ``day``'s digest; False when it was recorded before (never twice)."""
    await cur.execute(
        "INSERT INTO digest_runs (day, channels, summary) VALUES (%s, %s, %s)"
        " ON CONFLICT (day) DO NOTHING RETURNING day",
        (day, list(channels), summary),
    )
    return await cur.fetchone() is not None


async def sent_since(conn: Conn, since: datetime) -> list[tuple[str, str, str]]:
    """(channel, subject, text) of what was sent since ``since``, in queue order."""
    cur = await conn.execute(
        "SELECT channel, subject, message->>'text' FROM alert_deliveries"
        " WHERE sent_at >= %s ORDER BY created_at, channel, id",
        (since,),
    )
    return list(await cur.fetchall())


async def settled(conn: Conn) -> bool:
    """Is the outbox folded and every delivery sent or given up?"""
    row = await (
        await conn.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM event_outbox WHERE delivered_at IS NULL)"
            " AND NOT EXISTS (SELECT 1 FROM alert_deliveries WHERE sent_at IS NULL AND failed_at IS NULL)"
        )
    ).fetchone()
    return bool(row and row[0])


async def prune(conn: psycopg.AsyncConnection[Any], keep_days: float) -> tuple[int, int]:
    """Delete deliveries sent or given up more than ``keep_days`` ago (but not
    the first alert of a thread that has a newer one) and outbox rows handled
    as long ago; return how many of each."""
    args = {"cutoff": datetime.now(UTC) - timedelta(days=keep_days)}
    async with conn.transaction():
        await conn.execute(
            """DELETE FROM alert_events a USING alert_deliveries d
               WHERE a.first_delivery = d.id AND coalesce(d.sent_at, d.failed_at) < %(cutoff)s
                 AND NOT EXISTS (SELECT 1 FROM alert_deliveries r WHERE r.thread = d.id
                                 AND coalesce(r.sent_at, r.failed_at, now()) >= %(cutoff)s)""",
            args,
        )
        deliveries = await conn.execute(
            """DELETE FROM alert_deliveries d WHERE coalesce(sent_at, failed_at) < %(cutoff)s
                 AND NOT EXISTS (SELECT 1 FROM alert_events a WHERE a.first_delivery = d.id)""",
            args,
        )
        outbox = await conn.execute("DELETE FROM event_outbox WHERE delivered_at < %(cutoff)s", args)
    return deliveries.rowcount, outbox.rowcount
