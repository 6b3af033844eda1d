"""De-duplication of one broadcast heard by several receivers. Pure, no I/O.

A message is a duplicate when the same assembled payload was seen within
``window_s`` of event time before it. Payloads carry the MMSI, the message
type and the AIS UTC second, so two different transmissions almost never share
one inside a short window, while copies from several receivers (or a feed that
repeats itself) do. Memory is bounded by the window, not by the stream.
"""

from __future__ import annotations

from collections import deque


class DuplicateWindow:
    """Remembers payloads for ``window_s`` seconds of event time."""

    def __init__(self, *, window_s: float = 30.0, max_entries: int = 1_000_000) -> None:
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: dict[bytes, float] = {}
        # (time, payload) in arrival order, to forget old payloads in O(1) each
        # (a dict used as a queue degrades: iterating skips every deleted slot)
        self._order: deque[tuple[float, bytes]] = deque()
        self._swept = float("-inf")

    def is_duplicate(self, payload: bytes, time: float) -> bool:
        """True if ``payload`` was seen within the window; else remember it."""
        window = self.window_s
        if not window:
            return False
        seen = self._seen
        previous = seen.get(payload)
        if previous is not None and -window <= time - previous <= window:
            return True
        if time > self._swept + 1.0 or len(seen) >= self.max_entries:
            self._sweep(time)
        seen[payload] = time
        self._order.append((time, payload))
        return False

    def _sweep(self, time: float) -> None:
        """Forget payloads older than the window (at most once a second)."""
        self._swept = max(self._swept, time)
        horizon = self._swept - self.window_s
        seen, order = self._seen, self._order
        while order and (order[0][0] < horizon or len(seen) >= self.max_entries):
            when, payload = order.popleft()
            if seen.get(payload) == when:
                del seen[payload]

    def __len__(self) -> int:
        return len(self._seen)
