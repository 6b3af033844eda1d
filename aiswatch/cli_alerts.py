"""``aiswatch alerts ...``: test a channel, show deliveries and what waits,
run the dispatcher on its own."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from aiswatch.alerting import deliver_now, digest_renderer, new_dispatcher
from aiswatch.config import Settings
from aiswatch.service import open_database
from alerts import store
from alerts.channels import open_channels, secrets_of
from alerts.digest import collect, summary_line
from alerts.errors import ChannelError
from alerts.message import Message
from alerts.schedule import queue_digest, write_digest
from alerts.settings import FileChannel, redact, redactor
from ingest.errors import AiswatchError, ConfigError
from storage.database import Database

app = typer.Typer(help="Alerts: test a channel, list deliveries, run the dispatcher.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (or set AISWATCH_CONFIG)."),
]


def _cli() -> Any:
    from aiswatch import cli  # noqa: PLC0415 - aiswatch.cli imports this module

    return cli


def _settings(config: Path | None) -> Settings:
    settings: Settings = _cli()._settings(config)
    return settings


def _fail(exc: AiswatchError) -> typer.Exit:
    exit_: typer.Exit = _cli()._fail(exc)
    return exit_


@app.command("test")
def send_test(
    channel: Annotated[str, typer.Argument(help="A channel's name (alerts.channels).")],
    config: ConfigOption = None,
) -> None:
    """Send a test message through CHANNEL now (no retries) and say what came of it."""
    try:
        settings = _settings(config)
        names = [c.name for c in settings.alerts.channels]
        if channel not in names:
            raise ConfigError(
                f"no channel {channel!r} in alerts.channels (configured: {', '.join(names) or 'none'})",
                setting="alerts.channels",
            )
        result = asyncio.run(_test(settings, channel))
    except AiswatchError as exc:
        raise _fail(exc) from None
    typer.echo(f"{channel}: sent ({result or 'no id returned'})")


async def _test(settings: Settings, name: str) -> str | None:
    now = datetime.now(UTC)
    text = f"aiswatch test message, {now:%Y-%m-%d %H:%M:%S} UTC: this channel works."
    message = Message(
        subject="[aiswatch] test message", text=text + "\n", html=f"<p>{text}</p>", chat=text,
        data={"type": "test", "channel": name, "at": now.isoformat()},
        message_id=f"<test-{int(now.timestamp())}@{settings.alerts.message_id_domain}>",
    )  # fmt: skip
    configs = [c for c in settings.alerts.channels if c.name == name]
    async with open_channels(configs) as senders:
        sender = senders[name]
        try:
            return await sender.send(message)
        except ChannelError as exc:
            raise ChannelError(redact(str(exc), redactor(secrets_of(configs[0]))), channel=name) from None


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else f"{ts:%Y-%m-%d %H:%M:%S}Z"


def _table(rows: list[tuple[Any, ...]]) -> str:
    out = [f"{'queued':<20} {'channel':<12} {'kind':<20} {'tries':>5}  {'outcome':<28} subject"]
    for created, channel, kind, subject, attempts, sent, failed, error, channel_id in rows:
        if sent is not None:
            outcome = f"sent {_when(sent)}"
        elif failed is not None:
            outcome = f"FAILED {_when(failed)}"
        else:
            outcome = "waiting"
        out.append(f"{_when(created):<20} {channel:<12.12} {kind:<20} {attempts:>5}  {outcome:<28} {subject}")
        if error and sent is None:
            out.append(f"{'':<20} last error: {error}")
        elif channel_id and sent is not None:
            out.append(f"{'':<20} channel id: {channel_id}")
    return "\n".join(out)


@app.command("log")
def log_(
    failed: Annotated[bool, typer.Option("--failed", help="Only dead-lettered deliveries.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 50,
    config: ConfigOption = None,
) -> None:
    """Recent deliveries, with their attempts and last error."""
    try:
        rows = asyncio.run(_recent(_settings(config), limit, failed))
    except AiswatchError as exc:
        raise _fail(exc) from None
    typer.echo(_table(rows) if rows else ("no failed deliveries" if failed else "no deliveries"))


async def _recent(settings: Settings, limit: int, failed: bool) -> list[tuple[Any, ...]]:
    async with open_database(settings) as db, db.pool.connection() as conn:
        return await store.recent(conn, limit=limit, failed_only=failed)


@app.command()
def pending(config: ConfigOption = None) -> None:
    """What waits: deliveries not yet sent, and outbox rows not yet folded into alerts."""
    try:
        rows, outbox = asyncio.run(_waiting(_settings(config)))
    except AiswatchError as exc:
        raise _fail(exc) from None
    typer.echo(_table(rows) if rows else "no deliveries waiting")
    typer.echo(f"outbox rows not yet folded into alerts: {outbox}")


async def _waiting(settings: Settings) -> tuple[list[tuple[Any, ...]], int]:
    async with open_database(settings) as db, db.pool.connection() as conn:
        return await store.waiting(conn)


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the dispatcher (and the digest) alone, until SIGTERM or SIGINT;
    several may run: one sends, the others stand by."""
    try:
        asyncio.run(_dispatch(_settings(config)))
    except AiswatchError as exc:
        raise _fail(exc) from None


async def _dispatch(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_database(settings) as db, new_dispatcher(settings, db) as d:
        await d.run(stop)


def demo_settings(settings: Settings) -> tuple[Settings, Path | None]:
    """The demo's alert settings: the configured channels, or (none
    configured) ``pager`` and ``review`` as one JSON-lines file; no group wait."""
    alerts = settings.alerts
    update: dict[str, Any] = {"group_wait_s": 0.0}
    path = None
    if not alerts.channels:
        path = settings.data_dir / "demo-alerts.jsonl"
        update["channels"] = [FileChannel(kind="file", name=name, path=path) for name in ("pager", "review")]
    return settings.model_copy(update={"alerts": alerts.model_copy(update=update)}), path


async def demo_alerts(settings: Settings, db: Database) -> str:
    """What the demo's alerts say: each one sent now, and where they went."""
    demo, path = demo_settings(settings)
    sent = await deliver_now(demo, db)
    where = f"the file channel: {path}" if path else "the configured channels"
    out = [f"\nAlerts sent (aiswatch alerts log) through {where}:\n"]
    if not sent:
        out.append("no new alerts: the scenario's were sent before (a delivered alert is never sent twice)")
    for channel, subject, text in sent:
        out.append(f"[{channel}] {subject}")
        out.extend(f"    {line}" for line in text.splitlines()[1:] if line)
        out.append("")
    return "\n".join(out)


def digest(
    day: Annotated[
        str | None,
        typer.Option("--date", help="The day (YYYY-MM-DD); default: yesterday in digest.timezone."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write HTML, PNG and text here.")] = None,
    send: Annotated[bool, typer.Option("--send", help="Send it to alerts.digest.channels.")] = False,
    config: ConfigOption = None,
) -> None:
    """Render (or send) any day's digest: port calls, dark gaps, identity
    changes, the watched ships' last positions, and the map."""
    try:
        settings = _settings(config)
        zone = ZoneInfo(settings.alerts.digest.timezone)
        try:
            when = (
                date.fromisoformat(day)
                if day
                else (datetime.now(UTC).astimezone(zone) - timedelta(days=1)).date()
            )
        except ValueError:
            raise typer.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None
        if send and not settings.alerts.digest.channels:
            raise ConfigError(
                "setting alerts.digest.channels: no channel to send the digest to",
                setting="alerts.digest.channels",
            )
        lines = asyncio.run(_digest(settings, when, out, send))
    except AiswatchError as exc:
        raise _fail(exc) from None
    typer.echo("\n".join(lines))


async def _digest(settings: Settings, day: date, out: Path | None, send: bool) -> list[str]:
    render = digest_renderer(settings)
    lines = []
    async with open_database(settings) as db:
        if out is not None or not send:
            folder = out or settings.alerts.digest.out_dir or Path.cwd()
            async with db.pool.connection() as conn:
                found = await collect(conn, day, settings.alerts.digest.timezone)
            path = await asyncio.to_thread(write_digest, folder, found, render)
            lines += [summary_line(found), f"digest written to {path} (map: {path.with_suffix('.png')})"]
        if send:
            if not await queue_digest(db.pool, day, settings.alerts.digest, render):
                lines.append(f"the digest of {day} was sent before: not sent again")
            for channel, subject, _ in await deliver_now(settings, db):
                lines.append(f"sent to {channel}: {subject}")
    return lines


async def demo_digest(settings: Settings, db: Database, day: date) -> str:
    """The demo's digest of ``day``, as files under the data folder."""
    async with db.pool.connection() as conn:
        found = await collect(conn, day, "UTC")
    folder = settings.data_dir / "digest"
    path = await asyncio.to_thread(write_digest, folder, found, digest_renderer(settings))
    return f"\nThe digest of {day} (aiswatch digest --date {day}): {path}\n  {summary_line(found)}"
