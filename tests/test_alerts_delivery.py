"""Alerts delivered through real servers on loopback: the file channel on the
scenario, email over STARTTLS and TLS with AUTH (aiosmtpd), a signed webhook
and apprise's JSON posts to a local HTTP server; retries, outages and
dead letters."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiswatch.config import Settings
from aiswatch.service import ingest_paths, new_detection
from storage.database import Database
from tests.alert_servers import PASSWORD, USER, HttpReceiver, SmtpServer
from tests.alerting import all_sent, port_call, put_events, rows, run_until, with_alerts
from tests.detecting import scenario_lines

CYRILLIC = "ЛЕДИ Р"  # noqa: RUF001 - a name in another script, on purpose


@pytest.fixture
def receiver() -> object:
    server = HttpReceiver()
    yield server
    server.stop()


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_the_scenario_pages_and_reviews_through_the_file_channel_once_across_restarts(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    scenario_lines(tmp_path)
    detection = new_detection(settings)
    await ingest_paths(settings, [str(tmp_path / "scenario.nmea")], db, detection=detection)
    pager, review = tmp_path / "pager.jsonl", tmp_path / "review.jsonl"
    settings = with_alerts(settings, channels=[
        {"kind": "file", "name": "pager", "path": str(pager)},
        {"kind": "file", "name": "review", "path": str(review)},
    ], track_url="https://aiswatch.example.org/track?mmsi={mmsi}&since={since}")  # fmt: skip
    await run_until(settings, db, all_sent(db))
    paged = jsonl(pager)
    subjects = [m["subject"] for m in paged]
    assert any(s.startswith("[aiswatch] LADY R appeared in Vostochny 2024-03-12") for s in subjects), subjects
    assert any("ANGARA" in s for s in subjects)
    assert all("MARIA" not in s for s in subjects)  # a name-only match: to review
    assert any("MARIA" in m["subject"] for m in jsonl(review))
    for message in paged:
        assert "Identifiers:" in message["text"] and "track?mmsi=" in message["text"]
    text = "\n".join(m["text"] for m in paged)
    assert "215100005" not in text and "667100006" not in text  # the decoys
    assert "IMO 9161003: medium confidence" in text  # the watchlist's identifier with its confidence
    # LADY R's two port calls fold into one message (one group: vessel and kind), each listed
    assert "- LADY R left Rajin 2024-03-1" in text and "left deeper: loaded" in text
    # every outbox row is handled; what is not routed went to the digest only
    ((unhandled,),) = await rows(db, "SELECT count(*) FROM event_outbox WHERE delivered_at IS NULL")
    assert unhandled == 0
    # a restart sends nothing again
    before = pager.read_text(), review.read_text()
    await run_until(settings, db, all_sent(db))
    await ingest_paths(settings, [str(tmp_path / "scenario.nmea")], db, detection=new_detection(settings))
    await run_until(settings, db, all_sent(db))
    assert (pager.read_text(), review.read_text()) == before


def email_settings(settings: Settings, smtp: SmtpServer, security: str = "starttls") -> Settings:
    return with_alerts(settings, channels=[{
        "kind": "email", "name": "pager", "host": "localhost", "port": smtp.port, "security": security,
        "username": USER, "password_env": "TEST_SMTP_PASSWORD", "sender": "aiswatch@example.org",
        "recipients": ["duty@example.org", "Редактор <editor@example.org>"], "ca_file": str(smtp.cert),
    }])  # fmt: skip


async def test_email_over_starttls_with_login_reaches_every_recipient_and_follow_ups_thread(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    smtp = SmtpServer(tmp_path).start()
    try:
        settings = email_settings(settings, smtp)
        await put_events(db, [port_call(CYRILLIC)])  # a name in Cyrillic
        await run_until(settings, db, all_sent(db, 1))
        await put_events(db, [port_call(CYRILLIC, state="closed")])  # the call ended: a follow-up
        await run_until(settings, db, all_sent(db, 2))
    finally:
        smtp.stop()
    first, update = smtp.inbox
    assert first.recipients == ["duty@example.org", "editor@example.org"]
    headline = f"{CYRILLIC} arrived at Rajin 2024-03-11 06:02 UTC (port call, arrived dark)"
    assert first.message["Subject"] == f"[aiswatch] {headline}"
    assert first.message.get_body(("plain",)).get_content().startswith(headline)
    assert f"<strong>{CYRILLIC} arrived" in first.message.get_body(("html",)).get_content()
    assert update.message["Subject"] == "Re: " + first.message["Subject"]
    assert update.message["In-Reply-To"] == first.message["Message-ID"]
    assert update.message["References"] == first.message["Message-ID"]
    update_text = update.message.get_body(("plain",)).get_content()
    assert f"- update: {CYRILLIC} left Rajin 2024-03-12 12:02 UTC" in update_text
    ((attempts, channel_id),) = await rows(
        db, "SELECT attempts, channel_message_id FROM alert_deliveries ORDER BY created_at LIMIT 1"
    )
    assert attempts == 1 and "queued" in channel_id


async def test_email_over_implicit_tls(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    smtp = SmtpServer(tmp_path, implicit_tls=True).start()
    try:
        await put_events(db, [port_call()])
        await run_until(email_settings(settings, smtp, "tls"), db, all_sent(db, 1))
    finally:
        smtp.stop()
    (received,) = smtp.inbox
    assert received.message["Subject"].startswith("[aiswatch] LADY R arrived at Rajin")


#: How long the SMTP server stays down (the issue: "down for a minute, then up").
OUTAGE_S = 60.0


async def test_smtp_down_then_up_every_alert_arrives_exactly_once(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    smtp = SmtpServer(tmp_path)  # not started: the server is down
    settings = email_settings(settings, smtp)
    ships = [port_call(f"SHIP {n}", mmsi=273100100 + n) for n in range(4)]
    await put_events(db, ships)

    began = time.monotonic()

    async def a_minute_of_failures() -> bool:
        (n,) = (await rows(db, "SELECT min(attempts) FROM alert_deliveries WHERE last_error IS NOT NULL"))[0]
        return n is not None and n >= 3 and time.monotonic() - began >= OUTAGE_S

    # the outage, a minute long: tried again and again, each failure recorded, nothing dropped
    await run_until(settings, db, a_minute_of_failures, timeout_s=OUTAGE_S + 60)
    ((errors,),) = await rows(db, "SELECT count(*) FROM alert_deliveries WHERE sent_at IS NULL")
    assert errors >= 1
    smtp.start()
    try:
        await run_until(settings, db, all_sent(db, 4))
    finally:
        smtp.stop()
    ids = [r.message["Message-ID"] for r in smtp.inbox]
    assert len(ids) == len(set(ids)) == 4
    assert sorted(
        r.message["Subject"].split()[1] + " " + r.message["Subject"].split()[2] for r in smtp.inbox
    ) == [f"SHIP {n}" for n in range(4)]


def verify(secret: bytes, headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers["X-Aiswatch-Timestamp"]
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Aiswatch-Signature"])


async def test_the_webhook_is_signed_and_retried_after_500_and_429_with_retry_after(
    settings: Settings, db: Database, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_KEY", "k3y-for-signing")
    receiver.script = [(500, {}), (429, {"Retry-After": "1"}), (200, {"X-Request-Id": "hook-42"})]
    settings = with_alerts(settings, channels=[
        {"kind": "webhook", "name": "pager", "url": receiver.url + "/hook", "secret_env": "TEST_WEBHOOK_KEY"},
    ])  # fmt: skip
    await put_events(db, [port_call()])
    await run_until(settings, db, all_sent(db, 1))
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        assert verify(b"k3y-for-signing", request.headers, request.body)
    assert not verify(b"another key", receiver.requests[0].headers, receiver.requests[0].body)
    body = json.loads(receiver.requests[-1].body)
    assert body["headline"].startswith("LADY R arrived at Rajin") and body["match_level"] == "identified"
    ((attempts, channel_id, error),) = await rows(
        db, "SELECT attempts, channel_message_id, last_error FROM alert_deliveries"
    )
    assert (attempts, channel_id) == (3, "hook-42") and "429" in error


async def test_apprise_json_posts_arrive_after_500_then_429_and_the_url_is_never_logged(
    settings: Settings,
    db: Database,
    receiver: HttpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "T0kenZZ9876"
    monkeypatch.setenv("TEST_CHAT_URLS", f"json://{token}:pw{token}@127.0.0.1:{receiver.port}/chat/{token}")
    receiver.script = [(500, {}), (429, {"Retry-After": "1"}), (200, {})]
    settings = with_alerts(
        settings, channels=[{"kind": "apprise", "name": "pager", "urls_env": "TEST_CHAT_URLS"}]
    )
    caplog.set_level(logging.DEBUG)
    logging.getLogger().addHandler(caplog.handler)  # the dispatcher redacts through the root's handlers
    try:
        await put_events(db, [port_call()])
        await run_until(settings, db, all_sent(db, 1))
    finally:
        logging.getLogger().removeHandler(caplog.handler)
    assert len(receiver.requests) == 3 and receiver.requests[0].path.startswith("/chat/")
    post = json.loads(receiver.requests[-1].body)
    assert post["title"].startswith("[aiswatch] LADY R arrived at Rajin")
    assert post["message"].startswith("LADY R arrived at Rajin")
    ((attempts, error),) = await rows(db, "SELECT attempts, last_error FROM alert_deliveries")
    assert attempts == 3 and error is not None and token not in error
    assert "not delivered" in caplog.text and token not in caplog.text


async def test_refused_and_long_failing_deliveries_are_dead_lettered_and_listed(
    settings: Settings, db: Database, receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.script = [(400, {})] + [(503, {})] * 100
    settings = with_alerts(settings, give_up_h=2 / 3600, channels=[
        {"kind": "webhook", "name": "pager", "url": receiver.url + "/hook"},
    ])  # fmt: skip
    await put_events(db, [port_call("SHIP A", mmsi=273100201), port_call("SHIP B", mmsi=273100202)])
    await run_until(settings, db, all_sent(db, 2))
    failed = await rows(
        db, "SELECT vessel, attempts, last_error FROM alert_deliveries ORDER BY created_at, id"
    )
    assert {r[0] for r in failed} == {"SHIP A", "SHIP B"}
    assert sorted(r[1] for r in failed)[0] == 1  # the refused one: once
    assert sorted(r[1] for r in failed)[1] >= 2  # the failing one: until give_up_h
    ((dead,),) = await rows(db, "SELECT count(*) FROM alert_deliveries WHERE failed_at IS NOT NULL")
    assert dead == 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    env["AISWATCH_DATABASE_URL"] = db.url
    listed = subprocess.run(  # noqa: ASYNC221 - the command under test, once
        [sys.executable, "-m", "aiswatch", "alerts", "log", "--failed"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("FAILED") == 2 and "HTTP 400" in listed.stdout and "HTTP 503" in listed.stdout


async def test_alerts_test_sends_one_message_and_pending_shows_what_waits(
    db: Database, receiver: HttpReceiver, tmp_path: Path
) -> None:
    config = tmp_path / "aiswatch.toml"
    config.write_text(
        f'database_url = "{db.url}"\n[alerts]\n'
        f'channels = [{{ kind = "webhook", name = "hook", url = "{receiver.url}/hook",'
        ' secret_env = "TEST_KEY" }]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")} | {"TEST_KEY": "k3y-k3y-k3y"}

    async def aiswatch(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiswatch", *args, "--config", str(config), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, _ = await aiswatch("alerts", "test", "hook")
    assert code == 0 and out.startswith("hook: sent")
    (request,) = receiver.requests
    assert json.loads(request.body)["type"] == "test" and verify(
        b"k3y-k3y-k3y", request.headers, request.body
    )
    code, _, err = await aiswatch("alerts", "test", "nope")
    assert code == 2 and "no channel 'nope'" in err and "Traceback" not in err
    receiver.script = [(503, {})]
    code, _, err = await aiswatch("alerts", "test", "hook")
    assert code == 1 and "HTTP 503" in err and "k3y-k3y-k3y" not in err
    await put_events(db, [port_call()])
    code, out, _ = await aiswatch("alerts", "pending")
    assert code == 0 and "outbox rows not yet folded into alerts: 1" in out


async def test_the_cool_down_folds_repeats_into_one_later_message_and_other_ships_are_not_held(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "pager.jsonl"
    settings = with_alerts(
        settings, repeat_interval_s=3, channels=[{"kind": "file", "name": "pager", "path": str(out)}]
    )
    await put_events(db, [port_call("SHIP A", mmsi=273100601)])
    await run_until(settings, db, all_sent(db, 1))
    # within the cool-down: two more calls of SHIP A wait (deferred), SHIP B goes at once
    later = [port_call("SHIP A", mmsi=273100601, hours=h) for h in (40, 80)]
    await put_events(db, later)
    await put_events(db, [port_call("SHIP B", mmsi=273100602)])

    async def b_sent() -> bool:
        return out.exists() and any("SHIP B" in line for line in out.read_text().splitlines())

    await run_until(settings, db, b_sent)
    deferred = await rows(
        db, "SELECT count(*) FROM event_outbox WHERE alert_due_at IS NOT NULL AND delivered_at IS NULL"
    )
    assert deferred == [(2,)]
    await run_until(settings, db, all_sent(db, 3))
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["data"]["vessel"] for m in messages] == ["SHIP A", "SHIP B", "SHIP A"]
    assert messages[2]["data"]["count"] == 2 and "2 port call events of SHIP A" in messages[2]["text"]


async def test_delivery_history_is_kept_for_keep_days_then_pruned_but_not_a_live_threads_first(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    from alerts import store

    out = tmp_path / "pager.jsonl"
    settings = with_alerts(settings, channels=[{"kind": "file", "name": "pager", "path": str(out)}])
    await put_events(db, [port_call(f"SHIP {n}", mmsi=273100700 + n) for n in range(3)])
    await run_until(settings, db, all_sent(db, 3))
    async with db.pool.connection() as conn:
        assert await store.prune(conn, keep_days=90) == (0, 0)  # all of it is recent
        old = "now() - interval '100 days'"
        await conn.execute(f"UPDATE alert_deliveries SET sent_at = {old}")
        await conn.execute(f"UPDATE event_outbox SET delivered_at = {old}")
        (first,) = (await (await conn.execute("SELECT min(id) FROM alert_deliveries")).fetchone()) or (None,)
        # a recent follow-up in the first one's thread keeps its first alert
        await conn.execute(
            "INSERT INTO alert_deliveries (id, channel, kind, subject, thread, message, sent_at)"
            " VALUES ('follow-up', 'pager', 'port_call', 're', %s, '{}', now())",
            (first,),
        )
        assert await store.prune(conn, keep_days=90) == (2, 3)
        kept = await (await conn.execute("SELECT id FROM alert_deliveries ORDER BY id")).fetchall()
    assert sorted(k for (k,) in kept) == sorted([first, "follow-up"])
