"""The HTTP query API (FastAPI): the CLI's history questions over HTTP.

Every route of :data:`router` needs a token (``Authorization: Bearer aw_...``,
or the ``aiswatch_token`` cookie the map page sets); ``/health`` does not.
Times in and out are UTC (ISO 8601 with ``Z``; requests also take ``7d`` and
``2024-03``). Lists come a page at a time: ``limit`` items and a
``next_cursor`` to pass back as ``cursor``, stable however the table grows
behind it (keyset: the cursor is the sort key of the last item). A range
longer than ``api.max_range_days`` or a page above ``api.max_page_size`` is a
400 that says so; an unknown vessel is a 404; a bad parameter a 400 or 422
naming it. Tracks stream (a year is never held in memory).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from psycopg_pool import AsyncConnectionPool

from aiswatch.areas import parse_area
from aiswatch.config import Settings
from aiswatch.exports import MEDIA_TYPES, TrackFormat, render, utc
from aiswatch.history import track, track_query, track_title, window
from aiswatch.history_views import (
    last_position_json,
    position_json,
    presence_json,
    vessel_json,
    voyage_json,
)
from aiswatch.http import _Server as QuietServer
from aiswatch.times import HELP as TIME_HELP
from aiswatch.times import parse_time
from aiswatch.views import event_json, port_call_json
from ingest.records import EVENT_KINDS
from storage.database import Database, read_pool, redact
from storage.events import find_events
from storage.tokens import check_token
from storage.vessels import QueryError, VesselNotFound, find_vessel, last_positions, position_at, vessels_in
from storage.voyages import find_voyages

log = logging.getLogger(__name__)

COOKIE = "aiswatch_token"
#: Bytes of a streamed answer gathered before they are sent.
STREAM_CHUNK = 64 * 1024


def _reads(request: Request) -> AsyncConnectionPool:
    """The API's pool: autocommit connections, for questions only."""
    pool: AsyncConnectionPool = request.app.state.reads
    return pool


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def require_token(request: Request) -> str:
    """The token's name, or 401. (A :class:`QueryError` anywhere is a 400,
    an unknown vessel a 404: see :func:`make_api`.)"""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else request.cookies.get(COOKIE, "")
    if token:
        async with _reads(request).connection() as conn:
            name = await check_token(conn, token)
        if name is not None:
            return name
    raise HTTPException(
        401,
        "a valid API token is needed (Authorization: Bearer ...; see `aiswatch api token create`)",
        headers={"WWW-Authenticate": "Bearer"},
    )


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

SinceQ = Annotated[str | None, Query(description=f"From this time. {TIME_HELP}.", max_length=64)]
UntilQ = Annotated[
    str | None, Query(description="Up to this time, not included (default: now).", max_length=64)
]
VesselP = Annotated[
    str, Query(description="Watchlist name, MMSI, IMO or ship name.", min_length=1, max_length=64)
]
LimitQ = Annotated[int, Query(ge=1, description="Items in a page (at most api.max_page_size).")]
CursorQ = Annotated[str | None, Query(description="next_cursor of the previous page.", max_length=512)]


def _range(
    request: Request, since: str | None, until: str | None, default_days: float
) -> tuple[datetime, datetime]:
    """The time range, checked: since before until, at most max_range_days."""
    now = datetime.now(UTC)
    try:
        end = parse_time(until, now, upper=True) if until else now
        start = parse_time(since, now) if since else end - timedelta(days=default_days)
    except (ValueError, OverflowError) as exc:
        raise HTTPException(400, f"since/until: {exc}") from None
    start, end = window(start, end, now)
    limit_days = _settings(request).api.max_range_days
    if start >= end:
        raise HTTPException(400, f"since ({utc(start)}) must be before until ({utc(end)})")
    if end - start > timedelta(days=limit_days):
        raise HTTPException(
            400, f"the range is {(end - start).days} days; at most {limit_days:g} are allowed"
        )
    return start, end


def _limit(request: Request, limit: int) -> int:
    most = _settings(request).api.max_page_size
    if limit > most:
        raise HTTPException(400, f"limit {limit} is above the largest page, {most}")
    return limit


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode(cursor: str | None) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key):
            return [datetime.fromisoformat(key[0]), key[1], key[2]]
    except ValueError:
        pass
    raise HTTPException(400, "cursor: not a cursor this API gave out")


@router.get("/vessels/{vessel}/track", summary="A vessel's track, dark gaps as gaps (streamed)")
async def get_track(
    request: Request,
    vessel: str,
    since: SinceQ = None,
    until: UntilQ = None,
    format: Annotated[
        TrackFormat, Query(description="geojson, jsonl, csv, kml or table.")
    ] = TrackFormat.geojson,
    tolerance_m: Annotated[float | None, Query(ge=0, le=100_000, description="Simplify to metres.")] = None,
    gap_h: Annotated[float, Query(ge=0.01, le=1000, description="Cut at silences this long.")] = 3.0,
) -> StreamingResponse:
    if len(vessel) > 64:
        raise HTTPException(400, "vessel: at most 64 characters")
    start, end = _range(request, since, until, 30)
    reads = _reads(request)
    async with reads.connection() as conn:
        found, query = await track_query(conn, vessel, start, end, tolerance_m=tolerance_m, gap_h=gap_h)

    async def body() -> AsyncIterator[bytes]:
        # the connection is taken here: a response never sent holds none
        async with reads.connection() as conn:
            pieces: list[str] = []
            size = 0
            try:
                async for piece in render(track(conn, query), format, track_title(found, query)):
                    pieces.append(piece)
                    size += len(piece)
                    if size >= STREAM_CHUNK:  # a few large writes, not one per fix
                        yield "".join(pieces).encode()
                        pieces, size = [], 0
                yield "".join(pieces).encode()
            finally:
                await conn.rollback()  # a no-op in autocommit, unless a caller's pool is not

    return StreamingResponse(body(), media_type=MEDIA_TYPES[format])


@router.get("/vessels/{vessel}/voyages", summary="A vessel's voyages port to port, with the dark legs")
async def get_voyages(
    request: Request, vessel: str, since: SinceQ = None, until: UntilQ = None
) -> dict[str, Any]:
    start, end = _range(request, since, until, 365)
    async with _reads(request).connection() as conn:
        found = await find_vessel(conn, vessel[:64])
        voyages = await find_voyages(conn, found.mmsis, start, end)
    return {"times": "UTC", "vessel": vessel_json(found), "since": utc(start), "until": utc(end),
            "voyages": [voyage_json(v) for v in voyages]}  # fmt: skip


@router.get("/vessels/{vessel}/position", summary="Where a vessel was at a given time")
async def get_position(
    request: Request, vessel: str, at: Annotated[str, Query(description=TIME_HELP, max_length=64)]
) -> dict[str, Any]:
    try:
        when = parse_time(at, datetime.now(UTC))
    except (ValueError, OverflowError) as exc:
        raise HTTPException(400, f"at: {exc}") from None
    async with _reads(request).connection() as conn:
        found = await find_vessel(conn, vessel[:64])
        before, after = await position_at(conn, found.mmsis, when)

    return position_json(found, when, before, after)


@router.get("/events", summary="Events by kind, vessel, port and time, a page at a time")
async def get_events(
    request: Request,
    vessel: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[list[str] | None, Query(description=", ".join(EVENT_KINDS))] = None,
    port: Annotated[str | None, Query(max_length=64)] = None,
    since: SinceQ = None,
    until: UntilQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> dict[str, Any]:
    for k in kind or []:
        if k not in EVENT_KINDS:
            raise HTTPException(400, f"kind: {k[:40]!r} is not one of {', '.join(EVENT_KINDS)}")
    return await _events_page(
        request, vessel, kind or [], port, since, until, limit, cursor, port_calls=False
    )


@router.get("/port-calls", summary="Port calls by port, vessel and time, a page at a time")
async def get_port_calls(
    request: Request,
    port: Annotated[str | None, Query(max_length=64)] = None,
    vessel: Annotated[str | None, Query(max_length=64)] = None,
    since: SinceQ = None,
    until: UntilQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> dict[str, Any]:
    return await _events_page(
        request, vessel, ["port_call"], port, since, until, limit, cursor, port_calls=True
    )


async def _events_page(
    request: Request, vessel: str | None, kinds: list[str], port: str | None, since: str | None,
    until: str | None, limit: int, cursor: str | None, *, port_calls: bool,
) -> dict[str, Any]:  # fmt: skip
    start, end = _range(request, since, until, 365)
    after = _decode(cursor)
    size = _limit(request, limit)
    async with _reads(request).connection() as conn:
        rows = await find_events(
            conn, vessel=vessel, kinds=kinds, port=port, since=start, until=end,
            after=None if after is None else (after[0], after[1], after[2]), limit=size + 1,
        )  # fmt: skip
    page = rows[:size]
    items = [port_call_json(e) if port_calls else event_json(e, i, r) for e, i, r in page]
    last = page[-1] if len(rows) > size else None
    next_cursor = None if last is None else _encode([last[0].start.isoformat(), last[0].vessel, last[1]])
    return {
        "times": "UTC",
        "since": utc(start),
        "until": utc(end),
        "items": items,
        "next_cursor": next_cursor,
    }


@router.get("/vessels", summary="Vessels inside an area in a time range, a page at a time")
async def get_vessels_in(
    request: Request,
    area: Annotated[str, Query(alias="in", description="A port (Vostochny, Rajin/berth), w,s,e,n or WKT.",
                               min_length=1, max_length=4000)],
    since: SinceQ = None,
    until: UntilQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> dict[str, Any]:  # fmt: skip
    start, end = _range(request, since, until, 1)
    size = _limit(request, limit)
    try:
        label, polygon = parse_area(area, _settings(request).detectors.zones)
    except QueryError as exc:
        raise HTTPException(400, f"in: {exc}") from None
    after = _decode(cursor)
    async with _reads(request).connection() as conn:
        found = await vessels_in(conn, polygon, start, end)
    try:
        rest = [p for p in found if after is None or (p.first, p.mmsi) > (after[0], int(after[1]))]
    except (ValueError, TypeError):
        raise HTTPException(400, "cursor: not a cursor this API gave out") from None
    page = rest[:size]
    next_cursor = _encode([page[-1].first.isoformat(), str(page[-1].mmsi), ""]) if len(rest) > size else None
    return {"times": "UTC", "area": label, "since": utc(start), "until": utc(end),
            "items": [presence_json(p) for p in page], "next_cursor": next_cursor}  # fmt: skip


@router.get("/watched/last-positions", summary="The last known position of every watched ship")
async def get_last_positions(request: Request) -> dict[str, Any]:
    async with _reads(request).connection() as conn:
        positions = await last_positions(conn)
    return {"times": "UTC", "items": [last_position_json(p) for p in positions]}


def make_api(settings: Settings, reads: AsyncConnectionPool) -> FastAPI:
    """The API app: /health, the routes above, the map page; ``reads`` (see
    :func:`storage.database.read_pool`) answers the questions."""
    from aiswatch.map import mount_map  # noqa: PLC0415 - the map imports this module

    app = FastAPI(
        title="aiswatch",
        summary="Historical AIS: tracks, voyages, port calls, events, vessels in an area. Times are UTC.",
        version="1",
    )
    app.state.reads, app.state.settings = reads, settings

    @app.get("/health", summary="200 when the database answers")
    async def health() -> JSONResponse:
        try:
            async with reads.connection(timeout=5) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, TimeoutError) as exc:
            log.warning("api: health: database: %s", exc)
            return JSONResponse({"status": "degraded", "database": "away"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "up"})

    @app.exception_handler(psycopg.DataError)
    async def bad_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # e.g. a NUL character, which PostgreSQL text cannot hold
        return JSONResponse({"detail": f"a parameter holds a value the database cannot take: {exc}"}, 400)

    @app.exception_handler(QueryError)
    async def bad_question(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 404 if isinstance(exc, VesselNotFound) else 400)

    app.include_router(router)
    mount_map(app)
    return app


async def check_schema(db: Database) -> None:
    """Fail at start, in one line, on a database without the API's tables."""
    async with db.pool.connection() as conn:
        row = await (await conn.execute("SELECT to_regclass('api_tokens') IS NOT NULL")).fetchone()
        await conn.rollback()
    if not (row and row[0]):
        raise QueryError(f"the database at {redact(db.url)} has no API tables: run `aiswatch migrate` first")


async def serve_api(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    """Serve :func:`make_api` on ``api.host``:``api.port`` until ``stop``."""
    await check_schema(db)
    async with read_pool(db.url) as reads:
        config = uvicorn.Config(
            make_api(settings, reads), host=settings.api.host, port=settings.api.port,
            log_level="warning", lifespan="off", access_log=False,
        )  # fmt: skip
        server = QuietServer(config)
        task = asyncio.create_task(server.serve())
        log.warning("api: serving on http://%s:%d (map: /map)", settings.api.host, settings.api.port)
        await asyncio.wait({task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await task
