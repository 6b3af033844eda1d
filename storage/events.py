"""Events, their outbox, watchlist matches and detector history: the SQL.

Writing an event is idempotent: an unchanged event writes nothing; a changed
one bumps its revision; each written revision also goes to ``event_outbox``
in the same statement, so the alert dispatcher sees every revision once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from ingest.records import Event, Position, StaticReport
from storage.inbox import STATIC_FIELDS
from storage.writer import POSITION_FIELDS

_UPSERT: Final = """
WITH up AS (
    INSERT INTO events AS e
        (id, kind, state, vessel, mmsi, imo, port, zone_key, start_ts, end_ts, lat, lon, details)
    SELECT id, kind, state, vessel, mmsi, imo, port, zone_key, start_ts, end_ts, lat, lon, details
    FROM events_stage
    ON CONFLICT (id) DO UPDATE SET
        state = EXCLUDED.state, vessel = EXCLUDED.vessel, imo = EXCLUDED.imo, port = EXCLUDED.port,
        end_ts = EXCLUDED.end_ts, lat = EXCLUDED.lat, lon = EXCLUDED.lon, details = EXCLUDED.details,
        revision = e.revision + 1, updated_at = now()
    WHERE (e.state, e.vessel, e.imo, e.port, e.end_ts, e.lat, e.lon, e.details)
          IS DISTINCT FROM
          (EXCLUDED.state, EXCLUDED.vessel, EXCLUDED.imo, EXCLUDED.port, EXCLUDED.end_ts,
           EXCLUDED.lat, EXCLUDED.lon, EXCLUDED.details)
    RETURNING e.*
)
INSERT INTO event_outbox (event_id, revision, kind, state, payload)
SELECT id, revision, kind, state, to_jsonb(up) - 'created_at' - 'updated_at' FROM up
"""
_EVENT_COLUMNS: Final = "kind, mmsi, start_ts, state, end_ts, port, lat, lon, zone_key, vessel, imo, details"


def event_row(event: Event) -> tuple[Any, ...]:
    return (
        event.id, event.kind, event.state, event.vessel, event.mmsi, event.imo, event.port, event.key,
        event.start, event.end, event.lat, event.lon, Jsonb(dict(event.details)),
    )  # fmt: skip


async def write_events(cur: psycopg.AsyncCursor[Any], events: Sequence[Event]) -> None:
    """Upsert ``events`` (one statement, through a COPY-filled stage) and
    queue every revision that changed in the outbox."""
    if not events:
        return
    async with cur.copy("COPY events_stage FROM STDIN") as copy:
        for event in events:
            await copy.write_row(event_row(event))
    await cur.execute(_UPSERT)
    await cur.execute("TRUNCATE events_stage")


def _event(row: Sequence[Any]) -> Event:
    kind, mmsi, start, state, end, port, lat, lon, key, vessel, imo, details = row
    return Event(
        kind=kind, mmsi=mmsi, start=start, state=state, end=end, port=port, lat=lat, lon=lon, key=key,
        vessel=vessel, imo=imo, details=details,
    )  # fmt: skip


async def load_events(conn: psycopg.AsyncConnection[Any]) -> list[Event]:
    cur = await conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events")
    return [_event(row) for row in await cur.fetchall()]


async def find_events(
    conn: psycopg.AsyncConnection[Any],
    *,
    vessel: str | None = None,
    kinds: Iterable[str] = (),
    port: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_withdrawn: bool = False,
    after: tuple[datetime, str, str] | None = None,
    limit: int | None = None,
) -> list[tuple[Event, str, int]]:
    """Events by vessel (watchlist name, MMSI or IMO), kind, port and start
    time, oldest first, each with its id and revision. ``after`` (start,
    vessel, id of the last one seen) and ``limit`` read them a page at a time."""
    where = ["true"]
    args: list[Any] = []
    if vessel:
        where.append("(upper(vessel) = upper(%s) OR mmsi::text = %s OR imo::text = %s)")
        args += [vessel, vessel, vessel]
    kinds = list(kinds)
    if kinds:
        where.append("kind = ANY(%s)")
        args.append(kinds)
    if port:
        where.append("upper(port) = upper(%s)")
        args.append(port)
    if since:
        where.append("coalesce(end_ts, 'infinity') >= %s")
        args.append(since)
    if until:
        where.append("start_ts < %s")
        args.append(until)
    if not include_withdrawn:
        where.append("state <> 'withdrawn'")
    if after is not None:
        where.append("(start_ts, vessel, id) > (%s, %s, %s)")
        args += list(after)
    page = "" if limit is None else f" LIMIT {int(limit)}"
    cur = await conn.execute(
        f"SELECT {_EVENT_COLUMNS}, id, revision FROM events WHERE {' AND '.join(where)}"
        f" ORDER BY start_ts, vessel, id{page}",
        args,
    )
    return [(_event(row[:-2]), row[-2], row[-1]) for row in await cur.fetchall()]


async def write_matches(
    cur: psycopg.AsyncCursor[Any], matches: Iterable[tuple[str, int, str, Sequence[str]]]
) -> None:
    rows = list(matches)
    if rows:
        await cur.executemany(
            """
            INSERT INTO watchlist_matches (entry, mmsi, level, reasons) VALUES (%s, %s, %s, %s)
            ON CONFLICT (entry, mmsi) DO UPDATE SET level = EXCLUDED.level, reasons = EXCLUDED.reasons,
                updated_at = now()
            WHERE (watchlist_matches.level, watchlist_matches.reasons)
                  IS DISTINCT FROM (EXCLUDED.level, EXCLUDED.reasons)
            """,
            [(entry, mmsi, level, list(reasons)) for entry, mmsi, level, reasons in rows],
        )


async def load_matches(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, int, str, list[str], datetime]]:
    cur = await conn.execute(
        "SELECT entry, mmsi, level, reasons, first_at FROM watchlist_matches ORDER BY entry, level, mmsi"
    )
    return [tuple(row) for row in await cur.fetchall()]


async def save_watermark(cur: psycopg.AsyncCursor[Any], watermark: datetime | None) -> None:
    if watermark is not None:
        await cur.execute(
            "INSERT INTO detector_state (name, value) VALUES ('watermark', %s) "
            "ON CONFLICT (name) DO UPDATE SET value = greatest(detector_state.value, EXCLUDED.value)",
            (watermark,),
        )


async def load_watermark(conn: psycopg.AsyncConnection[Any]) -> datetime | None:
    row = await (await conn.execute("SELECT value FROM detector_state WHERE name = 'watermark'")).fetchone()
    return None if row is None else row[0]


async def load_identities(conn: psycopg.AsyncConnection[Any]) -> list[StaticReport]:
    """Each identity every vessel has had, at the first time it had it: what
    the watchlist matching needs at start."""
    cur = await conn.execute(
        f"""SELECT DISTINCT ON (mmsi, imo, shipname, callsign) {STATIC_FIELDS}
            FROM vessel_static ORDER BY mmsi, imo, shipname, callsign, valid_from"""
    )
    return sorted((StaticReport(*row) for row in await cur.fetchall()), key=lambda r: r.ts)


async def load_histories(
    conn: psycopg.AsyncConnection[Any], windows: Mapping[int, datetime | None], history: timedelta
) -> dict[int, tuple[list[Position | StaticReport], datetime | None]]:
    """For each vessel: its stored positions and identity changes from the
    start of its window on, oldest first, and that start again if older
    positions exist (a truncated window, whose first identity is the one in
    effect at its start). A window given as None starts ``history`` before
    the vessel's newest position. Four queries, whatever the number of vessels."""
    mmsis = list(windows)
    starts = dict(windows)
    open_ended = [m for m, since in windows.items() if since is None]
    if open_ended:
        cur = await conn.execute(
            "SELECT m, (SELECT max(ts) FROM positions WHERE mmsi = m) FROM unnest(%s::integer[]) m",
            (open_ended,),
        )
        for mmsi, newest in await cur.fetchall():
            starts[mmsi] = None if newest is None else newest - history
    bounded = {m: since for m, since in starts.items() if since is not None}
    out: dict[int, tuple[list[Position | StaticReport], datetime | None]] = {m: ([], None) for m in mmsis}
    cur = await conn.execute(
        f"SELECT {POSITION_FIELDS}"
        " FROM unnest(%s::integer[], %s::timestamptz[]) w(m, since)"
        " JOIN positions p ON p.mmsi = w.m AND p.ts >= coalesce(w.since, '-infinity')"
        " ORDER BY p.mmsi, p.ts",
        (mmsis, [starts[m] for m in mmsis]),
    )
    for row in await cur.fetchall():
        out[row[1]][0].append(Position(*row))
    truncated: set[int] = set()
    if bounded:
        cur = await conn.execute(
            "SELECT m FROM unnest(%s::integer[], %s::timestamptz[]) w(m, since)"
            " WHERE EXISTS (SELECT 1 FROM positions WHERE mmsi = m AND ts < since)",
            (list(bounded), list(bounded.values())),
        )
        truncated = {m for (m,) in await cur.fetchall()}
    cur = await conn.execute(
        f"SELECT {STATIC_FIELDS} FROM vessel_static WHERE mmsi = ANY(%s) ORDER BY mmsi, valid_from", (mmsis,)
    )
    statics: dict[int, list[StaticReport]] = {}
    for row in await cur.fetchall():
        statics.setdefault(row[1], []).append(StaticReport(*row))
    for mmsi, reports in statics.items():
        kept, since = reports, starts.get(mmsi)
        if since is not None:  # the identity in effect at the window's start is its baseline
            kept = [r for r in reports if r.ts < since][-1:] + [r for r in reports if r.ts >= since]
        out[mmsi][0].extend(kept)
    for mmsi, (records, _) in out.items():
        records.sort(key=lambda r: (r.ts, isinstance(r, Position)))
        out[mmsi] = (records, starts[mmsi] if mmsi in truncated else None)
    return out
