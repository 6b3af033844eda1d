"""CLI commands for history: ``import`` (CSV archives), ``track``, ``voyages``,
``vessels`` and ``api``. Registered on the main app by :func:`register`.

Read commands open the database with ``migrate=False`` and change nothing
(no migration, no partition maintenance); when they find nothing they say
which database they read. Every time printed is UTC and says so.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import psycopg
import typer

from aiswatch import cli
from aiswatch.api import serve_api
from aiswatch.archive import import_paths
from aiswatch.areas import parse_area
from aiswatch.config import Settings
from aiswatch.exports import TrackFormat, render
from aiswatch.history import counted, track, track_query, track_title, window
from aiswatch.history_views import (
    last_position_json,
    last_positions_table,
    position_json,
    position_text,
    presence_json,
    presences_table,
    voyage_json,
    voyages_table,
)
from aiswatch.service import open_database
from aiswatch.static_map import write_static_map
from aiswatch.views import jsonl
from ingest.csvfeeds import CsvFormat
from ingest.errors import AiswatchError
from ingest.pipeline import IngestStats
from storage.database import Database, redact
from storage.tokens import TokenInfo, create_token, list_tokens, revoke_token
from storage.vessels import find_vessel, last_positions, position_at, vessels_in
from storage.voyages import find_voyages

T = TypeVar("T")
R = TypeVar("R")


def import_archives(
    paths: Annotated[list[str], typer.Argument(help="CSV archives: plain, gzip or zip (or - for stdin).")],
    fmt: Annotated[
        CsvFormat | None,
        typer.Option("--format", "-f", help="The archive's layout (default: told from its header)."),
    ] = None,
    config: cli.ConfigOption = None,
) -> None:
    """Import AIS history from CSV archives (MarineCadastre, DMA aisdk,
    Kystverket) and print what became of every line."""
    cli._replay_command(config, lambda settings, results: _import(settings, paths, fmt, results))


async def _import(
    settings: Settings, paths: list[str], fmt: CsvFormat | None, results: list[IngestStats]
) -> float:
    return await cli.timed_replay(
        settings,
        lambda db, detection, process: import_paths(settings, paths, db, fmt, results, detection, process),
    )


Vessel = Annotated[str, typer.Argument(help="Watchlist name, MMSI, IMO or broadcast ship name.")]
Since = Annotated[str | None, typer.Option("--since", help=f"From (default: the start). {cli.TIME_HELP}.")]
Until = Annotated[str | None, typer.Option("--until", help="Up to, not including (default: now).")]


@asynccontextmanager
async def _reader(settings: Settings) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], str]]:
    """A connection that only reads (no migration, no partition maintenance), and where."""
    async with open_database(settings, migrate=False) as db, db.pool.connection() as conn:
        try:
            yield conn, redact(db.url)
        finally:
            await conn.rollback()  # only read; ends a stream cut short (`| head`) too


def _ask(config: cli.ConfigOption, question: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    try:
        settings = cli._settings(config)
        return cli._run(question(settings))
    except AiswatchError as exc:
        raise cli._fail(exc) from None


def _show(
    rows: Sequence[R], where: str, nothing: str, output: cli.OutputFormat,
    as_json: Callable[[R], dict[str, Any]], table: Callable[[Sequence[R]], str],
) -> None:  # fmt: skip
    """Print ``rows`` (JSON lines or a table), or say what was not found, and where."""
    if not rows:
        _nothing(where, nothing)
    elif output is cli.OutputFormat.jsonl:
        typer.echo(jsonl([as_json(row) for row in rows]))
    else:
        typer.echo(table(rows))


def _nothing(where: str, what: str) -> None:
    typer.echo(f"{what} in the database at {where}.", err=True)


def track_command(
    vessel: Vessel,
    since: Since = None,
    until: Until = None,
    output: Annotated[TrackFormat, typer.Option("--format", "-f", help="Output format.")] = TrackFormat.table,
    tolerance_m: Annotated[
        float | None,
        typer.Option("--tolerance-m", min=0, help="Simplify to this many metres (default: by the range)."),
    ] = None,
    gap_h: Annotated[
        float, typer.Option("--gap-h", min=0.01, help="Cut the track at silences this long.")
    ] = 3.0,
    config: cli.ConfigOption = None,
) -> None:
    """A vessel's track (times UTC), dark gaps as gaps; streamed, in any size."""
    now = datetime.now(UTC)
    since_ts, until_ts = window(cli._time(since, "--since"), cli._time(until, "--until", upper=True), now)

    async def question(settings: Settings) -> None:
        async with _reader(settings) as (conn, where):
            found, query = await track_query(
                conn, vessel, since_ts, until_ts, tolerance_m=tolerance_m, gap_h=gap_h
            )
            seen = [0]
            async for piece in render(counted(track(conn, query), seen), output, track_title(found, query)):
                sys.stdout.write(piece)
            sys.stdout.flush()
            if not seen[0]:
                _nothing(
                    where, f"No positions of {found.label} from {since_ts:%Y-%m-%d} to {until_ts:%Y-%m-%d}"
                )

    _ask(config, question)


def voyages_command(
    vessel: Vessel,
    since: Since = None,
    until: Until = None,
    output: cli.Format = cli.OutputFormat.table,
    config: cli.ConfigOption = None,
) -> None:
    """A vessel's voyages port to port, with the dark legs (times UTC)."""
    since_ts, until_ts = window(
        cli._time(since, "--since"), cli._time(until, "--until", upper=True), datetime.now(UTC)
    )

    async def question(settings: Settings) -> None:
        async with _reader(settings) as (conn, where):
            found = await find_vessel(conn, vessel)
            voyages = await find_voyages(conn, found.mmsis, since_ts, until_ts)
        _show(voyages, where, f"No voyages of {found.label}", output, voyage_json,
              lambda rows: voyages_table(found, rows))  # fmt: skip

    _ask(config, question)


def vessels_command(
    area: Annotated[
        str | None,
        typer.Option("--in", help="A port (Vostochny, Rajin/berth), a box w,s,e,n, or a WKT polygon."),
    ] = None,
    watched: Annotated[
        bool, typer.Option("--watched", help="The last known position of every watched ship instead.")
    ] = False,
    since: Since = None,
    until: Until = None,
    output: cli.Format = cli.OutputFormat.table,
    config: cli.ConfigOption = None,
) -> None:
    """Which vessels were inside an area in a time range (times UTC)."""
    if (area is None) == (not watched):
        raise typer.BadParameter("give --in AREA or --watched", param_hint="--in")
    now = datetime.now(UTC)
    since_ts, until_ts = window(cli._time(since, "--since"), cli._time(until, "--until", upper=True), now)

    async def question(settings: Settings) -> None:
        if watched:
            async with _reader(settings) as (conn, where):
                positions = await last_positions(conn)
            _show(positions, where, "No positions of watched ships", output, last_position_json,
                  last_positions_table)  # fmt: skip
            return
        assert area is not None
        label, polygon = parse_area(area, settings.detectors.zones)
        async with _reader(settings) as (conn, where):
            presences = await vessels_in(conn, polygon, since_ts, until_ts)
        nothing = f"No vessels in {label} from {since_ts:%Y-%m-%d} to {until_ts:%Y-%m-%d}"
        _show(presences, where, nothing, output, presence_json, lambda rows: presences_table(label, rows))

    _ask(config, question)


def where_command(
    vessel: Vessel,
    at: Annotated[str, typer.Option("--at", help=f"When. {cli.TIME_HELP}.")] = "now",
    output: cli.Format = cli.OutputFormat.table,
    config: cli.ConfigOption = None,
) -> None:
    """Where a vessel was at a given time: the fixes either side (times UTC)."""
    when = cli._time(at, "--at")
    assert when is not None

    async def question(settings: Settings) -> None:
        async with _reader(settings) as (conn, where):
            found = await find_vessel(conn, vessel)
            before, after = await position_at(conn, found.mmsis, when)
        if before is None and after is None:
            _nothing(where, f"No positions of {found.label}")
        elif output is cli.OutputFormat.jsonl:
            typer.echo(json.dumps(position_json(found, when, before, after)))
        else:
            typer.echo(position_text(found, when, before, after))

    _ask(config, question)


def register(app: typer.Typer) -> None:
    app.command("import")(import_archives)
    app.command("track")(track_command)
    app.command("voyages")(voyages_command)
    app.command("vessels")(vessels_command)
    app.command("where")(where_command)
    app.add_typer(api_app, name="api")


api_app = typer.Typer(help="The HTTP query API and its map page; `aiswatch api` serves it.")
token_app = typer.Typer(help="API tokens: random, shown once, stored only as hashes.", no_args_is_help=True)
api_app.add_typer(token_app, name="token")


@api_app.callback(invoke_without_command=True)
def api_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Listen here (default: api.host).")] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Listen on this port (default: api.port).")
    ] = None,
    config: cli.ConfigOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the map page (/map) until Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return

    async def serve(settings: Settings) -> None:
        if host is not None:
            settings.api.host = host
        if port is not None:
            settings.api.port = port
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with open_database(settings, migrate=False) as db:
            await serve_api(settings, db, stop)

    _ask(config, serve)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what the token is for.")],
    config: cli.ConfigOption = None,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""

    async def create(settings: Settings) -> str:
        async with open_database(settings) as db, db.pool.connection() as conn:
            return await create_token(conn, name)

    token = _ask(config, create)
    typer.echo(token)
    typer.echo(
        f"(token {name!r}: keep it now, it is not shown again; send it as 'Authorization: Bearer ...')",
        err=True,
    )


@token_app.command("list")
def token_list(config: cli.ConfigOption = None) -> None:
    """List the tokens (names and dates; never the tokens). Times UTC."""

    async def listing(settings: Settings) -> list[TokenInfo]:
        async with open_database(settings) as db, db.pool.connection() as conn:
            return await list_tokens(conn)

    tokens = _ask(config, listing)
    typer.echo(f"{'name':<24} {'created (UTC)':<17}  {'last used (UTC)':<17}  revoked (UTC)")
    for t in tokens:
        used = "-" if t.last_used_at is None else f"{t.last_used_at:%Y-%m-%d %H:%M}Z"
        revoked = "-" if t.revoked_at is None else f"{t.revoked_at:%Y-%m-%d %H:%M}Z"
        typer.echo(f"{t.name:<24} {t.created_at:%Y-%m-%d %H:%M}Z  {used:<17}  {revoked}")


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], config: cli.ConfigOption = None
) -> None:
    """Revoke a token: requests with it get 401 from now on."""

    async def revoke(settings: Settings) -> None:
        async with open_database(settings) as db, db.pool.connection() as conn:
            await revoke_token(conn, name)

    _ask(config, revoke)
    typer.echo(f"token {name!r} revoked")


#: What the demo's static map shows: LADY R over the scenario's week.
DEMO_MAP = ("LADY R", "2024-03-09", "2024-03-16")


async def demo_map(db: Database, settings: Settings) -> Path:
    vessel, since, until = DEMO_MAP
    return await write_static_map(db, settings, settings.data_dir / "map-demo", vessel, since, until)


def demo_note(page: Path) -> str:
    vessel, since, until = DEMO_MAP
    return (
        f"\nThe map (a static copy, no server or internet needed): file://{page}\n"
        f'History: aiswatch voyages "{vessel}", aiswatch track "{vessel}" --since {since} --format geojson.'
        " Live map and API: aiswatch api token create NAME, then aiswatch api, and open"
        f" http://127.0.0.1:9110/map?token=...&vessel={quote(vessel)}&since={since}&until={until}"
    )
