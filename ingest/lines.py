"""Bytes to lines, for every source: bounded, and every line counted. Pure.

A source hands :class:`LineSplitter` what it read (a file chunk, a socket
read, a datagram, an MQTT payload) and gets back the complete lines. Line
ends are LF, CRLF or a lone CR (old receivers and some exports), also when a
CRLF pair is cut between two reads. Blank lines are passed on, so that the
decoder counts them (``filtered: blank``) like every other line.

Memory is bounded whatever the peer sends: a line longer than
``max_line_bytes`` is not kept. Its first ``max_line_bytes + 1`` bytes are
passed on, so that the decoder counts it as malformed (``line_too_long``),
and the rest is skipped up to the next line end; ``cut_lines`` counts them.
"""

from __future__ import annotations

from typing import Final

from ingest.nmea import MAX_LINE_BYTES

_LF: Final = b"\n"
_CR: Final = b"\r"


class LineSplitter:
    """Splits a byte stream into lines; see the module docs."""

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self.max_line_bytes = max_line_bytes
        #: Lines longer than the limit, passed on cut (the decoder counts them malformed).
        self.cut_lines = 0
        self._carry = b""
        self._skipping = False  # inside the rest of a line already passed on cut
        self._cr = False  # the last read ended in CR

    def feed(self, data: bytes) -> list[bytes]:
        """The lines that ``data`` completes, without their line ends."""
        if self._cr:  # the CR that ended the last read ended its line: this LF is its pair
            self._cr = False
            if data[:1] == _LF:
                data = data[1:]
        if _CR in data:
            if data[-1:] == _CR:
                self._cr = True
            data = data.replace(b"\r\n", _LF).replace(_CR, _LF)
        lines = data.split(_LF)
        lines[0] = self._carry + lines[0]
        carry = lines.pop()
        if self._skipping and len(lines) > 0:
            lines.pop(0)  # the end of a line passed on cut
            self._skipping = False
        if self._skipping:
            carry = b""
        elif len(carry) > self.max_line_bytes:
            lines.append(carry[: self.max_line_bytes + 1])
            self.cut_lines += 1
            self._skipping = True
            carry = b""
        self._carry = carry
        return lines

    def flush(self) -> list[bytes]:
        """End of stream: a last line without its line end."""
        carry, self._carry = self._carry, b""
        skipping, self._skipping = self._skipping, False
        self._cr = False
        return [carry] if carry and not skipping else []


def split_message(data: bytes, *, max_line_bytes: int = MAX_LINE_BYTES) -> list[bytes]:
    """The lines of one self-contained message (a datagram, an MQTT payload)."""
    if b"\n" not in data and b"\r" not in data:  # one line, the common message: as the splitter gives it
        if len(data) <= max_line_bytes:
            return [data] if data else []
        return [data[: max_line_bytes + 1]]
    splitter = LineSplitter(max_line_bytes=max_line_bytes)
    return splitter.feed(data) + splitter.flush()


def split_messages(messages: list[bytes], *, max_line_bytes: int = MAX_LINE_BYTES) -> list[bytes]:
    """The lines of many messages, in order, as :func:`split_message` gives
    each; when every message is one line of a fitting length (a feed of one
    sentence per message), they are those lines, found in a few passes in C."""
    joined = b"".join(messages)
    one_line_each = messages and b"\n" not in joined and b"\r" not in joined and all(messages)
    if one_line_each and max(map(len, messages)) <= max_line_bytes:
        return list(messages)
    return [line for message in messages for line in split_message(message, max_line_bytes=max_line_bytes)]
