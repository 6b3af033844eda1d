"""The ``aiswatch`` command line (typer).

User mistakes (a bad setting, an unreachable database, a missing file) end in
one line on standard error naming what and where, and a non-zero exit code;
never a traceback. Set ``AISWATCH_LOG_LEVEL=DEBUG`` for the details.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Coroutine
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from aiswatch import __version__
from aiswatch.config import Settings, load_settings
from aiswatch.logs import setup_logging
from aiswatch.service import decoder_process, ingest_paths, open_database
from aiswatch.summary import render_stats, render_total, render_vessels
from ingest.errors import AiswatchError, ConfigError
from ingest.pipeline import IngestStats
from storage.database import redact
from storage.queries import busiest_vessels, table_counts

app = typer.Typer(
    name="aiswatch",
    help="Watch ships through AIS: decode feeds and files into PostgreSQL/TimescaleDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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
def ingest(
    paths: Annotated[list[str], typer.Argument(help="NMEA files (plain or gzip), or - for stdin.")],
    config: ConfigOption = None,
) -> None:
    """Replay recorded AIS files into the database and print what became of every line."""
    results: list[IngestStats] = []
    try:
        settings = _settings(config)
        elapsed = _run(_ingest(settings, paths, results))
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
    # The decoding process starts while the database opens.
    async with decoder_process(settings) as process, open_database(settings) as db:
        began = time.perf_counter()
        await ingest_paths(settings, paths, db, process, results)
        return time.perf_counter() - began


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
    with resources.as_file(capture) as path:
        async with decoder_process(settings) as process, open_database(settings) as db:
            began = time.perf_counter()
            (stats,) = await ingest_paths(settings, [str(path)], db, process)
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


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `aiswatch ... | head`
        sys.stderr.close()
