"""The daily digest: a day's port calls at the watched ports, dark gaps,
identity changes, implausible positions and each watched ship's last known
position; as HTML (with the map), plain text and a short chat summary.

:func:`collect` reads a day from the database; everything after it is pure.
A day is the calendar day in the configured time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from alerts.message import Describe, Message, headline, template, utc
from ingest.records import Event
from storage.events import find_events

#: Points kept per ship's track for the map.
TRACK_POINTS = 2000

Track = list[tuple[datetime, float, float]]


@dataclass(frozen=True)
class ShipStatus:
    """A watched ship at the end of the day: where it was last heard, and how long ago."""

    vessel: str
    mmsi: int
    level: str
    last_ts: datetime | None
    lat: float | None
    lon: float | None

    def silent_h(self, at: datetime) -> float | None:
        return None if self.last_ts is None else round((at - self.last_ts).total_seconds() / 3600, 1)


@dataclass(frozen=True)
class Digest:
    day: date
    timezone: str
    start: datetime
    end: datetime
    events: Sequence[Event]
    ships: Sequence[ShipStatus]
    tracks: dict[int, Track] = field(default_factory=dict)

    def of(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.kind in kinds]

    @property
    def port_calls(self) -> list[Event]:
        return self.of("port_call")

    @property
    def gaps(self) -> list[Event]:
        return self.of("dark_gap")

    @property
    def appearances(self) -> list[Event]:
        return self.of("appeared_in_port")

    @property
    def identity(self) -> list[Event]:
        """Identity and draught changes that happened this day."""
        return [e for e in self.of("identity_change", "draught_change") if self.start <= e.start < self.end]

    @property
    def implausible(self) -> list[Event]:
        return [e for e in self.of("implausible_position") if self.start <= e.start < self.end]


def day_window(day: date, zone: str) -> tuple[datetime, datetime]:
    """The day's bounds, local midnight to midnight, as UTC-aware datetimes."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def due_days(
    now: datetime, at: time, zone: str, done: set[date], *, catch_up_days: int, since: date | None
) -> list[date]:
    """The days whose digest is due at ``now`` and not yet sent, oldest
    first: yesterday's once ``at`` has passed today (local time), and missed
    days up to ``catch_up_days`` back, but none before ``since`` (the first
    day ever sent; None: nothing sent yet, so only the latest)."""
    local = now.astimezone(ZoneInfo(zone))
    latest = local.date() - timedelta(days=1 if local.time() >= at else 2)
    days = [latest - timedelta(days=k) for k in range(catch_up_days if since else 0, -1, -1)]
    return [d for d in days if d not in done and (since is None or d >= since)]


def _thin(track: Track) -> Track:
    if len(track) <= TRACK_POINTS:
        return track
    step = len(track) / TRACK_POINTS
    return [track[int(i * step)] for i in range(TRACK_POINTS)] + [track[-1]]


async def collect(conn: psycopg.AsyncConnection[Any], day: date, zone: str) -> Digest:
    """A day's digest from the database."""
    start, end = day_window(day, zone)
    events = [e for e, _, _ in await find_events(conn, since=start, until=end)]
    cur = await conn.execute(
        "SELECT entry, mmsi, level FROM watchlist_matches WHERE level IN ('identified', 'probable')"
        " ORDER BY entry, mmsi"
    )
    watched = list(await cur.fetchall())
    mmsis = [m for _, m, _ in watched]
    cur = await conn.execute(
        "SELECT DISTINCT ON (mmsi) mmsi, ts, lat, lon FROM positions"
        " WHERE mmsi = ANY(%s) AND ts < %s AND lat IS NOT NULL ORDER BY mmsi, ts DESC",
        (mmsis, end),
    )
    last = {m: (ts, lat, lon) for m, ts, lat, lon in await cur.fetchall()}
    ships = [ShipStatus(entry, m, level, *last.get(m, (None, None, None))) for entry, m, level in watched]
    cur = await conn.execute(
        "SELECT mmsi, ts, lat, lon FROM positions WHERE mmsi = ANY(%s) AND ts >= %s AND ts < %s"
        " AND lat IS NOT NULL ORDER BY mmsi, ts",
        (mmsis, start, end),
    )
    tracks: dict[int, Track] = {}
    for mmsi, ts, lat, lon in await cur.fetchall():
        tracks.setdefault(mmsi, []).append((ts, lat, lon))
    return Digest(day, zone, start, end, events, ships, {m: _thin(t) for m, t in tracks.items()})


def _dark(flag: Any) -> bool:
    return flag is False


def port_call_row(e: Event) -> dict[str, Any]:
    d = e.details
    notes = [n for n, on in (("arrived dark", _dark(d.get("arrival_observed"))),
                             ("left dark", _dark(d.get("departure_observed"))),
                             ("left deeper: loaded", bool(d.get("loaded"))),
                             ("still in port", e.state == "open")) if on]  # fmt: skip
    dwell = d.get("dwell_h")
    return {
        "vessel": e.vessel, "mmsi": e.mmsi, "port": e.port, "arrival": utc(e.start),
        "departure": "-" if e.end is None else utc(e.end),
        "dwell": "-" if dwell is None else f"{dwell:.1f} h",
        "draught": f"{d.get('draught_arrival', '?')} -> {d.get('draught_departure') or '?'} m",
        "notes": ", ".join(notes),
    }  # fmt: skip


def gap_row(e: Event) -> dict[str, Any]:
    d = e.details
    reach = ", ".join(f"{r['port']} ({r['min_h']} h)" for r in d.get("reachable_ports", []))
    return {
        "vessel": e.vessel, "mmsi": e.mmsi, "from": utc(e.start),
        "to": "still dark" if e.end is None else utc(e.end),
        "hours": "-" if d.get("duration_h") is None else f"{d['duration_h']:.1f}",
        "reachable": reach or ("-" if e.end is None else "none"),
    }  # fmt: skip


def summary_line(digest: Digest) -> str:
    silent = [s.vessel for s in digest.ships if (s.silent_h(digest.end) or 0) > 24 or s.last_ts is None]
    return (
        f"aiswatch digest {digest.day:%Y-%m-%d}: {len(digest.port_calls)} port calls,"
        f" {len(digest.gaps)} dark gaps, {len(digest.identity)} identity changes,"
        f" {len(digest.implausible)} implausible positions"
        + (f"; silent over a day: {', '.join(silent)}" if silent else "")
    )


def render_digest(
    digest: Digest, describe: Describe, *, png: bytes | None, image_src: str = "cid:map"
) -> Message:
    """The digest as a message: HTML (the map inline as ``image_src``), text, chat."""
    calls = [port_call_row(e) for e in digest.port_calls]
    gaps = [gap_row(e) for e in digest.gaps]
    ships = [
        {"vessel": s.vessel, "mmsi": s.mmsi, "level": s.level,
         "last": "never heard" if s.last_ts is None else utc(s.last_ts),
         "where": "-" if s.lat is None or s.lon is None else f"{s.lat:.3f} N, {s.lon:.3f} E",
         "silent": "-" if s.silent_h(digest.end) is None else f"{s.silent_h(digest.end)} h"}
        for s in digest.ships
    ]  # fmt: skip
    others = [
        (headline(e), describe(e)) for e in (*digest.appearances, *digest.identity, *digest.implausible)
    ]
    title = f"[aiswatch] digest {digest.day:%Y-%m-%d} ({digest.timezone})"
    lines = [summary_line(digest), "", f"Port calls ({len(calls)}):"]
    lines += [
        f"  {c['vessel']} at {c['port']}: {c['arrival']} to {c['departure']}, dwell {c['dwell']},"
        f" draught {c['draught']}" + (f"; {c['notes']}" if c["notes"] else "")
        for c in calls
    ] or ["  none"]
    lines += ["", f"Dark gaps ({len(gaps)}):"]
    lines += [
        f"  {g['vessel']}: {g['from']} to {g['to']} ({g['hours']} h); could have called at: {g['reachable']}"
        for g in gaps
    ] or ["  none"]
    lines += ["", "Also:"] + ([f"  {h}" for h, _ in others] or ["  nothing else"])
    lines += ["", "Watched ships, last heard:"]
    lines += [
        f"  {s['vessel']} (MMSI {s['mmsi']}, {s['level']}): {s['last']} at {s['where']}, silent {s['silent']}"
        for s in ships
    ] or ["  none matched yet"]
    html = template("digest.html.j2").render(
        title=title, summary=summary_line(digest), calls=calls, gaps=gaps, others=others, ships=ships,
        image_src=image_src if png else None, day=f"{digest.day:%Y-%m-%d}", timezone=digest.timezone,
    )  # fmt: skip
    data = {
        "type": "digest", "day": digest.day.isoformat(), "timezone": digest.timezone,
        "port_calls": calls, "dark_gaps": gaps, "ships": ships, "also": [h for h, _ in others],
    }  # fmt: skip
    return Message(
        subject=title, text="\n".join(lines) + "\n", html=html, chat=summary_line(digest), data=data,
        images={"map": png} if png else {},
    )  # fmt: skip
