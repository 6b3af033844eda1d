"""How events, port calls and watchlist matches are printed: tables for
people, JSON lines for programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from detectors.watchlist import Watchlist
from ingest.records import Event


def _ts(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def event_json(event: Event, event_id: str, revision: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": event.kind,
        "state": event.state,
        "revision": revision,
        "vessel": event.vessel,
        "mmsi": event.mmsi,
        "imo": event.imo,
        "port": event.port,
        "start": _ts(event.start),
        "end": _ts(event.end),
        "lat": event.lat,
        "lon": event.lon,
        "details": dict(event.details),
    }


def port_call_json(event: Event) -> dict[str, Any]:
    d = event.details
    return {
        "vessel": event.vessel,
        "mmsi": event.mmsi,
        "imo": event.imo,
        "port": event.port,
        "state": event.state,
        "arrival": _ts(event.start),
        "departure": _ts(event.end),
        "dwell_h": d.get("dwell_h"),
        "draught_arrival": d.get("draught_arrival"),
        "draught_departure": d.get("draught_departure"),
        "loaded": d.get("loaded"),
        "arrival_observed": d.get("arrival_observed"),
        "departure_observed": d.get("departure_observed"),
        "id": event.id,
    }


def jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(row, ensure_ascii=False) for row in rows)


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else f"{ts:%Y-%m-%d %H:%M}Z"


def _m(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def describe(event: Event) -> str:
    """One line saying what the event means."""
    d = event.details
    match event.kind:
        case "dark_gap" if event.state == "open":
            return (
                f"silent since {_when(event.start)}"
                f" ({d.get('last_state')}, threshold {d.get('threshold_h')} h)"
            )
        case "dark_gap":
            reach = ", ".join(f"{r['port']} ({r['min_h']} h)" for r in d.get("reachable_ports", [])) or "none"
            return (
                f"{d.get('duration_h')} h dark, {d.get('distance_nm')} nm at {d.get('implied_speed_kn')} kn;"
                f" could have called at: {reach}"
            )
        case "port_call":
            dwell = f"{d.get('dwell_h')} h" if d.get("dwell_h") is not None else "still there"
            load = {True: "; left deeper: loaded", False: "; not deeper on leaving", None: ""}[
                d.get("loaded")
            ]
            return (
                f"dwell {dwell}; draught {d.get('draught_arrival')} -> {d.get('draught_departure')} m{load}"
            )
        case "appeared_in_port":
            if d.get("first_seen"):
                return f"first seen already inside the {d.get('zone')} zone"
            return f"appeared in the {d.get('zone')} zone after {d.get('silent_h')} h silent"
        case "zone_entry" | "zone_exit":
            return f"{d.get('zone')} zone"
        case "identity_change":
            return "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in d.get("changes", {}).items())
        case "draught_change":
            old, new = d.get("draught_m", [None, None])
            return f"draught {old} -> {new} m"
        case "implausible_position":
            return f"jumped {d.get('jump_nm')} nm from the previous fix; ignored"
    return json.dumps(dict(d))


def events_table(rows: Sequence[tuple[Event, str, int]]) -> str:
    if not rows:
        return "no events"
    out = [f"{'start':<17} {'kind':<20} {'state':<9} {'vessel':<12} {'MMSI':>9}  {'port':<10} what"]
    for event, _, _ in rows:
        out.append(
            f"{_when(event.start):<17} {event.kind:<20} {event.state:<9} {event.vessel:<12.12}"
            f" {event.mmsi:>9}  {(event.port or '-'):<10} {describe(event)}"
        )
    return "\n".join(out)


def port_calls_table(calls: Sequence[Event]) -> str:
    if not calls:
        return "no port calls"
    out = [
        f"{'vessel':<12} {'MMSI':>9} {'port':<10} {'arrival':<17} {'departure':<17} {'dwell h':>8}"
        f" {'draught m':>11}  notes"
    ]
    for e in calls:
        d = e.details
        notes = []
        if d.get("loaded"):
            notes.append("loaded")
        if d.get("arrival_observed") is False:
            notes.append("arrived dark")
        if d.get("departure_observed") is False:
            notes.append("left dark")
        if e.state == "open":
            notes.append("still in port")
        draught = f"{_m(d.get('draught_arrival'))}>{_m(d.get('draught_departure'))}"
        dwell = "-" if d.get("dwell_h") is None else f"{d['dwell_h']:.1f}"
        out.append(
            f"{e.vessel:<12.12} {e.mmsi:>9} {(e.port or '-'):<10} {_when(e.start):<17} {_when(e.end):<17}"
            f" {dwell:>8} {draught:>11}  {', '.join(notes)}"
        )
    return "\n".join(out)


def watchlist_table(
    watchlist: Watchlist, matches: Sequence[tuple[str, int, str, list[str], datetime]]
) -> str:
    out = []
    for entry in watchlist.entries:
        names = ", ".join((entry.name, *entry.aliases))
        ids = "; ".join(f"{i.kind.upper()} {i.value} ({i.source}, {i.confidence})" for i in entry.identifiers)
        out.append(f"{names}  [flag {entry.flag or '?'}]")
        out.append(f"  identifiers: {ids or 'none confirmed: matched by name, with corroboration'}")
        if entry.notes:
            out.append(f"  notes: {entry.notes}")
        mine = [m for m in matches if m[0] == entry.name]
        if not mine:
            out.append("  matched: nothing seen yet")
        for _, mmsi, level, reasons, first_at in mine:
            out.append(f"  {level:<10} MMSI {mmsi} (recorded {_when(first_at)}): {'; '.join(reasons)}")
        out.append("")
    return "\n".join(out).rstrip()
