"""The periods of event time that stored data covers.

A vessel is judged (a silence opened, a lone fix confirmed) against the clock
of its own period: an archive of 2024 loaded into a database that is fed live
today is judged up to the end of that archive, as it would be in an empty
database, not up to today. Spans of data closer than ``merge_gap`` are one
period (a feed outage of a day does not split the live period).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

#: A batch's records split into spans where their times are this far apart
#: (one write may carry a live feed and an archive: they must not join).
SPLIT_GAP = timedelta(days=1)


def spans_of(times: Iterable[datetime], gap: timedelta = SPLIT_GAP) -> list[tuple[datetime, datetime]]:
    """The spans ``times`` cover, split where two in time order are more than ``gap`` apart."""
    ordered = sorted(times)
    if not ordered:
        return []
    spans = []
    start = previous = ordered[0]
    for ts in ordered[1:]:
        if ts - previous > gap:
            spans.append((start, previous))
            start = ts
        previous = ts
    spans.append((start, previous))
    return spans


@dataclass
class Periods:
    merge_gap: timedelta
    #: Sorted, disjoint (start, end) spans.
    spans: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: Changed since the last :meth:`saved`.
    changed: bool = False

    def add(self, start: datetime, end: datetime) -> None:
        """Data from ``start`` to ``end`` is stored."""
        gap = self.merge_gap
        spans = self.spans
        i = bisect.bisect_left(spans, (start,))
        lo = i
        while lo > 0 and spans[lo - 1][1] + gap >= start:
            lo -= 1
        hi = i
        while hi < len(spans) and spans[hi][0] - gap <= end:
            hi += 1
        merged = spans[lo:hi]
        new = (min([start, *(s for s, _ in merged)]), max([end, *(e for _, e in merged)]))
        if merged != [new]:
            spans[lo:hi] = [new]
            self.changed = True

    def end_of(self, ts: datetime) -> datetime | None:
        """The end of the period holding ``ts``, if one does."""
        i = bisect.bisect_right(self.spans, (ts, datetime.max.replace(tzinfo=ts.tzinfo))) - 1
        if i >= 0 and self.spans[i][0] <= ts <= self.spans[i][1]:
            return self.spans[i][1]
        return None

    def saved(self) -> None:
        self.changed = False
