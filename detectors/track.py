"""One vessel's track through time: the state machine behind every event.

:class:`VesselTrack` takes one vessel's records in event-time order
(``observe``) and the clock (``advance``); it keeps the latest version of
every event it has found in ``events``. It never looks at the wall clock, so
the same records and clock give the same events, however they arrived.

Rules, in the order a fix meets them:

1. Not-available and far-inland positions are counted and ignored.
2. Plausibility: a fix is held until its successor arrives (or the clock
   passes ``confirm_after_s``). A fix that needs an impossible speed both
   from its predecessor and to its successor, while the two neighbours agree,
   is an ``implausible_position`` and kept out of everything below.
3. Silence: an accepted fix after a silence longer than the gap threshold of
   the previous fix (by state: moored or under way; by place: near a watched
   port or not) closes a ``dark_gap``, with distance, implied speed and the
   watched ports the ship could have visited within it. The clock opens the
   gap before the ship comes back.
4. Zones: entry and exit with hysteresis (``zone_entry``, ``zone_exit``); a
   ship whose first fix, or first after a silence, lies inside a port zone has
   ``appeared_in_port``.
5. Port calls: the ship stopped (speed hysteresis) inside a port's outer zone
   for at least ``min_port_stay_h`` makes a ``port_call``, open until it
   leaves, with arrival, departure, dwell time and draught at both ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from detectors.geo import distance_nm
from detectors.rules import DetectorRules
from detectors.zones import Port, PortZones, Zone
from ingest.records import Event, Position, StaticReport

#: Navigational status codes of a ship that reports every 3 minutes.
_AT_REST_STATUS = frozenset({1, 5})  # at anchor, moored
#: Static fields whose change is an identity change (draught has its own kind).
IDENTITY_FIELDS = ("imo", "shipname", "callsign", "destination", "ship_type")


class LandMask(Protocol):
    def far_inland(self, lat: float, lon: float) -> bool: ...


def _h(delta: timedelta) -> float:
    return delta.total_seconds() / 3600.0


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


@dataclass
class _Visit:
    """A stay in one port's outer zone."""

    arrival: datetime
    draught_arrival: float | None
    arrival_observed: bool
    last_inside: Position
    stopped: bool = False
    stopped_since: datetime | None = None
    call: Event | None = None
    berth: bool = False


@dataclass
class VesselTrack:
    mmsi: int
    zones: PortZones
    rules: DetectorRules
    land: LandMask | None = None
    max_speed_kn: float = 14.0
    #: Set when the track is rebuilt from a window of stored history: its first
    #: fix is then not "first seen", and events before it are not ours to judge.
    origin: datetime | None = None
    events: dict[str, Event] = field(default_factory=dict)
    #: Ids of the events found or revised since the engine last looked.
    dirty: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    #: Event time of the newest record taken.
    frontier: datetime | None = None
    last: Position | None = None
    pending: Position | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    #: (valid from, identity) after each change, for judging late reports.
    identity_history: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    seen_in_region: bool = False
    _open_gap: Event | None = None
    _inside: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _visits: dict[str, _Visit] = field(default_factory=dict)

    # -- records in -------------------------------------------------------

    def observe(self, record: Position | StaticReport) -> None:
        if self.frontier is None or record.ts > self.frontier:
            self.frontier = record.ts
        if isinstance(record, StaticReport):
            self._static(record)
            return
        if record.lat is None or record.lon is None:
            self.counts["position_not_available"] += 1
            return
        if self.land is not None and self._inland(record):
            self.counts["position_inland"] += 1
            return
        if self.pending is None:
            self.pending = record
            return
        held, self.pending = self.pending, record
        last = self.last
        jumped = last is not None and self._too_fast(last, held) and self._too_fast(held, record)
        if jumped and last is not None and not self._too_fast(last, record):  # the neighbours agree
            self._implausible(held, record)
            return
        self._accept(held)

    def _inland(self, fix: Position) -> bool:
        """Far inland? A fix close to the last accepted one (at sea) is not: no lookup."""
        assert self.land is not None and fix.lat is not None and fix.lon is not None
        last = self.last  # an accepted fix, so it has a position
        if (
            last is not None
            and last.lat is not None
            and last.lon is not None
            and abs(fix.lat - last.lat) + abs(fix.lon - last.lon) < 0.05
        ):
            return False
        return self.land.far_inland(fix.lat, fix.lon)

    def advance(self, now: datetime) -> None:
        """The clock reached ``now``: judge a lone fix, open a silence."""
        held = self.pending
        if held is not None and (now - held.ts).total_seconds() >= self.rules.confirm_after_s:
            self.pending = None
            if self.last is not None and self._too_fast(self.last, held):
                self._implausible(held, None)
            else:
                self._accept(held)
        last = self.last
        if last is None or self.pending is not None or self._open_gap is not None:
            return
        if _h(now - last.ts) <= self.rules.shortest_gap_h:
            return
        threshold_h = self.gap_threshold_h(last)
        if _h(now - last.ts) > threshold_h:
            self._open_gap = self._emit(
                Event(
                    kind="dark_gap",
                    mmsi=self.mmsi,
                    start=last.ts,
                    state="open",
                    lat=last.lat,
                    lon=last.lon,
                    details={"threshold_h": threshold_h, **self._state_of(last)},
                )
            )

    # -- rules ------------------------------------------------------------

    def _too_fast(self, a: Position, b: Position) -> bool:
        assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
        slack, limit = self.rules.position_slack_nm, self.rules.max_plausible_speed_kn
        hours = abs(_h(b.ts - a.ts))
        # an upper bound on the distance first (a degree of longitude is at most 60 nm): no trigonometry
        bound = (abs(a.lat - b.lat) + abs(a.lon - b.lon)) * 60.0 - slack
        if bound <= 0 or (hours > 0 and bound / hours <= limit):
            return False
        miles = distance_nm(a.lat, a.lon, b.lat, b.lon) - slack
        if miles <= 0:
            return False
        return hours == 0 or miles / hours > limit

    def _implausible(self, fix: Position, after: Position | None) -> None:
        self.counts["position_implausible"] += 1
        before = self.last
        assert before is not None and before.lat is not None and before.lon is not None
        assert fix.lat is not None and fix.lon is not None
        details: dict[str, Any] = {
            "previous": {"ts": _iso(before.ts), "lat": before.lat, "lon": before.lon},
            "jump_nm": round(distance_nm(before.lat, before.lon, fix.lat, fix.lon), 2),
        }
        if after is not None:
            details["next"] = {"ts": _iso(after.ts), "lat": after.lat, "lon": after.lon}
        self._emit(
            Event(
                kind="implausible_position",
                mmsi=self.mmsi,
                start=fix.ts,
                lat=fix.lat,
                lon=fix.lon,
                details=details,
            )
        )

    def at_rest(self, fix: Position) -> bool:
        return fix.status in _AT_REST_STATUS or (
            fix.speed is not None and fix.speed < self.rules.stop_below_kn
        )

    def gap_threshold_h(self, fix: Position) -> float:
        assert fix.lat is not None and fix.lon is not None
        rules = self.rules
        near = self.zones.near_port(fix.lat, fix.lon, rules.near_port_nm)
        if self.at_rest(fix):
            return rules.near_port_moored_gap_h if near else rules.moored_gap_h
        return rules.near_port_underway_gap_h if near else rules.underway_gap_h

    def _state_of(self, fix: Position) -> dict[str, Any]:
        speed = None if fix.speed is None else round(fix.speed, 1)  # AIS resolution; storage keeps float4
        return {"last_state": "at rest" if self.at_rest(fix) else "under way", "last_speed_kn": speed}

    def _accept(self, fix: Position) -> None:
        assert fix.lat is not None and fix.lon is not None
        last = self.last
        silent = (
            last is not None
            and _h(fix.ts - last.ts) > self.rules.shortest_gap_h
            and _h(fix.ts - last.ts) > self.gap_threshold_h(last)
        )
        if last is not None and silent:
            self._close_gap(last, fix)
        self._open_gap = None
        if not self.seen_in_region and self.zones.in_region(fix.lat, fix.lon):
            self.seen_in_region = True
        first_seen = last is None and self.origin is None
        if self.zones.near_any(fix.lat, fix.lon) or self._inside:
            for port in self.zones.ports:
                self._port_step(
                    port, fix, appeared=first_seen or silent, silent_since=last if silent else None
                )
        self.last = fix

    def _close_gap(self, last: Position, fix: Position) -> None:
        assert last.lat is not None and last.lon is not None and fix.lat is not None and fix.lon is not None
        hours = _h(fix.ts - last.ts)
        miles = distance_nm(last.lat, last.lon, fix.lat, fix.lon)
        reachable = []
        for port in self.zones.ports:
            there = distance_nm(last.lat, last.lon, port.lat, port.lon)
            back = distance_nm(port.lat, port.lon, fix.lat, fix.lon)
            needed_h = (there + back) / self.max_speed_kn + self.rules.min_port_stay_h
            if needed_h <= hours:
                reachable.append({"port": port.name, "min_h": round(needed_h, 2)})
        self._emit(
            Event(
                kind="dark_gap",
                mmsi=self.mmsi,
                start=last.ts,
                end=fix.ts,
                lat=last.lat,
                lon=last.lon,
                details={
                    "threshold_h": self.gap_threshold_h(last),
                    **self._state_of(last),
                    "duration_h": round(hours, 3),
                    "distance_nm": round(miles, 2),
                    "implied_speed_kn": round(miles / hours, 2),
                    "end_lat": fix.lat,
                    "end_lon": fix.lon,
                    "assumed_speed_kn": self.max_speed_kn,
                    "reachable_ports": reachable,
                },
            )
        )

    def _port_step(self, port: Port, fix: Position, *, appeared: bool, silent_since: Position | None) -> None:
        assert fix.lat is not None and fix.lon is not None
        for zone in port.zones:
            self._zone_step(zone, fix, appeared=appeared)
        outer = port.outermost
        inside = (outer.port, outer.name) in self._inside
        visit = self._visits.get(port.name)
        if visit is None and inside:
            if appeared:
                self._appeared(port, fix, silent_since)
            visit = self._visits[port.name] = _Visit(
                arrival=fix.ts,
                draught_arrival=self.identity.get("draught"),
                arrival_observed=not appeared,
                last_inside=fix,
            )
        if visit is None:
            return
        if not inside:
            self._leave(port, visit, fix)
            return
        visit.last_inside = fix
        berth = min(port.zones, key=lambda z: z.inner.area)
        visit.berth = visit.berth or (berth.port, berth.name) in self._inside
        if self.at_rest(fix) and not visit.stopped:
            visit.stopped, visit.stopped_since = True, fix.ts
        elif (
            fix.speed is not None
            and fix.speed > self.rules.move_above_kn
            and fix.status not in _AT_REST_STATUS
        ):
            visit.stopped, visit.stopped_since = False, None
        stayed = (
            visit.stopped_since is not None and _h(fix.ts - visit.stopped_since) >= self.rules.min_port_stay_h
        )
        if visit.call is not None or stayed:
            visit.call = self._emit(self._port_call(port, visit, None))

    def _zone_step(self, zone: Zone, fix: Position, *, appeared: bool) -> None:
        assert fix.lat is not None and fix.lon is not None
        key = (zone.port, zone.name)
        was_inside = key in self._inside
        inside = zone.contains(fix.lat, fix.lon, inside_already=was_inside)
        if inside and not was_inside:
            self._inside[key] = fix.ts
            if not appeared:
                self._emit(
                    Event(kind="zone_entry", mmsi=self.mmsi, start=fix.ts, port=zone.port, key=zone.name,
                          lat=fix.lat, lon=fix.lon, details={"zone": zone.name})
                )  # fmt: skip
        elif was_inside and not inside:
            entered = self._inside.pop(key)
            self._emit(
                Event(kind="zone_exit", mmsi=self.mmsi, start=fix.ts, port=zone.port, key=zone.name,
                      lat=fix.lat, lon=fix.lon,
                      details={"zone": zone.name, "entered": _iso(entered),
                               "inside_h": round(_h(fix.ts - entered), 3)})
            )  # fmt: skip

    def _appeared(self, port: Port, fix: Position, silent_since: Position | None) -> None:
        details: dict[str, Any] = {"zone": port.outermost.name, "first_seen": silent_since is None}
        if silent_since is not None:
            details.update(
                last_seen=_iso(silent_since.ts),
                last_lat=silent_since.lat,
                last_lon=silent_since.lon,
                silent_h=round(_h(fix.ts - silent_since.ts), 3),
            )
        self._emit(
            Event(kind="appeared_in_port", mmsi=self.mmsi, start=fix.ts, port=port.name,
                  lat=fix.lat, lon=fix.lon, details=details)
        )  # fmt: skip

    def _leave(self, port: Port, visit: _Visit, fix: Position) -> None:
        del self._visits[port.name]
        if visit.call is not None:
            observed = _h(fix.ts - visit.last_inside.ts) <= self.gap_threshold_h(visit.last_inside)
            self._emit(self._port_call(port, visit, visit.last_inside.ts, departure_observed=observed))

    def _port_call(
        self, port: Port, visit: _Visit, departure: datetime | None, *, departure_observed: bool = True
    ) -> Event:
        draught_departure = self.identity.get("draught") if departure is not None else None
        arrival_d = visit.draught_arrival
        loaded = None
        if arrival_d is not None and draught_departure is not None:
            loaded = draught_departure > arrival_d
        stop = visit.call if visit.call is not None else None
        where = (stop.lat, stop.lon) if stop is not None else (visit.last_inside.lat, visit.last_inside.lon)
        return Event(
            kind="port_call",
            mmsi=self.mmsi,
            start=visit.arrival,
            end=departure,
            state="open" if departure is None else "closed",
            port=port.name,
            lat=where[0],
            lon=where[1],
            details={
                "arrival": _iso(visit.arrival),
                "departure": _iso(departure),
                "dwell_h": None if departure is None else round(_h(departure - visit.arrival), 3),
                "draught_arrival": arrival_d,
                "draught_departure": draught_departure,
                "loaded": loaded,
                "berth": visit.berth,
                "arrival_observed": visit.arrival_observed,
                "departure_observed": departure_observed if departure is not None else None,
            },
        )

    def _static(self, report: StaticReport) -> None:
        merged = dict(self.identity)
        for name in (*IDENTITY_FIELDS, "draught"):
            value = getattr(report, name)
            if name == "draught" and value is not None:
                value = round(value, 1)  # AIS resolution; storage keeps float4
            if value is not None:
                merged[name] = value
        if merged == self.identity:
            return
        previous, self.identity = self.identity, merged
        self.identity_history.append((report.ts, merged))
        if not previous:
            return  # the first report is the baseline, not a change
        # a field heard for the first time (type 24 part B after part A) is not a change
        changes = {
            k: [previous[k], merged[k]]
            for k in IDENTITY_FIELDS
            if previous.get(k) is not None and merged.get(k) != previous[k]
        }
        if changes:
            self._emit(
                Event(kind="identity_change", mmsi=self.mmsi, start=report.ts, details={"changes": changes})
            )
        if merged.get("draught") != previous.get("draught") and previous.get("draught") is not None:
            self._emit(
                Event(kind="draught_change", mmsi=self.mmsi, start=report.ts,
                      details={"draught_m": [previous["draught"], merged["draught"]]})
            )  # fmt: skip

    def identity_at(self, ts: datetime) -> dict[str, Any]:
        current: dict[str, Any] = {}
        for valid_from, identity in self.identity_history:
            if valid_from > ts:
                break
            current = identity
        return current

    def _emit(self, event: Event) -> Event:
        if self.origin is not None and event.start < self.origin:
            return event  # judged before this window: not ours to revise
        self.events[event.id] = event
        self.dirty.add(event.id)
        return event
