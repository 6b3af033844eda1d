"""The detector engine: which vessels to watch, in what order to feed them,
and which events changed.

Positions and static reports come in batches (``observe``), in any order. Only
vessels that match or may match the watchlist are kept; the rest of the
traffic costs a set lookup per record. A watched vessel's records wait in its
buffer until the watermark passes them (``advance``): the watermark is the
clock (wall clock live; latest event time minus ``allowed_lateness_s`` in a
replay), so messages out of order within the lateness change nothing. A
record older than what its track has already taken cannot be slotted in: the
vessel's track is rebuilt from stored history instead (``needs_history`` and
``rebuild``, which the storage side answers), and the events it no longer
finds are withdrawn.

``changes()`` lists the events that differ from what was committed, for the
vessels the watchlist lets us report (identified or probable); the caller
writes them and calls ``committed``. The engine itself never does I/O.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import attrgetter

from detectors.evidence import MatchLevel, SeenInRegion
from detectors.rules import DetectorRules
from detectors.track import IDENTITY_FIELDS, LandMask, VesselTrack
from detectors.watchlist import Match, Watchlist, flag_of
from detectors.zones import PortZones
from ingest.records import Event, Position, StaticReport

log = logging.getLogger(__name__)

Record = Position | StaticReport
_RANK: dict[MatchLevel, int] = {"rejected": 0, "candidate": 1, "probable": 2, "identified": 3}
REPORTABLE = frozenset({"identified", "probable"})
_NAME_MATCHED = frozenset({"candidate", "probable"})
_TS = attrgetter("ts")


@dataclass
class Watched:
    """A vessel (an MMSI) with detector state."""

    match: Match
    track: VesselTrack
    buffer: list[Record] = field(default_factory=list)
    #: Were its events reported at the last look? (A candidate's are held back.)
    reported: bool = False

    @property
    def judged(self) -> Match:
        """The match with what the track adds: presence in a watched region
        corroborates a name match (it cannot make or unmake an identified one)."""
        match = self.match
        if self.track.seen_in_region and match.level in _NAME_MATCHED:
            return match.with_evidence(SeenInRegion())
        return match

    @property
    def level(self) -> MatchLevel:
        return self.judged.level


class DetectorEngine:
    def __init__(
        self,
        watchlist: Watchlist,
        zones: PortZones,
        rules: DetectorRules | None = None,
        *,
        land: LandMask | None = None,
        allowed_lateness_s: float = 300.0,
        history_days: float = 30.0,
    ) -> None:
        self.watchlist = watchlist
        self.zones = zones
        self.rules = rules or DetectorRules()
        self.land = land
        self.lateness = timedelta(seconds=allowed_lateness_s)
        self.history = timedelta(days=history_days)
        self.watched: dict[int, Watched] = {}
        #: Every (entry, MMSI) match seen, rejected ones too, for ``aiswatch watchlist``.
        self.matches: dict[tuple[str, int], Match] = {}
        self.dirty_matches: set[tuple[str, int]] = set()
        self.committed: dict[str, Event] = {}
        self.max_event_ts: datetime | None = None
        self.watermark: datetime | None = None
        self.counts: Counter[str] = Counter()
        #: MMSIs whose track must be rebuilt from storage, with the level they were reported at.
        self._stale: set[int] = set()
        #: (entry name) -> {MMSI: first event time it reported the entry's IMO}
        self._imo_mmsis: dict[str, dict[int, datetime]] = {}
        for entry in watchlist.entries:
            for value in entry.ids("mmsi"):
                match = watchlist.match_mmsi(int(value))
                assert match is not None
                self._watch(match, stale=False)

    # -- who is watched ---------------------------------------------------

    def _watch(self, match: Match, *, stale: bool = True) -> None:
        if match.level == "rejected":
            if (match.entry.name, match.mmsi) not in self.matches:
                self.counts["name_matches_rejected"] += 1
            self._record(match)
            return
        w = self.watched.get(match.mmsi)
        if w is None:
            w = self.watched[match.mmsi] = Watched(match, self._new_track(match))
            if stale:
                self._stale.add(match.mmsi)
        elif _RANK[match.level] > _RANK[w.match.level]:
            w.match = match
        # The entry's match is the watched one (with its track's evidence) when it is that entry.
        self._record(w.judged if w.match.entry.name == match.entry.name else match)

    def _record(self, match: Match) -> None:
        """Keep the latest word on (entry, MMSI), for ``aiswatch watchlist``."""
        key = (match.entry.name, match.mmsi)
        if self.matches.get(key) != match:
            self.matches[key] = match
            self.dirty_matches.add(key)

    def _new_track(self, match: Match, origin: datetime | None = None) -> VesselTrack:
        speed = match.entry.max_speed_kn or self.rules.default_max_speed_kn
        return VesselTrack(match.mmsi, self.zones, self.rules, self.land, max_speed_kn=speed, origin=origin)

    def consider(self, report: StaticReport) -> None:
        """Match a static report (or a stored identity) against the watchlist."""
        if report.mmsi in self.watched and self.watched[report.mmsi].match.level == "identified":
            matches = [self.watched[report.mmsi].match]
        else:
            matches = self.watchlist.match_static(
                report.mmsi,
                imo=report.imo,
                shipname=report.shipname,
                callsign=report.callsign,
                ship_type=report.ship_type,
            )
        for match in matches:
            self._watch(match)
            entry = match.entry
            if match.level == "identified" and report.imo is not None and report.imo == entry.imo:
                first = self._imo_mmsis.setdefault(entry.name, {})
                if report.mmsi not in first or report.ts < first[report.mmsi]:
                    first[report.mmsi] = report.ts

    # -- records and clock ------------------------------------------------

    def observe(self, positions: Sequence[Position], statics: Sequence[StaticReport]) -> None:
        """Take a batch; the per-record work for unwatched traffic is a set lookup, in C."""
        watched, stale = self.watched, self._stale
        for report in statics:
            self.consider(report)
        times = [r.ts for r in statics]
        if positions:
            times.append(max(map(_TS, positions)))
        if self.max_event_ts is not None:
            times.append(self.max_event_ts)
        self.max_event_ts = max(times, default=None)
        mine: list[Record] = [r for r in statics if r.mmsi in watched]
        mine += [p for p in positions if p.mmsi in watched]
        for record in mine:
            if record.mmsi not in stale:
                watched[record.mmsi].buffer.append(record)

    def advance(self, now: datetime | None = None) -> None:
        """Move the watermark to ``now`` (live) or to the latest event time
        minus the allowed lateness (replay), and feed what it passed."""
        if now is None:
            if self.max_event_ts is None:
                return
            now = self.max_event_ts - self.lateness
        if self.watermark is not None and now <= self.watermark:
            now = self.watermark
        self.watermark = now
        for mmsi, w in self.watched.items():
            if mmsi in self._stale:
                continue
            if w.buffer:
                self._feed(w, now)
            w.track.advance(now)

    def finish(self) -> None:
        """End of a replay: nothing later will come, so take everything."""
        if self.max_event_ts is not None:
            self.advance(max(self.max_event_ts, self.watermark or self.max_event_ts))

    def _feed(self, w: Watched, now: datetime) -> None:
        ready = [r for r in w.buffer if r.ts <= now]
        if not ready:
            return
        w.buffer = [r for r in w.buffer if r.ts > now]
        ready.sort(key=lambda r: (r.ts, isinstance(r, Position)))
        track = w.track
        for record in ready:
            if track.frontier is not None and record.ts < track.frontier:
                if isinstance(record, StaticReport) and _repeats(track, record):
                    continue
                self.counts["late_records"] += 1
                self._stale.add(track.mmsi)
                w.buffer = []
                return
            track.observe(record)

    # -- rebuilding from storage ------------------------------------------

    def needs_history(self) -> dict[int, datetime | None]:
        """MMSIs whose track must be rebuilt, with the start of the window to
        load (the same for all of them)."""
        since = None if self.watermark is None else self.watermark - self.history
        return dict.fromkeys(sorted(self._stale), since)

    def rebuild(self, mmsi: int, records: list[Record], *, truncated_at: datetime | None) -> None:
        """Replace ``mmsi``'s track by one fed ``records`` (all stored records
        of its window, in order); ``truncated_at`` says older ones exist."""
        w = self.watched[mmsi]
        w.track = track = self._new_track(w.match, truncated_at)
        now = self.watermark
        w.buffer = []
        for record in records:
            if now is None or record.ts <= now:
                track.observe(record)
            else:
                w.buffer.append(record)
        if now is not None:
            track.advance(now)
        self._stale.discard(mmsi)
        self.counts["rebuilds"] += 1
        for event in self.committed.values():
            gone = event.mmsi == mmsi and event.state != "withdrawn" and event.id not in track.events
            if gone and (truncated_at is None or event.start >= truncated_at) and event.key != "mmsi":
                track.events[event.id] = replace(event, state="withdrawn")
                track.dirty.add(event.id)

    def restart(self) -> None:
        """Every watched track is to be rebuilt from storage (at start)."""
        self._stale.update(self.watched)

    def load_committed(self, events: Iterable[Event]) -> None:
        for event in events:
            self.committed[event.id] = event

    # -- events out -------------------------------------------------------

    def changes(self) -> list[Event]:
        """Events that differ from the committed ones."""
        self._mmsi_changes()
        out = []
        for mmsi, w in self.watched.items():
            judged = w.judged
            self._record(judged)  # its track may have corroborated it since
            track = w.track
            if mmsi in self._stale or (not track.dirty and (w.reported or judged.level not in REPORTABLE)):
                continue  # nothing new to report
            if judged.level not in REPORTABLE:
                w.reported = False
                track.dirty.clear()  # held back; looked at in full once corroborated
                continue
            ids = track.dirty if w.reported else track.events.keys()
            w.reported = True
            imo = track.identity.get("imo") or w.match.entry.imo
            for event_id in ids:
                event = track.events[event_id]
                ready = replace(event, vessel=w.match.entry.name, imo=imo) if event.vessel == "" else event
                if self.committed.get(event_id) != ready:
                    out.append(ready)
            track.dirty = set()
        return out

    def committed_events(self, events: Iterable[Event]) -> None:
        """The caller stored ``events``: they are the new baseline."""
        for event in events:
            self.committed[event.id] = event
            w = self.watched.get(event.mmsi)
            if w is not None:
                w.track.events[event.id] = event

    def _mmsi_changes(self) -> None:
        """An IMO heard from a new MMSI (and, with it, maybe a new flag)."""
        for first in self._imo_mmsis.values():
            order = sorted(first.items(), key=lambda kv: (kv[1], kv[0]))
            for (old, _), (new, ts) in itertools.pairwise(order):
                w = self.watched.get(new)
                if w is None:
                    continue
                changes: dict[str, list[int] | list[str | None]] = {"mmsi": [old, new]}
                if flag_of(old) != flag_of(new):
                    changes["flag"] = [flag_of(old), flag_of(new)]
                event = Event(
                    kind="identity_change", mmsi=new, start=ts, key="mmsi", details={"changes": changes}
                )
                if event.id not in w.track.events or w.track.events[event.id].details != event.details:
                    w.track.events[event.id] = event
                    w.track.dirty.add(event.id)


def _repeats(track: VesselTrack, report: StaticReport) -> bool:
    """Does a late static report say only what was in effect at its time?"""
    before = track.identity_at(report.ts)
    return all(getattr(report, f) in (None, before.get(f)) for f in (*IDENTITY_FIELDS, "draught"))
