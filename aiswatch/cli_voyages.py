"""CLI commands for history: ``import`` (CSV archives), ``track``, ``voyages``,
``vessels`` and ``api``. Registered on the main app by :func:`register`.

Read commands open the database with ``migrate=False`` and change nothing
(no migration, no partition maintenance); when they find nothing they say
which database they read. Every time printed is UTC and says so.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from aiswatch import cli
from aiswatch.archive import import_paths
from aiswatch.config import Settings
from aiswatch.service import new_detection, open_database
from aiswatch.summary import render_detection, render_stats, render_total
from ingest.csvfeeds import CsvFormat
from ingest.errors import AiswatchError
from ingest.pipeline import IngestStats


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
    results: list[IngestStats] = []
    try:
        settings = cli._settings(config)
        elapsed = cli._run(_import(settings, paths, fmt, results))
    except AiswatchError as exc:
        for stats in results:
            typer.echo(render_stats(stats))
        raise cli._fail(exc) from None
    for stats in results:
        typer.echo(render_stats(stats, elapsed_s=elapsed if len(results) == 1 else None))
    if len(results) > 1:
        typer.echo(render_total(results))
    if any(stats.errors for stats in results):
        raise typer.Exit(1)


async def _import(
    settings: Settings, paths: list[str], fmt: CsvFormat | None, results: list[IngestStats]
) -> float:
    detection = new_detection(settings)
    async with open_database(settings) as db:
        began = time.perf_counter()
        await import_paths(settings, paths, db, fmt, results, detection)
        elapsed = time.perf_counter() - began
    if detection is not None:
        typer.echo(render_detection(detection))
    return elapsed


def register(app: typer.Typer) -> None:
    app.command("import")(import_archives)
