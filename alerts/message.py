"""The words of an alert: a first line an analyst can act on, then the
identifiers, the evidence and a link to the track; plain text and HTML.
Pure: a :class:`~alerts.folding.Planned` and what is known in, a
:class:`Message` out.

``describe`` (one line on what an event means) is passed in: the product
package owns it (``aiswatch.views.describe``) and the event tables print it,
so an alert and ``aiswatch events`` say the same thing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2

from alerts.folding import Planned
from alerts.routing import Notice, VesselFacts
from ingest.records import Event

Describe = Callable[[Event], str]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("alerts", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def template(name: str) -> jinja2.Template:
    return _TEMPLATES.get_template(name)


@dataclass(frozen=True)
class Message:
    """What a channel sends. ``data`` is the machine-readable form (webhook,
    file); ``chat`` the short form; ``images`` inline pictures by content id."""

    subject: str
    text: str
    html: str
    chat: str
    data: Mapping[str, Any]
    message_id: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    images: Mapping[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject, "text": self.text, "html": self.html, "chat": self.chat,
            "data": dict(self.data), "message_id": self.message_id, "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "images": {cid: base64.b64encode(png).decode() for cid, png in self.images.items()},
        }  # fmt: skip

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Message:
        return cls(
            subject=row["subject"], text=row["text"], html=row["html"], chat=row["chat"], data=row["data"],
            message_id=row.get("message_id", ""), in_reply_to=row.get("in_reply_to"),
            references=tuple(row.get("references", ())),
            images={cid: base64.b64decode(png) for cid, png in row.get("images", {}).items()},
        )  # fmt: skip


def utc(ts: datetime | None) -> str:
    return "?" if ts is None else f"{ts:%Y-%m-%d %H:%M} UTC"


def _kind(kind: str) -> str:
    return kind.replace("_", " ")


def headline(event: Event) -> str:
    """Ship, what, where, when (UTC): ``LADY R arrived at Rajin 2024-03-11
    06:02 UTC (port call, arrived dark)``."""
    d, v, port = event.details, event.vessel or f"MMSI {event.mmsi}", event.port or "?"
    notes: list[str] = [_kind(event.kind)]
    if event.state == "withdrawn":
        return f"{v}: {_kind(event.kind)} from {utc(event.start)} withdrawn (later data filled it in)"
    match event.kind:
        case "port_call" if event.state == "open":
            what = f"arrived at {port} {utc(event.start)}"
            notes += ["arrived dark"] if d.get("arrival_observed") is False else []
        case "port_call":
            what = f"left {port} {utc(event.end)}"
            if d.get("dwell_h") is not None:
                notes.append(f"{d['dwell_h']:.1f} h in port")
            notes += ["left deeper: loaded"] if d.get("loaded") else []
            notes += ["left dark"] if d.get("departure_observed") is False else []
        case "zone_entry":
            what = f"entered {port} ({d.get('zone')} zone) {utc(event.start)}"
        case "zone_exit":
            what = f"left {port} ({d.get('zone')} zone) {utc(event.start)}"
        case "appeared_in_port":
            what = f"appeared in {port} {utc(event.start)}"
            if d.get("silent_h") is not None:
                notes.append(f"after {d['silent_h']} h silent")
        case "dark_gap" if event.state == "open":
            what = f"went dark {utc(event.start)}"
            notes.append(f"{d.get('last_state', 'last state unknown')}")
        case "dark_gap":
            what = f"reappeared {utc(event.end)} after {d.get('duration_h')} h dark"
            reach = [r["port"] for r in d.get("reachable_ports", [])]
            notes.append(f"could have called at {', '.join(reach)}" if reach else "no watched port in reach")
        case "identity_change":
            what = f"changed identity {utc(event.start)}"
            notes.append(", ".join(sorted(d.get("changes", {}))))
        case "draught_change":
            old, new = d.get("draught_m", [None, None])
            what = f"draught {old} -> {new} m {utc(event.start)}"
        case "implausible_position":
            what = f"reported an implausible position {utc(event.start)}"
            notes.append(f"jump {d.get('jump_nm')} nm")
        case _:
            what = f"{_kind(event.kind)} {utc(event.start)}"
            notes = []
    return f"{v} {what}" + (f" ({', '.join(notes)})" if notes else "")


def _fix(label: str, ts: Any, lat: Any, lon: Any) -> str:
    when = ts if isinstance(ts, str) else utc(ts)
    where = "?" if lat is None or lon is None else f"{lat:.4f} N, {lon:.4f} E"
    return f"{label}: {where} at {when}"


def evidence(event: Event) -> list[str]:
    """The facts behind the event, one per line."""
    d = event.details
    out: list[str] = []
    match event.kind:
        case "dark_gap":
            speed = d.get("last_speed_kn")
            out.append(_fix("last fix before", event.start, event.lat, event.lon)
                       + f" ({d.get('last_state')}, {speed if speed is not None else '?'} kn)")  # fmt: skip
            if event.end is not None:
                out.append(_fix("first fix after", event.end, d.get("end_lat"), d.get("end_lon")))
                out.append(
                    f"gap {d.get('duration_h')} h, {d.get('distance_nm')} nm: implied speed"
                    f" {d.get('implied_speed_kn')} kn (assumed at most {d.get('assumed_speed_kn')} kn)"
                )
                reach = d.get("reachable_ports", [])
                out.append(
                    "watched ports it could have reached and left: "
                    + (", ".join(f"{r['port']} (needs {r['min_h']} h)" for r in reach) or "none")
                )
            else:
                out.append(f"silent longer than {d.get('threshold_h')} h, its threshold in that state")
        case "port_call":
            out.append(f"arrival {utc(event.start)}, departure {utc(event.end)}")
            out.append(
                f"draught {d.get('draught_arrival')} m on arrival, {d.get('draught_departure')} m leaving"
            )
            if d.get("arrival_observed") is False:
                out.append("no track leading in: it arrived with AIS off")
            if d.get("departure_observed") is False:
                out.append("no track leading out: it left with AIS off")
        case _:
            if event.lat is not None and event.lon is not None:
                out.append(_fix("position", event.start, event.lat, event.lon))
    return out


def identifiers(facts: VesselFacts | None, event: Event) -> list[str]:
    out = [f"MMSI {event.mmsi}" + (f", IMO {event.imo}" if event.imo else "")]
    if facts is None:
        return out
    if facts.level:
        out.append(f"match: {facts.level}" + (f" ({'; '.join(facts.reasons)})" if facts.reasons else ""))
    for kind, value, source, confidence in facts.identifiers:
        out.append(f"{kind.upper()} {value}: {confidence} confidence, source {source or 'unknown'}")
    return out


def track_link(url: str, event: Event) -> str:
    if not url:
        return ""
    return url.format(
        mmsi=event.mmsi, vessel=event.vessel, imo=event.imo or "",
        since=event.start.isoformat(), until=(event.end or event.start).isoformat(),
    )  # fmt: skip


@dataclass(frozen=True)
class AlertWriter:
    """Renders planned alerts for one configuration."""

    describe: Describe
    track_url: str = ""
    domain: str = "aiswatch.invalid"
    max_listed: int = 10

    def message_id(self, delivery_id: str) -> str:
        return f"<{delivery_id}@{self.domain}>"

    def subject(self, planned: Planned) -> str:
        thread = planned.thread
        lead = headline(planned.lead.event)
        if thread is not None and len(planned.notices) == 1:
            base = thread.subject.removeprefix("Re: ")
            return f"Re: {base}"
        more = len(planned.notices) - 1
        return f"[aiswatch] {lead}" + (f" (+{more} more)" if more else "")

    def _entry(self, notice: Notice, planned: Planned) -> dict[str, Any]:
        event = notice.event
        return {
            "event_id": notice.event_id, "revision": notice.revision, "state": event.state,
            "follow_up": notice.event_id in planned.follow_ups, "headline": headline(event),
            "what": self.describe(event), "evidence": evidence(event),
            "track": track_link(self.track_url, event),
            "kind": event.kind, "port": event.port, "start": event.start.isoformat(),
            "end": None if event.end is None else event.end.isoformat(), "lat": event.lat, "lon": event.lon,
            "details": dict(event.details),
        }  # fmt: skip

    def render(self, planned: Planned, facts: VesselFacts | None) -> Message:
        lead = planned.lead.event
        listed = list(reversed(planned.notices))[: self.max_listed]
        entries = [self._entry(n, planned) for n in listed]
        unlisted = len(planned.notices) - len(listed)
        count = len(planned.notices)
        summary = (
            f"{count} {_kind(planned.kind)} events of {planned.vessel}, folded from {planned.folded} updates"
            if count > 1
            else ""
        )
        ids = identifiers(facts, lead)
        lines = [headline(lead), ""]
        if summary:
            lines += [summary, ""]
        lines += ["Identifiers:", *(f"  {i}" for i in ids), ""]
        for entry in entries:
            prefix = "update: " if entry["follow_up"] else ""
            lines.append(f"- {prefix}{entry['headline']}")
            lines.append(f"  {entry['what']}")
            lines += [f"  {e}" for e in entry["evidence"]]
            if entry["track"]:
                lines.append(f"  track: {entry['track']}")
        if unlisted:
            lines.append(f"... and {unlisted} more")
        thread = planned.thread
        references = tuple(self.message_id(a.first_delivery) for a in planned.follow_ups.values())
        chat = headline(lead) + (f" [{summary}]" if summary else "")
        if entries and entries[0]["track"]:
            chat += f"\n{entries[0]['track']}"
        html = template("alert.html.j2").render(
            headline=headline(lead), summary=summary, identifiers=ids, entries=entries, unlisted=unlisted
        )
        data = {
            "type": "alert", "channel": planned.channel, "vessel": planned.vessel, "mmsi": lead.mmsi,
            "imo": lead.imo, "kind": planned.kind, "headline": headline(lead), "count": count,
            "folded": planned.folded, "match_level": None if facts is None else facts.level,
            "events": entries, "unlisted": unlisted,
        }  # fmt: skip
        return Message(
            subject=self.subject(planned),
            text="\n".join(lines) + "\n",
            html=html,
            chat=chat,
            data=data,
            message_id=self.message_id(planned.id),
            in_reply_to=None if thread is None else self.message_id(thread.first_delivery),
            references=references,
        )
