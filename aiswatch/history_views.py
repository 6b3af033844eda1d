"""How voyages, presences in an area and last positions are printed: the
same JSON for the CLI's ``jsonl`` and the HTTP API, tables for people. Every
time is UTC and says so."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiswatch.exports import utc
from storage.vessels import LastPosition, Presence, Vessel
from storage.voyages import DarkLeg, Voyage


def _minute(ts: datetime | None) -> str:
    return "-" if ts is None else f"{ts:%Y-%m-%d %H:%M}Z"


def vessel_json(vessel: Vessel) -> dict[str, Any]:
    return {"label": vessel.label, "mmsis": list(vessel.mmsis), "matched_by": vessel.matched_by}


def dark_leg_json(leg: DarkLeg) -> dict[str, Any]:
    end = None if leg.end is None else utc(leg.end)
    hours = None if leg.end is None else round((leg.end - leg.start).total_seconds() / 3600, 3)
    return {"start": utc(leg.start), "end": end, "hours": hours, "distance_nm": leg.distance_nm}


def voyage_json(voyage: Voyage) -> dict[str, Any]:
    return {
        "origin": voyage.origin, "destination": voyage.destination, "departure": utc(voyage.departure),
        "arrival": utc(voyage.arrival), "ongoing": voyage.ongoing, "duration_h": round(voyage.duration_h, 3),
        "distance_nm": voyage.distance_nm, "dark_h": voyage.dark_h, "fixes": voyage.fixes,
        "dark_legs": [dark_leg_json(leg) for leg in voyage.dark_legs],
    }  # fmt: skip


def voyages_table(vessel: Vessel, voyages: Sequence[Voyage]) -> str:
    head = (
        f"Voyages of {vessel.label} (MMSI {', '.join(map(str, vessel.mmsis))}); times UTC\n"
        f"{'from':<11} {'to':<11} {'departed':<17}  {'arrived':<17}  {'hours':>6} {'nm':>7} {'dark h':>6}"
    )
    lines = [head]
    for v in voyages:
        arrived = _minute(v.arrival) + (" (last seen)" if v.ongoing else "")
        lines.append(
            f"{v.origin or '(at sea)':<11} {v.destination or '(at sea)':<11} {_minute(v.departure):<17}  "
            f"{arrived:<17}  {v.duration_h:>6.1f} {v.distance_nm:>7.1f} {v.dark_h:>6.1f}"
        )
        for leg in v.dark_legs:
            hours = (
                "still dark" if leg.end is None else f"{(leg.end - leg.start).total_seconds() / 3600:.1f} h"
            )
            lines.append(
                f"{'':<11}   dark leg {_minute(leg.start)} to {_minute(leg.end)}: {hours},"
                f" {leg.distance_nm:.1f} nm in a straight line"
            )
    return "\n".join(lines)


def presence_json(presence: Presence) -> dict[str, Any]:
    return {
        "mmsi": presence.mmsi, "shipname": presence.shipname, "imo": presence.imo,
        "first": utc(presence.first), "last": utc(presence.last), "fixes": presence.fixes,
    }  # fmt: skip


def presences_table(label: str, presences: Sequence[Presence]) -> str:
    return "\n".join([
        f"Vessels in {label}; times UTC",
        f"{'MMSI':>9}  {'name':<22} {'IMO':>8}  {'first':<17}  {'last':<17}  {'fixes':>6}",
        *(f"{p.mmsi:>9}  {p.shipname or '':<22} {p.imo or '':>8}  {_minute(p.first):<17}  "
          f"{_minute(p.last):<17}  {p.fixes:>6}" for p in presences),
    ])  # fmt: skip


def last_position_json(last: LastPosition) -> dict[str, Any]:
    return {
        "vessel": last.entry, "mmsi": last.mmsi, "shipname": last.shipname, "ts": utc(last.ts),
        "lat": last.lat, "lon": last.lon, "speed_kn": last.speed, "course": last.course,
    }  # fmt: skip


def last_positions_table(positions: Sequence[LastPosition]) -> str:
    def row(p: LastPosition) -> str:
        speed = "" if p.speed is None else f"{p.speed:.1f}"
        return (
            f"{p.entry:<10} {p.mmsi:>9}  {p.shipname or '':<16} {_minute(p.ts):<17}  {p.lat:>9.5f}"
            f" {p.lon:>10.5f} {speed:>5}"
        )

    return "\n".join([
        "Last known positions of the watched ships; times UTC",
        f"{'vessel':<10} {'MMSI':>9}  {'broadcast name':<16} {'time':<17}  {'lat':>9} {'lon':>10} {'kn':>5}",
        *(row(p) for p in positions),
    ])  # fmt: skip


def _fix_json(row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    ts, mmsi, lat, lon, speed, course = row
    return {"ts": utc(ts), "mmsi": mmsi, "lat": lat, "lon": lon, "speed_kn": speed, "course": course}


def position_json(
    vessel: Vessel, at: datetime, before: tuple[Any, ...] | None, after: tuple[Any, ...] | None
) -> dict[str, Any]:
    """Where a vessel was at ``at``: the fixes either side (each None if there is none)."""
    return {"times": "UTC", "vessel": vessel_json(vessel), "at": utc(at), "before": _fix_json(before),
            "after": _fix_json(after)}  # fmt: skip


def position_text(
    vessel: Vessel, at: datetime, before: tuple[Any, ...] | None, after: tuple[Any, ...] | None
) -> str:
    def seen(label: str, row: tuple[Any, ...] | None) -> str:
        if row is None:
            return f"  {label}: no fix"
        ts, mmsi, lat, lon, speed, _ = row
        hours = abs((ts - at).total_seconds()) / 3600
        knots = "" if speed is None else f", {speed:.1f} kn"
        return f"  {label}: {_minute(ts)} ({hours:.1f} h away) at {lat:.5f}, {lon:.5f}{knots} (MMSI {mmsi})"

    return "\n".join([f"{vessel.label} at {_minute(at)} (UTC)", seen("last fix before", before),
                      seen("first fix after", after)])  # fmt: skip
