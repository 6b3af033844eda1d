"""Hostile input made from real lines, for the hardening test and bench/hostile.

:func:`hostile_feed` takes real AISHub lines, gives them tag-block times (so
that what must be stored does not depend on when a line is read) and then,
seeded, spoils a share of them the ways the hardening issue found: NUL bytes
in tag blocks, times before 2000 and far ahead, flipped, cut and inserted
bytes, multi-part groups reversed, blank lines, and endless lines (megabytes
without a newline). Every spoiled line ends with its own newline, so a clean
line is never merged into a spoiled one: every clean line's position must be
stored. Everything here is derived from the real capture by this code; the
spoiled lines are synthetic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import reduce
from operator import xor

from ingest.nmea import Sentence, parse_line
from ingest.pipeline import LineDecoder

BASE_EPOCH = 1_700_000_000


def _tag(body: bytes) -> bytes:
    return b"\\" + body + b"*%02X\\" % reduce(xor, body, 0)


@dataclass
class HostileFeed:
    """The lines (each without its newline, except endless ones, which have
    none), and the clean lines among them (for the positions that must be stored)."""

    lines: list[bytes] = field(default_factory=list)
    clean: list[bytes] = field(default_factory=list)
    spoiled: int = 0

    def data(self) -> Iterator[bytes]:
        for line in self.lines:
            yield line + b"\n"


def hostile_feed(raw: list[bytes], count: int, *, seed: int = 8, spoil: float = 0.2) -> HostileFeed:
    """``count`` lines from ``raw`` (repeated with later times as needed), ``spoil`` of them spoiled."""
    rng = random.Random(seed)
    sentences = [line for line in raw if line.startswith(b"!")]
    feed = HostileFeed(lines=[b"A" * (5 * 2**20)], spoiled=1)  # five megabytes without a newline
    copy = 0
    while len(feed.lines) < count:
        i = 0
        while i < len(sentences) and len(feed.lines) < count:
            line = sentences[i]
            stamp = BASE_EPOCH + copy * 86_400 + i // 400  # 400 lines a second, a day per copy
            tagged = _tag(b"c:%d" % stamp) + line
            if _group_of_two(sentences, i) and rng.random() < spoil:
                # a reversed group: still one message, still to be stored
                second = _tag(b"c:%d" % stamp) + sentences[i + 1]
                feed.lines += [second, tagged]
                feed.clean += [tagged, second]
                i += 2
                continue
            if rng.random() < spoil:
                feed.lines.append(_spoiled(tagged, line, stamp, rng))
                feed.spoiled += 1
            else:
                feed.lines.append(tagged)
                feed.clean.append(tagged)
            i += 1
        copy += 1
    return feed


def _group_of_two(sentences: list[bytes], i: int) -> bool:
    first = parse_line(sentences[i])
    second = parse_line(sentences[i + 1]) if i + 1 < len(sentences) else None
    return (
        isinstance(first, Sentence)
        and isinstance(second, Sentence)
        and (first.frag_count, first.frag_num, second.frag_count, second.frag_num) == (2, 1, 2, 2)
        and (first.seq_id, first.channel) == (second.seq_id, second.channel)
    )


def _spoiled(tagged: bytes, line: bytes, stamp: int, rng: random.Random) -> bytes:
    """One spoiled line: still one line (no line end inside it)."""
    return _spoil(tagged, line, stamp, rng).replace(b"\n", b"?").replace(b"\r", b"?")


def _spoil(tagged: bytes, line: bytes, stamp: int, rng: random.Random) -> bytes:
    if rng.random() < 0.01:  # a receiver that never sends a newline (tens of KB; a few MB once)
        return b"A" * rng.randrange(2_000, 64_000)
    kind = rng.choice(["nul", "ancient", "future", "flip", "cut", "insert", "blank"])
    if kind == "nul":
        return _tag(b"s:rx\x00%d,c:%d" % (rng.randrange(100), stamp)) + line
    if kind == "ancient":
        return _tag(b"c:%d" % rng.randrange(0, 946_684_800)) + line
    if kind == "future":
        return _tag(b"c:%d" % (4_102_444_800 + rng.randrange(10**6))) + line
    at = rng.randrange(len(tagged))
    if kind == "flip":
        return tagged[:at] + bytes([rng.randrange(256)]) + tagged[at + 1 :]
    if kind == "cut":
        return tagged[:at]
    if kind == "insert":
        return tagged[:at] + rng.randbytes(rng.randrange(1, 8)) + tagged[at:]
    return b""  # blank


def must_store(feed: HostileFeed) -> set[tuple[int, object, int]]:
    """The (mmsi, time, payload CRC) of every position the clean lines carry."""
    decoder = LineDecoder("clean")
    decoder.feed(feed.clean, float(BASE_EPOCH + 400 * 86_400))  # later than every copy: none "ahead"
    decoder.close()
    return {(p.mmsi, p.ts, p.payload_crc) for p in decoder.take()[0]}
