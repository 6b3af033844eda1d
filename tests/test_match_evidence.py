"""A watchlist match carries structured evidence: its level follows from the
evidence's roles, and the reasons people read are rendered from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiswatch.scenario import Voyage, _berth, _offing
from detectors.evidence import (
    CallSignAgrees,
    Evidence,
    FlagAgrees,
    Listed,
    MatchLevel,
    NameMatch,
    OtherFlag,
    OtherImo,
    SeenInRegion,
    ShipTypeAgrees,
    level_of,
)
from detectors.watchlist import Identifier, Match, Watchlist, WatchlistEntry, load_watchlist
from detectors.zones import load_zones
from tests.detecting import Run, decode

NAME = NameMatch("MARIA@@", "MARIA")
FLAG = FlagAgrees(273, "RU")


@pytest.mark.parametrize(
    ("evidence", "level"),
    [
        ((Listed("mmsi", 273_000_001, "OFAC", "high"),), "identified"),
        ((NAME,), "candidate"),
        ((NAME, FLAG), "candidate"),
        ((NAME, ShipTypeAgrees(70)), "candidate"),  # no flag: corroboration alone is not enough
        ((NAME, FLAG, ShipTypeAgrees(70)), "probable"),
        ((NAME, FLAG, CallSignAgrees("UBXY7")), "probable"),
        ((NAME, FLAG, SeenInRegion()), "probable"),
        ((NAME, OtherImo(9124043)), "rejected"),
        ((NAME, OtherFlag(215, "MT", "RU"), ShipTypeAgrees(70)), "rejected"),
    ],
)
def test_the_level_follows_from_the_evidence(evidence: tuple[Evidence, ...], level: MatchLevel) -> None:
    assert level_of(evidence) == level


def test_each_piece_of_evidence_reads_as_before() -> None:
    """The words stored in watchlist_matches.reasons (and shown by `aiswatch watchlist`)."""
    assert [
        str(e)
        for e in (
            Listed("imo", 9161003, "OFAC SDN", "high"),
            Listed("mmsi", 273_000_001, "OFAC SDN", "medium"),
            NAME,
            FLAG,
            ShipTypeAgrees(70),
            CallSignAgrees("UBXY7"),
            SeenInRegion(),
            OtherImo(9124043),
            OtherFlag(244, "NL", "RU"),
        )
    ] == [
        "IMO 9161003 listed (OFAC SDN, high)",
        "MMSI 273000001 listed (OFAC SDN, medium)",
        "name 'MARIA@@' matches MARIA",
        "flag RU from MID 273",
        "ship type 70",
        "call sign UBXY7",
        "seen in a watched region",
        "but IMO 9124043 is another ship",
        "but MID 244 is NL, not RU",
    ]


def test_a_listed_call_sign_corroborates_a_name_and_another_does_not() -> None:
    entry = WatchlistEntry("ZARYA", flag="RU", identifiers=(Identifier("callsign", "UBXY7", "test"),))
    watchlist = Watchlist([entry])

    def heard(callsign: str) -> Match:
        (match,) = watchlist.match_static(
            273_000_010, imo=None, shipname="ZARYA", callsign=callsign, ship_type=None
        )
        return match

    listed, other = heard("ubxy7"), heard("ZZZZ9")
    assert listed.level == "probable"
    assert listed.evidence == (NameMatch("ZARYA", "ZARYA"), FlagAgrees(273, "RU"), CallSignAgrees("ubxy7"))
    assert other.level == "candidate"
    assert other.reasons == ("name 'ZARYA' matches ZARYA", "flag RU from MID 273")


def test_a_name_match_corroborated_by_its_track_stays_probable_when_it_reports_its_name_again() -> None:
    """The recorded match (what `aiswatch watchlist` shows) keeps what the track
    added: a repeated static report does not set it back to a candidate."""
    zones = load_zones()
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    ship = Voyage(273_200_018, "MARIA", t0, *_offing(zones, "Dunai"), ship_type=30)  # fishing: no type match
    ship.sail_to(*_berth(zones, "Dunai"), 6).stay(3)
    positions, statics = decode(line for _, line in ship.lines())
    run = Run(watchlist=load_watchlist(), zones=zones)
    run.batch(positions, statics)
    run.finish()
    key = ("MARIA", ship.mmsi)
    assert run.engine.matches[key].level == "probable"
    assert run.engine.matches[key].evidence[-1] == SeenInRegion()
    assert run.engine.matches[key].reasons[-1] == "seen in a watched region"
    run.engine.dirty_matches.clear()
    again = statics[-1]._replace(ts=ship.now + timedelta(minutes=6))
    run.batch([], [again], now=again.ts)
    assert run.engine.matches[key].level == "probable"
    assert run.engine.watched[ship.mmsi].level == "probable"
    assert key not in run.engine.dirty_matches  # nothing changed: nothing to write


def test_a_held_back_candidate_identified_by_a_later_report_has_its_events_reported_at_once() -> None:
    """A name match's events wait until it is corroborated; a static report with
    the listed IMO identifies it, and what was held back is reported then."""
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    ship = Voyage(273_200_030, "LADY R", t0, 35.0, 150.0, ship_type=30)  # far away, no IMO: a candidate
    ship.sail_to(35.0, 150.2, 10).dark().stay(12, ais=False, status=0)
    ship.sail_to(35.0, 150.4, 10)
    positions, statics = decode(line for _, line in ship.lines())
    run = Run(watchlist=load_watchlist())
    run.batch(positions, statics)
    run.finish()
    assert run.engine.watched[ship.mmsi].level == "candidate" and run.events() == {}
    assert any(e.kind == "dark_gap" for e in run.engine.watched[ship.mmsi].track.events.values())
    identified = statics[-1]._replace(ts=ship.now + timedelta(minutes=1), imo=9161003)
    (gap,) = [e for e in run.batch([], [identified], now=identified.ts) if e.kind == "dark_gap"]
    assert gap.vessel == "LADY R" and run.engine.watched[ship.mmsi].level == "identified"
