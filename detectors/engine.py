"""The detector engine: which vessels to watch, in what order to feed them,
and which events changed.

Positions and static reports come in batches (``observe``), in any order. Only
vessels that match or may match the watchlist are kept; the rest of the
traffic costs a set lookup per record. Each watched vessel keeps its own
clock: its records wait in its buffer until they are ``allowed_lateness_s``
older than the newest record of that vessel, or (live, when ``advance`` is
given the time it waited) until they have waited ``hold_s``, or until the end
of a replay (``finish``). So an archive of 2024 loaded into a database that
holds today's positions is detected as a replay of 2024, and messages out of
order within the lateness change nothing. A record older than what its track
has already taken cannot be slotted in: the vessel's track is rebuilt from
stored history from ``history_days`` before that record on (``needs_history``
and ``rebuild``, which the storage side answers), and the events it no
longer finds are withdrawn. A rebuild waits until the vessel's late records
have stopped coming for ``rebuild_settle_s`` (at most ``rebuild_defer_s``),
so a backfill rebuilds a vessel a few times, not once per batch; meanwhile
its newer records go on feeding its track, so live detection is not held up.

``changes()`` lists the events that differ from what was committed, for the
vessels the watchlist lets us report (identified or probable); the caller
writes them and calls ``committed``. The engine itself never does I/O.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import attrgetter

from detectors.evidence import MatchLevel, SeenInRegion
from detectors.periods import Periods, spans_of
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
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class _Hold:
    """Live release: records this old by the clock; those older than
    ``live_from`` (a backfill's) only once they arrived by ``arrived_by``."""

    old_by_clock: datetime
    live_from: datetime
    arrived_by: float | None


def record_key(record: Record) -> tuple[datetime, int]:
    """What tells two stored records of one vessel apart."""
    return (record.ts, record.payload_crc if isinstance(record, Position) else -1)


@dataclass
class Stale:
    """A track to rebuild from storage: from ``since`` (None: its newest
    record's time minus the history), once due."""

    since: datetime | None
    first_s: float
    last_s: float
    #: A vessel newly watched, or a restart: rebuilt at once, not debounced.
    at_once: bool = False


@dataclass
class Watched:
    """A vessel (an MMSI) with detector state."""

    match: Match
    track: VesselTrack
    #: Records not yet taken, each with the (monotonic) time it arrived.
    buffer: list[tuple[float, Record]] = field(default_factory=list)
    keys: set[tuple[datetime, int]] = field(default_factory=set)
    #: Event time of the newest record of this vessel seen: its own clock.
    newest: datetime | None = None
    #: When (monotonic) its latest record arrived.
    arrived_s: float = 0.0
    #: Committed events a rebuild did not find (yet): withdrawn once nothing waits.
    recheck: set[str] = field(default_factory=set)
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
        hold_s: float = 0.5,
        rebuild_settle_s: float = 2.0,
        rebuild_defer_s: float = 30.0,
    ) -> None:
        self.watchlist = watchlist
        self.zones = zones
        self.rules = rules or DetectorRules()
        self.land = land
        self.lateness = timedelta(seconds=allowed_lateness_s)
        self.history = timedelta(days=history_days)
        self.hold_s = hold_s
        self.rebuild_settle_s = rebuild_settle_s
        self.rebuild_defer_s = rebuild_defer_s
        #: The periods stored data covers: each vessel is judged by the clock of its own.
        self.periods = Periods(self.history)
        self._live = False
        #: Whether arrival times are known (``now_s`` given): the live clock's judgement of a backfill.
        self._timed = False
        self.watched: dict[int, Watched] = {}
        #: Every (entry, MMSI) match seen, rejected ones too, for ``aiswatch watchlist``.
        self.matches: dict[tuple[str, int], Match] = {}
        self.dirty_matches: set[tuple[str, int]] = set()
        self.committed: dict[str, Event] = {}
        self.max_event_ts: datetime | None = None
        self.watermark: datetime | None = None
        self.counts: Counter[str] = Counter()
        #: MMSIs whose track must be rebuilt from storage.
        self._stale: dict[int, Stale] = {}
        #: Monotonic time of the latest ``observe``/``advance`` (for the hold and the debounce).
        self._now_s = 0.0
        #: (entry name) -> {MMSI: first event time it reported the entry's IMO}
        self._imo_mmsis: dict[str, dict[int, datetime]] = {}
        self._imo_changed = False
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
                self._mark_stale(match.mmsi, None, at_once=True)
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
                    self._imo_changed = True

    # -- records and clock ------------------------------------------------

    def observe(
        self, positions: Sequence[Position], statics: Sequence[StaticReport], *, now_s: float | None = None
    ) -> None:
        """Take a batch; the per-record work for unwatched traffic is a set
        lookup, in C. ``now_s`` is a monotonic time, for ``hold_s``."""
        if now_s is not None:
            self._now_s, self._timed = now_s, True
        watched = self.watched
        for report in statics:
            self.consider(report)
        for start, end in spans_of([*map(_TS, statics), *map(_TS, positions)]):
            self.saw(start, end)
        mine: list[Record] = [r for r in statics if r.mmsi in watched]
        mine += [p for p in positions if p.mmsi in watched]
        arrived = self._now_s
        for record in mine:
            w = watched[record.mmsi]
            key = record_key(record)
            if key in w.keys:
                continue  # read again: it waits already
            frontier = w.track.frontier
            if frontier is not None and record.ts < frontier:
                if not (isinstance(record, StaticReport) and _repeats(w.track, record)):
                    self.counts["late_records"] += 1
                    self._mark_stale(record.mmsi, record.ts)
                continue  # the rebuild reads it from storage
            w.keys.add(key)
            w.buffer.append((arrived, record))
            w.arrived_s = arrived
            if w.newest is None or record.ts > w.newest:
                w.newest = record.ts

    def _mark_stale(self, mmsi: int, since: datetime | None, *, at_once: bool = False) -> None:
        now_s = self._now_s
        old = self._stale.get(mmsi)
        if old is None:
            self._stale[mmsi] = Stale(since, now_s, now_s, at_once)
            return
        if since is not None and (old.since is None or since < old.since):
            old.since = since  # a late record is older than the vessel's newest
        old.last_s = now_s
        old.at_once = old.at_once or at_once

    def advance(self, now: datetime | None = None, *, now_s: float | None = None) -> None:
        """Move the clock to ``now`` (live: the wall clock) or to the latest
        event time minus the allowed lateness (replay), and feed each vessel
        what its own clock releases. Live, a record is also released once it
        is ``hold_s`` old by the clock (so that what other instances stored
        of the same moment is in first); one older than the lateness by the
        clock (a backfill's) must also have waited ``hold_s`` here (given
        ``now_s``, monotonic), for its neighbours. Each track is then judged
        up to the clock of its own period (:meth:`clock_of`)."""
        live = self._live = now is not None
        if now_s is not None:
            self._now_s, self._timed = now_s, True
        if now is None:
            if self.max_event_ts is None:
                return
            now = self.max_event_ts - self.lateness
        if self.watermark is not None and now <= self.watermark:
            now = self.watermark
        self.watermark = now
        hold: _Hold | None = None
        if live:
            hold = _Hold(
                now - timedelta(seconds=self.hold_s),
                now - self.lateness,
                None if now_s is None else now_s - self.hold_s,
            )
        for w in self.watched.values():
            if w.buffer:
                self._feed(w, hold)
            self._judge(w, self.clock_of(w, now, live=live))

    def finish(self) -> None:
        """End of a replay: nothing later will come, so take everything, and
        judge each track up to the end of its period."""
        for w in self.watched.values():
            if w.buffer:
                self._feed(w, None, everything=True)
        if self.max_event_ts is None:
            return
        self.watermark = max(self.max_event_ts, self.watermark or self.max_event_ts)
        for w in self.watched.values():
            self._judge(w, self.clock_of(w, self.watermark, live=False, final=True))

    def clock_of(self, w: Watched, now: datetime, *, live: bool, final: bool = False) -> datetime:
        """What ``w``'s track is judged up to. In a period that ended long
        ago (an archive): that period's end (less the lateness until the
        replay's end). In the live period: ``now``, except for a vessel whose
        records still arrive but are old (a backfill streaming in), judged
        on its own records until they have stopped coming for the lateness."""
        if w.newest is None:
            return now
        end = self.periods.end_of(w.newest)
        if end is None:  # stored before periods were kept: the one clock
            return now
        if live and now - end <= self.periods.merge_gap:
            quiet = self._now_s - w.arrived_s >= self.lateness.total_seconds()
            if w.newest >= now - self.lateness or quiet or not self._timed:
                return now
            return w.newest
        return min(now, end) if final else min(now, end - self.lateness)

    @staticmethod
    def _judge(w: Watched, clock: datetime) -> None:
        """Advance the track, but not past what it still has to take."""
        first = min((r.ts for _, r in w.buffer), default=None)
        w.track.advance(clock if first is None or first > clock else first)

    def _feed(self, w: Watched, hold: _Hold | None, *, everything: bool = False) -> None:
        assert w.newest is not None
        until = w.newest - self.lateness

        def ready(item: tuple[float, Record]) -> bool:
            arrived, record = item
            if everything or record.ts <= until:
                return True
            if hold is None or record.ts > hold.old_by_clock:
                return False
            return record.ts >= hold.live_from or hold.arrived_by is None or arrived <= hold.arrived_by

        taken = [item[1] for item in w.buffer if ready(item)]
        if not taken:
            return
        w.buffer = [item for item in w.buffer if not ready(item)]
        taken.sort(key=lambda r: (r.ts, isinstance(r, Position)))
        track = w.track
        for record in taken:
            w.keys.discard(record_key(record))
            if track.frontier is not None and record.ts < track.frontier:
                if isinstance(record, StaticReport) and _repeats(track, record):
                    continue
                self.counts["late_records"] += 1
                self._mark_stale(track.mmsi, record.ts)
                continue
            track.observe(record)

    # -- rebuilding from storage ------------------------------------------

    def needs_history(self, *, now_s: float | None = None) -> dict[int, datetime | None]:
        """MMSIs whose track is due for a rebuild, each with the start of the
        window to load (None: its newest stored record's time minus the
        history). Without ``now_s`` (a replay, the end of one) all are due."""
        due = {}
        for mmsi, stale in sorted(self._stale.items()):
            if (
                now_s is None
                or stale.at_once
                or now_s - stale.last_s >= self.rebuild_settle_s
                or now_s - stale.first_s >= self.rebuild_defer_s
            ):
                due[mmsi] = None if stale.since is None else stale.since - self.history
        return due

    def pending_rebuilds(self) -> dict[int, datetime]:
        """Tracks to rebuild from a late record on, with that record's time:
        what a successor must know if this engine stops before rebuilding."""
        return {mmsi: stale.since for mmsi, stale in self._stale.items() if stale.since is not None}

    def rebuild(self, mmsi: int, records: list[Record], *, truncated_at: datetime | None) -> None:
        """Replace ``mmsi``'s track by one fed ``records`` (all stored records
        of its window, in order); ``truncated_at`` says older ones exist. What
        the vessel's clock does not release yet waits in its buffer, as if it
        had just arrived; the committed events the new track does not find
        are withdrawn once nothing waits (a waiting record may find them)."""
        w = self.watched[mmsi]
        w.track = track = self._new_track(w.match, truncated_at)
        w.buffer, w.keys = [], set()
        newest = max((r.ts for r in records), default=None)
        if w.newest is None or (newest is not None and newest > w.newest):
            w.newest = newest
        for record in records:
            if w.newest is not None and record.ts <= w.newest - self.lateness:
                track.observe(record)
            else:
                w.keys.add(record_key(record))
                w.buffer.append((self._now_s, record))
                w.arrived_s = self._now_s
        if self.watermark is not None:
            self._judge(w, self.clock_of(w, self.watermark, live=self._live))
        del self._stale[mmsi]
        self.counts["rebuilds"] += 1
        if truncated_at is not None:
            self.counts["rebuilds_from_window"] += 1
        w.recheck = {
            event.id
            for event in self.committed.values()
            if event.mmsi == mmsi
            and event.state != "withdrawn"
            and (truncated_at is None or event.start >= truncated_at)
            and event.key != "mmsi"
        }

    def _withdraw_unfound(self, w: Watched) -> None:
        track = w.track
        for event_id in w.recheck:
            if event_id not in track.events:
                track.events[event_id] = replace(self.committed[event_id], state="withdrawn")
                track.dirty.add(event_id)
        w.recheck = set()

    def restart(self, since: Mapping[int, datetime] | None = None) -> None:
        """Every watched track is to be rebuilt from storage (at start): from
        ``history_days`` before the vessel's time in ``since`` (its oldest
        record not yet detected), else before its newest record."""
        since = since or {}
        for mmsi in self.watched:
            self._mark_stale(mmsi, since.get(mmsi), at_once=True)

    def noticed(self, mmsi: int, first: datetime, *, now_s: float | None = None) -> datetime | None:
        """New positions of watched ``mmsi`` are stored, the oldest at
        ``first``: after what time to read them (None: its coming rebuild
        reads them). Older than what its track took, they make it stale
        (``now_s``, monotonic: when, for the rebuild's debounce)."""
        if now_s is not None:
            self._now_s, self._timed = now_s, True
        stale = self._stale.get(mmsi)
        if stale is not None and stale.at_once:
            self._mark_stale(mmsi, first)
            return None
        frontier = self.watched[mmsi].track.frontier
        if frontier is not None and first <= frontier:
            self.counts["late_records"] += 1
            self._mark_stale(mmsi, first)
            return frontier
        return first - _ONE_US

    def saw(self, start: datetime, end: datetime) -> None:
        """Data of some vessels from ``start`` to ``end`` is stored."""
        self.periods.add(start, end)
        if self.max_event_ts is None or end > self.max_event_ts:
            self.max_event_ts = end

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
            if w.recheck and not w.buffer and mmsi not in self._stale:
                self._withdraw_unfound(w)
            if self._waits_for_rebuild(mmsi) or (
                not track.dirty and (w.reported or judged.level not in REPORTABLE)
            ):
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
                ready = event.named(w.match.entry.name, imo) if event.vessel == "" else event
                if self.committed.get(event_id) != ready:
                    out.append(ready)
            track.dirty = set()
        return out

    def _waits_for_rebuild(self, mmsi: int) -> bool:
        """A newly watched vessel's (or, at start, every) track says nothing
        until rebuilt; one only waiting out a backfill's late records goes on."""
        stale = self._stale.get(mmsi)
        return stale is not None and stale.at_once

    def committed_events(self, events: Iterable[Event]) -> None:
        """The caller stored ``events``: they are the new baseline."""
        for event in events:
            self.committed[event.id] = event
            w = self.watched.get(event.mmsi)
            if w is not None:
                w.track.events[event.id] = event

    def _mmsi_changes(self) -> None:
        """An IMO heard from a new MMSI (and, with it, maybe a new flag). An
        earlier report found later (an archive loaded after newer data) moves
        or removes a change: the one it replaces is withdrawn."""
        if not self._imo_changed:
            return
        self._imo_changed = False
        for name, first in self._imo_mmsis.items():
            order = sorted(first.items(), key=lambda kv: (kv[1], kv[0]))
            found = set()
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
                found.add(event.id)
                if event.id not in w.track.events or w.track.events[event.id].details != event.details:
                    w.track.events[event.id] = event
                    w.track.dirty.add(event.id)
            for event in list(self.committed.values()):
                w = self.watched.get(event.mmsi)
                replaced = (
                    event.kind == "identity_change" and event.key == "mmsi" and event.vessel == name
                    and event.state != "withdrawn" and event.id not in found
                )  # fmt: skip
                if replaced and w is not None:
                    w.track.events[event.id] = replace(event, state="withdrawn")
                    w.track.dirty.add(event.id)


def _repeats(track: VesselTrack, report: StaticReport) -> bool:
    """Does a late static report say only what was in effect at its time?"""
    before = track.identity_at(report.ts)
    return all(getattr(report, f) in (None, before.get(f)) for f in (*IDENTITY_FIELDS, "draught"))
