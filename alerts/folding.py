"""No floods: outbox rows folded into few messages. Pure; the clock is passed in.

Grouping follows Prometheus Alertmanager's: a group is (channel, vessel,
kind). Its first message waits ``group_wait_s`` for company; after a message,
the group sends nothing for ``repeat_interval_s`` (the cool-down), and what
arrives meanwhile goes out together, with a count, when it ends. Within a
group an event appears once, in its latest revision: an event whose first
alert was sent is a follow-up to it; one withdrawn before its first alert was
sent is dropped, saying nothing. A backlog (an outage's thousands of rows) is
therefore a handful of messages, not a replay.

Invariant: a notice is *consumed* (its outbox row marked) only once every
channel it was routed to has planned or dropped it; a channel that planned
it knows so through ``announced`` (its revision), so planning is idempotent
across rounds and restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.routing import Notice


@dataclass(frozen=True)
class Announced:
    """A channel has told of this event: in which delivery, under which
    subject, and up to which revision."""

    first_delivery: str
    subject: str
    last_revision: int


@dataclass(frozen=True)
class Planned:
    """One message to one channel: the latest revision of each event of a
    group, oldest first; ``folded`` counts the outbox rows it stands for."""

    channel: str
    vessel: str
    kind: str
    notices: tuple[Notice, ...]
    folded: int
    #: The events already announced on this channel: their first alerts.
    follow_ups: Mapping[str, Announced] = field(default_factory=dict)

    @property
    def lead(self) -> Notice:
        """The newest: what the first line tells."""
        return self.notices[-1]

    @property
    def id(self) -> str:
        ident = f"{self.channel}|{self.lead.event_id}|{self.lead.revision}"
        return hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()

    @property
    def thread(self) -> Announced | None:
        """The first alert this message follows up, when it has one."""
        firsts = [self.follow_ups[n.event_id] for n in self.notices if n.event_id in self.follow_ups]
        return firsts[0] if firsts else None


@dataclass(frozen=True)
class Plan:
    messages: list[Planned]
    #: Outbox rows (seq) now fully handled.
    consumed: list[int]
    #: When the next waiting group falls due (None: nothing waits).
    next_due: datetime | None
    #: Outbox rows that wait, with when their (earliest) group falls due.
    deferred: dict[int, datetime] = field(default_factory=dict)


GroupKey = tuple[str, str, str]


def plan(
    routed: Sequence[tuple[Notice, frozenset[str]]],
    announced: Mapping[tuple[str, str], Announced],
    last_sent: Mapping[GroupKey, datetime],
    now: datetime,
    *,
    group_wait_s: float,
    repeat_interval_s: float,
) -> Plan:
    """Fold pending notices (with the channels each is routed to) into the
    messages due at ``now``. ``announced`` is keyed (channel, event id),
    ``last_sent`` (channel, vessel, kind)."""
    groups: dict[GroupKey, list[Notice]] = {}
    deferred: dict[int, datetime] = {}
    for notice, channels in routed:
        for channel in channels:
            groups.setdefault((channel, notice.event.vessel, notice.event.kind), []).append(notice)
    messages: list[Planned] = []
    next_due: datetime | None = None
    for key in sorted(groups):
        channel = key[0]
        latest: dict[str, Notice] = {}
        for notice in groups[key]:
            told = announced.get((channel, notice.event_id))
            if told is not None and told.last_revision >= notice.revision:
                continue  # this channel has planned it already
            kept = latest.get(notice.event_id)
            if kept is None or notice.revision > kept.revision:
                latest[notice.event_id] = notice
        live = [
            n for n in latest.values() if n.event.state != "withdrawn" or (channel, n.event_id) in announced
        ]
        if not live:
            continue  # nothing to say here (withdrawn before it was told, or told already)
        oldest = min(n.created_at for n in groups[key])
        due = oldest + timedelta(seconds=group_wait_s)
        if key in last_sent:
            due = max(due, last_sent[key] + timedelta(seconds=repeat_interval_s))
        if now < due:
            for n in groups[key]:
                deferred[n.seq] = min(due, deferred.get(n.seq, due))
            next_due = due if next_due is None else min(next_due, due)
            continue
        live.sort(key=lambda n: (n.event.start, n.seq))
        messages.append(
            Planned(
                channel=channel, vessel=key[1], kind=key[2], notices=tuple(live),
                folded=len(groups[key]),
                follow_ups={n.event_id: announced[(channel, n.event_id)]
                            for n in live if (channel, n.event_id) in announced},
            )
        )  # fmt: skip
    consumed = sorted({n.seq for n, _ in routed} - deferred.keys())
    return Plan(messages, consumed, next_due, deferred)
