"""The detectors as pure logic: scenario tests for every event kind and rule.

Tracks are scripted with aiswatch.scenario's Voyage (SYNTHETIC, on the real
port zones), encoded with pyais's encoder, tag-blocked, and decoded by the
real ingest pipeline before the engine sees them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiswatch.scenario import Voyage, _berth, _offing, nmea_lines, voyages
from detectors.rules import DetectorRules
from detectors.watchlist import flag_of, load_watchlist, normalise_name
from detectors.zones import load_zones
from tests.detecting import decode, mmsi_watchlist, replay, scenario_lines, summary

ZONES = load_zones()
T0 = datetime(2024, 3, 1, tzinfo=UTC)
RAJIN, VOSTOCHNY, DUNAI = (_berth(ZONES, p) for p in ("Rajin", "Vostochny", "Dunai"))
OFF_RAJIN, OFF_VOSTOCHNY, OFF_DUNAI = (_offing(ZONES, p) for p in ("Rajin", "Vostochny", "Dunai"))


def lines_of(*ships: Voyage) -> list[str]:
    items = [item for n, v in enumerate(ships) for item in v.lines(first_group=n * 100_000)]
    items.sort(key=lambda item: item[0])
    return [line for _, line in items]


def run_ships(*ships: Voyage, **kwargs: object):  # type: ignore[no-untyped-def]
    positions, statics = decode(lines_of(*ships))
    kwargs.setdefault("watchlist", mmsi_watchlist(v.mmsi for v in ships))
    return replay(positions, statics, **kwargs)  # type: ignore[arg-type]


def kinds(run, mmsi: int | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(e.kind for e in run.events().values() if mmsi is None or e.mmsi == mmsi)


# -- watchlist -----------------------------------------------------------------


def test_names_compare_without_case_spacing_padding_or_lookalikes() -> None:
    assert normalise_name("Maia-1") == normalise_name("MAIA 1@@@@") == normalise_name("maia I")
    assert normalise_name("\u041c\u0410RI\u0410") == normalise_name("MARIA")  # Cyrillic M, A, A
    assert normalise_name("LADY R") != normalise_name("LADY RA")
    assert normalise_name(None) == ""


def test_flags_come_from_the_mid() -> None:
    assert flag_of(273_100_001) == "RU"
    assert flag_of(445_000_001) == "KP"
    assert flag_of(667_000_001) == "SL"
    assert flag_of(244_650_796) == "NL"
    assert flag_of(2_190_048) is None  # a coast station's 00MIDxxxx form is not a ship's flag
    assert flag_of(111_000_000) is None


def test_imo_or_mmsi_identify_a_corroborated_name_is_probable_and_contradictions_reject() -> None:
    watchlist = load_watchlist()
    (lady,) = watchlist.match_static(
        273_000_001, imo=9161003, shipname="SOMETHING ELSE", callsign=None, ship_type=None
    )
    assert lady.level == "identified" and lady.entry.name == "LADY R"
    (maria,) = watchlist.match_static(273_000_002, imo=None, shipname="MARIA", callsign=None, ship_type=70)
    assert maria.level == "probable" and maria.reasons == (
        "name 'MARIA' matches MARIA",
        "flag RU from MID 273",
        "ship type 70",
    )
    (named,) = watchlist.match_static(273_000_002, imo=None, shipname="MARIA", callsign=None, ship_type=30)
    assert named.level == "candidate" and named.reasons == (
        "name 'MARIA' matches MARIA",
        "flag RU from MID 273",
    )
    (maltese,) = watchlist.match_static(215_000_003, imo=None, shipname="MARIA", callsign=None, ship_type=70)
    assert maltese.level == "rejected" and "MT, not RU" in maltese.reasons[-1]
    (namesake,) = watchlist.match_static(
        273_000_004, imo=9124043, shipname="ANGARA", callsign=None, ship_type=70
    )
    assert namesake.level == "rejected" and "9124043 is another ship" in namesake.reasons[-1]
    (other_imo,) = watchlist.match_static(
        273_000_005, imo=1234567, shipname="LADY R", callsign=None, ship_type=70
    )
    assert other_imo.level == "rejected"
    (alias,) = watchlist.match_static(273_000_006, imo=None, shipname="MAYA-1", callsign=None, ship_type=None)
    assert alias.entry.name == "MAIA-1" and alias.level == "candidate"
    assert (
        watchlist.match_static(273_000_007, imo=None, shipname="NOBODY", callsign=None, ship_type=None) == []
    )


# -- zones -----------------------------------------------------------------------


def test_nakhodka_bay_stays_outside_vostochny_and_the_exit_margin_holds_a_ship_inside() -> None:
    vostochny = next(p for p in ZONES.ports if p.name == "Vostochny")
    outer = vostochny.outermost
    assert not outer.contains(42.807, 132.893, inside_already=False)
    assert not outer.contains(42.807, 132.893, inside_already=True)
    west = outer.bounds[0] + 1.0 / outer.frame.kx  # the polygon's west edge (bounds include the 1 km margin)
    just_outside = west - 0.3 / outer.frame.kx  # 300 m west of the edge
    assert not outer.contains(42.72, just_outside, inside_already=False)
    assert outer.contains(42.72, just_outside, inside_already=True)
    assert not outer.contains(42.72, west - 2.0 / outer.frame.kx, inside_already=True)


def test_a_ship_on_the_boundary_does_not_flap() -> None:
    outer = next(p for p in ZONES.ports if p.name == "Dunai").outermost
    west = outer.bounds[0] + 1.0 / outer.frame.kx
    ship = Voyage(273_200_001, "ZIGZAG", T0, 42.86, west - 0.05)
    for k in range(12):  # zigzag 300 m either side of the west edge, every 10 minutes
        ship.sail_to(42.86 + 0.002 * k, west + (0.004 if k % 2 else -0.004), 2, every_s=120)
    ship.sail_to(42.86, west - 0.2, 8)  # then away for good
    run = run_ships(ship)
    assert kinds(run) == ["zone_entry", "zone_exit"]


# -- port calls, entries, appearances --------------------------------------------


def test_a_port_call_with_arrival_departure_dwell_and_draught() -> None:
    ship = Voyage(273_200_002, "LOADER", T0, OFF_RAJIN[0] - 0.2, OFF_RAJIN[1], draught=5.0)
    ship.sail_to(*OFF_RAJIN, 10).sail_to(*RAJIN, 6).stay(20).static(draught=7.5).stay(4)
    ship.sail_to(*OFF_RAJIN, 8).sail_to(OFF_RAJIN[0] - 0.3, OFF_RAJIN[1], 10)
    run = run_ships(ship)
    calls = [e for e in run.events().values() if e.kind == "port_call"]
    assert [(c.port, c.state) for c in calls] == [("Rajin", "closed")]
    call = calls[0]
    entry = next(e for e in run.events().values() if e.kind == "zone_entry" and e.key == "approach")
    exit_ = next(e for e in run.events().values() if e.kind == "zone_exit" and e.key == "approach")
    assert call.start == entry.start and call.end is not None and call.end < exit_.start
    assert call.details["dwell_h"] == pytest.approx((call.end - call.start).total_seconds() / 3600, abs=0.001)
    assert 24 < call.details["dwell_h"] < 26
    assert (call.details["draught_arrival"], call.details["draught_departure"], call.details["loaded"]) == (
        5.0,
        7.5,
        True,
    )
    assert call.details["berth"] is True and call.details["arrival_observed"] is True
    assert sorted(e.key for e in run.events().values() if e.kind == "zone_entry") == ["approach", "berth"]
    assert kinds(run).count("draught_change") == 1


def test_passing_through_a_port_zone_without_stopping_is_no_port_call() -> None:
    ship = Voyage(273_200_003, "PASSER", T0, 42.70, 132.90)
    ship.sail_to(42.70, 133.25, 10)  # straight through Vostochny's approach zone at 10 kn
    assert kinds(run_ships(ship)) == ["zone_entry", "zone_exit"]


def test_a_stop_shorter_than_the_minimum_stay_is_no_port_call() -> None:
    ship = Voyage(273_200_004, "BRIEF", T0, *OFF_DUNAI)
    ship.sail_to(*DUNAI, 6).stay(0.5).sail_to(*OFF_DUNAI, 8)
    assert "port_call" not in kinds(run_ships(ship))
    longer = Voyage(273_200_004, "BRIEF", T0, *OFF_DUNAI)
    longer.sail_to(*DUNAI, 6).stay(1.5).sail_to(*OFF_DUNAI, 8)
    assert "port_call" in kinds(run_ships(longer))


def test_a_call_is_open_while_the_ship_is_still_there() -> None:
    ship = Voyage(273_200_005, "STAYER", T0, *OFF_VOSTOCHNY)
    ship.sail_to(*VOSTOCHNY, 6).stay(5)
    (call,) = [e for e in run_ships(ship).events().values() if e.kind == "port_call"]
    assert call.state == "open" and call.end is None and call.details["dwell_h"] is None


def test_a_ship_first_seen_inside_a_port_appeared_there_and_so_did_one_back_from_silence() -> None:
    seen_first = Voyage(273_200_006, "FIRST", T0, *VOSTOCHNY)
    seen_first.stay(3)
    dark_arrival = Voyage(273_200_007, "DARK", T0, OFF_RAJIN[0] - 0.5, OFF_RAJIN[1])
    dark_arrival.sail_to(OFF_RAJIN[0] - 0.3, OFF_RAJIN[1], 10).dark()
    dark_arrival.sail_to(*OFF_RAJIN, 10, ais=False).sail_to(*RAJIN, 6, ais=False).stay(2, ais=False).stay(3)
    run = run_ships(seen_first, dark_arrival)
    first = [e for e in run.events().values() if e.kind == "appeared_in_port" and e.mmsi == seen_first.mmsi]
    assert [(e.port, e.details["first_seen"]) for e in first] == [("Vostochny", True)]
    dark = [e for e in run.events().values() if e.kind == "appeared_in_port" and e.mmsi == dark_arrival.mmsi]
    assert [(e.port, e.details["first_seen"]) for e in dark] == [("Rajin", False)]
    assert dark[0].details["silent_h"] > 3
    (call,) = [e for e in run.events().values() if e.kind == "port_call" and e.mmsi == dark_arrival.mmsi]
    assert call.details["arrival_observed"] is False and call.start == dark[0].start
    assert "zone_entry" not in kinds(run, dark_arrival.mmsi)  # an appearance is not an observed entry


# -- going dark --------------------------------------------------------------------


def test_a_gap_opens_on_the_clock_closes_on_reappearance_and_says_which_ports_were_reachable() -> None:
    ship = Voyage(273_200_008, "SHUTTLE", T0, OFF_VOSTOCHNY[0] - 0.5, OFF_VOSTOCHNY[1] - 1.5)
    ship.sail_to(OFF_VOSTOCHNY[0] - 0.5, OFF_VOSTOCHNY[1] - 1.6, 10).dark()
    ship.stay(26, ais=False, status=0).sail_to(OFF_VOSTOCHNY[0] - 0.5, OFF_VOSTOCHNY[1] - 1.7, 10)
    positions, statics = decode(lines_of(ship))
    watchlist = mmsi_watchlist([ship.mmsi])
    silent_from = max(p.ts for p in positions if p.ts < T0 + timedelta(hours=10))
    before = [p for p in positions if p.ts <= silent_from]
    after = [p for p in positions if p.ts > silent_from]

    from tests.detecting import Run

    run = Run(watchlist)
    run.batch(before, [s for s in statics if s.ts <= silent_from])
    run.batch([], [], now=silent_from + timedelta(minutes=30))
    assert "dark_gap" not in kinds(run)  # under way near the ports: the threshold is 1 h
    run.batch([], [], now=silent_from + timedelta(hours=2))
    (gap,) = [e for e in run.events().values() if e.kind == "dark_gap"]
    assert gap.state == "open" and gap.start == silent_from and gap.details["threshold_h"] == 1.0
    run.batch(after, [s for s in statics if s.ts > silent_from])
    run.finish()
    (closed,) = [e for e in run.events().values() if e.kind == "dark_gap"]
    assert closed.id == gap.id and closed.state == "closed"
    d = closed.details
    assert 25.9 < d["duration_h"] < 26.2 and d["distance_nm"] < 0.5  # it drifted, dark, where it was
    assert d["implied_speed_kn"] < 1
    assert {r["port"] for r in d["reachable_ports"]} == {"Rajin", "Vostochny", "Dunai"}


def test_a_short_gap_reaches_no_port_and_a_far_one_reaches_only_the_near_port() -> None:
    # 3 h dark 100 nm from Rajin: silence above the 1 h threshold, but no port reachable and back.
    ship = Voyage(273_200_009, "SHORT", T0, 41.0, 131.5)
    ship.sail_to(41.0, 131.6, 10).dark().stay(3, ais=False, status=0).sail_to(41.0, 131.7, 10)
    (gap,) = [e for e in run_ships(ship).events().values() if e.kind == "dark_gap"]
    assert gap.details["reachable_ports"] == []
    # 12 h dark just off Dunai: Dunai and Vostochny within reach at 13 kn, Rajin (~90 nm) not.
    near = Voyage(273_200_010, "NEAR", T0, OFF_DUNAI[0] - 0.1, OFF_DUNAI[1])
    near.sail_to(OFF_DUNAI[0] - 0.12, OFF_DUNAI[1], 10).dark().stay(12, ais=False, status=0)
    near.sail_to(OFF_DUNAI[0] - 0.14, OFF_DUNAI[1], 10)
    (gap,) = [
        e
        for e in run_ships(near, rules=DetectorRules(default_max_speed_kn=13)).events().values()
        if e.kind == "dark_gap"
    ]
    assert {r["port"] for r in gap.details["reachable_ports"]} == {"Dunai", "Vostochny"}


def test_thresholds_depend_on_state_and_place() -> None:
    far = (35.0, 140.0)  # off Japan's Pacific coast: far from the watched ports
    for lat, lon, status, speed, expected in [
        (*OFF_RAJIN, 5, 0.0, 3.0),
        (*OFF_RAJIN, 0, 10.0, 1.0),
        (*far, 1, 0.0, 12.0),
        (*far, 0, 12.0, 6.0),
    ]:
        ship = Voyage(273_200_011, "T", T0, lat, lon)
        ship._position(speed, 0, status)
        ship.now += timedelta(hours=expected - 0.2)
        ship._position(speed, 0, status)
        ship.now += timedelta(hours=expected + 0.2)
        ship._position(speed, 0, status)
        gaps = [e for e in run_ships(ship).events().values() if e.kind == "dark_gap"]
        assert [g.details["threshold_h"] for g in gaps] == [expected], (lat, lon, status)


def test_late_messages_that_fill_a_gap_withdraw_it() -> None:
    ship = Voyage(273_200_012, "LATE", T0, 41.5, 131.5)
    ship.sail_to(41.5, 132.5, 10)  # 45 nm, 4.5 h, one report a minute
    positions, statics = decode(lines_of(ship))
    hole = [p for p in positions if T0 + timedelta(hours=1) < p.ts < T0 + timedelta(hours=3)]
    rest = [p for p in positions if p not in hole]

    from tests.detecting import Run

    run = Run(mmsi_watchlist([ship.mmsi]), lateness_s=60)
    run.batch(rest, statics)
    run.finish()
    (gap,) = [e for e in run.events().values() if e.kind == "dark_gap"]
    assert gap.state == "closed"
    run.batch(hole, [])  # satellite data, hours late
    run.finish()
    assert [e for e in run.events().values() if e.kind == "dark_gap"] == []
    assert run.engine.committed[gap.id].state == "withdrawn"


# -- plausibility --------------------------------------------------------------------


def test_a_jump_is_flagged_and_kept_out_of_zone_logic_and_missing_positions_are_counted() -> None:
    ship = Voyage(273_200_013, "JUMPER", T0, 41.5, 131.0)
    ship.sail_to(41.5, 131.3, 10)
    ship.jump(*VOSTOCHNY)  # one fix inside Vostochny's berth, 100 nm away, 30 s later
    ship.sail_to(41.5, 131.6, 10)
    lines = lines_of(ship)
    lines += nmea_lines(
        ship.now + timedelta(minutes=1), {"type": 1, "mmsi": ship.mmsi, "lat": 91, "lon": 181}
    )
    run = run_ships(ship)
    assert kinds(run) == ["implausible_position"]
    positions, statics = decode(lines)
    again = replay(positions, statics, watchlist=mmsi_watchlist([ship.mmsi]))
    assert kinds(again) == ["implausible_position"]
    assert again.engine.watched[ship.mmsi].track.counts["position_not_available"] == 1


def test_far_inland_positions_are_ignored_with_a_count() -> None:
    from detectors.engine import DetectorEngine
    from detectors.land import InlandMask

    ship = Voyage(273_200_014, "LOST", T0, 41.5, 131.0)
    ship.sail_to(41.5, 131.1, 10)
    ship.jump(55.75, 37.62)  # Moscow
    positions, statics = decode(lines_of(ship))
    engine = DetectorEngine(mmsi_watchlist([ship.mmsi]), ZONES, land=InlandMask())
    engine.observe(positions, statics)
    engine.finish()
    counts = engine.watched[ship.mmsi].track.counts
    assert counts["position_inland"] == 1 and counts["position_implausible"] == 0


# -- identity --------------------------------------------------------------------------


def test_changes_of_name_callsign_destination_and_draught_are_events_first_reports_are_not() -> None:
    ship = Voyage(273_200_015, "OLD NAME", T0, 41.0, 131.0, callsign="UAAA", destination="RAJIN", draught=5.0)
    ship.sail_to(41.0, 131.1, 10).static(name="NEW NAME", callsign="UBBB").sail_to(41.0, 131.2, 10)
    ship.static(destination="VOSTOCHNY", draught=7.0).sail_to(41.0, 131.3, 10)
    changes = sorted(
        (e.kind, tuple(sorted(e.details.get("changes", e.details))))
        for e in run_ships(ship).events().values()
    )
    assert changes == [
        ("draught_change", ("draught_m",)),
        ("identity_change", ("callsign", "shipname")),
        ("identity_change", ("destination",)),
    ]


def test_an_imo_heard_from_a_new_mmsi_is_an_identity_change_with_the_flag() -> None:
    old = Voyage(273_200_016, "ANGARA", T0, 41.0, 131.0, imo=9179842)
    old.sail_to(41.0, 131.1, 10)
    new = Voyage(667_200_017, "ANGARA", old.now + timedelta(hours=2), 41.0, 131.2, imo=9179842)
    new.sail_to(41.0, 131.3, 10)
    run = run_ships(old, new, watchlist=load_watchlist())
    (change,) = [e for e in run.events().values() if e.kind == "identity_change"]
    assert change.mmsi == new.mmsi and change.vessel == "ANGARA"
    assert change.details["changes"] == {"mmsi": [old.mmsi, new.mmsi], "flag": ["RU", "SL"]}


def test_a_name_match_reports_only_once_corroborated_and_never_for_a_contradicted_namesake() -> None:
    watchlist = load_watchlist()
    away = Voyage(273_200_018, "MARIA", T0, 35.0, 150.0, ship_type=30)  # Russian flag, fishing type, far away
    away.sail_to(35.0, 150.3, 10)
    assert run_ships(away, watchlist=watchlist).engine.watched[away.mmsi].level == "candidate"
    here = Voyage(273_200_018, "MARIA", T0, *OFF_DUNAI, ship_type=30)  # the same, in the region
    here.sail_to(*DUNAI, 6).stay(3)
    run = run_ships(here, watchlist=watchlist)
    assert run.engine.watched[here.mmsi].level == "probable"
    assert {e.vessel for e in run.events().values()} == {"MARIA"}
    decoy = Voyage(215_200_019, "MARIA", T0, *OFF_DUNAI, ship_type=70)  # Maltese MARIA calling at Dunai
    decoy.sail_to(*DUNAI, 6).stay(3)
    run = run_ships(decoy, watchlist=watchlist)
    assert run.events() == {} and decoy.mmsi not in run.engine.watched
    assert run.engine.matches[("MARIA", decoy.mmsi)].level == "rejected"


# -- the whole scenario, and the properties of a replay ----------------------------------------


def test_the_scenario_gives_the_events_its_script_implies(tmp_path: Path) -> None:
    positions, statics = decode(scenario_lines(tmp_path))
    run = replay(positions, statics, batch=400)
    events = run.events().values()
    assert {e.mmsi for e in events}.isdisjoint({215_100_005, 667_100_006})  # the decoys
    by_vessel = {
        v: sorted(e.kind for e in events if e.vessel == v) for v in ("LADY R", "ANGARA", "MARIA", "MAIA-1")
    }
    assert by_vessel["LADY R"].count("port_call") == 2
    assert by_vessel["LADY R"].count("implausible_position") == 1
    assert by_vessel["MARIA"].count("appeared_in_port") == 1
    calls = {(e.vessel, e.port): e for e in events if e.kind == "port_call"}
    assert calls[("LADY R", "Rajin")].details["loaded"] is True
    assert calls[("LADY R", "Vostochny")].details["arrival_observed"] is False
    assert calls[("MARIA", "Dunai")].details["arrival_observed"] is False
    lady_gap = next(e for e in events if e.vessel == "LADY R" and e.kind == "dark_gap")
    assert lady_gap.state == "closed" and 100 < lady_gap.details["distance_nm"] < 140
    assert "Vostochny" in {r["port"] for r in lady_gap.details["reachable_ports"]}
    mmsi_change = [e for e in events if e.kind == "identity_change" and "mmsi" in e.details["changes"]]
    assert [(e.vessel, e.details["changes"]["mmsi"]) for e in mmsi_change] == [
        ("ANGARA", [273_100_002, 273_100_012])
    ]
    assert len(voyages()) == 7


def test_the_same_messages_twice_or_shuffled_within_the_lateness_give_the_same_events(tmp_path: Path) -> None:
    positions, statics = decode(scenario_lines(tmp_path))
    once = replay(positions, statics, batch=300)
    expected = summary(once.events().values())
    assert once.events() == replay(positions, statics, batch=300, shuffle_seed=7).events()
    assert once.events() == replay(positions, statics, batch=1000, shuffle_seed=11).events()
    revisions = len(once.revisions)
    for start in range(0, len(positions), 2000):  # the same messages again: nothing changes
        once.batch(positions[start : start + 2000], statics)
    once.finish()
    assert len(once.revisions) == revisions and summary(once.events().values()) == expected


# -- clocks of periods (issue 11) -------------------------------------------------


def test_periods_merge_within_the_gap_and_say_where_a_time_belongs() -> None:
    from detectors.periods import Periods

    periods = Periods(timedelta(days=30))
    periods.add(T0, T0 + timedelta(days=1))
    periods.add(T0 + timedelta(days=400), T0 + timedelta(days=401))
    periods.add(T0 + timedelta(days=10), T0 + timedelta(days=12))  # within 30 days: one period
    assert periods.spans == [
        (T0, T0 + timedelta(days=12)),
        (T0 + timedelta(days=400), T0 + timedelta(days=401)),
    ]
    assert periods.end_of(T0 + timedelta(days=5)) == T0 + timedelta(days=12)
    assert periods.end_of(T0 + timedelta(days=400, hours=1)) == T0 + timedelta(days=401)
    assert periods.end_of(T0 + timedelta(days=100)) is None
    periods.add(T0 + timedelta(days=40), T0 + timedelta(days=380))  # bridges both
    assert periods.spans == [(T0, T0 + timedelta(days=401))]


def test_an_archive_vessel_is_judged_by_its_period_not_by_todays_clock() -> None:
    """Live today, an archive of 2024 streaming in: its ship, silent for the
    last 40 minutes of the archive (under the 1 h threshold near the ports),
    has no dark gap; the live ship silent for 2 hours has one."""
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    old = Voyage(273_200_011, "ARCHIVED", T0, OFF_VOSTOCHNY[0] - 0.5, OFF_VOSTOCHNY[1] - 1.5)
    old.sail_to(OFF_VOSTOCHNY[0] - 0.5, OFF_VOSTOCHNY[1] - 1.6, 10)
    other = Voyage(273_200_012, "NEIGHBOUR", T0, OFF_RAJIN[0] - 0.5, OFF_RAJIN[1] - 1.0)
    other.sail_to(OFF_RAJIN[0] - 0.5, OFF_RAJIN[1] - 2.0, 10)
    today = Voyage(273_200_013, "TODAY", now - timedelta(hours=3), OFF_DUNAI[0] - 0.5, OFF_DUNAI[1] - 1.0)
    today.sail_to(OFF_DUNAI[0] - 0.5, OFF_DUNAI[1] - 1.1, 10)
    positions, statics = decode(lines_of(old, other, today))
    last_old = max(p.ts for p in positions if p.mmsi == old.mmsi)
    archive_end = last_old + timedelta(minutes=40)
    positions = [p for p in positions if p.mmsi != other.mmsi or p.ts <= archive_end]
    statics = [s for s in statics if s.mmsi != other.mmsi or s.ts <= archive_end]
    assert max(p.ts for p in positions if p.mmsi == other.mmsi) > last_old + timedelta(minutes=30)
    from tests.detecting import Run

    run = Run(mmsi_watchlist([old.mmsi, today.mmsi]))
    live_part = [p for p in positions if p.ts > now - timedelta(days=1)]
    archive = [p for p in positions if p.ts <= now - timedelta(days=1)]
    run.batch(live_part, [s for s in statics if s.ts > now - timedelta(days=1)], now=now)
    run.batch(archive, [s for s in statics if s.ts <= now - timedelta(days=1)], now=now)
    run.batch([], [], now=now + timedelta(seconds=1))
    gaps = {e.mmsi for e in run.events().values() if e.kind == "dark_gap"}
    assert today.mmsi in gaps  # its last fix was hours before the clock
    assert old.mmsi not in gaps  # its archive ends 40 minutes after its last fix


def test_one_batch_of_a_live_feed_and_an_archive_keeps_their_periods_apart() -> None:
    """Found in review: a write carrying both must not join 2024 to today."""
    from detectors.periods import spans_of

    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    times = [T0, T0 + timedelta(hours=5), now - timedelta(minutes=1), now]
    assert spans_of(times) == [(T0, T0 + timedelta(hours=5)), (now - timedelta(minutes=1), now)]
    archived = Voyage(273_200_021, "ARCHIVED", T0, OFF_VOSTOCHNY[0] - 0.5, OFF_VOSTOCHNY[1] - 1.5)
    archived.sail_to(OFF_VOSTOCHNY[0] - 0.5, OFF_VOSTOCHNY[1] - 1.6, 10)
    today = Voyage(273_200_022, "TODAY", now - timedelta(hours=1), OFF_DUNAI[0] - 0.5, OFF_DUNAI[1] - 1.0)
    today.sail_to(OFF_DUNAI[0] - 0.5, OFF_DUNAI[1] - 1.1, 10)
    positions, statics = decode(lines_of(archived, today))
    from tests.detecting import Run

    run = Run(mmsi_watchlist([archived.mmsi, today.mmsi]))
    run.batch(positions, statics, now=now)  # one batch, both eras
    spans = run.engine.periods.spans
    assert len(spans) == 2 and spans[0][1] < now - timedelta(days=365)


def test_an_event_named_for_its_watchlist_entry_is_the_replaced_one() -> None:
    from dataclasses import replace

    from ingest.records import Event

    event = Event(
        kind="dark_gap", mmsi=273_100_001, start=datetime(2024, 3, 1, tzinfo=UTC), details={"gap_h": 9.5}
    )
    named = event.named("LADY R", 9_161_003)
    assert named == replace(event, vessel="LADY R", imo=9_161_003)
    assert (named.id, named.vessel, named.imo, event.vessel) == (event.id, "LADY R", 9_161_003, "")
