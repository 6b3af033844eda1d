"""Payloads to records: not-available values, text, ship types, lengths, time."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.decode import eta_from, refine_to_second, text
from ingest.pipeline import LineDecoder
from ingest.records import Position, StaticReport
from tests.helpers import encode, position, sentence, tag_block, with_bits

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def decode(*lines: bytes, received: float = NOW) -> tuple[list[Position], list[StaticReport], LineDecoder]:
    decoder = LineDecoder("test")
    decoder.feed(lines, received)
    decoder.close()
    positions, statics = decoder.take()
    return positions, statics, decoder


def test_a_position_is_decoded() -> None:
    (p,), _, _ = decode(tag_block(c=1_600_000_000) + position(lat=42.25, lon=130.3, speed=11.2, course=200.5))
    assert (p.mmsi, p.msg_type, p.lat, p.lon, p.speed, p.course, p.heading, p.status) == (
        273456780,
        1,
        42.25,
        130.3,
        11.2,
        200.5,
        120,
        0,
    )
    assert p.ts == datetime.fromtimestamp(1_600_000_000, UTC)


def test_not_available_values_are_none_never_positions() -> None:
    (p,), _, _ = decode(position(lat=91, lon=181, speed=102.3, course=360, heading=511, second=60, turn=-128))
    assert (p.lat, p.lon, p.speed, p.course, p.heading, p.second, p.turn) == (None,) * 7


def test_type_27_not_available_values() -> None:
    (line,) = encode({"type": 27, "mmsi": 273456780, "lat": 91, "lon": 181, "speed": 63, "course": 511})
    (p,), _, _ = decode(line)
    assert (p.msg_type, p.lat, p.lon, p.speed, p.course) == (27, None, None, None, None)
    (line,) = encode({"type": 27, "mmsi": 273456780, "lat": 42.25, "lon": 130.3, "speed": 10, "course": 180})
    (p,), _, _ = decode(line)
    assert (p.lat, p.lon, p.speed, p.course) == (42.25, 130.3, 10.0, 180.0)


def test_static_report_type_5_keeps_reserved_ship_types_and_cuts_text() -> None:
    lines = encode({
        "type": 5, "mmsi": 273456780, "imo": 9161003, "callsign": "UBCD7", "shipname": "LADY R",
        "ship_type": 100, "to_bow": 100, "to_stern": 40, "to_port": 10, "to_starboard": 12,
        "month": 3, "day": 14, "hour": 6, "minute": 30, "draught": 7.5, "destination": "VOSTOCHNY",
    })  # fmt: skip
    lines = with_bits(lines, 232, 8, 100)  # a reserved ship type, which pyais would turn into 0
    _, (s,), decoder = decode(tag_block(c=1710300000) + lines[0], lines[1], received=1710300100)
    assert (s.imo, s.callsign, s.shipname, s.ship_type, s.destination, s.draught) == (
        9161003,
        "UBCD7",
        "LADY R",
        100,
        "VOSTOCHNY",
        7.5,
    )
    assert (s.to_bow, s.to_stern, s.to_port, s.to_starboard) == (100, 40, 10, 12)
    assert s.eta == datetime(2024, 3, 14, 6, 30, tzinfo=UTC)
    assert s.sentences == 2 and decoder.stats.accepted == 2
    assert s.ts == datetime.fromtimestamp(1710300000, UTC)  # timed by its first fragment


def test_text_is_cut_at_the_first_at_sign() -> None:
    assert text("LADY R@@@@@@") == "LADY R"
    assert text("MAIA@1 @@") == "MAIA"
    assert text("@@@@") is None
    assert text("  ") is None


def test_type_24_parts_are_joined() -> None:
    (a,) = encode({"type": 24, "mmsi": 273456780, "partno": 0, "shipname": "MAIA-1"})
    (b,) = encode(
        {"type": 24, "mmsi": 273456780, "partno": 1, "callsign": "UBX", "ship_type": 70, "to_bow": 50}
    )
    _, (first, joined), _ = decode(a, b)
    assert (first.shipname, first.callsign) == ("MAIA-1", None)
    assert (joined.shipname, joined.callsign, joined.ship_type, joined.to_bow) == ("MAIA-1", "UBX", 70, 50)


def test_type_19_is_a_position_and_a_static_report() -> None:
    (line,) = encode({"type": 19, "mmsi": 273456780, "lat": 42.2, "lon": 130.3, "shipname": "ANGARA",
                      "ship_type": 70, "speed": 5})  # fmt: skip
    (p,), (s,), decoder = decode(line)
    assert (p.msg_type, p.lat, p.speed) == (19, 42.2, 5.0)
    assert (s.shipname, s.ship_type) == ("ANGARA", 70)
    assert decoder.stats.accepted == 1  # one line, accounted once


def test_short_messages_are_malformed_and_long_ones_decoded() -> None:
    payload = "13HOI:0P0000VOHLCnHQKwvL05Ip"
    _, _, short = decode(sentence(f"AIVDM,1,1,,A,{payload[:-1]},0"))
    assert short.stats.malformed == {"length": 1}
    (p,), _, _ = decode(sentence(f"AIVDM,1,1,,A,{payload}HlavPF,0"))  # 204 bits, as some transponders send
    assert p.mmsi == 227006760


def test_other_message_types_are_counted_not_stored() -> None:
    (line,) = encode({"type": 4, "mmsi": 2573000, "lat": 60.0, "lon": 5.0})
    positions, statics, decoder = decode(line)
    assert positions == statics == []
    assert decoder.stats.filtered == {"type_not_stored": 1}
    assert decoder.stats.messages_by_type == {4: 1}


def test_time_from_arrival_is_moved_back_to_the_ais_second() -> None:
    minute = 1_700_000_040  # hh:mm:00
    assert refine_to_second(minute + 12.7, 10) == minute + 10
    assert refine_to_second(minute + 12.7, 50) == minute - 10  # second 50 of the minute before
    assert refine_to_second(minute + 12.7, None) == minute + 12
    (p,), _, _ = decode(position(second=5), received=minute + 7.5)  # no tag block: arrival time
    assert p.ts == datetime.fromtimestamp(minute + 5, UTC)


def test_eta_is_the_nearest_occurrence() -> None:
    when = datetime(2024, 12, 20, tzinfo=UTC)
    assert eta_from(when, 1, 5, 12, 0) == datetime(2025, 1, 5, 12, 0, tzinfo=UTC)
    assert eta_from(when, 11, 30, 0, 0) == datetime(2024, 11, 30, tzinfo=UTC)
    assert eta_from(when, 0, 0, 24, 60) is None
    assert eta_from(when, 2, 30, 12, 0) is None


def test_event_times_far_in_the_future_are_malformed() -> None:
    _, _, decoder = decode(tag_block(c=NOW + 10 * 86400) + position(), received=NOW)
    assert decoder.stats.malformed == {"timestamp": 1}
