"""Lines to records: parse, time, reassemble, de-duplicate, decode. Pure.

:class:`LineDecoder` is the whole ingest logic of one source, free of I/O: the
source hands it lines with the time they were read, and takes back positions
and static reports. Every line ends in exactly one outcome, counted in
:class:`IngestStats`: stored (or, after the database has spoken, already
stored), duplicate, filtered, or malformed with a reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Final
from zlib import crc32

import numpy as np
from pyais.bit_vector import bit_vector
from pyais.messages import MSG_CLASS

from ingest import fastdecode
from ingest.assembly import Assembled, FragmentAssembler
from ingest.batch import PositionBatch
from ingest.decode import (
    ARMOR,
    BIT_LENGTHS,
    StaticFields,
    make_position,
    make_static,
    pyais_position,
    pyais_static,
    refine_to_second,
)
from ingest.dedup import DuplicateWindow
from ingest.nmea import FILTERED, GatehouseTime, Sentence, parse_line
from ingest.records import Position, StaticReport

log = logging.getLogger(__name__)

#: Event times more than this far ahead of the receive clock are rejected.
MAX_FUTURE_S: Final = 86_400.0
#: The types decoded without pyais (see ingest/fastdecode.py).
_FAST_POSITIONS: Final = frozenset({1, 2, 3, 18, 27})
_FAST_STATICS: Final = frozenset({5, 24})
#: How many examples of each malformed reason are logged and kept per source.
EXAMPLES_PER_REASON: Final = 3


@dataclass
class IngestStats:
    """What happened to every line of one source.

    ``lines == stored + already_stored + duplicate + filtered + malformed +
    lost + pending`` at all times, where ``pending`` lines wait for the rest of
    their message or for the database. ``already_stored`` lines were read
    before (a replay) and found in the database; ``lost`` lines could not be
    kept (the database away and the spool full). ``malformed`` includes the
    lines of records the database refused for their content (``refused``, by
    reason: the writer's count, which the decoder's counts never overwrite).
    """

    source: str
    lines: int = 0
    accepted: int = 0
    stored: int = 0
    already_stored: int = 0
    duplicate: int = 0
    lost: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    messages_by_type: Counter[int] = field(default_factory=Counter)
    positions: int = 0
    positions_stored: int = 0
    #: Accepted lines with no event time of their own, stamped with the time they were read
    #: (a replay of them is stored again: the database cannot know them for repeats).
    untimed: int = 0
    static_reports: int = 0
    identity_changes: int = 0
    #: First few (line number, detail) of each malformed reason.
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    #: Errors that stopped the source (an unreadable file), with what and where.
    errors: list[str] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """Lines read but not yet resolved: partial messages, or unwritten."""
        resolved = (
            self.stored
            + self.already_stored
            + self.duplicate
            + self.lost
            + sum(self.filtered.values())
            + sum(self.malformed.values())
        )
        return self.lines - resolved

    def note_malformed(self, reason: str, count: int, lineno: int, detail: str) -> None:
        self.malformed[reason] += count
        seen = self.examples.setdefault(reason, [])
        if len(seen) < EXAMPLES_PER_REASON:
            seen.append((lineno, detail))
            log.warning(
                "%s: line %d: malformed (%s)%s", self.source, lineno, reason, f": {detail}" if detail else ""
            )

    def note_refused(self, reason: str, count: int, detail: str) -> None:
        """Lines whose record the database refused for its content (the
        writer's count). Records carry no line number: ``detail`` names the
        record (MMSI, time, type), and its example is kept with line 0."""
        self.refused[reason] += count
        self.malformed[reason] += count
        seen = self.examples.setdefault(reason, [])
        if len(seen) < EXAMPLES_PER_REASON:
            seen.append((0, detail))
        log.error("%s: a record the database refused was isolated (%s): %s", self.source, reason, detail)

    def adopt_decoder_counts(self, decoder: IngestStats) -> None:
        """Take the counts only the decoder knows from ``decoder`` (a snapshot
        from the process that decodes); the writer's counts stay ours."""
        for name in ("lines", "accepted", "duplicate", "positions", "static_reports", "untimed"):
            setattr(self, name, getattr(decoder, name))
        self.filtered = decoder.filtered
        self.malformed = decoder.malformed + self.refused
        self.messages_by_type = decoder.messages_by_type
        self.examples = decoder.examples | {r: self.examples[r] for r in self.refused if r in self.examples}

    def merge(self, other: IngestStats) -> None:
        """Add ``other``'s counts (for totals over several sources)."""
        for item in fields(self):
            value = getattr(other, item.name)
            if type(value) is int:
                setattr(self, item.name, getattr(self, item.name) + value)
        self.filtered.update(other.filtered)
        self.malformed.update(other.malformed)
        self.refused.update(other.refused)
        self.messages_by_type.update(other.messages_by_type)
        self.errors.extend(other.errors)
        for reason, seen in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(seen[: EXAMPLES_PER_REASON - len(mine)])


class LineDecoder:
    """The ingest logic of one source. Feed lines, take records.

    ``received`` (UNIX seconds) is the caller's clock: the time the lines were
    read. It stamps messages that carry no time of their own and drives the
    expiry of orphan fragments, so replays and tests control time fully.
    """

    def __init__(
        self,
        source: str,
        *,
        dedup_window_s: float = 30.0,
        fragment_timeout_s: float = 10.0,
    ) -> None:
        self.stats = IngestStats(source)
        self._assembler = FragmentAssembler(timeout_s=fragment_timeout_s)
        self._dedup = DuplicateWindow(window_s=dedup_window_s)
        self._gatehouse: GatehouseTime | None = None
        self._type24: dict[int, dict[int, StaticReport]] = {}
        #: Fast-path positions to decode together, flat: payload, time, received, station, CRC, lines.
        self._fast: list[Any] = []
        self._positions: list[Position] = []  # decoded by pyais (type 19)
        #: Where each of those comes among all the positions since the last take.
        self._positions_at: list[int] = []
        self._statics: list[StaticReport] = []
        self._lineno = 0
        self._types = [0] * 64  # messages by type, folded into the stats after each feed

    def feed(self, lines: Iterable[bytes], received: float) -> None:
        """Decode ``lines`` read at ``received``; records accumulate for :meth:`take`."""
        stats = self.stats
        message = self._message
        latest = received + MAX_FUTURE_S
        for line in lines:
            self._lineno += 1
            parsed = parse_line(line)
            if isinstance(parsed, Sentence):
                time = parsed.time
                if parsed.frag_count == 1 and self._gatehouse is None and (time is None or time <= latest):
                    message(parsed.payload, parsed.fill_bits, parsed, 1, time, received)  # the hot path
                else:
                    self._sentence(parsed, received)
            elif isinstance(parsed, GatehouseTime):
                self._gatehouse = parsed
                stats.filtered["gatehouse_time"] += 1
            elif parsed.outcome == FILTERED:
                stats.filtered[parsed.reason] += 1
            else:
                stats.note_malformed(parsed.reason, 1, self._lineno, parsed.detail)
        stats.lines = self._lineno
        self._count_types()
        orphans = self._assembler.take_orphans()
        if orphans:
            stats.note_malformed("orphan_fragment", orphans, self._lineno, "incomplete multi-part message")

    def _count_types(self) -> None:
        counts = self.stats.messages_by_type
        for msg_type, n in enumerate(self._types):
            if n:
                counts[msg_type] += n
        self._types = [0] * 64

    def take(self) -> tuple[list[Position], list[StaticReport]]:
        """The records decoded since the last call."""
        positions, statics = self.take_batch()
        return positions.records(), statics

    def take_batch(self) -> tuple[PositionBatch, list[StaticReport]]:
        """As :meth:`take`, the positions by column, in the order of their messages."""
        fast, others, at, statics = self._fast, self._positions, self._positions_at, self._statics
        self._fast, self._positions, self._positions_at, self._statics = [], [], [], []
        batch = fastdecode.positions(*(fast[i::6] for i in range(6))) if fast else PositionBatch.empty()
        if not others:
            return batch, statics
        # those pyais decoded (type 19) go back among the others, where their messages were
        fast_count, total = len(fast) // 6, len(fast) // 6 + len(others)
        order = np.empty(total, np.int64)
        slow = np.zeros(total, np.bool_)
        slow[at] = True
        order[~slow] = np.arange(fast_count)
        order[at] = np.arange(fast_count, total)
        return PositionBatch.concat([batch, PositionBatch.from_records(others)]).select(order), statics

    def close(self) -> None:
        """End of stream: incomplete messages are orphans."""
        self._count_types()
        orphans = self._assembler.flush()
        if orphans:
            self.stats.note_malformed("orphan_fragment", orphans, self._lineno, "stream ended mid-message")

    def _sentence(self, sentence: Sentence, received: float) -> None:
        time = sentence.time
        if self._gatehouse is not None:
            if time is None:
                time = self._gatehouse.time
                sentence = sentence._replace(time=time)
            self._gatehouse = None
        if time is not None and time > received + MAX_FUTURE_S:
            self.stats.note_malformed("timestamp", 1, self._lineno, "event time in the future")
            return
        if sentence.frag_count == 1:
            self._message(sentence.payload, sentence.fill_bits, sentence, 1, time, received)
            return
        assembled: Assembled | None = self._assembler.add(sentence, received, self._lineno)
        if assembled is not None:
            # A message is timed by its first fragment (the tag block or $PGHP before it).
            first = assembled.first
            self._message(
                assembled.payload, assembled.fill_bits, first, assembled.fragments, first.time, received
            )

    def _message(
        self,
        payload: bytes,
        fill_bits: int,
        first: Sentence,
        sentences: int,
        time: float | None,
        received: float,
    ) -> None:
        stats = self.stats
        msg_type = ARMOR[payload[0]]
        self._types[msg_type] += 1
        bounds = BIT_LENGTHS.get(msg_type)
        if bounds is None:
            stats.filtered["type_not_stored"] += sentences
            return
        bit_count = len(payload) * 6 - fill_bits
        if not bounds[0] <= bit_count <= bounds[1]:
            stats.note_malformed("length", sentences, self._lineno, f"type {msg_type} with {bit_count} bits")
            return
        if msg_type in _FAST_POSITIONS:  # nearly all the traffic: no pyais, nothing that can fail
            if self._dedup.is_duplicate(payload, received if time is None else time):
                stats.duplicate += sentences
                return
            stats.accepted += sentences
            stats.positions += 1
            if time is None:
                stats.untimed += sentences
            # decoded at take, all together (see ingest/fastdecode.py)
            self._fast.extend((payload, time, received, first.station, crc32(payload), sentences))
            return
        fast: StaticFields | None = None
        if msg_type in _FAST_STATICS:
            fast = fastdecode.static(msg_type, fastdecode.payload_value(payload, fill_bits), bit_count)
        if fast is None:  # pyais decodes the rest
            try:
                bits = bit_vector(payload, fill_bits)
                msg: Any = MSG_CLASS[msg_type].from_vector(bits)
            except Exception as exc:  # pyais raises many kinds on bad bits
                stats.note_malformed("decode", sentences, self._lineno, f"{type(exc).__name__}: {exc}")
                return
        # Only a valid message enters the window: a broken copy (wrong fill
        # bits, say) must not make the good copy after it a "duplicate".
        if self._dedup.is_duplicate(payload, received if time is None else time):
            stats.duplicate += sentences
            return
        stats.accepted += sentences
        if time is None:
            stats.untimed += sentences
        if msg_type == 19:  # a position and a static report in one
            position = pyais_position(msg)
            if time is None:
                time = refine_to_second(received, position[9])
            self._positions.append(
                make_position(position, msg_type, time, first.station, crc32(payload), sentences)
            )
            self._positions_at.append(len(self._fast) // 6 + len(self._positions) - 1)
            stats.positions += 1
            sentences = 0  # its lines are accounted with its position
        elif time is None:
            time = refine_to_second(received, None)
        fields: Any = pyais_static(msg, bits) if fast is None else fast
        report = make_static(fields, msg_type, time, sentences)
        if msg_type == 24:
            report = self._join_type24(report, fields[1])
        self._statics.append(report)
        stats.static_reports += 1

    def _join_type24(self, report: StaticReport, part: int) -> StaticReport:
        """Merge a type 24 part with the latest other part of the same MMSI."""
        parts = self._type24.pop(report.mmsi, {})
        parts[part] = report
        self._type24[report.mmsi] = parts  # most recent last, for LRU eviction
        if len(self._type24) > 100_000:
            del self._type24[next(iter(self._type24))]
        other = parts.get(1 - part)
        if other is None:
            return report
        return report._replace(
            **{
                name: getattr(other, name)
                for name in (
                    "shipname",
                    "callsign",
                    "ship_type",
                    "to_bow",
                    "to_stern",
                    "to_port",
                    "to_starboard",
                )
                if getattr(report, name) is None
            }
        )
