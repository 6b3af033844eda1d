"""De-duplication of one broadcast heard by several receivers. Pure, no I/O.

A message is a duplicate when the same assembled payload was seen within
``window_s`` of event time before it. Payloads carry the MMSI, the message
type and the AIS UTC second, so two different transmissions almost never share
one inside a short window, while copies from several receivers (or a feed that
repeats itself) do. Memory is bounded by the window (two at most), not by the stream.
"""

from __future__ import annotations


class DuplicateWindow:
    """Remembers payloads for ``window_s`` seconds of event time.

    Payloads are kept in two generations of about a window each: when event
    time has moved a window past the current generation's start (or it holds
    ``max_entries``), the older generation is dropped whole and the current
    one becomes the older. A payload is thus remembered for at least a
    window and at most about two (the time check makes the answer exact), and
    forgetting costs nothing per payload.
    """

    def __init__(self, *, window_s: float = 30.0, max_entries: int = 1_000_000) -> None:
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        self.window_s = window_s
        self.max_entries = max_entries
        self._current: dict[bytes, float] = {}
        self._older: dict[bytes, float] = {}
        self._started = float("-inf")

    def is_duplicate(self, payload: bytes, time: float) -> bool:
        """True if ``payload`` was seen within the window; else remember it."""
        window = self.window_s
        if not window:
            return False
        current = self._current
        previous = current.get(payload)
        if previous is None:
            previous = self._older.get(payload)
        if previous is not None and -window <= time - previous <= window:
            return True
        if time > self._started + window or len(current) >= self.max_entries:
            self._older, self._current = current, {}
            self._started = time
            current = self._current
        current[payload] = time
        return False

    def __len__(self) -> int:
        return len(self._current) + len(self._older)
