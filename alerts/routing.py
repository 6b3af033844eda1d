"""What an outbox row says, what is known of its vessel, and which channels
its rules send it to. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.settings import Rule
from detectors.geo import distance_nm
from ingest.records import Event


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def event_of(payload: Mapping[str, Any]) -> Event:
    """The event an ``event_outbox`` payload (an ``events`` row as JSON) describes."""
    start = _time(payload["start_ts"])
    assert start is not None
    return Event(
        kind=payload["kind"], mmsi=payload["mmsi"], start=start, state=payload["state"],
        end=_time(payload.get("end_ts")), port=payload.get("port"), lat=payload.get("lat"),
        lon=payload.get("lon"), key=payload.get("zone_key") or "", vessel=payload.get("vessel") or "",
        imo=payload.get("imo"), details=payload.get("details") or {},
    )  # fmt: skip


@dataclass(frozen=True)
class Notice:
    """One ``event_outbox`` row: an event's revision, to be told."""

    seq: int
    event_id: str
    revision: int
    event: Event
    created_at: datetime


@dataclass(frozen=True)
class VesselFacts:
    """What the watchlist and its matches say of a vessel: the match level,
    why, and the entry's identifiers as (kind, value, source, confidence)."""

    entry: str
    mmsi: int
    level: str | None = None
    reasons: tuple[str, ...] = ()
    identifiers: tuple[tuple[str, str, str, str], ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class WatchedPort:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Router:
    """The rules, with the watched ports their ``near_port_nm`` measures from."""

    rules: Sequence[Rule]
    ports: Sequence[WatchedPort] = ()
    channels: frozenset[str] = field(default_factory=frozenset)

    def nearest_port_nm(self, event: Event) -> float | None:
        if event.lat is None or event.lon is None or not self.ports:
            return None
        return min(distance_nm(event.lat, event.lon, p.lat, p.lon) for p in self.ports)

    def matches(self, rule: Rule, event: Event, facts: VesselFacts | None) -> bool:
        if rule.kinds and event.kind not in rule.kinds:
            return False
        if rule.states and event.state not in rule.states:
            return False
        if rule.ports and (event.port or "").casefold() not in {p.casefold() for p in rule.ports}:
            return False
        if rule.vessels and event.vessel.casefold() not in {v.casefold() for v in rule.vessels}:
            return False
        if rule.levels and (facts is None or facts.level not in rule.levels):
            return False
        if rule.near_port_nm is not None:
            near = self.nearest_port_nm(event)
            if near is None or near > rule.near_port_nm:
                return False
        return True

    def route(self, event: Event, facts: VesselFacts | None) -> frozenset[str]:
        """The configured channels the rules send ``event`` to."""
        out = {c for rule in self.rules if self.matches(rule, event, facts) for c in rule.channels}
        return frozenset(out & self.channels)

    def route_all(
        self,
        notices: Iterable[Notice],
        facts: Mapping[tuple[str, int], VesselFacts],
        announced_on: Mapping[str, frozenset[str]],
    ) -> list[tuple[Notice, frozenset[str]]]:
        """Each notice with its channels: those of the rules, and those where
        its event was already announced (so a follow-up reaches whoever had
        the first alert, whatever its new state)."""
        return [
            (
                n,
                self.route(n.event, facts.get((n.event.vessel, n.event.mmsi)))
                | announced_on.get(n.event_id, frozenset()),
            )
            for n in notices
        ]
