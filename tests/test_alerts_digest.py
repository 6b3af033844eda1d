"""The daily digest: a scenario day's content (checked against the pure
engine), its HTML and its map picture, the schedule's catch-up, and its
delivery by email with the map inline."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from aiswatch.alerting import deliver_now, digest_renderer
from aiswatch.config import Settings
from aiswatch.service import ingest_paths, new_detection
from alerts.digest import collect, day_window, due_days
from alerts.digest_map import APPROACH, BERTH, SEA, TRACK_COLOURS
from alerts.schedule import DigestJob
from ingest.records import Event
from storage.database import Database
from tests.alert_servers import PASSWORD, USER, SmtpServer
from tests.alerting import all_sent, rows, run_until, with_alerts
from tests.detecting import decode, replay, scenario_lines

DAY = date(2024, 3, 12)


class Tables(HTMLParser):
    """Rows of each table, by its class."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class") or ""
            self.rows[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.rows[self._table].append([])
        elif tag == "td":
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.rows[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None


def overlapping(
    events: list[Event], kind: str, start: datetime, end: datetime
) -> set[tuple[str, str | None, datetime]]:
    return {
        (e.vessel, e.port, e.start)
        for e in events
        if e.kind == kind and e.state != "withdrawn" and e.start < end and (e.end is None or e.end >= start)
    }


async def scenario_db(settings: Settings, db: Database, tmp_path: Path) -> list[Event]:
    lines = scenario_lines(tmp_path)
    await ingest_paths(settings, [str(tmp_path / "scenario.nmea")], db, detection=new_detection(settings))
    return list(replay(*decode(lines), batch=20_000).events().values())


async def test_a_scenario_days_digest_lists_exactly_its_port_calls_and_gaps_with_a_map(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    pure = await scenario_db(settings, db, tmp_path)
    start, end = day_window(DAY, "UTC")
    async with db.pool.connection() as conn:
        digest = await collect(conn, DAY, "UTC")
    calls = {(e.vessel, e.port, e.start) for e in digest.port_calls}
    gaps = {(e.vessel, e.port, e.start) for e in digest.gaps}
    assert calls == overlapping(pure, "port_call", start, end) and len(calls) >= 3
    assert gaps == overlapping(pure, "dark_gap", start, end) and gaps
    assert ("LADY R", "Vostochny") in {(v, p) for v, p, _ in calls}
    assert {s.vessel for s in digest.ships} >= {"LADY R", "ANGARA", "MARIA", "MAIA-1"}
    message = await asyncio.to_thread(digest_renderer(settings), digest, "cid:map")
    # the HTML parses, with a row per port call and per gap, and the map inline
    tables = Tables()
    tables.feed(message.html)
    assert len(tables.rows["port-calls"]) == len(calls) + 1  # and the heading
    assert len(tables.rows["dark-gaps"]) == len(gaps) + 1
    assert {r[0] for r in tables.rows["port-calls"][1:]} == {v for v, _, _ in calls}
    assert tables.images == ["cid:map"]
    assert "Port calls (" in message.text and "LADY R at Vostochny" in message.text
    assert message.chat.startswith(
        f"aiswatch digest 2024-03-12: {len(calls)} port calls, {len(gaps)} dark gaps"
    )
    # the picture: not blank, zones drawn, tracks drawn; kept as an artefact
    png = message.images["map"]
    artefact = tmp_path / "digest-map-2024-03-12.png"
    artefact.write_bytes(png)
    print(f"digest map kept at {artefact}")
    image = Image.open(BytesIO(png)).convert("RGB")
    assert image.size == (960, 640)
    colours = {c: n for n, c in image.getcolors(maxcolors=1 << 20) or []}
    assert len(colours) > 10 and colours.get(SEA, 0) < image.width * image.height
    assert colours.get(BERTH, 0) > 50 and colours.get(APPROACH, 0) > 50
    assert sum(colours.get(c, 0) for c in TRACK_COLOURS) > 100


def test_due_days_catch_up_what_was_missed_and_nothing_twice() -> None:
    at = time(7, 0)
    now = datetime(2024, 3, 14, 8, 0, tzinfo=UTC)
    assert due_days(now, at, "UTC", set(), catch_up_days=3, since=None) == [date(2024, 3, 13)]
    done = {date(2024, 3, 10)}
    assert due_days(now, at, "UTC", done, catch_up_days=3, since=date(2024, 3, 1)) == [
        date(2024, 3, 11), date(2024, 3, 12), date(2024, 3, 13),
    ]  # fmt: skip
    before = datetime(2024, 3, 14, 6, 0, tzinfo=UTC)  # today's is not due yet
    assert due_days(before, at, "UTC", done, catch_up_days=3, since=date(2024, 3, 1))[-1] == date(2024, 3, 12)
    # 23:30 UTC on the 13th is 08:30 on the 14th in Vladivostok: the 13th (there) is due
    late = datetime(2024, 3, 13, 23, 30, tzinfo=UTC)
    assert due_days(late, at, "Asia/Vladivostok", set(), catch_up_days=0, since=None) == [date(2024, 3, 13)]
    assert due_days(now, at, "UTC", {date(2024, 3, 13)}, catch_up_days=0, since=date(2024, 3, 13)) == []
    # never before the first day ever sent
    assert due_days(now, at, "UTC", {date(2024, 3, 12)}, catch_up_days=3, since=date(2024, 3, 12)) == [
        date(2024, 3, 13)
    ]


async def test_missed_digests_are_sent_on_return_once_by_email_with_the_map_inline(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await scenario_db(settings, db, tmp_path)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    smtp = SmtpServer(tmp_path).start()
    try:
        settings = with_alerts(settings, channels=[{
            "kind": "email", "name": "desk", "host": "localhost", "port": smtp.port, "username": USER,
            "password_env": "TEST_SMTP_PASSWORD", "sender": "aiswatch@example.org",
            "recipients": ["desk@example.org"], "ca_file": str(smtp.cert),
        }], digest={"channels": ["desk"], "at": "07:00", "timezone": "UTC", "catch_up_days": 2})  # fmt: skip
        job = DigestJob(
            settings.alerts.digest,
            digest_renderer(settings),
            clock=lambda: datetime(2024, 3, 11, 8, tzinfo=UTC),
        )
        assert await job.catch_up(db.pool, lambda _: None) == [date(2024, 3, 10)]  # the very first run
        # back after two days away, twice (a second leader, a restart): each missed day once
        later = DigestJob(
            settings.alerts.digest,
            digest_renderer(settings),
            clock=lambda: datetime(2024, 3, 14, 9, tzinfo=UTC),
        )
        assert await later.catch_up(db.pool, lambda _: None) == [
            date(2024, 3, 11),
            date(2024, 3, 12),
            date(2024, 3, 13),
        ]
        assert await later.catch_up(db.pool, lambda _: None) == []
        await deliver_now(settings, db)
    finally:
        smtp.stop()
    subjects = sorted(r.message["Subject"] for r in smtp.inbox)
    assert subjects == [f"[aiswatch] digest 2024-03-{d} (UTC)" for d in (10, 11, 12, 13)]
    mail = next(r.message for r in smtp.inbox if "03-12" in r.message["Subject"])
    html = mail.get_body(("html",)).get_content()
    assert 'src="cid:map"' in html
    (png,) = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert png["Content-ID"] == "<map>" and png.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "LADY R at Vostochny" in mail.get_body(("plain",)).get_content()
    ((runs,),) = await rows(db, "SELECT count(*) FROM digest_runs")
    assert runs == 4


async def test_the_digest_command_writes_any_days_html_and_map(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    await scenario_db(settings, db, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    env["AISWATCH_DATABASE_URL"] = db.url
    out = tmp_path / "out"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiswatch", "digest", "--date", "2024-03-12", "--out", str(out),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert f"digest written to {out / 'digest-2024-03-12.html'}" in stdout.decode()
    tables = Tables()
    tables.feed((out / "digest-2024-03-12.html").read_text(encoding="utf-8"))
    assert tables.images == ["digest-2024-03-12.png"] and len(tables.rows["port-calls"]) > 1
    assert (out / "digest-2024-03-12.png").read_bytes()[:4] == b"\x89PNG"
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiswatch", "digest", "--date", "12/03/2024", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await bad.communicate()
    assert bad.returncode != 0 and "not a date" in err.decode() and "Traceback" not in err.decode()


async def test_the_cron_trigger_sends_the_day_that_falls_due_and_the_start_catches_up(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    if (now.hour, now.minute) == (23, 59):  # the day must not turn during the test
        await asyncio.sleep(70)
        now = datetime.now(UTC)
    at = (now + timedelta(seconds=4)).time().replace(microsecond=0)  # APScheduler fires in 4 s
    out = tmp_path / "desk.jsonl"
    settings = with_alerts(
        settings, channels=[{"kind": "file", "name": "desk", "path": str(out)}],
        digest={"channels": ["desk"], "at": at.isoformat(), "timezone": "UTC"},
    )  # fmt: skip
    today = now.date()

    async def days() -> list[date]:
        return [d for (d,) in await rows(db, "SELECT day FROM digest_runs ORDER BY day")]

    async def both_sent() -> bool:
        return (
            await days() == [today - timedelta(days=2), today - timedelta(days=1)] and await all_sent(db, 2)()
        )

    await run_until(settings, db, both_sent, timeout_s=60)
    subjects = [json.loads(line)["subject"] for line in out.read_text().splitlines()]
    assert subjects == [f"[aiswatch] digest {d:%Y-%m-%d} (UTC)" for d in await days()]
