"""The alerts' pure middle: the first line, routing, folding, follow-ups."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiswatch.config import load_settings
from aiswatch.views import describe
from alerts.folding import Announced, plan
from alerts.message import AlertWriter, headline
from alerts.routing import Notice, Router, VesselFacts, WatchedPort, event_of
from alerts.settings import DEFAULT_RULES
from ingest.records import Event

T0 = datetime(2024, 3, 11, 6, 2, tzinfo=UTC)
RAJIN = WatchedPort("Rajin", 42.245, 130.30)
EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "aiswatch.example.toml"


def call(state: str = "open", **details: object) -> Event:
    return Event(
        kind="port_call", mmsi=273100001, start=T0, state=state,  # type: ignore[arg-type]
        end=None if state == "open" else T0 + timedelta(hours=30), port="Rajin", lat=42.24, lon=130.3,
        vessel="LADY R", imo=9161003,
        details={"arrival_observed": False, "dwell_h": None if state == "open" else 30.0, **details},
    )  # fmt: skip


def notice(event: Event, seq: int, revision: int = 1, at: datetime = T0) -> Notice:
    return Notice(seq, event.id, revision, event, at)


def test_the_first_line_says_ship_what_where_when() -> None:
    assert headline(call()) == "LADY R arrived at Rajin 2024-03-11 06:02 UTC (port call, arrived dark)"
    gap = Event(kind="dark_gap", mmsi=1, start=T0, state="withdrawn", vessel="ANGARA")
    assert "withdrawn" in headline(gap) and headline(gap).startswith("ANGARA")


def test_an_outbox_payload_is_read_back_into_its_event() -> None:
    event = call()
    payload = {
        "id": event.id, "kind": "port_call", "state": "open", "revision": 1, "vessel": "LADY R",
        "mmsi": 273100001, "imo": 9161003, "port": "Rajin", "zone_key": "", "start_ts": T0.isoformat(),
        "end_ts": None, "lat": 42.24, "lon": 130.3, "details": dict(event.details),
    }  # fmt: skip
    back = event_of(payload)
    assert back == event and back.id == event.id


def test_default_rules_page_identified_calls_and_dark_gaps_near_ports_and_review_probables() -> None:
    router = Router(DEFAULT_RULES, [RAJIN], frozenset({"pager", "review"}))
    identified = VesselFacts("LADY R", 273100001, level="identified")
    probable = VesselFacts("LADY R", 273100001, level="probable")
    assert router.route(call(), identified) == {"pager"}
    assert router.route(call(), probable) == {"review"}
    near = Event(kind="dark_gap", mmsi=1, start=T0, state="open", lat=42.0, lon=130.5, vessel="LADY R")
    far = Event(kind="dark_gap", mmsi=1, start=T0, state="open", lat=30.0, lon=140.0, vessel="LADY R")
    assert router.route(near, identified) == {"pager"}
    assert router.route(far, identified) == frozenset()  # the digest only
    draught = Event(kind="draught_change", mmsi=1, start=T0, vessel="LADY R")
    assert router.route(draught, identified) == frozenset()


def test_a_group_waits_then_folds_repeats_within_the_cool_down() -> None:
    entries = [
        Event(
            kind="zone_entry",
            mmsi=1,
            start=T0 + timedelta(minutes=i),
            key=f"z{i}",
            vessel="LADY R",
            port="Rajin",
        )
        for i in range(5)
    ]
    routed = [(notice(e, i, at=T0), frozenset({"pager"})) for i, e in enumerate(entries)]
    waiting = plan(routed, {}, {}, T0 + timedelta(seconds=10), group_wait_s=30, repeat_interval_s=600)
    assert waiting.messages == [] and waiting.consumed == []
    assert waiting.next_due == T0 + timedelta(seconds=30)
    due = plan(routed, {}, {}, T0 + timedelta(seconds=31), group_wait_s=30, repeat_interval_s=600)
    (message,) = due.messages
    assert len(message.notices) == 5 and message.folded == 5
    assert due.consumed == [0, 1, 2, 3, 4]
    # one message went out a minute ago: the next waits for the cool-down to end
    last = {("pager", "LADY R", "zone_entry"): T0 + timedelta(seconds=31)}
    later = plan(routed[:1], {}, last, T0 + timedelta(minutes=2), group_wait_s=30, repeat_interval_s=600)
    assert later.messages == [] and later.next_due == T0 + timedelta(seconds=631)
    assert later.deferred == {0: T0 + timedelta(seconds=631)}
    text = AlertWriter(describe).render(message, None).text
    assert "5 zone entry events of LADY R, folded from 5 updates" in text


def test_revisions_fold_into_the_latest_and_a_follow_up_threads_to_the_first_alert() -> None:
    opened, closed = call("open"), call("closed", loaded=True)
    routed = [(notice(opened, 1, 1), frozenset({"pager"})), (notice(closed, 2, 2), frozenset({"pager"}))]
    first = plan(routed, {}, {}, T0 + timedelta(hours=1), group_wait_s=0, repeat_interval_s=0)
    (message,) = first.messages
    assert [n.revision for n in message.notices] == [2] and message.thread is None
    announced = {("pager", opened.id): Announced("first-id", "[aiswatch] LADY R arrived at Rajin", 1)}
    follow = plan(routed[1:], announced, {}, T0 + timedelta(hours=1), group_wait_s=0, repeat_interval_s=0)
    (update,) = follow.messages
    rendered = AlertWriter(describe, domain="example.org").render(update, None)
    assert rendered.subject == "Re: [aiswatch] LADY R arrived at Rajin"
    assert rendered.in_reply_to == "<first-id@example.org>"
    assert rendered.references == ("<first-id@example.org>",)
    assert "update: LADY R left Rajin" in rendered.text


def test_a_withdrawn_event_never_told_says_nothing() -> None:
    gap = Event(kind="dark_gap", mmsi=1, start=T0, state="open", vessel="ANGARA")
    gone = Event(kind="dark_gap", mmsi=1, start=T0, state="withdrawn", vessel="ANGARA")
    routed = [(notice(gap, 1, 1), frozenset({"pager"})), (notice(gone, 2, 2), frozenset({"pager"}))]
    result = plan(routed, {}, {}, T0 + timedelta(hours=1), group_wait_s=0, repeat_interval_s=0)
    assert result.messages == [] and result.consumed == [1, 2]
    told = {("pager", gap.id): Announced("a", "s", 1)}
    result = plan(routed[1:], told, {}, T0 + timedelta(hours=1), group_wait_s=0, repeat_interval_s=0)
    assert [n.event.state for m in result.messages for n in m.notices] == ["withdrawn"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["LADY R", "ANGARA"]), st.sampled_from(["zone_entry", "port_call"])),
        min_size=1, max_size=3000,
    )
)  # fmt: skip
def test_a_backlog_folds_into_one_message_per_group_and_loses_nothing(rows: list[tuple[str, str]]) -> None:
    routed = []
    for seq, (vessel, kind) in enumerate(rows):
        event = Event(kind=kind, mmsi=1, start=T0 + timedelta(seconds=seq), vessel=vessel)
        routed.append((notice(event, seq), frozenset({"pager", "review"})))
    result = plan(routed, {}, {}, T0 + timedelta(days=1), group_wait_s=30, repeat_interval_s=900)
    assert len(result.messages) == 2 * len(set(rows))
    assert result.consumed == list(range(len(rows)))
    per_channel = sum(len(m.notices) for m in result.messages if m.channel == "pager")
    assert per_channel == len(rows)


def test_the_example_alert_settings_load_once_uncommented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AISWATCH_CONFIG", raising=False)
    text = (Path(__file__).resolve().parents[1] / "deploy" / "aiswatch.example.toml").read_text()
    head, rest = text.split("[alerts]", 1)
    alerts, tail = rest.split("# Live sources", 1)
    lines = [
        line[2:]
        if line.startswith(("# [[alerts", "# name", "# kind")) or re.match(r"# \w+ = ", line)
        else line
        for line in alerts.splitlines()
    ]
    config = tmp_path / "aiswatch.toml"
    config.write_text(head + "[alerts]" + "\n".join(lines) + "\n# Live sources" + tail)
    settings = load_settings(config).alerts
    assert [c.kind for c in settings.channels] == ["email", "apprise", "webhook", "file"]
    assert [r.name for r in settings.active_rules] == ["lady-r-anything"]
    assert settings.digest.out_dir == Path("/var/lib/aiswatch/digests")
    assert load_settings(EXAMPLE).alerts.active_rules == DEFAULT_RULES
