"""De-duplication of one broadcast heard by several receivers. Pure, no I/O.

A message is a duplicate when the same assembled payload was seen within
``window_s`` of event time before it. Payloads carry the MMSI, the message
type and the AIS UTC second, so two different transmissions almost never share
one inside a short window, while copies from several receivers (or a feed that
repeats itself) do. Memory is bounded by the window, not by the stream.
"""

from __future__ import annotations

from collections import OrderedDict


class DuplicateWindow:
    """Remembers payloads for ``window_s`` seconds of event time."""

    def __init__(self, *, window_s: float = 30.0, max_entries: int = 1_000_000) -> None:
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._latest = float("-inf")

    def is_duplicate(self, payload: bytes, time: float) -> bool:
        """True if ``payload`` was seen within the window; else remember it."""
        if self.window_s == 0:
            return False
        seen = self._seen
        previous = seen.get(payload)
        if previous is not None and abs(time - previous) <= self.window_s:
            return True
        if time > self._latest:
            self._latest = time
            horizon = time - self.window_s
            while seen:
                oldest = next(iter(seen.values()))
                if oldest >= horizon and len(seen) < self.max_entries:
                    break
                seen.popitem(last=False)
        seen[payload] = time
        seen.move_to_end(payload)
        return False

    def __len__(self) -> int:
        return len(self._seen)
