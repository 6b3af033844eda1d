"""AIS text fields (name, call sign, destination) come out the same from every
source: NMEA, AIS-catcher JSON_FULL and aisstream.io. Cut at the first ``@``,
spaces trimmed, nothing left is None."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest

from ingest.decode import text
from ingest.jsonfeeds import FeedError, aiscatcher_record, aisstream_record
from ingest.pipeline import LineDecoder
from ingest.records import StaticReport
from ingest.sources.mqtt import payload_chunk
from tests.helpers import encode
from tests.test_live import eventually, live_settings, running, unresolved

NOW = 1_700_000_000
MMSI = 273_456_780
Text = tuple[str | None, str | None, str | None]  # shipname, call sign, destination

#: As sent (padded), and as stored.
PADDED: list[tuple[Text, Text]] = [
    (("LADY R@@@@", "UBLR1@@", "RAJIN@@@@@@@"), ("LADY R", "UBLR1", "RAJIN")),
    (("ANGARA  @@", " UANX  ", "  DUNAY @@"), ("ANGARA", "UANX", "DUNAY")),
    (("@@@@", "@@@@@@@", "@@@@"), (None, None, None)),
    (("MARIA@@X", "UB@X", "VOSTOCHNY@ RU"), ("MARIA", "UB", "VOSTOCHNY")),  # nothing after an @ is text
    (("MAIA-1", "UBX", "RAJIN KP"), ("MAIA-1", "UBX", "RAJIN KP")),  # spaces inside are kept
]


def via_nmea(shipname: str, callsign: str, destination: str) -> StaticReport:
    lines = encode(
        {"type": 5, "mmsi": MMSI, "shipname": shipname, "callsign": callsign, "destination": destination}
    )
    decoder = LineDecoder("nmea")
    decoder.feed(lines, NOW)
    decoder.close()
    _, (report,) = decoder.take()
    return report


def json_full(**fields: Any) -> dict[str, Any]:
    """An AIS-catcher JSON_FULL type 5 message (its field names), without sentences."""
    return {"class": "AIS", "device": "AIS-catcher", "rxuxtime": NOW, "type": 5, "mmsi": MMSI, **fields}


def via_json_full(shipname: str, callsign: str, destination: str) -> StaticReport:
    report = aiscatcher_record(json_full(shipname=shipname, callsign=callsign, destination=destination))
    assert isinstance(report, StaticReport)
    return report


def aisstream(**body: Any) -> dict[str, Any]:
    meta = {"MMSI": MMSI, "time_utc": "2023-11-14 22:13:20.000000000 +0000 UTC"}
    return {"MessageType": "ShipStaticData", "MetaData": meta, "Message": {"ShipStaticData": body}}


def via_aisstream(shipname: str, callsign: str, destination: str) -> StaticReport:
    report = aisstream_record(
        aisstream(UserID=MMSI, Name=shipname, CallSign=callsign, Destination=destination)
    )
    assert isinstance(report, StaticReport)
    return report


FEEDS: dict[str, Callable[[str, str, str], StaticReport]] = {
    "nmea": via_nmea,
    "json_full": via_json_full,
    "aisstream": via_aisstream,
}


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize(("sent", "kept"), PADDED)
def test_text_fields_are_trimmed_the_same_from_every_feed(feed: str, sent: Text, kept: Text) -> None:
    shipname, callsign, destination = sent
    assert shipname is not None and callsign is not None and destination is not None
    report = FEEDS[feed](shipname, callsign, destination)
    assert (report.shipname, report.callsign, report.destination) == kept
    assert report.ts == datetime.fromtimestamp(NOW, UTC)


def test_the_one_trimming_rule() -> None:
    assert [text(v) for v in ("LADY R@@@@", "ANGARA  @@", "@@@@", " UANX ", "", None)] == [
        "LADY R",
        "ANGARA",
        None,
        "UANX",
        None,
        None,
    ]


@pytest.mark.parametrize("value", [123, ["LADY R"], "LADY\x00R", "LADY\nR"])
def test_a_json_text_field_that_is_not_text_is_a_feed_error_naming_the_field(value: Any) -> None:
    with pytest.raises(FeedError, match=r"^shipname is not text"):
        aiscatcher_record(json_full(shipname=value))
    with pytest.raises(FeedError, match=r"^Name is not text"):
        aisstream_record(aisstream(UserID=MMSI, Name=value))


def test_json_full_static_data_is_a_static_report_with_its_fields() -> None:
    doc = json_full(
        imo=9161003, callsign="UBLR1", shipname="LADY R@@", shiptype=70, to_bow=90, to_stern=40, to_port=10,
        to_starboard=0, draught=5.1, destination="RAJIN", month=11, day=20, hour=6, minute=30,
    )  # fmt: skip
    chunk = payload_chunk([json.dumps(doc).encode()], received=NOW + 5)
    assert (chunk.positions, chunk.malformed, chunk.messages) == ([], [], 1)
    (s,) = chunk.statics
    assert (s.mmsi, s.msg_type, s.imo, s.callsign, s.shipname, s.ship_type) == (
        MMSI,
        5,
        9161003,
        "UBLR1",
        "LADY R",
        70,
    )
    assert (s.to_bow, s.to_stern, s.to_port, s.to_starboard, s.draught) == (90, 40, 10, None, 5.1)
    assert s.eta == datetime(2023, 11, 20, 6, 30, tzinfo=UTC)
    (other,) = payload_chunk([json.dumps(json_full(type=24, partno=0)).encode()], NOW).malformed
    assert other == ("json", "type 24 is not a position report or type 5")


async def test_json_full_static_data_over_mqtt_is_stored_trimmed(
    database_url: str, tmp_path: Path, mosquitto: Any
) -> None:
    """Through the real broker and the live service into vessel_static."""
    topic = f"aiswatch-test-{os.getpid()}-{time.monotonic_ns()}"
    source = {
        "kind": "mqtt",
        "name": "catcher",
        "host": "127.0.0.1",
        "port": mosquitto.port,
        "topics": [f"{topic}/#"],
        "client_id": f"aiswatch-{time.monotonic_ns()}",
    }
    doc = json_full(shipname="ANGARA  @@", callsign="UANX@@@", destination="@@@@", shiptype=70)
    async with running(live_settings(database_url, tmp_path, [source])) as service:
        await eventually(lambda: service.sources[0].state.connected, what="subscribed")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            await client.publish(f"{topic}/json", json.dumps(doc), qos=1)
        await eventually(lambda: service.sources[0].json_stats.lines >= 1 and unresolved(service) == 0)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute("SELECT mmsi, shipname, callsign, destination, ship_type FROM vessel_static")
        ).fetchall()
    assert rows == [(MMSI, "ANGARA", "UANX", None, 70)]
