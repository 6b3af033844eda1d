"""The ``aiswatch`` command line (typer).

User mistakes (a bad setting, an unreachable database, a missing file) end in
one line on standard error naming what and where, and a non-zero exit code;
never a traceback. Set ``AISWATCH_LOG_LEVEL=DEBUG`` for the details.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import typer

from aiswatch import __version__, cli_alerts
from aiswatch.config import Settings, load_settings
from aiswatch.detection import Detection
from aiswatch.live import run_service
from aiswatch.logs import setup_logging
from aiswatch.scenario import SCENARIO_START, write_scenario
from aiswatch.service import decoder_process, ingest_paths, new_detection, open_database
from aiswatch.summary import render_detection, render_stats, render_total, render_vessels
from aiswatch.times import HELP as TIME_HELP
from aiswatch.times import parse_time
from aiswatch.views import event_json, events_table, jsonl, port_call_json, port_calls_table, watchlist_table
from detectors.watchlist import load_watchlist
from ingest.errors import AiswatchError, ConfigError
from ingest.offload import DecoderProcess
from ingest.pipeline import IngestStats
from ingest.records import EVENT_KINDS, Event
from storage.areas import index_complete_days
from storage.database import Database, redact
from storage.events import find_events, load_matches
from storage.queries import busiest_vessels, table_counts

app = typer.Typer(
    name="aiswatch",
    help="Watch ships through AIS: decode feeds and files into PostgreSQL/TimescaleDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_alerts.app, name="alerts")
app.command()(cli_alerts.digest)
log = logging.getLogger("aiswatch")

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (or set AISWATCH_CONFIG)."),
]

#: The real capture bundled for the demo (DMA, Apache-2.0; see aiswatch/data/NOTICE).
DEMO_CAPTURE = "dma-gatehouse-20100611.nmea.gz"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aiswatch {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Watch ships through AIS: decode feeds and files into PostgreSQL/TimescaleDB."""


def _settings(config: Path | None) -> Settings:
    settings = load_settings(config)
    setup_logging(settings.log_level, settings.log_format)
    return settings


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        typer.echo("aiswatch: interrupted", err=True)
        raise typer.Exit(130) from None


def _fail(exc: AiswatchError) -> typer.Exit:
    typer.echo(f"aiswatch: error: {exc}", err=True)
    log.debug("details", exc_info=exc)
    return typer.Exit(2 if isinstance(exc, ConfigError) else 1)


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create or upgrade the database schema."""
    try:
        settings = _settings(config)
        _run(_migrate(settings))
    except AiswatchError as exc:
        raise _fail(exc) from None


async def _migrate(settings: Settings) -> None:
    async with open_database(settings) as db:
        report = db.migration
        assert report is not None
        applied = ", ".join(report.applied) or "nothing to do"
        typer.echo(f"schema version {report.current} ({report.flavour}) on {redact(db.url)}: {applied}")


@app.command()
def maintain(config: ConfigOption = None) -> None:
    """Index the complete days by area, for `vessels --in` (the service does it every hour)."""
    try:
        settings = _settings(config)
        made = _run(_maintain(settings))
    except AiswatchError as exc:
        raise _fail(exc) from None
    typer.echo(f"indexed {len(made)} partition(s) by area" + (f": {', '.join(made)}" if made else ""))


async def _maintain(settings: Settings) -> list[str]:
    async with open_database(settings) as db:
        if db.flavour != "native":
            return []
        async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
            return await index_complete_days(conn, datetime.now(UTC).date())


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="NMEA files (plain or gzip), or - for stdin.")],
    config: ConfigOption = None,
) -> None:
    """Replay recorded AIS files into the database and print what became of every line."""
    _replay_command(config, lambda settings, results: _ingest(settings, paths, results))


def _replay_command(
    config: Path | None, replay: Callable[[Settings, list[IngestStats]], Coroutine[Any, Any, float]]
) -> None:
    """Run ``replay`` (it fills the results and returns the seconds taken) and print each source's ledger."""
    results: list[IngestStats] = []
    try:
        settings = _settings(config)
        elapsed = _run(replay(settings, results))
    except AiswatchError as exc:
        for stats in results:  # what was done before the failure, unresolved lines included
            typer.echo(render_stats(stats))
        raise _fail(exc) from None
    for stats in results:
        typer.echo(render_stats(stats, elapsed_s=elapsed if len(results) == 1 else None))
    if len(results) > 1:
        typer.echo(render_total(results))
    if any(stats.errors for stats in results):
        raise typer.Exit(1)


async def _ingest(settings: Settings, paths: list[str], results: list[IngestStats]) -> float:
    return await timed_replay(
        settings,
        lambda db, detection, process: ingest_paths(settings, paths, db, process, results, detection),
    )


async def timed_replay(
    settings: Settings,
    replay: Callable[[Database, Detection | None, DecoderProcess], Awaitable[object]],
) -> float:
    """Run a replay (NMEA files, CSV archives) with the detectors; print what
    they found; return the replay's seconds. The decoding process starts
    while the database opens."""
    detection = new_detection(settings)
    async with decoder_process(settings) as process, open_database(settings) as db:
        began = time.perf_counter()
        await replay(db, detection, process)
        elapsed = time.perf_counter() - began
    if detection is not None:
        typer.echo(render_detection(detection))
    return elapsed


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the live service: every configured source into the database, with
    /health and /metrics; SIGTERM or SIGINT drains and exits 0."""
    try:
        settings = _settings(config)
        code = asyncio.run(_serve(settings))
    except AiswatchError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


async def _serve(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = asyncio.create_task(run_service(settings, stop))
    done, _ = await asyncio.wait(
        {service, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    if service not in done:
        log.warning("stopping; draining for at most %.0f s", settings.service.shutdown_timeout_s)
        await asyncio.wait({service}, timeout=settings.service.shutdown_timeout_s)
        if not service.done():
            service.cancel()
            typer.echo(
                f"aiswatch: error: not drained within {settings.service.shutdown_timeout_s:.0f} s"
                " (service.shutdown_timeout_s); what was not committed is counted as unresolved",
                err=True,
            )
            return 1
    result = service.result()
    for source in result.sources:
        for stats in (source.stats, source.json_stats):
            if stats.lines:
                typer.echo(render_stats(stats))
    return 0


@app.command()
def demo(config: ConfigOption = None) -> None:
    """Run the main job on embedded defaults: ingest a bundled real capture and show what was found."""
    try:
        settings = _settings(config)
        _run(_demo(settings))
    except AiswatchError as exc:
        raise _fail(exc) from None


async def _demo(settings: Settings) -> None:
    capture = resources.files("aiswatch").joinpath("data", DEMO_CAPTURE)
    where = (
        "embedded PostgreSQL in " + str(settings.data_dir / "postgres")
        if settings.database_url is None
        else "the configured database"
    )
    typer.echo(
        f"aiswatch demo: replaying {DEMO_CAPTURE} (Danish Maritime Authority, 11 June 2010) into {where}\n"
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    scenario = settings.data_dir / "scenario-synthetic.nmea"
    scenario_lines = write_scenario(scenario)
    with resources.as_file(capture) as path:
        async with decoder_process(settings) as process, open_database(settings) as db:
            began = time.perf_counter()
            (stats,) = await ingest_paths(
                settings, [str(path)], db, process, detection=new_detection(settings)
            )
            elapsed = time.perf_counter() - began
            async with db.pool.connection() as conn:
                vessels = await busiest_vessels(conn, limit=10)
                counts = await table_counts(conn)
            typer.echo(render_stats(stats, elapsed_s=elapsed))
            typer.echo(
                f"\nIn the database: {counts['positions']:,} positions, {counts['vessels']:,} vessels,"
                f" {counts['vessel_static']:,} identity records. The busiest vessels:\n"
            )
            typer.echo(render_vessels(vessels))
            if stats.already_stored:
                typer.echo("\n(Run before: replaying the same capture stored nothing twice.)")
            typer.echo(
                f"\nNow a SYNTHETIC scenario ({scenario_lines:,} lines in {scenario}),"
                " generated from the real port zones: the Rajin - Vostochny - Dunai pattern of 2024,"
                " dark legs and decoys included (invented MMSIs and timings).\n"
            )
            detection = new_detection(settings)
            (scenario_stats,) = await ingest_paths(
                settings, [str(scenario)], db, process, detection=detection
            )
            async with db.pool.connection() as conn:
                events = await find_events(conn, since=SCENARIO_START)
            demo_alerts = await cli_alerts.demo_alerts(settings, db)
            demo_digest = await cli_alerts.demo_digest(
                settings, db, SCENARIO_START.date() + timedelta(days=2)
            )
            map_page = await cli_voyages.demo_map(db, settings)
    typer.echo(render_stats(scenario_stats))
    if detection is not None:
        typer.echo(render_detection(detection))
    typer.echo(demo_alerts)
    typer.echo("\nEvents (aiswatch events):\n")
    typer.echo(events_table(events))
    typer.echo("\nPort calls (aiswatch port-calls):\n")
    typer.echo(port_calls_table([e for e, _, _ in events if e.kind == "port_call"]))
    typer.echo(cli_voyages.demo_note(map_page))
    typer.echo(demo_digest)


def _time(value: str | None, option: str, *, upper: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, datetime.now(UTC), upper=upper)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


class OutputFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"


Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="table for people, jsonl for programs.")]
Since = Annotated[
    str | None, typer.Option("--since", help=f"Only what ends at or after this time: {TIME_HELP}.")
]
Until = Annotated[str | None, typer.Option("--until", help="Only what starts before this time.")]
VesselOption = Annotated[str | None, typer.Option("--vessel", help="Watchlist name, MMSI or IMO.")]


@app.command()
def events(
    vessel: VesselOption = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help=f"One of: {', '.join(EVENT_KINDS)} (repeatable).")
    ] = None,
    port: Annotated[str | None, typer.Option("--port", help="Port name (Rajin, Vostochny, Dunai).")] = None,
    since: Since = None,
    until: Until = None,
    withdrawn: Annotated[bool, typer.Option("--withdrawn", help="Include withdrawn events.")] = False,
    output: Format = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """List the detectors' events about watched ships."""
    for k in kind or []:
        if k not in EVENT_KINDS:
            raise typer.BadParameter(
                f"{k!r} is not an event kind ({', '.join(EVENT_KINDS)})", param_hint="--kind"
            )
    window = _time(since, "--since"), _time(until, "--until", upper=True)
    try:
        settings = _settings(config)
        rows = _run(_query_events(settings, vessel, kind or [], port, *window, withdrawn))
    except AiswatchError as exc:
        raise _fail(exc) from None
    if output is OutputFormat.jsonl:
        if rows:
            typer.echo(jsonl([event_json(e, i, r) for e, i, r in rows]))
    else:
        typer.echo(events_table(rows))


@app.command("port-calls")
def port_calls(
    port: Annotated[str | None, typer.Option("--port", help="Port name (Rajin, Vostochny, Dunai).")] = None,
    vessel: VesselOption = None,
    since: Since = None,
    until: Until = None,
    output: Format = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """List port calls of watched ships at the watched ports."""
    window = _time(since, "--since"), _time(until, "--until", upper=True)
    try:
        settings = _settings(config)
        rows = _run(_query_events(settings, vessel, ["port_call"], port, *window, False))
    except AiswatchError as exc:
        raise _fail(exc) from None
    calls = [e for e, _, _ in rows]
    if output is OutputFormat.jsonl:
        if calls:
            typer.echo(jsonl([port_call_json(e) for e in calls]))
    else:
        typer.echo(port_calls_table(calls))


async def _query_events(
    settings: Settings,
    vessel: str | None,
    kinds: list[str],
    port: str | None,
    since: datetime | None,
    until: datetime | None,
    withdrawn: bool,
) -> list[tuple[Event, str, int]]:
    async with open_database(settings) as db, db.pool.connection() as conn:
        return await find_events(
            conn, vessel=vessel, kinds=kinds, port=port, since=since, until=until, include_withdrawn=withdrawn
        )


@app.command()
def watchlist(config: ConfigOption = None) -> None:
    """Show the watchlist, what each entry has been matched to, and why."""
    try:
        settings = _settings(config)
        entries = (
            load_watchlist(settings.detectors.watchlist) if settings.detectors.watchlist else load_watchlist()
        )
        matches = _run(_matches(settings))
    except AiswatchError as exc:
        raise _fail(exc) from None
    typer.echo(watchlist_table(entries, matches))


async def _matches(settings: Settings) -> list[tuple[str, int, str, list[str], datetime]]:
    async with open_database(settings) as db, db.pool.connection() as conn:
        return await load_matches(conn)


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `aiswatch ... | head`
        sys.stderr.close()


from aiswatch import cli_voyages  # noqa: E402 - its commands use the helpers above

cli_voyages.register(app)
